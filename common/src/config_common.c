/*
 * The settings every upmon service shares. A service loads this table together with its
 * own: upmon_config_load((struct upmon_config_table[]){ upmon_common_table(&common),
 * { probe_opts, n, &probe } }, 2, &src).
 */
#include "upmon/config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>

#define CS(field) offsetof(struct upmon_common_settings, field)

/* UPMON_ADMIN_ADDR must be an IPv4 literal: Debian's civetweb is built without IPv6. */
static int
check_ipv4(const char *value, char *err, size_t errlen)
{
	struct in_addr a;

	if (inet_pton(AF_INET, value, &a) == 1)
		return 0;
	snprintf(err, errlen, "is not an IPv4 address");
	return -1;
}

const struct upmon_config_opt upmon_common_opts[] = {
	{ "UPMON_LOG_LEVEL", UPMON_CFG_ENUM, 0, 0, "info", "error|warn|info|debug", NULL,
	  "Lowest level of log lines written to stderr.", CS(log_level), 0, NULL },
	{ "UPMON_LOG_FORMAT", UPMON_CFG_ENUM, 0, 0, "logfmt", "logfmt|json", NULL,
	  "Format of log lines.", CS(log_format), 0, NULL },
	{ "UPMON_ADMIN_ADDR", UPMON_CFG_STRING, 0, 64, "127.0.0.1", NULL, NULL,
	  "IPv4 address of the admin endpoint (/healthz, /readyz, /metrics); 0.0.0.0 in "
	  "containers.", CS(admin_addr), 0, check_ipv4 },
	{ "UPMON_ADMIN_PORT", UPMON_CFG_INT, 0, 65535, "0", NULL, NULL,
	  "TCP port of the admin endpoint; 0 picks a free port and logs it.",
	  CS(admin_port), 0, NULL },
	{ "UPMON_AMQP_URL", UPMON_CFG_URL, 0, 2048, "amqp://guest:guest@127.0.0.1:5672/%2f",
	  "amqp|amqps", NULL, "RabbitMQ connection URL (vhost URL-encoded).",
	  CS(amqp_url), 0, NULL },
	{ "UPMON_AMQP_HEARTBEAT", UPMON_CFG_INT, 0, 600, "30", NULL, "s",
	  "AMQP heartbeat interval; 0 disables heartbeats.", CS(amqp_heartbeat), 0, NULL },
	{ "UPMON_AMQP_QUEUE_TYPE", UPMON_CFG_ENUM, 0, 0, "quorum", "quorum|classic", NULL,
	  "Type of the durable queues upmon declares.", CS(amqp_queue_type), 0, NULL },
	{ "UPMON_AMQP_PREFETCH", UPMON_CFG_INT, 1, 10000, "1", NULL, NULL,
	  "Unacknowledged messages per consumer channel.", CS(amqp_prefetch), 0, NULL },
	{ "UPMON_AMQP_CONFIRM_TIMEOUT_MS", UPMON_CFG_INT, 100, 600000, "10000", NULL, "ms",
	  "How long a publisher waits for a broker confirm before it treats the message as "
	  "unconfirmed and publishes it again.", CS(amqp_confirm_timeout_ms), 0, NULL },
	{ "UPMON_RETRY_LEVELS", UPMON_CFG_INT, 1, 20, "5", NULL, NULL,
	  "Number of retry queues (<queue>.retry.1..N); a message is dead-lettered after the "
	  "last.", CS(retry_levels), 0, NULL },
	{ "UPMON_RETRY_BASE_MS", UPMON_CFG_INT, 100, 3600000, "1000", NULL, "ms",
	  "TTL of retry queue 1; queue n waits base * 2^(n-1).", CS(retry_base_ms), 0, NULL },
	{ "UPMON_RETRY_MAX_MS", UPMON_CFG_INT, 100, 86400000, "60000", NULL, "ms",
	  "Cap of any retry queue's TTL.", CS(retry_max_ms), 0, NULL },
	{ "UPMON_MAX_MESSAGE_BYTES", UPMON_CFG_INT, 4096, 16777216, "65536", NULL, "bytes",
	  "Largest AMQP message body accepted or produced.", CS(max_message_bytes), 0, NULL },
	{ "UPMON_PG_URL", UPMON_CFG_URL, 0, 2048, "postgresql://upmon@127.0.0.1:5432/upmon",
	  "postgres|postgresql", NULL, "PostgreSQL connection URL (libpq syntax).",
	  CS(pg_url), 0, NULL },
	{ "UPMON_PG_CONNECT_TIMEOUT", UPMON_CFG_INT, 1, 300, "5", NULL, "s",
	  "PostgreSQL connect timeout.", CS(pg_connect_timeout), 0, NULL },
	{ "UPMON_PG_STATEMENT_TIMEOUT_MS", UPMON_CFG_INT, 0, 3600000, "30000", NULL, "ms",
	  "PostgreSQL statement_timeout of every session; 0 disables it.",
	  CS(pg_statement_timeout_ms), 0, NULL },
	{ "UPMON_REDIS_URL", UPMON_CFG_URL, 0, 2048, "redis://127.0.0.1:6379/0",
	  "redis|rediss", NULL, "Redis connection URL.", CS(redis_url), 0, NULL },
	{ "UPMON_REDIS_TIMEOUT_MS", UPMON_CFG_INT, 10, 60000, "500", NULL, "ms",
	  "Connect and command timeout of Redis; a slow or absent Redis never blocks longer.",
	  CS(redis_timeout_ms), 0, NULL },
	{ "UPMON_RECONNECT_MAX_MS", UPMON_CFG_INT, 100, 600000, "5000", NULL, "ms",
	  "Cap of the exponential backoff between reconnect attempts (RabbitMQ, PostgreSQL, "
	  "Redis).", CS(reconnect_max_ms), 0, NULL },
	{ "UPMON_SHUTDOWN_TIMEOUT_MS", UPMON_CFG_INT, 0, 600000, "30000", NULL, "ms",
	  "On SIGTERM, how long in-flight work may take before the process exits anyway.",
	  CS(shutdown_timeout_ms), 0, NULL },
};

const size_t upmon_common_nopts = sizeof(upmon_common_opts) / sizeof(upmon_common_opts[0]);

static int
common_validate(const void *base, FILE *diag)
{
	const struct upmon_common_settings *s = base;
	int problems = 0;

	if (s->retry_base_ms > s->retry_max_ms) {
		fprintf(diag, "config: UPMON_RETRY_BASE_MS: %ld is above UPMON_RETRY_MAX_MS %ld\n",
		    s->retry_base_ms, s->retry_max_ms);
		problems++;
	}
	return problems;
}

struct upmon_config_table
upmon_common_table(struct upmon_common_settings *s)
{
	struct upmon_config_table t = { upmon_common_opts, 0, s, common_validate };

	t.nopts = upmon_common_nopts;
	return t;
}
