/*
 * upmon-scheduler: the one shared header of the scheduler's files (OpenBSD style).
 *
 *   grid.c      slot math on each monitor's fixed grid
 *   heap.c      min-heap of next slots, indexed by monitor slot number
 *   monitors.c  the in-memory monitor table: SQL rows -> task templates, id -> entry map
 *   leader.c    advisory-lock leadership and the scheduler_state row
 *   publish.c   publishing, the in-flight FIFO and the broker-outage backlog
 *   schedule.c  the loop
 *   settings.c  UPMON_SCHEDULER_* options
 *   metrics.c   the scheduler's metrics
 *
 * Every function returns 0 or a negative errno unless it says otherwise.
 */
#ifndef SCHED_H
#define SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upmon/msg.h"

struct upmon_db;
struct upmon_amqp;
struct upmon_metrics;
struct upmon_counter;
struct upmon_gauge;
struct upmon_histogram;

/* ---- grid.c ----------------------------------------------------------------------------- */

/* FNV-1a 64 of the NUL-terminated string s. */
uint64_t sched_fnv1a64(const char *s);
/* Phase of a monitor on its grid: FNV-1a-64(monitor_id) mod (interval_s * 1000), in ms. */
int64_t sched_phase_ms(const char *monitor_id, int interval_s);
/* The first slot phase_ms + k * interval_s * 1000 (any integer k) that is >= t. */
int64_t sched_next_slot(int64_t phase_ms, int interval_s, int64_t t);
/* Number of slots s with lo < s < hi (0 when hi <= lo). */
int64_t sched_slots_between(int64_t phase_ms, int interval_s, int64_t lo, int64_t hi);

/* ---- heap.c ----------------------------------------------------------------------------- */

/* A min-heap of (key, id) with ids 0..UINT32_MAX-1 and an index id -> position, so that any
 * id can be updated or removed in O(log n). An id is in the heap at most once. */
struct sched_heap {
	struct sched_heap_item {
		int64_t key;
		uint32_t id;
	} *items;
	size_t n, cap;
	uint32_t *pos;			/* pos[id] = index in items, UINT32_MAX = absent */
	size_t npos;
};

void sched_heap_init(struct sched_heap *h);
void sched_heap_release(struct sched_heap *h);
/* Inserts id with key, or moves it to key when already present. 0 or -ENOMEM. */
int sched_heap_set(struct sched_heap *h, uint32_t id, int64_t key);
/* Removes id; a no-op when absent. */
void sched_heap_remove(struct sched_heap *h, uint32_t id);
/* The smallest entry without removing it: 0, or -ENOENT when empty. */
int sched_heap_peek(const struct sched_heap *h, uint32_t *id, int64_t *key);
bool sched_heap_contains(const struct sched_heap *h, uint32_t id);
void sched_heap_clear(struct sched_heap *h);

/* ---- monitors.c ------------------------------------------------------------------------- */

/* One active monitor: the task template (attempt 1, task_id "") and where it is on its grid. */
struct sched_mon {
	struct upmon_task task;
	int64_t updated_us;		/* monitors.updated_at, Unix microseconds */
	int64_t phase_ms;
	uint32_t version;		/* bumped on every change: stale in-flight entries drop */
	uint32_t seen;			/* load pass that last saw the row */
	bool invalid;			/* refused by upmon_task_validate: not scheduled */
};

/* The table: entries by number (stable while present) and a map id -> number. */
struct sched_monitors {
	struct sched_mon **byno;	/* NULL = free number */
	uint32_t nno, capno;
	uint32_t *freeno;		/* free numbers, a stack */
	uint32_t nfree;
	uint32_t *map;			/* open addressing, UINT32_MAX = empty */
	size_t mapcap;			/* power of two */
	size_t count;			/* entries present */
	size_t invalid;			/* rows refused by upmon_task_validate in the last load */
	uint32_t pass;
	uint32_t next_version;
};

/* What a load did to the table; the caller fixes the heap with it. */
enum sched_change {
	SCHED_UNCHANGED = 0,
	SCHED_ADDED,
	SCHED_UPDATED,		/* check definition changed, same grid */
	SCHED_REGRID,		/* interval (so the grid) changed */
	SCHED_REMOVED,
};

typedef void (*sched_change_fn)(void *arg, uint32_t no, enum sched_change what);
/* Called between batches of a full load so the loop keeps publishing. */
typedef void (*sched_tick_fn)(void *arg);

void sched_monitors_init(struct sched_monitors *t);
void sched_monitors_release(struct sched_monitors *t);
/* Entry number of monitor id, or UINT32_MAX when absent. */
uint32_t sched_monitors_find(const struct sched_monitors *t, const char *id);
/* The entry with number no, or NULL. */
struct sched_mon *sched_monitors_get(const struct sched_monitors *t, uint32_t no);
/* Removes entry no (calls fn with SCHED_REMOVED first). */
void sched_monitors_remove(struct sched_monitors *t, uint32_t no, sched_change_fn fn,
    void *arg);

/* Fills t (initialised by the caller) from one SELECT row in the column order of the load
 * query; on -EINVAL err says why (a bad row: skip it). */
struct pg_result;
int sched_monitor_from_row(const struct pg_result *res, int row, struct upmon_task *t,
    int64_t *updated_us, char *err, size_t errlen);

/* Loads every active monitor in batches of batch rows, calling fn for every change and tick
 * (may be NULL) between batches; removes entries whose rows are gone. Sets *nloaded.
 * Returns 0 or a negative UPMON_DB_E_* code (the table then holds what was read). */
int sched_monitors_load_all(struct sched_monitors *t, struct upmon_db *db, int batch,
    sched_change_fn fn, sched_tick_fn tick, void *arg, size_t *nloaded);
/* Reloads one monitor by id: adds, updates or removes it (paused or deleted). */
int sched_monitors_load_one(struct sched_monitors *t, struct upmon_db *db, const char *id,
    sched_change_fn fn, void *arg);

/* ---- reconcile.c ----------------------------------------------------------------------- */

struct sched_snap {
	struct sched_snap_row *rows;
	size_t n, cap;
	unsigned seq;			/* the request it answers */
};

/* A thread with its own db handle reads snapshots of (id, updated_at); the loop applies them
 * in chunks with sched_reconciler_step(). */
struct sched_reconciler {
	struct upmon_db *db;		/* the thread's own handle */
	int batch;			/* rows per page */
	_Atomic unsigned want;		/* request number, bumped by the loop */
	_Atomic unsigned done;		/* last request the thread answered */
	_Atomic unsigned failed;	/* last request whose read failed */
	_Atomic int stop;
	struct sched_snap *_Atomic ready;
	pthread_t thread;
	bool started;
	/* the loop's side */
	struct sched_snap *cur;
	size_t pos;
	uint32_t pass, since_version;
	char (*changed)[UPMON_ID_MAX + 1];
	size_t nchanged, capchanged;
};

int sched_reconciler_start(struct sched_reconciler *r);
/* Stops and joins the thread, frees every snapshot. */
void sched_reconciler_stop(struct sched_reconciler *r);
/* Asks for a snapshot of the table t (entries loaded after this call are newer than it). */
void sched_reconciler_request(struct sched_reconciler *r, const struct sched_monitors *t);
/* Forgets the snapshot in progress (leadership lost, full reload). */
void sched_reconciler_cancel(struct sched_reconciler *r);
/* Compares up to chunk rows of the snapshot with t. -EAGAIN: no snapshot yet; -EIO: reading
 * it failed (ask again later); -EINPROGRESS: call again; 0: done, with *nchanged rows
 * reloaded and the entries whose row is gone removed (fn called for each change). */
int sched_reconciler_step(struct sched_reconciler *r, struct sched_monitors *t,
    struct upmon_db *db, size_t chunk, sched_change_fn fn, void *arg, size_t *nchanged);

/* ---- settings.c ------------------------------------------------------------------------- */

struct sched_settings {
	long reconcile_s;		/* UPMON_SCHEDULER_RECONCILE_S */
	long leader_poll_ms;		/* UPMON_SCHEDULER_LEADER_POLL_MS */
	long partition_days;		/* UPMON_SCHEDULER_PARTITION_DAYS */
	long max_backlog;		/* UPMON_SCHEDULER_MAX_BACKLOG */
	long max_in_flight;		/* UPMON_SCHEDULER_MAX_IN_FLIGHT */
	long load_batch;		/* UPMON_SCHEDULER_LOAD_BATCH */
	long state_ms;			/* UPMON_SCHEDULER_STATE_MS */
};

struct upmon_config_table;
struct upmon_config_table sched_settings_table(struct sched_settings *s);

/* ---- metrics.c -------------------------------------------------------------------------- */

struct sched_metrics {
	struct upmon_counter *published, *confirmed, *republished, *missed, *returned;
	struct upmon_histogram *lateness;
	struct upmon_gauge *leader, *monitors, *invalid, *backlog, *in_flight;
};

/* Registers the scheduler's series in reg (a NULL reg leaves every handle NULL). */
void sched_metrics_init(struct sched_metrics *sm, struct upmon_metrics *reg);

/* ---- publish.c -------------------------------------------------------------------------- */

/* A (monitor, slot) pair owed to the broker. */
struct sched_due {
	int64_t slot;
	uint32_t no, version;
	uint64_t tag;			/* in-flight only */
	bool again;			/* a re-publish (not counted in lateness) */
};

/* A FIFO ring of sched_due (in-flight publishes in tag order, or the backlog). */
struct sched_ring {
	struct sched_due *v;
	size_t cap, head, n, max;	/* max: bound (0 = none) */
};

void sched_ring_init(struct sched_ring *r, size_t max);
void sched_ring_release(struct sched_ring *r);
/* Appends d: 0, -ENOSPC at the bound, -ENOMEM. */
int sched_ring_push(struct sched_ring *r, const struct sched_due *d);
/* Removes the oldest into *d (may be NULL): 0 or -ENOENT. */
int sched_ring_pop(struct sched_ring *r, struct sched_due *d);
/* The i-th oldest entry (i < n). */
struct sched_due *sched_ring_at(struct sched_ring *r, size_t i);

struct sched_pub {
	struct upmon_amqp *amqp;
	struct sched_monitors *mons;
	struct sched_metrics *metrics;
	struct sched_ring in_flight;
	struct sched_ring backlog;
	size_t max_in_flight;
	int64_t returned_logged_ms;
	int64_t collected_ms;		/* wall ms of the last confirm collection */
	int64_t down_logged_ms;
};

int sched_pub_init(struct sched_pub *p, struct upmon_amqp *amqp, struct sched_monitors *mons,
    struct sched_metrics *sm, size_t max_backlog, size_t max_in_flight);
void sched_pub_release(struct sched_pub *p);
/* Publishes slot of entry no now, or keeps it in the backlog when the broker is down or too
 * many publishes are in flight. now_us: wall clock in microseconds (for lateness). */
void sched_pub_due(struct sched_pub *p, uint32_t no, int64_t slot, int64_t now_us);
/* Collects confirm outcomes (non-blocking), re-queues nacked/lost ones, then publishes
 * from the backlog while possible, dropping (as missed) slots older than their interval. */
void sched_pub_service(struct sched_pub *p, int64_t now_us);
/* Forgets every in-flight and backlog entry (leadership lost). */
void sched_pub_drop(struct sched_pub *p);
/* The oldest slot still owed (in flight or in the backlog), or INT64_MAX. */
int64_t sched_pub_oldest(struct sched_pub *p);

/* ---- leader.c --------------------------------------------------------------------------- */

#define SCHED_LOCK_KEY "7263544180512047729"	/* pg advisory lock key: "upmon-scheduler" */

/*
 * The lock lives in its own thread with its own db handle, so lock polls and state writes
 * (database round trips) never delay a publish. The loop and the thread talk through
 * atomics: state moves STANDBY -> GAINED (thread took the lock; the loop loads and sets
 * LEADER) -> LEADER -> LOST (thread saw the session die; the loop stops publishing and sets
 * STANDBY). The loop may set RESIGN (e.g. its load failed): the thread unlocks, -> STANDBY.
 */
enum sched_leader_state {
	SCHED_LS_STANDBY = 0,
	SCHED_LS_GAINED,
	SCHED_LS_LEADER,
	SCHED_LS_LOST,
	SCHED_LS_RESIGN,
};

struct sched_leader {
	struct upmon_db *db;		/* dedicated handle holding the session lock */
	bool leader;			/* thread-private: the session holds the lock */
	uint64_t generation;		/* of db when the lock was taken */
	char name[128];			/* host:pid, written to scheduler_state.leader */
	long poll_ms, state_ms;
	/* shared with the loop */
	_Atomic int state;		/* enum sched_leader_state */
	_Atomic int64_t published_through;	/* set by the loop; INT64_MIN = unknown */
	_Atomic int64_t gained_pt;	/* published_through found on gaining; INT64_MIN = none */
	_Atomic int stop;
	pthread_t thread;
	bool started;
};

/* Tries to take the lock (standby). Sets l->leader. 0, or a negative UPMON_DB_E_* code. */
int sched_leader_try(struct sched_leader *l);
/* Writes published_through and heartbeat_at (leader only) and so checks the lock session:
 * returns 0, or -1 when leadership is lost (l->leader is then false). */
int sched_leader_heartbeat(struct sched_leader *l, int64_t published_through_ms);
/* Reads published_through: 0 and *ms, or -ENOENT when there is no row / no value. */
int sched_leader_published_through(struct sched_leader *l, int64_t *ms);
/* Gives the lock up when the session still holds it; l->leader becomes false. */
void sched_leader_release(struct sched_leader *l);
/* Starts the leader thread (db, name, poll_ms and state_ms filled in). 0 or -errno. */
int sched_leader_start(struct sched_leader *l);
/* Stops the thread: a last state write when leading, the lock released, joined. */
void sched_leader_stop(struct sched_leader *l);

/* ---- schedule.c ------------------------------------------------------------------------- */

struct upmon_common_settings;
struct upmon_admin;

struct sched_ctx {
	const struct upmon_common_settings *common;
	const struct sched_settings *settings;
	struct upmon_db *db;		/* loads, LISTEN, partitions */
	struct upmon_db *lockdb;	/* leadership (the leader thread) */
	struct upmon_db *recdb;		/* reconcile snapshots (the reconcile thread) */
	struct upmon_amqp *amqp;
	struct upmon_metrics *registry;
	struct upmon_admin *admin;	/* may be NULL */
	volatile int *stop;		/* set by the signal handler */
};

/* Runs the scheduler until *ctx->stop; returns 0 after a clean shutdown. */
int sched_run(struct sched_ctx *ctx);

#endif
