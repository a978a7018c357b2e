/* main.c — runs every registered unit test (optionally only names containing argv[1])
 * and prints "N passed, N failed" as its last line. */
#include "test.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST_MAX 1024

struct test_case { const char *name; test_fn fn; const char *file; };

static struct test_case tests[TEST_MAX];
static int ntests;
static int cur_failed;
static char tmpdir[256];

void test_register(const char *name, test_fn fn, const char *file)
{
	if (ntests == TEST_MAX) {
		fprintf(stderr, "too many tests (TEST_MAX=%d)\n", TEST_MAX);
		exit(2);
	}
	tests[ntests++] = (struct test_case){ name, fn, file };
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cur_failed = 1;
}

const char *test_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-unit-XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return tmpdir;
}

int test_listen_any(char port[8])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	snprintf(port, 8, "%u", ntohs(a.sin_port));
	return fd;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	/* Line-buffered, so the results so far survive a crash when piped into a log. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 0; i < ntests; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		cur_failed = 0;
		tests[i].fn();
		if (tmpdir[0]) {
			nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			tmpdir[0] = 0;
		}
		printf("%s %s (%s)\n", cur_failed ? "FAIL" : "ok  ", tests[i].name, tests[i].file);
		if (cur_failed)
			failed++;
		else
			passed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
