/*
 * db across real PostgreSQL restarts ($UPMON_CTL restart|stop|start postgres): calls during
 * the outage fail fast with UPMON_DB_E_CONN (never hang, never another code), the handle
 * reconnects by itself within a bound afterwards, prepared statements work again, and a
 * transaction cut by the restart is reported, not silently replayed.
 */
#include "test.h"
#include "upmon/backoff.h"
#include "upmon/db.h"

#include <time.h>

/* How long after the server is back the handle must be working again. */
#define RECOVERY_BOUND_MS 15000

static const char *pg_url;



static struct upmon_db *
open_db(void)
{
	struct upmon_db_config cfg;
	struct upmon_db *db = NULL;

	upmon_db_config_init(&cfg);
	cfg.url = pg_url;
	cfg.application_name = "test_db_restart";
	cfg.connect_timeout_s = 2;
	cfg.reconnect_max_ms = 1000;
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	return db;
}

static void
ctl(const char *action)
{
	REQUIRE(test_sh("\"$UPMON_CTL\" %s postgres", action) == 0);
}

/*
 * Calls the prepared statement until it succeeds or the bound passes; every failure must be
 * a connection failure and every call must return quickly. Returns the time it took.
 */
static int64_t
until_ok(struct upmon_db *db, unsigned flags)
{
	struct upmon_db_error err;
	const char *params[1] = { "1" };
	int64_t t0 = upmon_mono_ms(), t, slowest = 0;
	int rc, fails = 0;

	for (;;) {
		t = upmon_mono_ms();
		rc = upmon_db_query_prepared(db, flags, "plus1", 1, params, NULL, &err);
		t = upmon_mono_ms() - t;
		if (t > slowest)
			slowest = t;
		if (rc == 0)
			break;
		if (rc != UPMON_DB_E_CONN)
			test_fail(__FILE__, __LINE__, "unexpected code %d (%s)", rc, err.message);
		fails++;
		if (upmon_mono_ms() - t0 > RECOVERY_BOUND_MS)
			break;
		upmon_sleep_ms(50);
	}
	fprintf(stderr, "recovered after %lld ms, %d failed calls, slowest call %lld ms\n",
	    (long long)(upmon_mono_ms() - t0), fails, (long long)slowest);
	CHECK_EQ(rc, 0);
	/* one connect attempt (connect_timeout 2 s) at most per call */
	CHECK_INT(slowest, <, 3000);
	return upmon_mono_ms() - t0;
}

static void
test_restart(void)
{
	struct upmon_db *db = open_db();
	struct upmon_db_error err;
	const char *params[1] = { "41" };
	PGresult *res = NULL;
	uint64_t gen;

	REQUIRE(upmon_db_prepare(db, "plus1", "SELECT $1::int + 1", 1) == 0);
	REQUIRE(upmon_db_query_prepared(db, 0, "plus1", 1, params, NULL, &err) == 0);
	gen = upmon_db_generation(db);
	ctl("restart");
	CHECK_INT(until_ok(db, UPMON_DB_IDEMPOTENT), <, RECOVERY_BOUND_MS);
	CHECK_INT(upmon_db_generation(db), >, gen);
	/* the statement was prepared again on the new connection */
	REQUIRE(upmon_db_query_prepared(db, 0, "plus1", 1, params, &res, &err) == 0);
	CHECK_STR(upmon_db_value(res, 0, 0), "42");
	PQclear(res);

	/* and without the idempotent flag: fails at most while the server is away */
	gen = upmon_db_generation(db);
	ctl("restart");
	CHECK_INT(until_ok(db, 0), <, RECOVERY_BOUND_MS);
	CHECK_INT(upmon_db_generation(db), >, gen);
	upmon_db_free(db);
}

static void
test_restart_in_transaction(void)
{
	struct upmon_db *db = open_db();
	struct upmon_db_error err;
	PGresult *res = NULL;
	int rc;

	REQUIRE(upmon_db_prepare(db, "plus1", "SELECT $1::int + 1", 1) == 0);
	REQUIRE(upmon_db_query(db, 0, "CREATE TABLE restart_t (id int)", 0, NULL, NULL,
	    &err) == 0);
	REQUIRE(upmon_db_begin(db, &err) == 0);
	REQUIRE(upmon_db_query(db, 0, "INSERT INTO restart_t VALUES (1)", 0, NULL, NULL,
	    &err) == 0);
	ctl("restart");
	rc = upmon_db_query(db, UPMON_DB_IDEMPOTENT, "INSERT INTO restart_t VALUES (2)", 0,
	    NULL, NULL, &err);
	CHECK_EQ(rc, UPMON_DB_E_CONN);
	CHECK(upmon_db_in_transaction(db));
	CHECK_EQ(upmon_db_commit(db, &err), UPMON_DB_E_CONN);
	CHECK(!upmon_db_in_transaction(db));
	until_ok(db, UPMON_DB_IDEMPOTENT);
	REQUIRE(upmon_db_query(db, 0, "SELECT count(*) FROM restart_t", 0, NULL, &res,
	    &err) == 0);
	CHECK_STR(upmon_db_value(res, 0, 0), "0");
	PQclear(res);
	upmon_db_free(db);
}

static void
test_stop_start(void)
{
	struct upmon_db *db = open_db();
	struct upmon_db_error err;
	const char *params[1] = { "1" };
	int64_t t0, t;
	int i, fails = 0;

	REQUIRE(upmon_db_prepare(db, "plus1", "SELECT $1::int + 1", 1) == 0);
	REQUIRE(upmon_db_query_prepared(db, 0, "plus1", 1, params, NULL, &err) == 0);
	ctl("stop");
	/* a stopped server costs callers almost nothing */
	t0 = upmon_mono_ms();
	for (i = 0; i < 100; i++) {
		t = upmon_mono_ms();
		fails += upmon_db_query_prepared(db, UPMON_DB_IDEMPOTENT, "plus1", 1, params, NULL,
		    &err) == UPMON_DB_E_CONN;
		CHECK_INT(upmon_mono_ms() - t, <, 3000);
	}
	CHECK_EQ(fails, 100);
	CHECK_INT(upmon_mono_ms() - t0, <, 2000);
	ctl("start");
	CHECK_INT(until_ok(db, 0), <, RECOVERY_BOUND_MS);
	upmon_db_free(db);
}

int
main(void)
{
	pg_url = test_env("UPMON_PG_URL");
	test_env("UPMON_CTL");
	RUN(test_restart);
	RUN(test_restart_in_transaction);
	RUN(test_stop_start);
	return test_finish();
}
