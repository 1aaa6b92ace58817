/*
 * The probe's store raising TLS-expiry alerts and DOWN reminders (sql/0006_alerting.sql)
 * against real PostgreSQL: results go through probe_store_apply(), and the alerts rows and the
 * outbox rows (decoded with msg.c) they leave behind are checked.
 *
 * TLS expiry: a certificate within the monitor's threshold alerts once per certificate
 * (not-after) and threshold; a changed threshold or a renewed certificate alerts again; a
 * threshold of 0, a certificate further away, maintenance and non-final attempts do not; one
 * failing result can raise both a DOWN and a TLS-expiry alert.
 * Reminders: a monitor still DOWN reminder_minutes after its last alert gets one reminder
 * (kind down, "reminder": true, outage_seconds = down so far), not two in a row; none without
 * reminder_minutes, none in maintenance.
 */
#include "test.h"
#include "test_store_support.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "store.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/msg.h"

#define DAY_MS 86400000LL

static char owner[40];
static int64_t base;		/* a minute boundary an hour ago */

static void
new_monitor(char *id, const char *name)
{
	const char *p[2] = { owner, name };

	q(id, 40, "INSERT INTO monitors (owner_id, name, type, url, failure_threshold, "
	    "recovery_threshold) VALUES ($1, $2, 'http', 'https://example.test/h', 1, 1) "
	    "RETURNING id", 2, p);
}

static struct probe_store *
open_store(void)
{
	struct probe_store_config cfg;
	struct probe_store *s = NULL;

	probe_store_config_init(&cfg);
	cfg.db.url = test_env("UPMON_PG_URL");
	cfg.db.connect_timeout_s = 2;
	cfg.retry_levels = 3;
	cfg.probe_host = "test-host";
	REQUIRE(probe_store_new(&cfg, &s) == 0);
	return s;
}

/*
 * Applies one result of mon for slot slot_no (attempt, retries); ok or a 503; days >= -36500
 * adds a certificate with days left and not_after (Unix ms). Returns the item.
 */
static struct probe_item
apply1(struct probe_store *s, const char *mon, int slot_no, int attempt, int retries, int ok,
    int days, int64_t not_after)
{
	struct upmon_task t;
	struct probe_item it;

	upmon_task_init(&t);
	snprintf(t.monitor_id, sizeof(t.monitor_id), "%s", mon);
	snprintf(t.owner_id, sizeof(t.owner_id), "%s", owner);
	t.scheduled_at = base + (int64_t)slot_no * 60000;
	t.attempt = attempt;
	t.retries = retries;
	t.interval_seconds = 60;
	t.check.url = strdup("https://example.test/h");
	upmon_task_id_format(t.task_id, sizeof(t.task_id), mon, t.scheduled_at, attempt);
	memset(&it, 0, sizeof(it));
	it.task = &t;
	it.result.ok = ok;
	it.result.status_code = ok ? 200 : 503;
	it.result.latency_ms = 40;
	it.result.timings = (struct probe_timings){ 1, 2, 3, 30, 40 };
	if (!ok)
		snprintf(it.result.error, sizeof(it.result.error), "status 503");
	if (days >= -36500) {
		it.result.has_cert = true;
		it.result.cert_days_left = days;
		it.result.cert_not_after_ms = not_after;
	}
	CHECK_EQ(probe_store_apply(s, &it, 1), 0);
	CHECK_EQ(it.outcome, PROBE_ITEM_STORED);
	upmon_task_release(&t);
	it.task = NULL;
	return it;
}

static long long
alerts_of(const char *mon, const char *kind)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid "
	    "AND kind = '%s'", kind);
	return qnum(sql, mon);
}

static long long
events_of(const char *mon, const char *key)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE routing_key = '%s' AND "
	    "payload->>'monitor_id' = $1::text", key);
	return qnum(sql, mon);
}

/* Decodes the outbox event of the newest alert of mon whose dedup_key starts with prefix;
 * checks that its message_id and alert_id are the alerts row's id. */
static void
newest_event(const char *mon, const char *prefix, struct upmon_alert_event *ev)
{
	char sql[512], id[64], buf[8192], err[256];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT id FROM alerts WHERE monitor_id = $1::uuid AND "
	    "dedup_key LIKE '%s%%' ORDER BY created_at DESC, id LIMIT 1", prefix);
	qstr(id, sizeof(id), sql, mon);
	REQUIRE(id[0] != '\0');
	qstr(buf, sizeof(buf), "SELECT payload::text FROM outbox WHERE message_id = $1", id);
	REQUIRE(buf[0] != '\0');
	rc = upmon_msg_alert_decode(buf, strlen(buf), ev, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "bad event: %s: %s\n", err, buf);
	REQUIRE(rc == 0);
	CHECK_STR(ev->alert_id, id);
	CHECK_STR(ev->monitor_id, mon);
	CHECK_STR(ev->owner_id, owner);
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
	    "('tls-reminder@example.test', 'x') RETURNING id", 0, NULL);
	base = ((int64_t)now - 3600) / 60 * 60 * 1000;
}

static void
test_tls_expiry(void)
{
	struct probe_store *s = open_store();
	struct upmon_alert_event ev;
	struct probe_item it;
	char mon[40], buf[512], key[256];
	int64_t now_ms = (int64_t)time(NULL) * 1000;
	int64_t na1 = now_ms + 5 * DAY_MS + 3600000, na2 = now_ms + 6 * DAY_MS + 3600000;
	int64_t na3 = now_ms + 20 * DAY_MS, na4 = now_ms + DAY_MS;

	new_monitor(mon, "shop");
	/* 5 days left, threshold 14 (the default): one alert and its event */
	it = apply1(s, mon, 0, 1, 0, 1, 5, na1);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 1);
	snprintf(key, sizeof(key), "tls_expiry:%s:%lld:14", mon, (long long)na1);
	qstr(buf, sizeof(buf), "SELECT dedup_key FROM alerts WHERE monitor_id = $1::uuid AND "
	    "kind = 'tls_expiry'", mon);
	CHECK_STR(buf, key);
	qstr(buf, sizeof(buf), "SELECT message FROM alerts WHERE monitor_id = $1::uuid AND "
	    "kind = 'tls_expiry'", mon);
	CHECK_STR(buf, "shop: certificate expires in 5 days");
	CHECK_EQ(qnum("SELECT (details->>'threshold_days')::int * 1000 + "
	    "(details->>'cert_days_left')::int FROM alerts WHERE monitor_id = $1::uuid AND "
	    "kind = 'tls_expiry'", mon), 14005);
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND "
	    "kind = 'tls_expiry' AND (details->>'not_after')::timestamptz = "
	    "upmon_ms_to_ts((details->>'not_after_ms')::bigint)", mon), 1);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 1);
	newest_event(mon, "tls_expiry:", &ev);
	CHECK_EQ(ev.kind, UPMON_ALERT_TLS_EXPIRY);
	CHECK_EQ(ev.cert_days_left, 5);
	CHECK_STR(ev.monitor_name, "shop");
	CHECK_STR(ev.target, "https://example.test/h");
	CHECK(!ev.reminder);
	upmon_alert_event_release(&ev);
	CHECK_EQ(qnum("SELECT cert_days_left FROM monitor_state WHERE monitor_id = $1::uuid", mon),
	    5);

	/* the same certificate again, even a day closer: nothing new */
	apply1(s, mon, 1, 1, 0, 1, 5, na1);
	apply1(s, mon, 2, 1, 0, 1, 4, na1);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 1);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 1);

	/* the threshold changed to 7: one more for the same certificate */
	exec1("UPDATE monitors SET cert_expiry_days = 7 WHERE id = $1::uuid", mon);
	apply1(s, mon, 3, 1, 0, 1, 4, na1);
	apply1(s, mon, 4, 1, 0, 1, 4, na1);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 2);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 2);

	/* a renewed certificate that is close too: one more */
	apply1(s, mon, 5, 1, 0, 1, 6, na2);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 3);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 3);
	newest_event(mon, "tls_expiry:", &ev);
	CHECK_EQ(ev.cert_days_left, 6);
	upmon_alert_event_release(&ev);

	/* a certificate further away than the threshold: none */
	apply1(s, mon, 6, 1, 0, 1, 20, na3);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 3);

	/* threshold 0 = off: none, even for a certificate about to expire */
	exec1("UPDATE monitors SET cert_expiry_days = 0 WHERE id = $1::uuid", mon);
	apply1(s, mon, 7, 1, 0, 1, 1, na4);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 3);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 3);

	/* an expired certificate says so */
	exec1("UPDATE monitors SET cert_expiry_days = 14 WHERE id = $1::uuid", mon);
	apply1(s, mon, 8, 1, 0, 1, -2, now_ms - 2 * DAY_MS - 3600000);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 4);
	qstr(buf, sizeof(buf), "SELECT message FROM alerts WHERE monitor_id = $1::uuid AND "
	    "kind = 'tls_expiry' ORDER BY created_at DESC, (details->>'cert_days_left')::int "
	    "LIMIT 1", mon);
	CHECK_STR(buf, "shop: certificate expired 2 days ago");
	newest_event(mon, "tls_expiry:", &ev);
	CHECK_EQ(ev.cert_days_left, -2);
	upmon_alert_event_release(&ev);
	/* no DOWN or reminder alert came with any of these (the monitor is up) */
	CHECK_EQ(alerts_of(mon, "down"), 0);

	/* maintenance: none */
	new_monitor(mon, "in maintenance");
	exec1("INSERT INTO maintenance_windows (owner_id, monitor_id, kind, starts_at, ends_at) "
	    "SELECT owner_id, id, 'once', now() - interval '1 day', now() + interval '1 day' "
	    "FROM monitors WHERE id = $1::uuid", mon);
	apply1(s, mon, 0, 1, 0, 1, 5, na1);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 0);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 0);

	/* a failed attempt that will be re-probed is not final: no alert yet; the final
	 * failure raises both DOWN and TLS expiry */
	new_monitor(mon, "both");
	it = apply1(s, mon, 0, 1, 1, 0, 3, na1);
	CHECK(!it.final);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 0);
	it = apply1(s, mon, 0, 2, 1, 0, 3, na1);
	CHECK(it.final);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK_EQ(alerts_of(mon, "tls_expiry"), 1);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	CHECK_EQ(events_of(mon, "alert.tls_expiry"), 1);
	CHECK_EQ(events_of(mon, "alert.down"), 1);
	newest_event(mon, "tls_expiry:", &ev);
	CHECK_EQ(ev.cert_days_left, 3);
	upmon_alert_event_release(&ev);
	newest_event(mon, "down:", &ev);
	CHECK_EQ(ev.kind, UPMON_ALERT_DOWN);
	CHECK(!ev.reminder);
	CHECK_EQ(ev.outage_seconds, 0);
	upmon_alert_event_release(&ev);
	probe_store_free(s);
}

/* Moves mon's down_since back by down_min and last_alert_at back by alert_min minutes. */
static void
age_down(const char *mon, int down_min, int alert_min)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "UPDATE monitor_state SET down_since = down_since - "
	    "interval '%d minutes', last_alert_at = last_alert_at - interval '%d minutes' "
	    "WHERE monitor_id = $1::uuid", down_min, alert_min);
	exec1(sql, mon);
}

static void
test_reminder(void)
{
	struct probe_store *s = open_store();
	struct upmon_alert_event ev;
	struct probe_item it;
	char mon[40], buf[512], key[256];

	new_monitor(mon, "api");
	exec1("UPDATE monitors SET reminder_minutes = 1 WHERE id = $1::uuid", mon);
	it = apply1(s, mon, 0, 1, 0, 0, -99999, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	/* still down right after the DOWN alert: no reminder yet */
	it = apply1(s, mon, 1, 1, 0, 0, -99999, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK(!it.changed);
	CHECK_EQ(alerts_of(mon, "down"), 1);

	/* down for 3 min, last alert 2 min ago: one reminder */
	age_down(mon, 3, 2);
	it = apply1(s, mon, 2, 1, 0, 0, -99999, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK(!it.changed);
	CHECK_EQ(alerts_of(mon, "down"), 2);
	CHECK_EQ(events_of(mon, "alert.down"), 2);
	snprintf(key, sizeof(key), "reminder:%s:%lld", mon, (long long)(base + 2 * 60000));
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE monitor_id = $1::uuid AND kind = 'down' "
	    "AND (details->>'reminder')::boolean AND (details->>'down_seconds')::int >= 179 "
	    "AND NOT details ? 'outage_seconds' AND dedup_key LIKE 'reminder:%'", mon), 1);
	qstr(buf, sizeof(buf), "SELECT dedup_key FROM alerts WHERE monitor_id = $1::uuid AND "
	    "dedup_key LIKE 'reminder:%'", mon);
	CHECK_STR(buf, key);
	qstr(buf, sizeof(buf), "SELECT message FROM alerts WHERE monitor_id = $1::uuid AND "
	    "dedup_key LIKE 'reminder:%'", mon);
	CHECK_STR(buf, "api is still down (for 3 min): status 503");
	newest_event(mon, "reminder:", &ev);
	CHECK_EQ(ev.kind, UPMON_ALERT_DOWN);
	CHECK(ev.reminder);
	CHECK(ev.outage_seconds >= 179 && ev.outage_seconds < 600);
	CHECK_STR(ev.error, "status 503");
	CHECK_STR(ev.monitor_name, "api");
	upmon_alert_event_release(&ev);
	CHECK_EQ(qnum("SELECT count(*) FROM monitor_state WHERE monitor_id = $1::uuid AND "
	    "last_alert_at > now() - interval '30 seconds' AND "
	    "down_since < now() - interval '170 seconds'", mon), 1);

	/* another failure right after: none (the reminder was the last alert) */
	apply1(s, mon, 3, 1, 0, 0, -99999, 0);
	CHECK_EQ(alerts_of(mon, "down"), 2);
	CHECK_EQ(events_of(mon, "alert.down"), 2);

	/* a reminder is not a recovery: recovery still reports the whole outage */
	it = apply1(s, mon, 4, 1, 0, 1, -99999, 0);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK_EQ(alerts_of(mon, "recovery"), 1);
	newest_event(mon, "recovery:", &ev);
	CHECK(ev.outage_seconds >= 179);
	upmon_alert_event_release(&ev);

	/* reminder_minutes NULL: never */
	new_monitor(mon, "no reminders");
	apply1(s, mon, 0, 1, 0, 0, -99999, 0);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	age_down(mon, 600, 600);
	apply1(s, mon, 1, 1, 0, 0, -99999, 0);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	CHECK_EQ(events_of(mon, "alert.down"), 1);

	/* in maintenance: none */
	new_monitor(mon, "maintained");
	exec1("UPDATE monitors SET reminder_minutes = 1 WHERE id = $1::uuid", mon);
	apply1(s, mon, 0, 1, 0, 0, -99999, 0);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	age_down(mon, 10, 10);
	exec1("INSERT INTO maintenance_windows (owner_id, monitor_id, kind, starts_at, ends_at) "
	    "SELECT owner_id, id, 'once', now() - interval '1 day', now() + interval '1 day' "
	    "FROM monitors WHERE id = $1::uuid", mon);
	apply1(s, mon, 1, 1, 0, 0, -99999, 0);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	CHECK_EQ(events_of(mon, "alert.down"), 1);
	/* the window ends: the next failure reminds */
	exec1("DELETE FROM maintenance_windows WHERE monitor_id = $1::uuid", mon);
	apply1(s, mon, 2, 1, 0, 0, -99999, 0);
	CHECK_EQ(alerts_of(mon, "down"), 2);
	CHECK_EQ(events_of(mon, "alert.down"), 2);
	newest_event(mon, "reminder:", &ev);
	CHECK(ev.reminder);
	CHECK(ev.outage_seconds >= 599);
	upmon_alert_event_release(&ev);
	probe_store_free(s);
}

/* An outage that begins inside a maintenance window raises nothing there; if the monitor is
 * still down at its first check after the window, that check raises the DOWN (not a
 * reminder); if it recovers first, no RECOVERY (its owner never heard of the outage). */
static void
test_outage_in_maintenance(void)
{
	struct probe_store *s = open_store();
	struct upmon_alert_event ev;
	struct probe_item it;
	char mon[40], key[256];
	static const char window[] = "INSERT INTO maintenance_windows (owner_id, monitor_id, kind,"
	    " starts_at, ends_at) SELECT owner_id, id, 'once', now() - interval '1 day',"
	    " now() + interval '1 day' FROM monitors WHERE id = $1::uuid";

	new_monitor(mon, "quiet");
	exec1(window, mon);
	it = apply1(s, mon, 0, 1, 0, 0, -99999, 0);
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	it = apply1(s, mon, 1, 1, 0, 1, -99999, 0);	/* recovers inside the window */
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	it = apply1(s, mon, 2, 1, 0, 0, -99999, 0);	/* down again, inside */
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK_EQ(alerts_of(mon, "down") + alerts_of(mon, "recovery"), 0);
	exec1("DELETE FROM maintenance_windows WHERE monitor_id = $1::uuid", mon);
	it = apply1(s, mon, 3, 1, 0, 0, -99999, 0);	/* still down after it: the DOWN */
	CHECK_EQ(it.status, UPMON_STATUS_DOWN);
	CHECK_EQ(alerts_of(mon, "down"), 1);
	snprintf(key, sizeof(key), "down:%s:%lld", mon, (long long)(base + 3 * 60000));
	CHECK_EQ(qnum("SELECT count(*) FROM alerts WHERE dedup_key = $1", key), 1);
	newest_event(mon, "down:", &ev);
	CHECK_EQ(ev.kind, UPMON_ALERT_DOWN);
	CHECK(!ev.reminder);
	upmon_alert_event_release(&ev);
	apply1(s, mon, 4, 1, 0, 0, -99999, 0);		/* told now: nothing more */
	CHECK_EQ(alerts_of(mon, "down"), 1);
	it = apply1(s, mon, 5, 1, 0, 1, -99999, 0);	/* and its RECOVERY */
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK_EQ(alerts_of(mon, "recovery"), 1);

	/* down inside, recovered after the window: no alert at all */
	new_monitor(mon, "quiet too");
	exec1(window, mon);
	apply1(s, mon, 0, 1, 0, 0, -99999, 0);
	exec1("DELETE FROM maintenance_windows WHERE monitor_id = $1::uuid", mon);
	it = apply1(s, mon, 1, 1, 0, 1, -99999, 0);
	CHECK_EQ(it.status, UPMON_STATUS_UP);
	CHECK_EQ(alerts_of(mon, "down") + alerts_of(mon, "recovery"), 0);
	CHECK_EQ(events_of(mon, "alert.down") + events_of(mon, "alert.recovery"), 0);
	probe_store_free(s);
}

int
main(void)
{
	log_init("test_probe_tls_reminder", UPMON_LOG_WARN, 0);
	RUN(test_setup);
	RUN(test_tls_expiry);
	RUN(test_reminder);
	RUN(test_outage_in_maintenance);
	upmon_db_free(db);
	return test_finish();
}
