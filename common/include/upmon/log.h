/*
 * Structured logging to stderr, in the spirit of OpenBSD's log.h.
 *
 * Every line carries ts, level, service, host and msg, plus monitor and task when the calling
 * thread has set them with log_ctx_set(). Lines are logfmt by default or JSON
 * (log_init(..., UPMON_LOG_JSON)), written with one write(2) so threads never interleave.
 * The level macros do not evaluate their arguments below the active level.
 */
#ifndef UPMON_LOG_H
#define UPMON_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum upmon_log_level {
	UPMON_LOG_ERROR = 0,
	UPMON_LOG_WARN = 1,
	UPMON_LOG_INFO = 2,
	UPMON_LOG_DEBUG = 3,
};

enum upmon_log_format {
	UPMON_LOG_LOGFMT = 0,
	UPMON_LOG_JSON = 1,
};

extern int upmon_log_level;

/* Sets the service name (copied), the level and the format; reads the host name once. */
void log_init(const char *service, int level, int format);
void log_set_level(int level);
/* Parses "error", "warn", "info" or "debug"; returns 0, or -1 if name is not a level. */
int log_level_parse(const char *name, int *level);
/* Parses "logfmt" or "json"; returns 0 or -1. */
int log_format_parse(const char *name, int *format);
/* Sets the monitor and task ids of this thread's lines (NULL clears one); copies them. */
void log_ctx_set(const char *monitor_id, const char *task_id);
void log_ctx_clear(void);

/* Writes one line. fields is NULL or pre-rendered logfmt "k=v k2=v2" added to the line. */
void log_emit(int level, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vemit(int level, const char *fields, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* log_warn logs at WARN and adds error="strerror(errno)"; log_warnx (below) does not.
 * fatal/fatalx log at ERROR (fatal with errno) and exit(1): start-up and broken invariants. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_enabled(lvl) (upmon_log_level >= (lvl))
#define log_error(...) do { if (log_enabled(UPMON_LOG_ERROR)) \
	log_emit(UPMON_LOG_ERROR, NULL, __VA_ARGS__); } while (0)
#define log_warnx(...) do { if (log_enabled(UPMON_LOG_WARN)) \
	log_emit(UPMON_LOG_WARN, NULL, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(UPMON_LOG_INFO)) \
	log_emit(UPMON_LOG_INFO, NULL, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(UPMON_LOG_DEBUG)) \
	log_emit(UPMON_LOG_DEBUG, NULL, __VA_ARGS__); } while (0)
/* With extra pre-rendered fields: log_infof("queue=monitor_tasks", "declared"). */
#define log_infof(fields, ...) do { if (log_enabled(UPMON_LOG_INFO)) \
	log_emit(UPMON_LOG_INFO, (fields), __VA_ARGS__); } while (0)
#define log_warnf(fields, ...) do { if (log_enabled(UPMON_LOG_WARN)) \
	log_emit(UPMON_LOG_WARN, (fields), __VA_ARGS__); } while (0)

/*
 * Rate limit for a repeated warning (a server down, the same failure on every task): at most
 * one line per interval_ms. log_ratelimit() returns 1 when the caller may log now and stores
 * in *suppressed how many lines were skipped since the last one (mention them: "(N similar
 * suppressed)"), else 0 and counts one more. Zero-initialise the struct; one per thread.
 */
struct log_ratelimit {
	int64_t next_ms;
	unsigned suppressed;
};
int log_ratelimit(struct log_ratelimit *rl, int64_t interval_ms, unsigned *suppressed);

/* Formats into buf (always terminated, truncated with "..." when too long); for tests and for
 * callers that send log lines elsewhere. Returns the length written. */
size_t log_format_line(char *buf, size_t size, int level, const char *fields,
    const char *msg);

#endif
