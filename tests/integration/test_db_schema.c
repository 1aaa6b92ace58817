/*
 * The schema of sql/ after `upmonctl migrate`, exercised through the db module: daily
 * partitions exist ahead and a result lands in its day's partition; a duplicate
 * (monitor, slot, attempt) insert with ON CONFLICT DO NOTHING keeps one row; rows outside every
 * partition are refused; expired partitions are dropped; the monitor_changed NOTIFY fires on
 * insert, update and delete; monitor_state follows monitors; tenant keys cannot be crossed;
 * rollups estimate percentiles; maintenance windows match.
 */
#include "test.h"
#include "upmon/db.h"

#include <ctype.h>
#include <dirent.h>
#include <time.h>

static struct upmon_db *db;

static const char *OWNER = "00000000-0000-4000-8000-000000000001";
static const char *OTHER = "00000000-0000-4000-8000-000000000002";
static const char *MON = "10000000-0000-4000-8000-000000000001";

/* Runs sql with params; returns the code. The result, if wanted, goes to *res. */
static int
qp(const char *sql, int n, const char *const *params, PGresult **res,
    struct upmon_db_error *err)
{
	return upmon_db_query(db, 0, sql, n, params, res, err);
}

/* The first value of the first row of sql (static buffer), or "(error)". */
static const char *
scalar(const char *sql, int n, const char *const *params)
{
	static char buf[512];
	struct upmon_db_error err;
	PGresult *res = NULL;
	const char *v;

	if (qp(sql, n, params, &res, &err) != 0) {
		snprintf(buf, sizeof(buf), "(error: %s)", err.message);
		return buf;
	}
	v = upmon_db_value(res, 0, 0);
	snprintf(buf, sizeof(buf), "%s", v != NULL ? v : "(null)");
	PQclear(res);
	return buf;
}

static void
today_partition(char *buf, size_t size, int offset_days)
{
	time_t t = time(NULL) + (time_t)offset_days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "check_results_p%Y%m%d", &tm);
}

/* The number of migration files in sql/ (NNNN_*.sql), as text. */
static const char *
migration_files(void)
{
	static char buf[16];
	char path[4096];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/sql", test_env("UPMON_SOURCE_DIR"));
	REQUIRE((d = opendir(path)) != NULL);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len > 9 && isdigit((unsigned char)e->d_name[0]) && e->d_name[4] == '_' &&
		    strcmp(e->d_name + len - 4, ".sql") == 0)
			n++;
	}
	closedir(d);
	CHECK_INT(n, >=, 5);
	snprintf(buf, sizeof(buf), "%d", n);
	return buf;
}

static void
test_migrate(void)
{
	struct upmon_db_config cfg;
	struct upmon_db_error err;

	REQUIRE(test_sh("\"$UPMON_BIN_DIR/upmonctl\" migrate") == 0);
	upmon_db_config_init(&cfg);
	cfg.url = test_env("UPMON_PG_URL");
	cfg.application_name = "test_db_schema";
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	REQUIRE(upmon_db_connect(db, &err) == 0);
	CHECK_STR(scalar("SELECT count(*) FROM schema_migrations", 0, NULL), migration_files());
}

static void
test_partitions(void)
{
	char name[64];
	const char *p[1] = { name };

	/* yesterday .. today + 7 */
	CHECK_STR(scalar("SELECT count(*) FROM pg_inherits "
	    "WHERE inhparent = 'check_results'::regclass", 0, NULL), "9");
	today_partition(name, sizeof(name), 7);
	CHECK_STR(scalar("SELECT to_regclass($1) IS NOT NULL", 1, p), "t");
	today_partition(name, sizeof(name), -1);
	CHECK_STR(scalar("SELECT to_regclass($1) IS NOT NULL", 1, p), "t");
	/* idempotent, and extends */
	CHECK_STR(scalar("SELECT upmon_ensure_partitions(7)", 0, NULL), "0");
	CHECK_STR(scalar("SELECT upmon_ensure_partitions(9)", 0, NULL), "2");
	CHECK_STR(scalar("SELECT upmon_ensure_partitions(-1)", 0, NULL),
	    "(error: days_ahead must be between 0 and 366, got -1)");
}

static void
test_tenants(void)
{
	struct upmon_db_error err;
	const char *p[3] = { OWNER, OTHER, MON };

	REQUIRE(qp("INSERT INTO users (id, email, password_hash) VALUES "
	    "($1, 'Owner@Example.org', 'x'), ($2, 'other@example.org', 'x')", 2, p, NULL,
	    &err) == 0);
	/* email unique case-insensitively */
	CHECK_EQ(qp("INSERT INTO users (email, password_hash) VALUES ('owner@EXAMPLE.org', 'y')",
	    0, NULL, NULL, &err), UPMON_DB_E_CONFLICT);
	CHECK_EQ(qp("INSERT INTO users (email, password_hash, role) VALUES ('r@x.org', 'y', "
	    "'root')", 0, NULL, NULL, &err), UPMON_DB_E_CONSTRAINT);
	p[0] = MON;
	p[1] = OWNER;
	REQUIRE(upmon_db_listen(db, "monitor_changed", &err) == 0);
	REQUIRE(qp("INSERT INTO monitors (id, owner_id, name, type, url) "
	    "VALUES ($1, $2, 'site', 'http', 'https://example.org/')", 2, p, NULL, &err) == 0);
	CHECK_EQ(qp("INSERT INTO monitors (owner_id, name, type, url) "
	    "VALUES ($1, 'site', 'http', 'https://example.org/2')", 1, p + 1, NULL, &err),
	    UPMON_DB_E_CONFLICT);
	CHECK_EQ(qp("INSERT INTO monitors (owner_id, name, type, url, interval_seconds) "
	    "VALUES ($1, 'fast', 'http', 'https://x/', 5)", 1, p + 1, NULL, &err),
	    UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(qp("INSERT INTO monitors (owner_id, name, type, host) "
	    "VALUES ($1, 'tcp without port', 'tcp', 'db.internal')", 1, p + 1, NULL, &err),
	    UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(qp("INSERT INTO monitors (owner_id, name, type, url, expected_status) "
	    "VALUES ($1, 'bad status', 'http', 'https://x/', '200-2x9')", 1, p + 1, NULL, &err),
	    UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(qp("INSERT INTO monitors (owner_id, name, type, host, port, expected_status) "
	    "VALUES ($1, 'tcp', 'tcp', 'db.internal', 5432, '200-299,301')", 1, p + 1, NULL, &err),
	    0);
	/* the state row came with it */
	CHECK_STR(scalar("SELECT status FROM monitor_state WHERE monitor_id = $1", 1, p),
	    "pending");
	/* a child row cannot point at another tenant's monitor */
	p[1] = OTHER;
	CHECK_EQ(qp("INSERT INTO check_results (monitor_id, owner_id, scheduled_at, ok) "
	    "VALUES ($1, $2, now(), true)", 2, p, NULL, &err), UPMON_DB_E_CONSTRAINT);
	CHECK_STR(err.sqlstate, "23503");
	CHECK_EQ(qp("INSERT INTO notification_channels (id, owner_id, name, kind) VALUES "
	    "('20000000-0000-4000-8000-000000000001', $1, 'hook', 'webhook')", 1, p + 1, NULL,
	    &err), 0);
	CHECK_EQ(qp("INSERT INTO monitor_channels (monitor_id, channel_id, owner_id) VALUES "
	    "($1, '20000000-0000-4000-8000-000000000001', $2)", 2, p, NULL, &err),
	    UPMON_DB_E_CONSTRAINT);
}

struct notes {
	int n;
	char last[256];
};

static void
on_note(void *arg, const char *channel, const char *payload, int pid)
{
	struct notes *s = arg;

	(void)pid;
	if (strcmp(channel, "monitor_changed") == 0) {
		s->n++;
		snprintf(s->last, sizeof(s->last), "%s", payload);
	}
}

static void
test_notify(void)
{
	struct upmon_db_error err;
	struct notes s = { 0, "" };
	const char *p[1] = { MON };
	char want[160];

	/* the inserts of test_tenants committed two monitors */
	CHECK_EQ(upmon_db_notifications(db, on_note, &s, NULL, &err), 0);
	CHECK_EQ(s.n, 2);
	REQUIRE(qp("UPDATE monitors SET paused = true WHERE id = $1", 1, p, NULL, &err) == 0);
	CHECK_EQ(upmon_db_notifications(db, on_note, &s, NULL, &err), 0);
	CHECK_EQ(s.n, 3);
	snprintf(want, sizeof(want), "{\"op\" : \"update\", \"id\" : \"%s\"}", MON);
	CHECK_STR(s.last, want);
	CHECK_STR(scalar("SELECT status FROM monitor_state WHERE monitor_id = $1", 1, p),
	    "paused");
	REQUIRE(qp("UPDATE monitors SET paused = false WHERE id = $1", 1, p, NULL, &err) == 0);
	CHECK_STR(scalar("SELECT status FROM monitor_state WHERE monitor_id = $1", 1, p),
	    "pending");
	/* a notification sent in a transaction arrives at commit, not before */
	REQUIRE(upmon_db_begin(db, &err) == 0);
	REQUIRE(qp("DELETE FROM monitors WHERE name = 'tcp'", 0, NULL, NULL, &err) == 0);
	REQUIRE(upmon_db_commit(db, &err) == 0);
	CHECK_EQ(upmon_db_notifications(db, on_note, &s, NULL, &err), 0);
	CHECK_EQ(s.n, 5);
	CHECK_CONTAINS(s.last, "\"op\" : \"delete\"");
}

static void
test_results(void)
{
	static const char ins[] = "INSERT INTO check_results (monitor_id, owner_id, "
	    "scheduled_at, attempt, ok, latency_ms) VALUES ($1, $2, $3, $4, true, 12) "
	    "ON CONFLICT DO NOTHING";
	struct upmon_db_error err;
	PGresult *res = NULL;
	char name[64], slot[64];
	const char *p[4] = { MON, OWNER, slot, "0" };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(slot, sizeof(slot), "%Y-%m-%d %H:%M:00+00", &tm);
	REQUIRE(qp(ins, 4, p, &res, &err) == 0);
	CHECK_STR(PQcmdTuples(res), "1");
	PQclear(res);
	/* the same task again: absorbed */
	REQUIRE(qp(ins, 4, p, &res, &err) == 0);
	CHECK_STR(PQcmdTuples(res), "0");
	PQclear(res);
	/* the next attempt of the slot is a row of its own */
	p[3] = "1";
	REQUIRE(qp(ins, 4, p, NULL, &err) == 0);
	CHECK_STR(scalar("SELECT count(*) FROM check_results WHERE monitor_id = $1", 1, p), "2");
	today_partition(name, sizeof(name), 0);
	CHECK_STR(scalar("SELECT DISTINCT tableoid::regclass::text FROM check_results", 0, NULL),
	    name);
	/* a slot outside every partition is refused, not parked in a default partition */
	p[2] = "2001-01-01 00:00:00+00";
	p[3] = "0";
	CHECK_EQ(qp(ins, 4, p, NULL, &err), UPMON_DB_E_CONSTRAINT);
	CHECK_STR(err.sqlstate, "23514");
	CHECK_CONTAINS(err.message, "no partition");
}

static void
test_retention(void)
{
	struct upmon_db_error err;

	REQUIRE(qp("CREATE TABLE check_results_p20000101 PARTITION OF check_results "
	    "FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2000-01-02 00:00:00+00')", 0, NULL,
	    NULL, &err) == 0);
	CHECK_STR(scalar("SELECT upmon_drop_partitions(30)", 0, NULL), "1");
	CHECK_STR(scalar("SELECT to_regclass('check_results_p20000101') IS NULL", 0, NULL), "t");
	/* yesterday's partition is older than a 1-day retention? no: it ends today */
	CHECK_STR(scalar("SELECT upmon_drop_partitions(1)", 0, NULL), "0");
	CHECK_STR(scalar("SELECT count(*) FROM check_results", 0, NULL), "2");
	CHECK_STR(scalar("SELECT upmon_drop_partitions(0)", 0, NULL),
	    "(error: retention_days must be at least 1, got 0)");
}

static void
test_rollups(void)
{
	struct upmon_db_error err;
	const char *p[2] = { MON, OWNER };

	REQUIRE(qp("SELECT upmon_rollup_add($1, $2, '2024-01-01 10:17:00+00', v % 10 <> 0, v, "
	    "0, false) FROM generate_series(1, 1000) AS v", 2, p, NULL, &err) == 0);
	REQUIRE(qp("SELECT upmon_rollup_add($1, $2, '2024-01-01 10:59:59+00', false, NULL, 60, "
	    "true)", 2, p, NULL, &err) == 0);
	CHECK_STR(scalar("SELECT format('%s %s %s %s %s %s', checks, failures, maintenance_checks,"
	    " latency_count, latency_max_ms, downtime_seconds) FROM check_rollups_hourly "
	    "WHERE monitor_id = $1", 1, p), "1000 100 1 1000 1000 60");
	CHECK_STR(scalar("SELECT hour FROM check_rollups_hourly WHERE monitor_id = $1", 1, p),
	    "2024-01-01 10:00:00+00");
	/* 1..1000 ms uniform: p50 ~ 500, p99 ~ 990, within a bucket */
	CHECK_STR(scalar("SELECT format('%s %s', round(upmon_hist_quantile(latency_hist, 0.5)), "
	    "round(upmon_hist_quantile(latency_hist, 0.99))) FROM check_rollups_hourly", 0, NULL),
	    "500 990");
	CHECK_STR(scalar("SELECT round(upmon_hist_quantile(upmon_hist_sum(latency_hist), 0.95)) "
	    "FROM check_rollups_hourly WHERE owner_id = $2 AND monitor_id = $1", 2, p), "950");
	CHECK_STR(scalar("SELECT upmon_hist_quantile(upmon_hist_one(NULL), 0.5) IS NULL", 0,
	    NULL), "t");
}

static void
test_maintenance(void)
{
	struct upmon_db_error err;
	const char *p[2] = { MON, OWNER };

	/* Mondays 23:00-01:00 Berlin time (22:00-00:00 UTC in winter) */
	REQUIRE(qp("INSERT INTO maintenance_windows (owner_id, monitor_id, kind, weekdays, "
	    "start_time, duration_minutes, time_zone) VALUES ($2, $1, 'weekly', '{1}', '23:00', "
	    "120, 'Europe/Berlin')", 2, p, NULL, &err) == 0);
	CHECK_STR(scalar("SELECT string_agg(upmon_in_maintenance($1, $2, t)::text, ',' ORDER BY t)"
	    " FROM unnest('{2024-01-01 21:59Z,2024-01-01 22:00Z,2024-01-01 23:59Z,"
	    "2024-01-02 00:00Z,2024-01-08 22:30Z}'::timestamptz[]) AS t", 2, p),
	    "false,true,true,false,true");
	/* another tenant's monitor is not covered */
	CHECK_STR(scalar("SELECT upmon_in_maintenance($1, "
	    "'00000000-0000-4000-8000-000000000002', '2024-01-01 22:30Z')", 1, p), "f");
	CHECK_EQ(qp("INSERT INTO maintenance_windows (owner_id, kind, starts_at, ends_at) "
	    "VALUES ($1, 'once', now(), now() - interval '1 hour')", 1, p + 1, NULL, &err),
	    UPMON_DB_E_CONSTRAINT);
}

static void
test_alerts(void)
{
	static const char ins[] = "INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key) "
	    "VALUES ($2, $1, 'down', 'down:m:1') ON CONFLICT (dedup_key) DO NOTHING";
	struct upmon_db_error err;
	PGresult *res = NULL;
	const char *p[2] = { MON, OWNER };

	REQUIRE(qp(ins, 2, p, &res, &err) == 0);
	CHECK_STR(PQcmdTuples(res), "1");
	PQclear(res);
	REQUIRE(qp(ins, 2, p, &res, &err) == 0);
	CHECK_STR(PQcmdTuples(res), "0");
	PQclear(res);
	REQUIRE(qp("INSERT INTO outbox (exchange, routing_key, message_id, payload) VALUES "
	    "('upmon.events', 'alert.down', 'm-1', '{}')", 0, NULL, NULL, &err) == 0);
	CHECK_EQ(qp("INSERT INTO outbox (exchange, routing_key, message_id, payload) VALUES "
	    "('upmon.events', 'alert.down', 'm-1', '{}')", 0, NULL, NULL, &err),
	    UPMON_DB_E_CONFLICT);
	/* deleting the monitor keeps its alert history with the owner */
	REQUIRE(qp("DELETE FROM monitors WHERE id = $1", 1, p, NULL, &err) == 0);
	CHECK_STR(scalar("SELECT count(*) FILTER (WHERE monitor_id IS NULL) || '/' || count(*) "
	    "FROM alerts WHERE owner_id = $1", 1, p + 1), "1/1");
	CHECK_STR(scalar("SELECT count(*) FROM check_results", 0, NULL), "0");
}

int
main(void)
{
	test_env("UPMON_BIN_DIR");
	RUN(test_migrate);
	RUN(test_partitions);
	RUN(test_tenants);
	RUN(test_notify);
	RUN(test_results);
	RUN(test_retention);
	RUN(test_rollups);
	RUN(test_maintenance);
	RUN(test_alerts);
	upmon_db_free(db);
	return test_finish();
}
