/* log.h — one line per event, key=value, to stderr (and syslog when asked).
 * Level-checked macros; log_warn() appends errno text, log_warnx() does not.
 * A message is never split across source lines, so every line is greppable. */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* The daemon's log settings: the one process-wide state besides its config. */
void log_init(const char *prog, enum log_level level, int use_syslog);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
/* "error", "warn", "info" or "debug" (the --log-level values) into *out: 0, or -EINVAL. */
int log_level_parse(const char *name, enum log_level *out);

/* fmt is "event key=value key=value"; "level=" and "prog=" are prepended. */
void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LVL_ERROR, 1, __VA_ARGS__)
#define log_errorx(...) log_msg(LOG_LVL_ERROR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, 1, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...) do { if (log_enabled(LOG_LVL_INFO)) log_msg(LOG_LVL_INFO, 0, __VA_ARGS__); } while (0)
#ifdef NDEBUG
#define log_debug(...) do { } while (0)
#else
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__); } while (0)
#endif

#endif
