/* log.c — key=value event lines to stderr or syslog; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *log_prog = "cairn";
static enum log_level log_level = LOG_LVL_INFO;
static int log_syslog;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(const char *prog, enum log_level level, int use_syslog)
{
	log_prog = prog;
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_LVL_DEBUG; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_level;
}

void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	int saved = errno;
	char line[1024];
	size_t n;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	n = (size_t)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	if (with_errno && saved)
		snprintf(line + n, sizeof(line) - n, " errno=%d err=\"%s\"", saved, strerror(saved));
	if (log_syslog) {
		syslog(prio[level], "level=%s %s", level_names[level], line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		/* One fprintf per line: stdio locks the stream, so threads never interleave. */
		fprintf(stderr, "ts=%s.%03ldZ prog=%s level=%s %s\n", when, ts.tv_nsec / 1000000,
			log_prog, level_names[level], line);
	}
	errno = saved;
}
