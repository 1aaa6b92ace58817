/*
 * db against a real PostgreSQL: parameterised queries and NULLs, prepared statements, the
 * error classification of real server errors, statement_timeout, transaction rules, losing
 * the connection (terminated backend) with and without a transaction, LISTEN/NOTIFY across a
 * reconnect, and the fast failure plus backoff against a server that is not there.
 */
#include "test.h"
#include "upmon/backoff.h"
#include "upmon/db.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

static const char *pg_url;


static struct upmon_db *
open_db(int statement_timeout_ms)
{
	struct upmon_db_config cfg;
	struct upmon_db *db = NULL;

	upmon_db_config_init(&cfg);
	cfg.url = pg_url;
	cfg.application_name = "test_db_basic";
	cfg.statement_timeout_ms = statement_timeout_ms;
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	return db;
}

/* Runs sql and returns the code; the error goes to *err. */
static int
q(struct upmon_db *db, const char *sql, struct upmon_db_error *err)
{
	return upmon_db_query(db, 0, sql, 0, NULL, NULL, err);
}

static void
test_queries(void)
{
	struct upmon_db *db = open_db(5000);
	struct upmon_db_error err;
	const char *params[3] = { "41", NULL, "it's \"quoted\"; DROP TABLE x; --" };
	PGresult *res = NULL;
	int64_t v = 0;

	REQUIRE(upmon_db_connect(db, &err) == 0);
	CHECK(upmon_db_connected(db));
	CHECK(upmon_db_socket(db) >= 0);
	CHECK_EQ((long long)upmon_db_generation(db), 1);
	REQUIRE(upmon_db_query(db, 0, "SELECT $1::int + 1, $2::text IS NULL, $3::text, "
	    "current_setting('application_name'), current_setting('statement_timeout')", 3,
	    params, &res, &err) == 0);
	REQUIRE(res != NULL);
	CHECK_EQ(upmon_db_int64(res, 0, 0, &v), 0);
	CHECK_EQ(v, 42);
	CHECK_STR(upmon_db_value(res, 0, 1), "t");
	CHECK_STR(upmon_db_value(res, 0, 2), params[2]);
	CHECK_STR(upmon_db_value(res, 0, 3), "test_db_basic");
	CHECK_STR(upmon_db_value(res, 0, 4), "5s");
	CHECK(upmon_db_value(res, 1, 0) == NULL);
	CHECK(upmon_db_value(res, 0, 9) == NULL);
	CHECK_EQ(upmon_db_int64(res, 0, 2, &v), -1);
	PQclear(res);

	/* prepared statements */
	CHECK_EQ(upmon_db_prepare(db, "add", "SELECT $1::int + $2::int", 2), 0);
	params[0] = "2";
	params[1] = "3";
	REQUIRE(upmon_db_query_prepared(db, 0, "add", 2, params, &res, &err) == 0);
	CHECK_STR(upmon_db_value(res, 0, 0), "5");
	PQclear(res);
	CHECK_EQ(upmon_db_query_prepared(db, 0, "nope", 0, NULL, &res, &err),
	    UPMON_DB_E_INVALID);
	CHECK(res == NULL);
	/* keepalives are on the client socket */
	{
		int on = 0, idle = 0;
		socklen_t len = sizeof(on);

		CHECK_EQ(getsockopt(upmon_db_socket(db), SOL_SOCKET, SO_KEEPALIVE, &on, &len), 0);
		CHECK(on != 0);
		len = sizeof(idle);
		CHECK_EQ(getsockopt(upmon_db_socket(db), IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len), 0);
		CHECK_EQ(idle, 30);
	}
	upmon_db_free(db);
}

static void
test_errors(void)
{
	struct upmon_db *db = open_db(5000);
	struct upmon_db_error err;
	PGresult *res = (PGresult *)&err;	/* must come back NULL */

	CHECK_EQ(upmon_db_query(db, 0, "SELEC 1", 0, NULL, &res, &err), UPMON_DB_E_QUERY);
	CHECK(res == NULL);
	CHECK_STR(err.sqlstate, "42601");
	CHECK_CONTAINS(err.message, "syntax error");
	CHECK(strchr(err.message, '\n') == NULL);
	REQUIRE(q(db, "CREATE TEMP TABLE t (id int PRIMARY KEY, n int CHECK (n > 0))", &err) == 0);
	REQUIRE(q(db, "INSERT INTO t VALUES (1, 1)", &err) == 0);
	CHECK_EQ(q(db, "INSERT INTO t VALUES (1, 1)", &err), UPMON_DB_E_CONFLICT);
	CHECK_STR(err.sqlstate, "23505");
	CHECK_EQ(q(db, "INSERT INTO t VALUES (2, 0)", &err), UPMON_DB_E_CONSTRAINT);
	CHECK_STR(err.sqlstate, "23514");
	CHECK_EQ(q(db, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$", &err),
	    UPMON_DB_E_RETRY);
	CHECK_STR(err.sqlstate, "40001");
	CHECK_EQ(q(db, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$", &err),
	    UPMON_DB_E_RETRY);
	CHECK(upmon_db_error_transient(err.code));
	CHECK_EQ(q(db, "SELECT 1/0", &err), UPMON_DB_E_QUERY);
	CHECK_STR(err.sqlstate, "22012");
	CHECK(!upmon_db_error_transient(err.code));
	/* none of that cost the connection */
	CHECK_EQ((long long)upmon_db_generation(db), 1);
	upmon_db_free(db);
}

static void
test_statement_timeout(void)
{
	struct upmon_db *db = open_db(300);
	struct upmon_db_error err;
	int64_t t0;

	REQUIRE(upmon_db_connect(db, &err) == 0);
	t0 = upmon_mono_ms();
	CHECK_EQ(q(db, "SELECT pg_sleep(5)", &err), UPMON_DB_E_TIMEOUT);
	CHECK_INT(upmon_mono_ms() - t0, <, 2000);
	CHECK_STR(err.sqlstate, "57014");
	CHECK_CONTAINS(err.message, "statement timeout");
	/* the session is still good */
	CHECK_EQ(q(db, "SELECT 1", &err), 0);
	CHECK_EQ((long long)upmon_db_generation(db), 1);
	upmon_db_free(db);
}

static int64_t
count_rows(struct upmon_db *db, const char *table)
{
	char sql[128];
	struct upmon_db_error err;
	PGresult *res = NULL;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (upmon_db_query(db, 0, sql, 0, NULL, &res, &err) == 0)
		upmon_db_int64(res, 0, 0, &n);
	PQclear(res);
	return n;
}

static void
test_transactions(void)
{
	struct upmon_db *db = open_db(5000);
	struct upmon_db_error err;

	REQUIRE(q(db, "CREATE TABLE tx_t (id int PRIMARY KEY)", &err) == 0);
	/* commit */
	REQUIRE(upmon_db_begin(db, &err) == 0);
	CHECK(upmon_db_in_transaction(db));
	CHECK_EQ(upmon_db_begin(db, &err), UPMON_DB_E_INVALID);
	CHECK_EQ(q(db, "INSERT INTO tx_t VALUES (1)", &err), 0);
	CHECK_EQ(upmon_db_commit(db, &err), 0);
	CHECK(!upmon_db_in_transaction(db));
	CHECK_EQ(count_rows(db, "tx_t"), 1);
	/* rollback */
	REQUIRE(upmon_db_begin(db, &err) == 0);
	CHECK_EQ(q(db, "INSERT INTO tx_t VALUES (2)", &err), 0);
	CHECK_EQ(upmon_db_rollback(db, &err), 0);
	CHECK_EQ(count_rows(db, "tx_t"), 1);
	/* an error aborts the transaction: commit reports it instead of claiming success */
	REQUIRE(upmon_db_begin(db, &err) == 0);
	CHECK_EQ(q(db, "INSERT INTO tx_t VALUES (3)", &err), 0);
	CHECK_EQ(q(db, "INSERT INTO tx_t VALUES (1)", &err), UPMON_DB_E_CONFLICT);
	CHECK_EQ(q(db, "INSERT INTO tx_t VALUES (4)", &err), UPMON_DB_E_QUERY);
	CHECK_STR(err.sqlstate, "25P02");
	CHECK_EQ(upmon_db_commit(db, &err), UPMON_DB_E_QUERY);
	CHECK_CONTAINS(err.message, "rolled back");
	CHECK(!upmon_db_in_transaction(db));
	CHECK_EQ(count_rows(db, "tx_t"), 1);
	CHECK_EQ(upmon_db_commit(db, &err), UPMON_DB_E_INVALID);
	CHECK_EQ(upmon_db_rollback(db, &err), 0);
	upmon_db_free(db);
}

/* Terminates the backend of db from a second session. */
static void
kill_backend(struct upmon_db *db)
{
	struct upmon_db *admin = open_db(5000);
	struct upmon_db_error err;
	char pid[16];
	const char *params[1] = { pid };

	snprintf(pid, sizeof(pid), "%d", PQbackendPID(upmon_db_pgconn(db)));
	CHECK_EQ(upmon_db_query(admin, 0, "SELECT pg_terminate_backend($1::int, 5000)", 1,
	    params, NULL, &err), 0);
	upmon_db_free(admin);
}

static void
test_lost_connection(void)
{
	struct upmon_db *db = open_db(5000);
	struct upmon_db_error err;
	PGresult *res = NULL;
	const char *params[2] = { "20", "22" };
	int rc;

	REQUIRE(upmon_db_prepare(db, "sum", "SELECT $1::int + $2::int", 2) == 0);
	REQUIRE(upmon_db_query_prepared(db, 0, "sum", 2, params, NULL, &err) == 0);
	CHECK_EQ((long long)upmon_db_generation(db), 1);

	/* own backend terminated mid-statement: classified as a connection error */
	CHECK_EQ(q(db, "SELECT pg_terminate_backend(pg_backend_pid())", &err), UPMON_DB_E_CONN);
	CHECK(!upmon_db_connected(db));
	/* the next call reconnects; the prepared statement is prepared again */
	REQUIRE(upmon_db_query_prepared(db, 0, "sum", 2, params, &res, &err) == 0);
	CHECK_STR(upmon_db_value(res, 0, 0), "42");
	PQclear(res);
	CHECK_EQ((long long)upmon_db_generation(db), 2);

	/* killed from outside while idle: the next call notices before sending, reconnects */
	kill_backend(db);
	CHECK_EQ(q(db, "SELECT 1", &err), 0);
	CHECK_EQ((long long)upmon_db_generation(db), 3);

	/* an idempotent query survives a connection dropped under it */
	kill_backend(db);
	CHECK_EQ(upmon_db_query(db, UPMON_DB_IDEMPOTENT, "SELECT 1", 0, NULL, NULL, &err), 0);
	CHECK_EQ((long long)upmon_db_generation(db), 4);

	/* inside a transaction nothing reconnects behind the caller's back */
	REQUIRE(q(db, "CREATE TABLE lost_t (id int)", &err) == 0);
	REQUIRE(upmon_db_begin(db, &err) == 0);
	CHECK_EQ(q(db, "INSERT INTO lost_t VALUES (1)", &err), 0);
	kill_backend(db);
	rc = q(db, "INSERT INTO lost_t VALUES (2)", &err);
	CHECK_EQ(rc, UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_query(db, UPMON_DB_IDEMPOTENT, "INSERT INTO lost_t VALUES (3)", 0,
	    NULL, NULL, &err), UPMON_DB_E_CONN);
	CHECK_CONTAINS(err.message, "inside a transaction");
	CHECK_EQ((long long)upmon_db_generation(db), 4);
	CHECK(upmon_db_in_transaction(db));
	CHECK_EQ(upmon_db_rollback(db, &err), 0);
	CHECK(!upmon_db_in_transaction(db));
	/* after the rollback the handle reconnects; nothing of the transaction exists */
	CHECK_EQ(count_rows(db, "lost_t"), 0);
	CHECK_EQ((long long)upmon_db_generation(db), 5);

	/* commit after a lost connection says nothing was committed */
	REQUIRE(upmon_db_begin(db, &err) == 0);
	CHECK_EQ(q(db, "INSERT INTO lost_t VALUES (4)", &err), 0);
	kill_backend(db);
	CHECK_EQ(q(db, "INSERT INTO lost_t VALUES (5)", &err), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_commit(db, &err), UPMON_DB_E_CONN);
	CHECK_CONTAINS(err.message, "nothing was committed");
	CHECK_EQ(count_rows(db, "lost_t"), 0);
	upmon_db_free(db);
}

struct notes {
	int n;
	char payload[128];
};

static void
on_note(void *arg, const char *channel, const char *payload, int pid)
{
	struct notes *s = arg;

	(void)pid;
	if (strcmp(channel, "upmon_test") == 0) {
		s->n++;
		snprintf(s->payload, sizeof(s->payload), "%s", payload);
	}
}

/* Waits up to 5 s for notifications on db. */
static void
wait_notes(struct upmon_db *db, struct notes *s, int want)
{
	struct upmon_db_error err;
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	int i, count;

	for (i = 0; i < 250 && s->n < want; i++) {
		CHECK_EQ(upmon_db_notifications(db, on_note, s, &count, &err), 0);
		if (s->n < want)
			nanosleep(&pause, NULL);
	}
}

static void
test_listen(void)
{
	struct upmon_db *db = open_db(5000), *other = open_db(5000);
	struct upmon_db_error err;
	struct notes s = { 0, "" };

	REQUIRE(upmon_db_listen(db, "upmon_test", &err) == 0);
	REQUIRE(q(other, "NOTIFY upmon_test, 'one'", &err) == 0);
	wait_notes(db, &s, 1);
	CHECK_EQ(s.n, 1);
	CHECK_STR(s.payload, "one");

	/* after a reconnect the handle listens again by itself */
	kill_backend(db);
	CHECK_EQ(q(db, "SELECT 1", &err), 0);
	CHECK_EQ((long long)upmon_db_generation(db), 2);
	REQUIRE(q(other, "NOTIFY upmon_test, 'two'", &err) == 0);
	wait_notes(db, &s, 2);
	CHECK_EQ(s.n, 2);
	CHECK_STR(s.payload, "two");

	/* a dead connection is reported by the reader, which then reconnects on demand */
	kill_backend(db);
	{
		struct timespec pause = { 0, 100 * 1000 * 1000 };
		int rc, i;

		nanosleep(&pause, NULL);
		rc = upmon_db_notifications(db, on_note, &s, NULL, &err);
		CHECK_EQ(rc, UPMON_DB_E_CONN);
		for (i = 0; i < 50 && upmon_db_notifications(db, on_note, &s, NULL, &err); i++)
			nanosleep(&pause, NULL);
		CHECK(upmon_db_connected(db));
		CHECK_EQ((long long)upmon_db_generation(db), 3);
	}
	REQUIRE(q(other, "NOTIFY upmon_test, 'three'", &err) == 0);
	wait_notes(db, &s, 3);
	CHECK_STR(s.payload, "three");
	upmon_db_free(other);
	upmon_db_free(db);
}

static void
test_unreachable(void)
{
	struct upmon_db_config cfg;
	struct upmon_db *db = NULL;
	struct upmon_db_error err;
	int64_t t0;
	int i;

	upmon_db_config_init(&cfg);
	cfg.url = "postgresql://nobody@127.0.0.1:1/none";
	cfg.reconnect_min_ms = 1000;
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	t0 = upmon_mono_ms();
	CHECK_EQ(q(db, "SELECT 1", &err), UPMON_DB_E_CONN);
	CHECK_CONTAINS(err.message, "127.0.0.1");
	/* while the backoff runs, calls fail at once without connecting */
	for (i = 0; i < 100; i++)
		CHECK_EQ(q(db, "SELECT 1", &err), UPMON_DB_E_CONN);
	CHECK_CONTAINS(err.message, "next connect attempt");
	CHECK_EQ(upmon_db_begin(db, &err), UPMON_DB_E_CONN);
	CHECK(!upmon_db_in_transaction(db));
	CHECK_INT(upmon_mono_ms() - t0, <, 500);
	upmon_db_free(db);
}

int
main(void)
{
	pg_url = test_env("UPMON_PG_URL");
	RUN(test_queries);
	RUN(test_errors);
	RUN(test_statement_timeout);
	RUN(test_transactions);
	RUN(test_lost_connection);
	RUN(test_listen);
	RUN(test_unreachable);
	return test_finish();
}
