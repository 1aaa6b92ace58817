/*
 * upmon-probe's own settings (UPMON_PROBE_*), besides the common ones (config.h). One table
 * row per option in settings.c; README-worker.md lists them.
 */
#ifndef UPMON_PROBE_SETTINGS_H
#define UPMON_PROBE_SETTINGS_H

#include <stdbool.h>

#include "upmon/config.h"

struct probe_settings {
	long threads;			/* UPMON_PROBE_THREADS */
	long consumers;			/* UPMON_PROBE_CONSUMERS: channels per thread */
	long batch_max;			/* UPMON_PROBE_BATCH_MAX */
	long max_attempts;		/* UPMON_PROBE_MAX_ATTEMPTS */
	bool ssrf_guard;		/* UPMON_PROBE_SSRF_GUARD */
	char *ssrf_allow;		/* UPMON_PROBE_SSRF_ALLOW: CIDR list */
	long max_body_bytes;		/* UPMON_PROBE_MAX_BODY_BYTES */
	char *host;			/* UPMON_PROBE_HOST: probe_host of results */
	char *user_agent;		/* UPMON_PROBE_USER_AGENT */
	long dead_backoff_max_ms;	/* UPMON_PROBE_DEAD_BACKOFF_MAX_MS */
	long relay_batch;		/* UPMON_PROBE_RELAY_BATCH */
	long relay_poll_ms;		/* UPMON_PROBE_RELAY_POLL_MS */
};

/* Returns the table describing s (which must start zeroed; strings are freed by
 * upmon_config_release). */
struct upmon_config_table probe_settings_table(struct probe_settings *s);

#endif
