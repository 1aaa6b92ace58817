/*
 * The safety nets of upmon-scheduler: the periodic reconcile picks up changes whose
 * notification never came (the NOTIFY trigger disabled), and a row the wire refuses is
 * skipped with one warning naming the monitor, counted in upmon_scheduler_invalid_monitors.
 * Also the tightened CHECK constraints of sql/0004 and the scheduler_state row.
 */
#include "test_scheduler_support.h"

#define INTERVAL 10

int
main(void)
{
	struct ts_sched s;
	struct ts_recs r = { 0 };
	struct upmon_amqp *c;
	char *quiet_id, *bad_id, *gone_id;
	int64_t t_change;
	size_t i, n_quiet = 0, n_bad = 0, n_gone = 0, n_changed = 0;

	ts_setup(UPMON_LOG_WARN, NULL, 0, 0);

	/* sql/0004: the wire limits are database constraints now */
	CHECK_EQ(ts_sql("INSERT INTO monitors (owner_id, name, type, url, max_redirects) VALUES "
	    "('" TS_OWNER "', 'r11', 'http', 'http://127.0.0.1:9/', 11)", 0, NULL, NULL, NULL),
	    UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(ts_sql("INSERT INTO monitors (owner_id, name, type, url, max_latency_ms) VALUES "
	    "('" TS_OWNER "', 'l', 'http', 'http://127.0.0.1:9/', 60001)", 0, NULL, NULL, NULL),
	    UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(ts_sql("INSERT INTO monitors (owner_id, name, type, url, body) VALUES "
	    "('" TS_OWNER "', 'b', 'http', 'http://127.0.0.1:9/', repeat('x', 16385))", 0, NULL,
	    NULL, NULL), UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(ts_sql("INSERT INTO monitors (owner_id, name, type, url, headers) SELECT "
	    "'" TS_OWNER "', 'h', 'http', 'http://127.0.0.1:9/', jsonb_object_agg('h' || g, 'v') "
	    "FROM generate_series(1, 33) g", 0, NULL, NULL, NULL), UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(ts_sql("INSERT INTO monitors (owner_id, name, type, url, headers) VALUES "
	    "('" TS_OWNER "', 'h2', 'http', 'http://127.0.0.1:9/', '{\"a\": 1}')", 0, NULL,
	    NULL, NULL), UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(ts_sql("INSERT INTO monitors (owner_id, name, type, url, max_redirects, "
	    "max_latency_ms, body, headers) SELECT '" TS_OWNER "', 'ok', 'http', "
	    "'http://127.0.0.1:9/', 10, 60000, repeat('x', 16384), "
	    "jsonb_object_agg('h' || g, 'v') FROM generate_series(1, 32) g", 0, NULL, NULL,
	    NULL), 0);
	CHECK_EQ(ts_sql("INSERT INTO scheduler_state (id) VALUES (2)", 0, NULL, NULL, NULL),
	    UPMON_DB_E_CONSTRAINT);
	REQUIRE(ts_sql("DELETE FROM monitors", 0, NULL, NULL, NULL) == 0);

	ts_add_monitors("q", 5, INTERVAL);
	/* a row the wire refuses (constraint dropped to get it in, as before 0004) */
	REQUIRE(ts_sql("ALTER TABLE monitors DROP CONSTRAINT monitors_max_latency_check", 0,
	    NULL, NULL, NULL) == 0);
	REQUIRE(ts_sql("INSERT INTO monitors (owner_id, name, type, url, max_latency_ms, "
	    "interval_seconds, timeout_ms) VALUES ('" TS_OWNER "', 'bad', 'http', "
	    "'http://127.0.0.1:9/bad', 600000, 10, 1000)", 0, NULL, NULL, NULL) == 0);
	quiet_id = ts_scalar("SELECT id FROM monitors WHERE name = 'q1'", 0, NULL, NULL);
	gone_id = ts_scalar("SELECT id FROM monitors WHERE name = 'q2'", 0, NULL, NULL);
	bad_id = ts_scalar("SELECT id FROM monitors WHERE name = 'bad'", 0, NULL, NULL);

	ts_start_ready(&s, "reconcile", "UPMON_SCHEDULER_RECONCILE_S=5", 1);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_monitors"), 5);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_invalid_monitors"), 1);
	c = ts_consumer();

	/* changes nobody is told about */
	REQUIRE(ts_sql("ALTER TABLE monitors DISABLE TRIGGER monitors_notify", 0, NULL, NULL,
	    NULL) == 0);
	t_change = upmon_wall_ms();
	REQUIRE(ts_sql("UPDATE monitors SET url = 'http://127.0.0.1:9/quiet' WHERE id = $1", 1,
	    quiet_id, NULL, NULL) == 0);
	REQUIRE(ts_sql("DELETE FROM monitors WHERE id = $1", 1, gone_id, NULL, NULL) == 0);
	REQUIRE(ts_sql("INSERT INTO monitors (owner_id, name, type, url, interval_seconds, "
	    "timeout_ms) VALUES ('" TS_OWNER "', 'q9', 'http', 'http://127.0.0.1:9/q9', 10, 1000)",
	    0, NULL, NULL, NULL) == 0);
	ts_collect(c, &r, 22000);

	(void)ts_check_recs(&r, INT64_MAX);
	for (i = 0; i < r.n; i++) {
		/* the reconcile runs every 5 s: allow 6 s before the change must show */
		bool late = r.v[i].slot > t_change + 6000;

		if (strcmp(r.v[i].monitor_id, bad_id) == 0)
			n_bad++;
		if (strcmp(r.v[i].monitor_id, gone_id) == 0 && late)
			n_gone++;
		if (strcmp(r.v[i].monitor_id, quiet_id) == 0 && late) {
			n_quiet++;
			if (strcmp(r.v[i].url, "http://127.0.0.1:9/quiet") == 0)
				n_changed++;
		}
	}
	fprintf(stderr, "reconcile: %zu tasks; changed monitor %zu/%zu with the new url\n",
	    r.n, n_changed, n_quiet);
	CHECK_EQ(n_bad, 0);
	CHECK_EQ(n_gone, 0);
	CHECK_INT(n_quiet, >=, 1);
	CHECK_EQ(n_changed, n_quiet);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_monitors"), 5);	/* 5 - 1 deleted + 1 new */
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_invalid_monitors"), 1);
	/* one warning line naming the invalid monitor, however many reconciles ran */
	CHECK_EQ(test_sh("test \"$(grep -c 'monitor=%s .*monitor skipped.*max_latency_ms' %s)\" "
	    "= 1", bad_id, s.log), 0);

	ts_finish(&s, c, &r);
	free(quiet_id);
	free(gone_id);
	free(bad_id);
	ts_done(&s);
	return test_finish();
}
