/* test.h — the unit-test harness: TEST() registers a case at load time,
 * CHECK*() record a failure and end the case. tests/unit/main.c runs them all
 * and ends with the line "N passed, N failed". */
#ifndef CAIRN_TEST_H
#define CAIRN_TEST_H

#include <stdint.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, const char *file);
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A scratch directory, fresh for each case and removed after it. */
const char *test_tmpdir(void);
/* A TCP socket listening on 127.0.0.1 at a free port (its number into port): the fd, or -1. */
int test_listen_any(char port[8]);

#define TEST(name) \
	static void name(void); \
	__attribute__((constructor)) static void name##_reg(void) { test_register(#name, name, __FILE__); } \
	static void name(void)

#define CHECK(cond) do { \
	if (!(cond)) { test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); return; } \
} while (0)

#define CHECK_INT(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) { test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_); return; } \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (!a_ || !b_ || strcmp(a_, b_) != 0) { \
		test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		return; } \
} while (0)

#define CHECK_MEM(a, b, n) do { \
	if (memcmp((a), (b), (n)) != 0) { test_fail(__FILE__, __LINE__, "memory of %s differs from %s", #a, #b); return; } \
} while (0)

#endif
