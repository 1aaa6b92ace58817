/*
 * The loop (one thread). As leader: pop every monitor whose next slot is due, publish its
 * task, push its next slot; collect confirms; follow LISTEN monitor_changed; reconcile with a
 * full reload now and then; keep scheduler_state current; sleep in upmon_amqp_poll() (which
 * keeps the broker's heartbeats) until the next slot, at most POLL_MAX_MS so notifications
 * are read promptly. The leader lock and scheduler_state are the leader thread's (leader.c),
 * so their database round trips never delay a publish; the loop follows its state.
 */
#include "sched.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "upmon/admin.h"
#include "upmon/amqp.h"
#include "upmon/backoff.h"
#include "upmon/config.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define POLL_MAX_MS		50
#define PENDING_MAX		1024	/* notified ids per turn before a full reload instead */
#define PARTITION_EVERY_MS	(3600 * 1000)
#define INITIAL_BATCH		20000
#define NOTIFY_EVERY_MS		10	/* read notifications at most this often */
#define RECONCILE_CHUNK		5000	/* snapshot rows compared per turn (~2 ms) */

struct sched {
	struct sched_ctx *ctx;
	struct sched_monitors mons;
	struct sched_heap heap;
	struct sched_pub pub;
	struct sched_metrics metrics;
	struct sched_leader leader;
	uint64_t listen_gen;
	int64_t add_from;		/* wall ms: new monitors start at the first slot >= it */
	int64_t next_reconcile, next_partition;	/* mono ms */
	int64_t next_notify;		/* mono ms */
	int64_t last_turn_ms;		/* wall ms of the last publish_due (debug) */
	char (*pending)[UPMON_ID_MAX + 1];
	size_t npending;
	bool reload_all;
	bool initial;			/* the load on gaining leadership: heap built after */
	bool leading;			/* the loop runs as leader */
	struct sched_reconciler rec;
	bool rec_pending;		/* a reconcile asked for and not applied yet */
	int64_t next_pt;		/* mono ms: next published_through for the thread */
	bool db_ready, amqp_ready;
};

static int64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
on_change(void *arg, uint32_t no, enum sched_change what)
{
	struct sched *s = arg;
	struct sched_mon *m = sched_monitors_get(&s->mons, no);

	switch (what) {
	case SCHED_ADDED:
	case SCHED_REGRID:
		if (s->initial)
			break;
		if (sched_heap_set(&s->heap, no, sched_next_slot(m->phase_ms,
		    m->task.interval_seconds, s->add_from)) != 0)
			log_warnx("out of memory scheduling monitor %s", m->task.monitor_id);
		break;
	case SCHED_REMOVED:
		sched_heap_remove(&s->heap, no);
		break;
	case SCHED_UPDATED:
	case SCHED_UNCHANGED:
		break;
	}
}

static void
update_gauges(struct sched *s)
{
	upmon_gauge_set(s->metrics.monitors, (double)(s->mons.count - s->mons.invalid));
	upmon_gauge_set(s->metrics.invalid, (double)s->mons.invalid);
}

/* Publishes every due slot, then services confirms and the backlog. */
static void
publish_due(struct sched *s)
{
	struct sched_mon *m;
	int64_t now_us = wall_us(), now_ms = now_us / 1000, slot, next, period, skip;
	uint32_t no;

	if (log_enabled(UPMON_LOG_DEBUG) && sched_heap_peek(&s->heap, NULL, &slot) == 0 &&
	    now_ms - slot > 20)
		log_debug("late turn: slot %lld ms late, %lld ms since the last turn",
		    (long long)(now_ms - slot), (long long)(now_ms - s->last_turn_ms));
	s->last_turn_ms = now_ms;
	while (sched_heap_peek(&s->heap, &no, &slot) == 0 && slot <= now_ms) {
		m = sched_monitors_get(&s->mons, no);
		if (m == NULL || m->invalid) {
			sched_heap_remove(&s->heap, no);
			continue;
		}
		sched_pub_due(&s->pub, no, slot, now_us);
		period = (int64_t)m->task.interval_seconds * 1000;
		next = slot + period;
		if (next <= now_ms - period) {
			/* the loop stalled for more than an interval: skip, don't burst */
			skip = sched_next_slot(m->phase_ms, m->task.interval_seconds, now_ms);
			upmon_counter_add(s->metrics.missed, (uint64_t)((skip - next) / period));
			next = skip;
		}
		(void)sched_heap_set(&s->heap, no, next);
	}
	sched_pub_service(&s->pub, now_us);
}

static void
tick(void *arg)
{
	struct sched *s = arg;

	s->add_from = wall_us() / 1000;
	if (s->leading)
		publish_due(s);
	(void)upmon_amqp_poll(s->ctx->amqp, 0);
}

static int
full_load(struct sched *s, int batch, size_t *n)
{
	int rc;

	s->add_from = wall_us() / 1000;
	rc = sched_monitors_load_all(&s->mons, s->ctx->db, batch, on_change, tick, s, n);
	update_gauges(s);
	return rc;
}

static void
ensure_partitions(struct sched *s)
{
	char days[24];
	const char *params[1] = { days };
	struct upmon_db_error err;

	snprintf(days, sizeof(days), "%ld", s->ctx->settings->partition_days);
	if (upmon_db_query(s->ctx->db, UPMON_DB_IDEMPOTENT,
	    "SELECT upmon_ensure_partitions($1::int)", 1, params, NULL, &err) != 0)
		log_warnx("ensuring check_results partitions: %s", err.message);
}

/* Stops leading: drops every schedule and in-flight record at once. */
static void
become_standby(struct sched *s, const char *why)
{
	sched_pub_drop(&s->pub);
	sched_reconciler_cancel(&s->rec);
	s->rec_pending = false;
	sched_heap_clear(&s->heap);
	sched_monitors_release(&s->mons);
	sched_monitors_init(&s->mons);
	malloc_trim(0);
	s->leading = false;
	atomic_store(&s->leader.published_through, INT64_MIN);
	upmon_gauge_set(s->metrics.leader, 0);
	update_gauges(s);
	log_info("standby: %s", why);
}

/*
 * Loads every monitor, then schedules each at its first slot >= the time the load ended:
 * slots that fell due while no leader ran (since published_through) or during the load are
 * skipped and counted, never replayed as a burst.
 */
static int
become_leader(struct sched *s)
{
	int64_t t0 = upmon_mono_ms(), now, pt = atomic_load(&s->leader.gained_pt);
	uint64_t missed = 0;
	bool have_pt;
	struct sched_mon *m;
	size_t n = 0;
	uint32_t no;
	int rc;

	s->leading = true;
	s->initial = true;
	rc = full_load(s, INITIAL_BATCH, &n);
	s->initial = false;
	if (rc != 0) {
		become_standby(s, "loading monitors failed");
		return -1;
	}
	malloc_trim(0);
	have_pt = pt != INT64_MIN;
	now = wall_us() / 1000;
	for (no = 0; no < s->mons.nno; no++) {
		m = s->mons.byno[no];
		if (m == NULL || m->invalid)
			continue;
		if (have_pt && pt < now)
			missed += (uint64_t)sched_slots_between(m->phase_ms,
			    m->task.interval_seconds, pt, now);
		if (sched_heap_set(&s->heap, no, sched_next_slot(m->phase_ms,
		    m->task.interval_seconds, now)) != 0)
			log_warnx("out of memory scheduling monitor %s", m->task.monitor_id);
	}
	upmon_counter_add(s->metrics.missed, missed);
	upmon_gauge_set(s->metrics.leader, 1);
	s->listen_gen = upmon_db_generation(s->ctx->db);
	s->npending = 0;
	s->reload_all = false;
	s->next_reconcile = upmon_mono_ms() + s->ctx->settings->reconcile_s * 1000;
	s->next_pt = 0;
	log_info("leader: %zu monitors loaded in %lld ms, %zu invalid, %llu missed slots",
	    s->mons.count - s->mons.invalid, (long long)(upmon_mono_ms() - t0),
	    s->mons.invalid, (unsigned long long)missed);
	ensure_partitions(s);
	s->next_partition = upmon_mono_ms() + PARTITION_EVERY_MS;
	return 0;
}

/* ---- notifications ---- */

static void
on_notify(void *arg, const char *channel, const char *payload, int pid)
{
	struct sched *s = arg;
	struct json_object *obj, *id, *op;
	const char *v;

	(void)channel;
	(void)pid;
	if (!s->leading || s->reload_all)
		return;
	if ((obj = json_tokener_parse(payload)) == NULL)
		return;
	if (json_object_object_get_ex(obj, "id", &id) &&
	    json_object_object_get_ex(obj, "op", &op) &&
	    (v = json_object_get_string(id)) != NULL && strlen(v) <= UPMON_ID_MAX) {
		if (s->npending == PENDING_MAX)
			s->reload_all = true;
		else
			snprintf(s->pending[s->npending++], UPMON_ID_MAX + 1, "%s", v);
	}
	json_object_put(obj);
}

static void
follow_changes(struct sched *s)
{
	struct upmon_db_error err;
	size_t i;
	int64_t now = upmon_mono_ms();
	int rc;

	if (now < s->next_notify)
		return;
	s->next_notify = now + NOTIFY_EVERY_MS;
	rc = upmon_db_notifications(s->ctx->db, on_notify, s, NULL, &err);
	if (rc == 0 && upmon_db_generation(s->ctx->db) != s->listen_gen) {
		/* a new connection: notifications may have been lost meanwhile */
		s->listen_gen = upmon_db_generation(s->ctx->db);
		if (s->leading)
			s->reload_all = true;
	}
	if (!s->leading)
		return;
	s->add_from = wall_us() / 1000;
	for (i = 0; i < s->npending && !s->reload_all; i++)
		if (sched_monitors_load_one(&s->mons, s->ctx->db, s->pending[i], on_change,
		    s) == UPMON_DB_E_CONN)
			s->reload_all = true;
	if (s->npending > 0)
		update_gauges(s);
	s->npending = 0;
}

static void
set_ready(struct sched *s)
{
	bool db = upmon_db_connected(s->ctx->db) != 0;
	bool amqp = upmon_amqp_is_connected(s->ctx->amqp) != 0;

	if (s->ctx->admin == NULL)
		return;
	if (db != s->db_ready)
		upmon_admin_set_ready(s->ctx->admin, "postgres", db);
	if (amqp != s->amqp_ready)
		upmon_admin_set_ready(s->ctx->admin, "rabbitmq", amqp);
	s->db_ready = db;
	s->amqp_ready = amqp;
}

/* published_through: every slot <= it is published (or counted as missed). */
static int64_t
published_through(struct sched *s)
{
	int64_t top = INT64_MAX, oldest = sched_pub_oldest(&s->pub), now = wall_us() / 1000;

	(void)sched_heap_peek(&s->heap, NULL, &top);
	if (oldest < top)
		top = oldest;
	if (now + 1 < top)
		top = now + 1;
	return top - 1;
}

static void
leader_turn(struct sched *s)
{
	int64_t now = upmon_mono_ms(), d1, d2;	/* d1, d2: debug timings */
	size_t n;
	int rc;

	follow_changes(s);
	d1 = upmon_mono_ms();
	if (s->reload_all) {
		sched_reconciler_cancel(&s->rec);
		s->rec_pending = false;
		if (full_load(s, (int)s->ctx->settings->load_batch, &n) == 0) {
			s->reload_all = false;
			s->next_reconcile = now + s->ctx->settings->reconcile_s * 1000;
		}
	} else if (s->rec_pending) {
		s->add_from = wall_us() / 1000;
		rc = sched_reconciler_step(&s->rec, &s->mons, s->ctx->db, RECONCILE_CHUNK,
		    on_change, s, &n);
		if (rc == 0 || rc == -EIO) {
			s->rec_pending = false;
			s->next_reconcile = now + (rc == 0 ?
			    s->ctx->settings->reconcile_s * 1000 : 1000);
			if (n > 0)
				log_info("reconcile: %zu monitors changed without a notification", n);
			update_gauges(s);
		}
	} else if (now >= s->next_reconcile) {
		sched_reconciler_request(&s->rec, &s->mons);
		s->rec_pending = true;
	}
	d2 = upmon_mono_ms();
	publish_due(s);
	if (log_enabled(UPMON_LOG_DEBUG) && upmon_mono_ms() - now > 15)
		log_debug("slow leader turn: notifications %lld ms, reconcile %lld ms, "
		    "publish %lld ms", (long long)(d1 - now), (long long)(d2 - d1),
		    (long long)(upmon_mono_ms() - d2));
	if (now >= s->next_pt) {
		/* the leader thread writes it; computed often enough, not every turn */
		s->next_pt = now + s->ctx->settings->state_ms / 2;
		atomic_store(&s->leader.published_through, published_through(s));
	}
	if (now >= s->next_partition) {
		ensure_partitions(s);
		s->next_partition = now + PARTITION_EVERY_MS;
	}
}

/* Follows the leader thread's state: gained -> load and lead; lost -> stop at once. */
static void
leadership(struct sched *s)
{
	int st = atomic_load(&s->leader.state), want;

	if (st == SCHED_LS_LOST) {
		if (s->leading)
			become_standby(s, "leader lock lost");
		atomic_store(&s->leader.state, SCHED_LS_STANDBY);
	} else if (st == SCHED_LS_GAINED) {
		want = SCHED_LS_GAINED;
		if (become_leader(s) != 0) {
			atomic_store(&s->leader.state, SCHED_LS_RESIGN);
		} else if (!atomic_compare_exchange_strong(&s->leader.state, &want,
		    SCHED_LS_LEADER)) {
			/* lost while loading */
			become_standby(s, "leader lock lost");
			atomic_store(&s->leader.state, SCHED_LS_STANDBY);
		}
	}
}

/*
 * Waits for the next slot without spinning and without waking late: in the broker poll
 * (which keeps heartbeats and reads confirms) until about 1 ms before it, then an absolute
 * clock_nanosleep() to the slot itself, since the poll's millisecond timeout may return up
 * to 1 ms early and would otherwise make the loop spin until the slot's millisecond starts.
 * Returns the ms spent in the poll call's request (for the diagnostics).
 */
static int
wait_next(struct sched *s)
{
	struct timespec ts;
	int64_t top, wait_us = (int64_t)POLL_MAX_MS * 1000;
	int ms;

	if (s->leading && sched_heap_peek(&s->heap, NULL, &top) == 0) {
		wait_us = top * 1000 - wall_us();
		if (wait_us > (int64_t)POLL_MAX_MS * 1000)
			wait_us = (int64_t)POLL_MAX_MS * 1000;
	}
	if (wait_us <= 0) {
		(void)upmon_amqp_poll(s->ctx->amqp, 0);
		return 0;
	}
	if (wait_us > 2000) {
		ms = (int)(wait_us / 1000) - 1;
		(void)upmon_amqp_poll(s->ctx->amqp, ms);
		return ms;
	}
	(void)upmon_amqp_poll(s->ctx->amqp, 0);
	if (s->leading && sched_heap_peek(&s->heap, NULL, &top) == 0) {
		ts.tv_sec = (time_t)(top / 1000);
		ts.tv_nsec = (long)(top % 1000) * 1000000L;
		while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR &&
		    !*s->ctx->stop)
			;
	}
	return 0;
}

static void
drain(struct sched *s)
{
	int64_t deadline = upmon_mono_ms() + s->ctx->common->shutdown_timeout_ms;

	while (upmon_amqp_unconfirmed(s->ctx->amqp) > 0 && upmon_mono_ms() < deadline) {
		(void)upmon_amqp_poll(s->ctx->amqp, 10);
		sched_pub_service(&s->pub, wall_us());
	}
	sched_pub_service(&s->pub, wall_us());
	if (upmon_amqp_unconfirmed(s->ctx->amqp) > 0)
		log_warnx("shutdown: %zu publishes still unconfirmed",
		    upmon_amqp_unconfirmed(s->ctx->amqp));
}

int
sched_run(struct sched_ctx *ctx)
{
	struct sched s;
	struct upmon_db_error err;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	s.ctx = ctx;
	sched_monitors_init(&s.mons);
	sched_heap_init(&s.heap);
	sched_metrics_init(&s.metrics, ctx->registry);
	s.leader.db = ctx->lockdb;
	{
		char host[64] = "";

		(void)gethostname(host, sizeof(host) - 1);
		snprintf(s.leader.name, sizeof(s.leader.name), "%s:%ld", host, (long)getpid());
	}
	if ((s.pending = calloc(PENDING_MAX, sizeof(*s.pending))) == NULL)
		return -ENOMEM;
	sched_pub_init(&s.pub, ctx->amqp, &s.mons, &s.metrics,
	    (size_t)ctx->settings->max_backlog, (size_t)ctx->settings->max_in_flight);
	if (upmon_db_listen(ctx->db, "monitor_changed", &err) != 0)
		log_warnx("listen monitor_changed: %s (retrying)", err.message);
	s.listen_gen = upmon_db_generation(ctx->db);
	upmon_gauge_set(s.metrics.leader, 0);
	log_info("standby: waiting for the leader lock");
	s.leader.poll_ms = ctx->settings->leader_poll_ms;
	s.leader.state_ms = ctx->settings->state_ms;
	s.rec.db = ctx->recdb;
	s.rec.batch = (int)ctx->settings->load_batch;
	if (sched_leader_start(&s.leader) != 0 || sched_reconciler_start(&s.rec) != 0) {
		rc = -1;
		goto out;
	}
	while (!*ctx->stop) {
		int64_t t0 = upmon_mono_ms(), t1;
		int wait;

		leadership(&s);
		if (s.leading)
			leader_turn(&s);
		else
			follow_changes(&s);
		set_ready(&s);
		if (*ctx->stop)
			break;
		t1 = upmon_mono_ms();
		wait = wait_next(&s);
		if (log_enabled(UPMON_LOG_DEBUG) && (t1 - t0 > 15 ||
		    upmon_mono_ms() - t1 > wait + 15))
			log_debug("slow turn: %lld ms of work, %lld ms in poll (asked %d)",
			    (long long)(t1 - t0), (long long)(upmon_mono_ms() - t1), wait);
	}
	if (s.leading) {
		log_info("shutdown: waiting for %zu confirms", upmon_amqp_unconfirmed(ctx->amqp));
		drain(&s);
		atomic_store(&s.leader.published_through, published_through(&s));
	}
	/* a last state write, then the lock is released */
out:
	sched_leader_stop(&s.leader);
	sched_reconciler_stop(&s.rec);
	sched_pub_release(&s.pub);
	sched_heap_release(&s.heap);
	sched_monitors_release(&s.mons);
	free(s.pending);
	return rc;
}
