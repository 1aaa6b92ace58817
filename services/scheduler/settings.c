/*
 * UPMON_SCHEDULER_* options, one row each (config.h). The admin address and port, broker,
 * database and shutdown settings are the common ones.
 */
#include "sched.h"

#include <stddef.h>

#include "upmon/config.h"

static const struct upmon_config_opt sched_opts[] = {
	{ "UPMON_SCHEDULER_RECONCILE_S", UPMON_CFG_INT, 5, 86400, "60", NULL, "s",
	  "Period of the reconcile (id, updated_at) that catches changes never notified.",
	  offsetof(struct sched_settings, reconcile_s), 0, NULL },
	{ "UPMON_SCHEDULER_LEADER_POLL_MS", UPMON_CFG_INT, 100, 60000, "1000", NULL, "ms",
	  "How often a standby tries to take the leader lock.",
	  offsetof(struct sched_settings, leader_poll_ms), 0, NULL },
	{ "UPMON_SCHEDULER_PARTITION_DAYS", UPMON_CFG_INT, 1, 365, "7", NULL, "days",
	  "Days of check_results partitions the leader keeps created ahead (at start, hourly).",
	  offsetof(struct sched_settings, partition_days), 0, NULL },
	{ "UPMON_SCHEDULER_MAX_BACKLOG", UPMON_CFG_INT, 1000, 10000000, "200000", NULL, NULL,
	  "Due tasks kept while the broker is down; beyond it slots are counted as missed.",
	  offsetof(struct sched_settings, max_backlog), 0, NULL },
	{ "UPMON_SCHEDULER_MAX_IN_FLIGHT", UPMON_CFG_INT, 100, 1000000, "20000", NULL, NULL,
	  "Publishes awaiting their broker confirm before publishing waits.",
	  offsetof(struct sched_settings, max_in_flight), 0, NULL },
	{ "UPMON_SCHEDULER_LOAD_BATCH", UPMON_CFG_INT, 100, 100000, "5000", NULL, NULL,
	  "Monitors read per query of a full load (publishing goes on between pages).",
	  offsetof(struct sched_settings, load_batch), 0, NULL },
	{ "UPMON_SCHEDULER_STATE_MS", UPMON_CFG_INT, 100, 5000, "500", NULL, "ms",
	  "How often the leader records published_through and checks its lock session.",
	  offsetof(struct sched_settings, state_ms), 0, NULL },
};

struct upmon_config_table
sched_settings_table(struct sched_settings *s)
{
	struct upmon_config_table t = { sched_opts, sizeof(sched_opts) / sizeof(sched_opts[0]),
	    s, NULL };

	return t;
}
