/*
 * upmon-probe's option table (settings.h).
 */
#include "settings.h"

#include <stddef.h>

#define PS(f) offsetof(struct probe_settings, f)

static const struct upmon_config_opt probe_opts[] = {
	{ "UPMON_PROBE_THREADS", UPMON_CFG_INT, 1, 64, "2", NULL, NULL,
	  "Worker threads; each has its own RabbitMQ connection, check engine and PostgreSQL "
	  "connection.", PS(threads), 0, NULL },
	{ "UPMON_PROBE_CONSUMERS", UPMON_CFG_INT, 1, 256, "256", NULL, NULL,
	  "Consumer channels on monitor_tasks per thread (each with UPMON_AMQP_PREFETCH): the "
	  "checks a thread runs at once.", PS(consumers), 0, NULL },
	{ "UPMON_PROBE_BATCH_MAX", UPMON_CFG_INT, 1, 4096, "128", NULL, NULL,
	  "Most results committed in one transaction (group commit never waits to fill it).",
	  PS(batch_max), 0, NULL },
	{ "UPMON_PROBE_MAX_ATTEMPTS", UPMON_CFG_INT, 0, 99, "5", NULL, NULL,
	  "Processing-failure retries of a task (through the retry queues) before it is "
	  "dead-lettered with a SYSTEM_ERROR alert.", PS(max_attempts), 0, NULL },
	{ "UPMON_PROBE_SSRF_GUARD", UPMON_CFG_BOOL, 0, 0, "true", NULL, NULL,
	  "Refuse to connect to loopback, private, link-local and other internal addresses.",
	  PS(ssrf_guard), 0, NULL },
	{ "UPMON_PROBE_SSRF_ALLOW", UPMON_CFG_STRING, 0, 4096, NULL, NULL, NULL,
	  "Comma-separated CIDR ranges the SSRF guard lets through (self-hosted private "
	  "networks).", PS(ssrf_allow), 0, NULL },
	{ "UPMON_PROBE_MAX_BODY_BYTES", UPMON_CFG_INT, 1024, 67108864, "1048576", NULL, "bytes",
	  "Response bytes kept for the keyword check; the rest is not read.",
	  PS(max_body_bytes), 0, NULL },
	{ "UPMON_PROBE_HOST", UPMON_CFG_STRING, 0, 253, NULL, NULL, NULL,
	  "Name stored with each result as probe_host; empty = the host name.",
	  PS(host), 0, NULL },
	{ "UPMON_PROBE_USER_AGENT", UPMON_CFG_STRING, 0, 256, NULL, NULL, NULL,
	  "User-Agent of HTTP checks; empty = upmon-probe/<version>.", PS(user_agent), 0,
	  NULL },
	{ "UPMON_PROBE_DEAD_BACKOFF_MAX_MS", UPMON_CFG_INT, 250, 600000, "10000", NULL, "ms",
	  "Cap of the delay between tries to raise the SYSTEM_ERROR alert of a task past its "
	  "attempts (it stays unacked meanwhile).", PS(dead_backoff_max_ms), 0, NULL },
	{ "UPMON_PROBE_RELAY_BATCH", UPMON_CFG_INT, 1, 10000, "200", NULL, NULL,
	  "Outbox rows the relay publishes per round.", PS(relay_batch), 0, NULL },
	{ "UPMON_PROBE_RELAY_POLL_MS", UPMON_CFG_INT, 10, 600000, "1000", NULL, "ms",
	  "How often the relay looks for outbox rows without being woken.",
	  PS(relay_poll_ms), 0, NULL },
};

struct upmon_config_table
probe_settings_table(struct probe_settings *s)
{
	struct upmon_config_table t = { probe_opts, sizeof(probe_opts) / sizeof(probe_opts[0]),
	    s, NULL };

	return t;
}
