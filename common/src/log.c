/*
 * Structured logging: one line per event, logfmt or JSON, written to stderr with a single
 * write(2). See log.h.
 */
#include "upmon/log.h"
#include "upmon/backoff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX	4096
#define LOG_MSG_MAX	2048
#define LOG_ID_MAX	128

int upmon_log_level = UPMON_LOG_INFO;

static int log_format = UPMON_LOG_LOGFMT;
static char log_service[64] = "upmon";
static char log_host[256] = "unknown";
static _Thread_local char ctx_monitor[LOG_ID_MAX];
static _Thread_local char ctx_task[LOG_ID_MAX];

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Bounded appender: keeps buf terminated, remembers truncation. */
struct sbuf {
	char	*buf;
	size_t	 size;
	size_t	 len;
	int	 truncated;
};

static void
sb_putc(struct sbuf *sb, char c)
{
	if (sb->len + 1 < sb->size) {
		sb->buf[sb->len++] = c;
		sb->buf[sb->len] = '\0';
	} else
		sb->truncated = 1;
}

static void
sb_puts(struct sbuf *sb, const char *s)
{
	while (*s != '\0')
		sb_putc(sb, *s++);
}

/* Appends s quoted and escaped for the active format. logfmt leaves simple values bare. */
static void
sb_put_value(struct sbuf *sb, const char *s)
{
	const char *p;
	int quote = log_format == UPMON_LOG_JSON || *s == '\0';

	for (p = s; !quote && *p != '\0'; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20 ||
		    *p == '\\')
			quote = 1;
	if (!quote) {
		sb_puts(sb, s);
		return;
	}
	sb_putc(sb, '"');
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\') {
			sb_putc(sb, '\\');
			sb_putc(sb, (char)c);
		} else if (c == '\n') {
			sb_puts(sb, "\\n");
		} else if (c == '\t') {
			sb_puts(sb, "\\t");
		} else if (c == '\r') {
			sb_puts(sb, "\\r");
		} else if (c < 0x20) {
			static const char hex[] = "0123456789abcdef";

			sb_puts(sb, "\\u00");
			sb_putc(sb, hex[c >> 4]);
			sb_putc(sb, hex[c & 0xf]);
		} else
			sb_putc(sb, (char)c);
	}
	sb_putc(sb, '"');
}

static void
sb_put_field(struct sbuf *sb, const char *key, const char *value, int first)
{
	if (log_format == UPMON_LOG_JSON) {
		if (!first)
			sb_putc(sb, ',');
		sb_putc(sb, '"');
		sb_puts(sb, key);
		sb_puts(sb, "\":");
	} else {
		if (!first)
			sb_putc(sb, ' ');
		sb_puts(sb, key);
		sb_putc(sb, '=');
	}
	sb_put_value(sb, value);
}

/* Adds pre-rendered logfmt fields "k=v k2=\"v 2\"" as separate fields. */
static void
sb_put_fields(struct sbuf *sb, const char *fields)
{
	char key[64], val[512];
	const char *p = fields;

	while (*p != '\0') {
		size_t kl = 0, vl = 0;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		while (*p != '\0' && *p != '=' && *p != ' ' && kl + 1 < sizeof(key))
			key[kl++] = *p++;
		key[kl] = '\0';
		while (*p != '\0' && *p != '=' && *p != ' ')
			p++;
		if (*p == '=')
			p++;
		if (*p == '"') {
			p++;
			while (*p != '\0' && *p != '"') {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (vl + 1 < sizeof(val))
					val[vl++] = *p;
				p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p != '\0' && *p != ' ') {
				if (vl + 1 < sizeof(val))
					val[vl++] = *p;
				p++;
			}
		}
		val[vl] = '\0';
		if (kl > 0)
			sb_put_field(sb, key, val, 0);
	}
}


size_t
log_format_line(char *buf, size_t size, int level, const char *fields, const char *msg)
{
	struct sbuf sb = { buf, size, 0, 0 };
	char ts[UPMON_RFC3339_LEN + 1];

	if (size == 0)
		return 0;
	buf[0] = '\0';
	if (level < UPMON_LOG_ERROR || level > UPMON_LOG_DEBUG)
		level = UPMON_LOG_ERROR;
	if (upmon_rfc3339_ms(upmon_wall_ms(), ts, sizeof(ts)) != 0)
		snprintf(ts, sizeof(ts), "unknown");
	if (log_format == UPMON_LOG_JSON)
		sb_putc(&sb, '{');
	sb_put_field(&sb, "ts", ts, 1);
	sb_put_field(&sb, "level", level_names[level], 0);
	sb_put_field(&sb, "service", log_service, 0);
	sb_put_field(&sb, "host", log_host, 0);
	if (ctx_monitor[0] != '\0')
		sb_put_field(&sb, "monitor", ctx_monitor, 0);
	if (ctx_task[0] != '\0')
		sb_put_field(&sb, "task", ctx_task, 0);
	sb_put_field(&sb, "msg", msg, 0);
	if (fields != NULL)
		sb_put_fields(&sb, fields);
	if (log_format == UPMON_LOG_JSON)
		sb_putc(&sb, '}');
	if (sb.truncated && size > 4) {
		/* Say the line was cut; it stays one line. */
		memcpy(buf + size - 4, "...", 4);
		sb.len = size - 1;
	}
	return sb.len;
}

void
log_init(const char *service, int level, int format)
{
	if (service != NULL)
		snprintf(log_service, sizeof(log_service), "%s", service);
	log_set_level(level);
	log_format = format == UPMON_LOG_JSON ? UPMON_LOG_JSON : UPMON_LOG_LOGFMT;
	if (gethostname(log_host, sizeof(log_host)) != 0)
		snprintf(log_host, sizeof(log_host), "unknown");
	log_host[sizeof(log_host) - 1] = '\0';
}

void
log_set_level(int level)
{
	if (level < UPMON_LOG_ERROR)
		level = UPMON_LOG_ERROR;
	if (level > UPMON_LOG_DEBUG)
		level = UPMON_LOG_DEBUG;
	upmon_log_level = level;
}

int
log_level_parse(const char *name, int *level)
{
	int i;

	for (i = 0; i <= UPMON_LOG_DEBUG; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*level = UPMON_LOG_WARN;
		return 0;
	}
	return -1;
}

int
log_format_parse(const char *name, int *format)
{
	if (strcmp(name, "logfmt") == 0)
		*format = UPMON_LOG_LOGFMT;
	else if (strcmp(name, "json") == 0)
		*format = UPMON_LOG_JSON;
	else
		return -1;
	return 0;
}

void
log_ctx_set(const char *monitor_id, const char *task_id)
{
	snprintf(ctx_monitor, sizeof(ctx_monitor), "%s", monitor_id ? monitor_id : "");
	snprintf(ctx_task, sizeof(ctx_task), "%s", task_id ? task_id : "");
}

void
log_ctx_clear(void)
{
	ctx_monitor[0] = '\0';
	ctx_task[0] = '\0';
}

void
log_vemit(int level, const char *fields, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
	size_t len, off = 0;
	int saved = errno;

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		snprintf(msg, sizeof(msg), "(unformattable message)");
	len = log_format_line(line, sizeof(line) - 1, level, fields, msg);
	line[len++] = '\n';
	while (off < len) {
		ssize_t n = write(STDERR_FILENO, line + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	errno = saved;
}

void
log_emit(int level, const char *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, fields, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	char fields[300];
	va_list ap;
	int saved = errno;

	if (!log_enabled(UPMON_LOG_WARN))
		return;
	snprintf(fields, sizeof(fields), "error=\"%s\"", strerror(saved));
	va_start(ap, fmt);
	log_vemit(UPMON_LOG_WARN, fields, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char fields[300];
	va_list ap;
	int saved = errno;

	snprintf(fields, sizeof(fields), "error=\"%s\"", strerror(saved));
	va_start(ap, fmt);
	log_vemit(UPMON_LOG_ERROR, fields, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(UPMON_LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

int
log_ratelimit(struct log_ratelimit *rl, int64_t interval_ms, unsigned *suppressed)
{
	int64_t now = upmon_mono_ms();

	if (now < rl->next_ms) {
		rl->suppressed++;
		return 0;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->next_ms = now + interval_ms;
	return 1;
}
