/*
 * The probe's durable side: applies a batch of check results in ONE PostgreSQL transaction
 * (group commit): the result rows (idempotent on (monitor, slot, attempt)), the alert state
 * machine under the monitor_state row lock, the hourly rollups, and the outbox rows (status
 * events, alert events, confirmation re-probe tasks); then, after the commit, the Redis
 * write-through of each monitor's latest status.
 *
 * One store per worker thread (it owns one db handle and one cache handle).
 */
#ifndef UPMON_PROBE_STORE_H
#define UPMON_PROBE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "upmon/cache.h"
#include "upmon/db.h"
#include "upmon/msg.h"

struct upmon_metrics;
struct probe_store;

struct probe_store_config {
	struct upmon_db_config db;	/* url required */
	struct upmon_cache_config cache;	/* url NULL = no Redis write-through */
	int retry_levels;		/* monitor_tasks.retry.1..N: re-probe n goes to level
					 * min(n, N) */
	const char *probe_host;		/* stored in check_results.probe_host; default hostname */
	struct upmon_metrics *metrics;	/* may be NULL */
	void (*wake)(void *arg);	/* called after a commit that wrote outbox rows (wakes
					 * the relay); may be NULL */
	void *wake_arg;
};

enum probe_item_outcome {
	PROBE_ITEM_STORED = 1,		/* result row inserted (and state applied if final) */
	PROBE_ITEM_DUPLICATE = 2,	/* the row existed: a redelivery, nothing changed */
	PROBE_ITEM_GONE = 3,		/* monitor deleted or paused: dropped, nothing stored */
	PROBE_ITEM_FAILED = 4,		/* this item alone failed permanently (err, errmsg) */
};

/* One task and its result, in; what happened, out. */
struct probe_item {
	const struct upmon_task *task;	/* borrowed */
	struct probe_result result;
	/* filled by probe_store_apply */
	enum probe_item_outcome outcome;
	int err;			/* UPMON_DB_E_* when FAILED */
	char errmsg[256];
	bool final;			/* this attempt fed the state machine */
	bool reprobe;			/* a confirmation re-probe (attempt + 1) was queued */
	enum upmon_monitor_status status;	/* the monitor's status after this item */
	bool changed;			/* the status changed */
};

void probe_store_config_init(struct probe_store_config *cfg);
/* Creates a store (no I/O yet). 0, -EINVAL, -ENOMEM. */
int probe_store_new(const struct probe_store_config *cfg, struct probe_store **out);
void probe_store_free(struct probe_store *s);

/*
 * Applies items[0..n) in one transaction and commits. A failed attempt with
 * task->attempt <= task->retries is stored with final = false and queues a re-probe task
 * (attempt + 1) through the outbox; otherwise the attempt is final and feeds the state
 * machine. Returns 0 when committed: every item has its outcome (an item that failed
 * permanently, e.g. a constraint, is isolated and marked FAILED while the others commit).
 * Returns a negative UPMON_DB_E_* when the batch as a whole did not (or may not have)
 * committed, typically UPMON_DB_E_CONN: retry the tasks later; applying again is safe.
 */
int probe_store_apply(struct probe_store *s, struct probe_item *items, size_t n);

/* After a successful apply: writes the latest status of each STORED item to Redis
 * (upmon:status:<monitor_id>, newest wins). Never blocks longer than the cache timeouts;
 * a Redis outage is counted and ignored. */
void probe_store_cache(struct probe_store *s, const struct probe_item *items, size_t n);

/*
 * Raises a SYSTEM_ERROR alert for a task the probe gave up on after `attempts` processing
 * failures: an alerts row (dedup key system_error:<monitor>:<slot>:<attempt>) and its outbox
 * row in one transaction. Idempotent. 0 (also when the monitor no longer exists), or a
 * negative UPMON_DB_E_* (UPMON_DB_E_CONN: try again later).
 */
int probe_store_system_error(struct probe_store *s, const struct upmon_task *task,
    int attempts, const char *error);

#endif
