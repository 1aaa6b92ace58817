/*
 * The probe's store against real PostgreSQL and Redis: sequences of results through
 * probe_store_apply() and what they leave behind (check_results, monitor_state, rollups,
 * alerts, outbox rows and their decoded payloads, the Redis latest status): first success,
 * confirmation re-probes, DOWN after the threshold (also from PENDING), RECOVERY after the
 * recovery threshold, duplicates that change nothing, older results that change no state,
 * paused / deleted / foreign monitors, maintenance windows, an item that fails alone, the
 * database unreachable, SYSTEM_ERROR alerts, and a throughput figure with several threads.
 */
#include "test.h"
#include "test_store_support.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "store.h"
#include "upmon/backoff.h"
#include "upmon/cache.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/msg.h"

static char owner[40];
static int64_t base;		/* a minute boundary an hour ago */
static int wakes;

static void
on_wake(void *arg)
{
	(void)arg;
	wakes++;
}

static void
new_monitor(char *id, const char *name, int fail_th, int rec_th)
{
	char f[8], r[8];
	const char *p[4] = { owner, name, f, r };

	snprintf(f, sizeof(f), "%d", fail_th);
	snprintf(r, sizeof(r), "%d", rec_th);
	q(id, 40, "INSERT INTO monitors (owner_id, name, type, url, failure_threshold, "
	    "recovery_threshold) VALUES ($1, $2, 'http', 'https://example.test/h', $3, $4) "
	    "RETURNING id", 4, p);
}

static struct probe_store *
open_store(const char *url)
{
	struct probe_store_config cfg;
	struct probe_store *s = NULL;

	probe_store_config_init(&cfg);
	cfg.db.url = url;
	cfg.db.connect_timeout_s = 2;
	cfg.cache.url = test_env("UPMON_REDIS_URL");
	cfg.retry_levels = 3;
	cfg.probe_host = "test-host";
	cfg.wake = on_wake;
	REQUIRE(probe_store_new(&cfg, &s) == 0);
	return s;
}

static void
task_fill(struct upmon_task *t, const char *mon, int slot_no, int attempt, int retries)
{
	upmon_task_init(t);
	REQUIRE(snprintf(t->monitor_id, sizeof(t->monitor_id), "%s", mon) <
	    (int)sizeof(t->monitor_id));
	REQUIRE(snprintf(t->owner_id, sizeof(t->owner_id), "%s", owner) <
	    (int)sizeof(t->owner_id));
	t->scheduled_at = base + (int64_t)slot_no * 60000;
	t->attempt = attempt;
	t->retries = retries;
	t->interval_seconds = 60;
	t->check.url = strdup("https://example.test/h");
	upmon_task_id_format(t->task_id, sizeof(t->task_id), mon, t->scheduled_at, attempt);
}

static void
item_fill(struct probe_item *it, const struct upmon_task *t, int ok)
{
	memset(it, 0, sizeof(*it));
	it->task = t;
	it->result.ok = ok;
	it->result.status_code = ok ? 200 : 503;
	it->result.latency_ms = ok ? 42 : 120;
	it->result.timings = (struct probe_timings){ 1, 2, -1, 30, ok ? 42 : 120 };
	if (!ok)
		snprintf(it->result.error, sizeof(it->result.error), "status 503");
}

/* Applies one result of mon; returns the item (by value) for inspection. */
static struct probe_item
apply1(struct probe_store *s, const char *mon, int slot_no, int attempt, int retries, int ok)
{
	struct upmon_task t;
	struct probe_item it;

	task_fill(&t, mon, slot_no, attempt, retries);
	item_fill(&it, &t, ok);
	CHECK_EQ(probe_store_apply(s, &it, 1), 0);
	probe_store_cache(s, &it, 1);
	upmon_task_release(&t);
	it.task = NULL;
	return it;
}

static void
state_of(const char *mon, char *buf, size_t size)
{
	qstr(buf, size, "SELECT status FROM monitor_state WHERE monitor_id = $1::uuid", mon);
}

static void
test_setup(void)
{
	struct upmon_db_config cfg;
	time_t now = time(NULL);

	REQUIRE(test_sh("\"$UPMON_BIN_DIR/upmonctl\" migrate >/dev/null") == 0);
	upmon_db_config_init(&cfg);
	cfg.url = test_env("UPMON_PG_URL");
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	q(owner, sizeof(owner), "INSERT INTO users (email, password_hash) VALUES "
	    "('store@example.test', 'x') RETURNING id", 0, NULL);
	/* slots from an hour ago, inside today's or yesterday's partition */
	base = ((int64_t)now - 3600) / 60 * 60 * 1000;
}

static void
test_first_success(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct upmon_latest_status st;
	struct upmon_status_event ev;
	struct upmon_cache_config cc;
	struct upmon_cache *c = NULL;
	struct probe_item it;
	char mon[40], buf[4096], err[256];
	char *json = NULL;
	int64_t ts = 0;

	new_monitor(mon, "first", 1, 1);
	wakes = 0;
	it = apply1(s, mon, 0, 1, 2, 1);
	CHECK_EQ(it.outcome, PROBE_ITEM_STORED);
	CHECK(it.final);
	CHECK(!it.reprobe);
	CHECK(it.changed);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK_EQ(wakes, 1);
	state_of(mon, buf, sizeof(buf));
	CHECK_STR(buf, "up");
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid AND final "
	    "AND attempt = 1 AND ok AND status_code = 200 AND latency_ms = 42 AND tls_ms IS NULL "
	    "AND first_byte_ms = 30 AND probe_host = 'test-host'", mon), 1);
	CHECK_EQ(qnum("SELECT checks FROM check_rollups_hourly WHERE monitor_id = $1::uuid", mon), 1);
	/* the status event */
	qstr(buf, sizeof(buf), "SELECT payload::text FROM outbox WHERE routing_key = "
	    "'status.' || (SELECT owner_id FROM monitors WHERE id = $1::uuid) || '.' || $1::text", mon);
	REQUIRE(upmon_msg_status_decode(buf, strlen(buf), &ev, err, sizeof(err)) == 0);
	CHECK_EQ(ev.status, UPMON_STATUS_UP);
	CHECK_EQ(ev.previous, UPMON_STATUS_PENDING);
	CHECK(ev.has_result && ev.result.ok && ev.result.status_code == 200);
	CHECK_INT(ev.at, >, base);
	upmon_status_event_release(&ev);
	CHECK_EQ(qnum("SELECT count(*) FROM outbox WHERE message_id = 'status:' || $1::text || ':' || "
	    "(SELECT upmon_ts_to_ms(min(scheduled_at)) FROM check_results WHERE monitor_id = $1::uuid) "
	    "|| ':1' AND exchange = 'upmon.events'", mon), 1);
	/* the latest status in Redis */
	upmon_cache_config_init(&cc);
	cc.url = test_env("UPMON_REDIS_URL");
	cc.op_timeout_ms = 1000;
	REQUIRE(upmon_cache_new(&cc, &c) == 0);
	REQUIRE(upmon_cache_status_get(c, mon, &json, &ts) == 0);
	REQUIRE(json != NULL);
	CHECK_EQ(ts, base + 1);
	REQUIRE(upmon_msg_latest_decode(json, strlen(json), &st, err, sizeof(err)) == 0);
	CHECK_STR(st.monitor_id, mon);
	CHECK_EQ(st.status, UPMON_STATUS_UP);
	CHECK_EQ(st.scheduled_at, base);
	CHECK_EQ(st.attempt, 1);
	CHECK(st.result.ok);
	CHECK_EQ(st.result.latency_ms, 42);
	CHECK_EQ(st.timings.tls_ms, -1);
	CHECK_EQ(st.timings.first_byte_ms, 30);
	CHECK_INT(st.since, >=, st.checked_at - 5000);
	upmon_latest_status_release(&st);
	free(json);
	/* an older slot never overwrites the cache */
	it = apply1(s, mon, -3, 1, 2, 1);
	CHECK_EQ(it.outcome, PROBE_ITEM_STORED);
	CHECK(!it.changed);
	REQUIRE(upmon_cache_status_get(c, mon, &json, &ts) == 0);
	CHECK_EQ(ts, base + 1);
	free(json);
	upmon_cache_free(c);
	probe_store_free(s);
}

static void
test_reprobe_then_down(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct upmon_alert_event ae;
	struct upmon_task t;
	struct probe_item it;
	char mon[40], buf[4096], err[256], id[128];

	new_monitor(mon, "reprobe", 1, 1);
	apply1(s, mon, 0, 1, 2, 1);			/* up */
	wakes = 0;
	it = apply1(s, mon, 1, 1, 2, 0);		/* fails: re-probe 2 */
	CHECK_EQ(it.outcome, PROBE_ITEM_STORED);
	CHECK(!it.final);
	CHECK(it.reprobe);
	CHECK(!it.changed);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK_EQ(wakes, 1);
	snprintf(id, sizeof(id), "%s:%lld:2", mon, (long long)(base + 60000));
	qstr(buf, sizeof(buf), "SELECT exchange || ' ' || routing_key FROM outbox "
	    "WHERE message_id = $1", id);
	CHECK_STR(buf, "upmon.retry monitor_tasks.retry.1");
	qstr(buf, sizeof(buf), "SELECT payload::text FROM outbox WHERE message_id = $1", id);
	REQUIRE(upmon_msg_task_decode(buf, strlen(buf), &t, err, sizeof(err)) == 0);
	CHECK_EQ(t.attempt, 2);
	CHECK_STR(t.task_id, id);
	CHECK_EQ(t.scheduled_at, base + 60000);
	CHECK_STR(t.check.url, "https://example.test/h");
	upmon_task_release(&t);
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid AND NOT final",
	    mon), 1);
	CHECK_EQ(qnum("SELECT consecutive_failures FROM monitor_state WHERE monitor_id = $1::uuid",
	    mon), 0);
	CHECK_EQ(qnum("SELECT checks FROM check_rollups_hourly WHERE monitor_id = $1::uuid", mon), 1);
	it = apply1(s, mon, 1, 2, 2, 0);		/* re-probe 2 fails: 3 */
	CHECK(it.reprobe);
	snprintf(id, sizeof(id), "%s:%lld:3", mon, (long long)(base + 60000));
	qstr(buf, sizeof(buf), "SELECT routing_key FROM outbox WHERE message_id = $1", id);
	CHECK_STR(buf, "monitor_tasks.retry.2");
	it = apply1(s, mon, 1, 3, 2, 0);		/* the last attempt: final */
	CHECK_EQ(it.outcome, PROBE_ITEM_STORED);
	CHECK(it.final);
	CHECK(!it.reprobe);
	CHECK(it.changed);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = 'down' AND "
	    "dedup_key = 'down:' || $1::text || ':' || (SELECT upmon_ts_to_ms(max(scheduled_at)) FROM "
	    "check_results WHERE monitor_id = $1::uuid)", mon), 1);
	qstr(buf, sizeof(buf), "SELECT payload::text FROM outbox WHERE routing_key = 'alert.down'"
	    " AND message_id = (SELECT id::text FROM alerts WHERE monitor_id = $1::uuid)", mon);
	REQUIRE(upmon_msg_alert_decode(buf, strlen(buf), &ae, err, sizeof(err)) == 0);
	CHECK_EQ(ae.kind, UPMON_ALERT_DOWN);
	CHECK_STR(ae.monitor_name, "reprobe");
	CHECK_STR(ae.target, "https://example.test/h");
	CHECK_STR(ae.error, "status 503");
	upmon_alert_event_release(&ae);
	CHECK_EQ(qnum("SELECT count(*) FROM monitor_state WHERE monitor_id = $1::uuid AND "
	    "down_since IS NOT NULL AND consecutive_failures = 1 AND last_attempt = 3", mon), 1);
	CHECK_EQ(qnum("SELECT failures FROM check_rollups_hourly WHERE monitor_id = $1::uuid", mon), 1);
	CHECK_EQ(qnum("SELECT downtime_seconds FROM check_rollups_hourly WHERE monitor_id = $1::uuid",
	    mon), 60);

	/* a redelivery of anything changes nothing */
	{
		long long rows = qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid",
		    mon);
		long long ob = qnum("SELECT count(*) FROM outbox", NULL);
		long long checks = qnum("SELECT checks FROM check_rollups_hourly WHERE "
		    "monitor_id = $1::uuid", mon);

		wakes = 0;
		it = apply1(s, mon, 1, 3, 2, 0);
		CHECK_EQ(it.outcome, PROBE_ITEM_DUPLICATE);
		it = apply1(s, mon, 1, 1, 2, 0);
		CHECK_EQ(it.outcome, PROBE_ITEM_DUPLICATE);
		CHECK(!it.reprobe);
		CHECK_EQ(wakes, 0);
		CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid", mon),
		    rows);
		CHECK_EQ(qnum("SELECT count(*) FROM outbox", NULL), ob);
		CHECK_EQ(qnum("SELECT checks FROM check_rollups_hourly WHERE monitor_id = $1::uuid",
		    mon), checks);
		CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid", mon), 1);
	}
	probe_store_free(s);
}

static void
test_recovery_threshold(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct upmon_alert_event ae;
	struct probe_item it;
	char mon[40], buf[4096], err[256];

	new_monitor(mon, "recovery", 1, 2);
	it = apply1(s, mon, 0, 1, 0, 0);	/* pending -> down at once (threshold 1) */
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK(it.changed);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = 'down'", mon),
	    1);
	it = apply1(s, mon, 1, 1, 0, 1);	/* one success of two */
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK(!it.changed);
	CHECK_EQ(qnum("SELECT consecutive_successes FROM monitor_state WHERE monitor_id = $1::uuid",
	    mon), 1);
	upmon_sleep_ms(1100);
	it = apply1(s, mon, 2, 1, 0, 1);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK(it.changed);
	CHECK_EQ(qnum("SELECT count(*) FROM monitor_state WHERE monitor_id = $1::uuid AND "
	    "down_since IS NULL AND status = 'up'", mon), 1);
	qstr(buf, sizeof(buf), "SELECT payload::text FROM outbox WHERE routing_key = "
	    "'alert.recovery' AND message_id = (SELECT id::text FROM alerts WHERE monitor_id = $1::uuid "
	    "AND kind = 'recovery')", mon);
	REQUIRE(upmon_msg_alert_decode(buf, strlen(buf), &ae, err, sizeof(err)) == 0);
	CHECK_EQ(ae.kind, UPMON_ALERT_RECOVERY);
	CHECK_INT(ae.outage_seconds, >=, 1);
	CHECK_INT(ae.outage_seconds, <, 30);
	CHECK(ae.error == NULL);
	upmon_alert_event_release(&ae);
	/* the downtime counted only the slot that ended DOWN */
	CHECK_EQ(qnum("SELECT sum(downtime_seconds) FROM check_rollups_hourly WHERE "
	    "monitor_id = $1::uuid", mon), 120);
	/* an older result is stored but changes no state */
	it = apply1(s, mon, -5, 1, 0, 0);
	CHECK_EQ(it.outcome, PROBE_ITEM_STORED);
	CHECK(!it.changed);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	state_of(mon, buf, sizeof(buf));
	CHECK_STR(buf, "up");
	CHECK_EQ(qnum("SELECT consecutive_failures FROM monitor_state WHERE monitor_id = $1::uuid",
	    mon), 0);
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid", mon), 4);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid", mon), 2);
	probe_store_free(s);
}

static void
test_threshold_from_pending(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct probe_item it;
	char mon[40];

	new_monitor(mon, "threshold", 3, 1);
	it = apply1(s, mon, 0, 1, 0, 0);
	CHECK_EQ(it.status, UPMON_STATUS_PENDING);
	it = apply1(s, mon, 1, 1, 0, 0);
	CHECK_EQ(it.status, UPMON_STATUS_PENDING);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid", mon), 0);
	it = apply1(s, mon, 2, 1, 0, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK(it.changed);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = 'down'", mon),
	    1);
	/* a success in between resets the count: up, then two failures stay up */
	it = apply1(s, mon, 3, 1, 0, 1);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	apply1(s, mon, 4, 1, 0, 0);
	it = apply1(s, mon, 5, 1, 0, 0);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	it = apply1(s, mon, 6, 1, 0, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = 'down'", mon),
	    2);
	/* DOWN -> UP raised a RECOVERY */
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = 'recovery'",
	    mon), 1);
	probe_store_free(s);
}

static void
test_gone_and_maintenance(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct probe_item it;
	char mon[40], other[40], buf[256];
	const char *p[1];

	/* paused */
	new_monitor(mon, "paused", 1, 1);
	qstr(buf, sizeof(buf), "UPDATE monitors SET paused = true WHERE id = $1", mon);
	wakes = 0;
	it = apply1(s, mon, 0, 1, 0, 0);
	CHECK_EQ(it.outcome, PROBE_ITEM_GONE);
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid", mon), 0);
	CHECK_EQ(wakes, 0);
	/* deleted */
	qstr(buf, sizeof(buf), "DELETE FROM monitors WHERE id = $1", mon);
	it = apply1(s, mon, 0, 1, 0, 0);
	CHECK_EQ(it.outcome, PROBE_ITEM_GONE);
	/* not a uuid, or another owner's */
	it = apply1(s, "not-a-uuid", 0, 1, 0, 0);
	CHECK_EQ(it.outcome, PROBE_ITEM_GONE);
	new_monitor(other, "foreign", 1, 1);
	{
		struct upmon_task t;
		struct probe_item fi;

		task_fill(&t, other, 0, 1, 0);
		snprintf(t.owner_id, sizeof(t.owner_id), "00000000-0000-4000-8000-000000000001");
		item_fill(&fi, &t, 1);
		CHECK_EQ(probe_store_apply(s, &fi, 1), 0);
		CHECK_EQ(fi.outcome, PROBE_ITEM_GONE);
		upmon_task_release(&t);
	}
	/* maintenance: the state moves, no alert, the rollup counts it apart */
	new_monitor(mon, "maintenance", 1, 1);
	p[0] = mon;
	q(NULL, 0, "INSERT INTO maintenance_windows (owner_id, monitor_id, kind, starts_at, "
	    "ends_at) SELECT owner_id, id, 'once', now() - interval '1 day', now() + "
	    "interval '1 day' FROM monitors WHERE id = $1", 1, p);
	it = apply1(s, mon, 0, 1, 0, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK(it.changed);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid", mon), 0);
	CHECK_EQ(qnum("SELECT maintenance_checks * 10 + checks FROM check_rollups_hourly "
	    "WHERE monitor_id = $1::uuid", mon), 10);
	CHECK_EQ(qnum("SELECT count(*) FROM outbox WHERE routing_key LIKE 'status.%.' || $1::text",
	    mon), 1);
	probe_store_free(s);
}

/* Several results of one monitor in one batch run the state machine in slot order; the
 * same task twice in a batch is stored once. */
static void
test_one_monitor_batch(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct upmon_task t[5];
	struct probe_item it[5];
	char mon[40], gone[40], buf[64];
	int i;

	new_monitor(mon, "batched", 2, 1);
	new_monitor(gone, "batched-paused", 1, 1);
	qstr(buf, sizeof(buf), "UPDATE monitors SET paused = true WHERE id = $1", gone);
	/* given out of order: the store sorts */
	task_fill(&t[0], mon, 2, 1, 0);
	task_fill(&t[1], mon, 0, 1, 0);
	task_fill(&t[2], gone, 0, 1, 0);
	task_fill(&t[3], mon, 1, 1, 0);
	task_fill(&t[4], mon, 1, 1, 0);	/* the same task again */
	item_fill(&it[0], &t[0], 0);
	item_fill(&it[1], &t[1], 1);
	item_fill(&it[2], &t[2], 0);
	item_fill(&it[3], &t[3], 0);
	item_fill(&it[4], &t[4], 0);
	CHECK_EQ(probe_store_apply(s, it, 5), 0);
	CHECK_EQ(it[1].outcome, PROBE_ITEM_STORED);
	CHECK_EQ(it[1].status, UPMON_STATUS_UP);	/* slot 0: pending -> up */
	CHECK(it[1].changed);
	CHECK_EQ(it[2].outcome, PROBE_ITEM_GONE);
	CHECK_EQ(it[3].outcome + it[4].outcome, PROBE_ITEM_STORED + PROBE_ITEM_DUPLICATE);
	CHECK_EQ(it[0].outcome, PROBE_ITEM_STORED);
	CHECK_EQ(it[0].status, UPMON_STATUS_DOWN);	/* slot 2: second failure */
	CHECK(it[0].changed);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid", mon), 1);
	CHECK_EQ(qnum("SELECT count(*) FROM outbox WHERE routing_key LIKE 'status.%.' || $1::text",
	    mon), 2);
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid", mon), 3);
	CHECK_EQ(qnum("SELECT sum(checks) * 100 + sum(failures) * 10 + sum(latency_count) FROM "
	    "check_rollups_hourly WHERE monitor_id = $1::uuid", mon), 321);
	CHECK_EQ(qnum("SELECT consecutive_failures * 10 + last_attempt FROM monitor_state "
	    "WHERE monitor_id = $1::uuid", mon), 21);
	/* the histogram counted the one success (42 ms: bucket 50 ms, the 6th) */
	CHECK_EQ(qnum("SELECT sum(latency_hist[6]) FROM check_rollups_hourly WHERE "
	    "monitor_id = $1::uuid", mon), 1);
	for (i = 0; i < 5; i++)
		upmon_task_release(&t[i]);
	probe_store_free(s);
}

static void
test_batch_isolation(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct upmon_task t[4];
	struct probe_item it[4];
	char mon[4][40], name[16];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "batch%d", i);
		new_monitor(mon[i], name, 1, 1);
		task_fill(&t[i], mon[i], 0, 1, 0);
		item_fill(&it[i], &t[i], 1);
	}
	/* no partition so far ahead: SQLSTATE 23514 for that item alone */
	t[2].scheduled_at = base + INT64_C(400) * 86400 * 1000;
	upmon_task_id_format(t[2].task_id, sizeof(t[2].task_id), mon[2], t[2].scheduled_at, 1);
	CHECK_EQ(probe_store_apply(s, it, 4), 0);
	CHECK_EQ(it[0].outcome, PROBE_ITEM_STORED);
	CHECK_EQ(it[1].outcome, PROBE_ITEM_STORED);
	CHECK_EQ(it[2].outcome, PROBE_ITEM_FAILED);
	CHECK_EQ(it[2].err, UPMON_DB_E_CONSTRAINT);
	CHECK_CONTAINS(it[2].errmsg, "partition");
	CHECK_EQ(it[3].outcome, PROBE_ITEM_STORED);
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid", mon[3]), 1);
	/* the probe's own failure (out of descriptors...) is not the target's: FAILED, unstored */
	t[2].scheduled_at = base;
	upmon_task_id_format(t[2].task_id, sizeof(t[2].task_id), mon[2], t[2].scheduled_at, 1);
	item_fill(&it[2], &t[2], 0);
	it[2].result.local_error = true;
	snprintf(it[2].result.error, sizeof(it[2].result.error), "socket: too many open files");
	CHECK_EQ(probe_store_apply(s, &it[2], 1), 0);
	CHECK_EQ(it[2].outcome, PROBE_ITEM_FAILED);
	CHECK_CONTAINS(it[2].errmsg, "too many open files");
	CHECK_EQ(qnum("SELECT count(*) FROM check_results WHERE monitor_id = $1::uuid", mon[2]), 0);
	for (i = 0; i < 4; i++)
		upmon_task_release(&t[i]);
	probe_store_free(s);
}

static void
test_db_unreachable(void)
{
	struct probe_store *s = open_store("postgresql://upmon@127.0.0.1:1/none");
	struct upmon_task t;
	struct probe_item it;
	char mon[40];

	new_monitor(mon, "unreachable", 1, 1);
	task_fill(&t, mon, 0, 1, 0);
	item_fill(&it, &t, 1);
	CHECK_EQ(probe_store_apply(s, &it, 1), UPMON_DB_E_CONN);
	CHECK(probe_store_system_error(s, &t, 5, "db down") < 0);
	upmon_task_release(&t);
	probe_store_free(s);
}

static void
test_system_error(void)
{
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	struct upmon_alert_event ae;
	struct upmon_task t;
	char mon[40], buf[4096], err[256];

	new_monitor(mon, "syserr", 1, 1);
	task_fill(&t, mon, 7, 1, 0);
	wakes = 0;
	CHECK_EQ(probe_store_system_error(s, &t, 5, "database unavailable"), 0);
	CHECK_EQ(wakes, 1);
	CHECK_EQ(probe_store_system_error(s, &t, 5, "database unavailable"), 0);	/* again */
	CHECK_EQ(wakes, 1);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = "
	    "'system_error'", mon), 1);
	qstr(buf, sizeof(buf), "SELECT payload::text FROM outbox WHERE routing_key = "
	    "'alert.system_error' AND message_id = (SELECT id::text FROM alerts WHERE "
	    "monitor_id = $1::uuid)", mon);
	REQUIRE(upmon_msg_alert_decode(buf, strlen(buf), &ae, err, sizeof(err)) == 0);
	CHECK_STR(ae.task_id, t.task_id);
	CHECK_EQ(ae.attempts, 5);
	CHECK_STR(ae.error, "database unavailable");
	CHECK_STR(ae.monitor_name, "syserr");
	upmon_alert_event_release(&ae);
	/* gone: nothing, and 0 */
	qstr(buf, sizeof(buf), "DELETE FROM monitors WHERE id = $1", mon);
	t.scheduled_at += 60000;
	upmon_task_id_format(t.task_id, sizeof(t.task_id), mon, t.scheduled_at, 1);
	CHECK_EQ(probe_store_system_error(s, &t, 5, "x"), 0);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE kind = 'system_error' AND "
	    "dedup_key LIKE '%' || $1::text || '%'", mon), 1);
	upmon_task_release(&t);
	probe_store_free(s);
}

/* ---- throughput: several threads, each committing batches of distinct monitors ---------- */

#define TP_THREADS 4
#define TP_MONITORS 64		/* per thread, one batch = one result of each */
#define TP_ROUNDS 20

struct tp {
	char mon[TP_MONITORS][40];
	int slot0;
	int stored;
	int failed;
};

static void *
tp_run(void *arg)
{
	struct tp *w = arg;
	struct probe_store *s = open_store(test_env("UPMON_PG_URL"));
	static struct upmon_task t[TP_THREADS][TP_MONITORS];
	struct upmon_task *tt = t[w->slot0 / 1000];
	struct probe_item it[TP_MONITORS];
	int r, i;

	for (r = 0; r < TP_ROUNDS; r++) {
		for (i = 0; i < TP_MONITORS; i++) {
			task_fill(&tt[i], w->mon[i], w->slot0 + r, 1, 0);
			item_fill(&it[i], &tt[i], (r + i) % 7 != 0);
		}
		if (probe_store_apply(s, it, TP_MONITORS) != 0)
			w->failed++;
		probe_store_cache(s, it, TP_MONITORS);
		for (i = 0; i < TP_MONITORS; i++) {
			w->stored += it[i].outcome == PROBE_ITEM_STORED;
			upmon_task_release(&tt[i]);
		}
	}
	probe_store_free(s);
	return NULL;
}

static void
test_throughput(void)
{
	static struct tp w[TP_THREADS];
	pthread_t th[TP_THREADS];
	char name[32];
	int64_t t0, t1;
	int i, k, total = 0;

	for (i = 0; i < TP_THREADS; i++) {
		w[i].slot0 = i * 1000;
		for (k = 0; k < TP_MONITORS; k++) {
			snprintf(name, sizeof(name), "tp-%d-%d", i, k);
			new_monitor(w[i].mon[k], name, 2, 1);
		}
	}
	/* slots of thread i: i * 1000 minutes after base: inside the partitions made ahead */
	t0 = upmon_mono_ms();
	for (i = 0; i < TP_THREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, tp_run, &w[i]) == 0);
	for (i = 0; i < TP_THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(w[i].failed, 0);
		total += w[i].stored;
	}
	t1 = upmon_mono_ms();
	CHECK_EQ(total, TP_THREADS * TP_MONITORS * TP_ROUNDS);
	fprintf(stderr, "throughput: %d results in %lld ms = %.0f results/s (%d threads, "
	    "batches of %d, with Redis write-through)\n", total, (long long)(t1 - t0),
	    total * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1), TP_THREADS, TP_MONITORS);
}

int
main(void)
{
	log_init("test_probe_store", UPMON_LOG_WARN, 0);
	RUN(test_setup);
	RUN(test_first_success);
	RUN(test_reprobe_then_down);
	RUN(test_recovery_threshold);
	RUN(test_threshold_from_pending);
	RUN(test_gone_and_maintenance);
	RUN(test_one_monitor_batch);
	RUN(test_batch_isolation);
	RUN(test_system_error);
	RUN(test_db_unreachable);
	RUN(test_throughput);
	upmon_db_free(db);
	return test_finish();
}
