/*
 * db module logic that needs no server: SQLSTATE classification, error helpers, backoff
 * bounds, configuration validation.
 */
#include "test.h"
#include "upmon/db.h"

static void
test_classify(void)
{
	CHECK_EQ(upmon_db_classify_sqlstate("08006"), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate("08001"), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate("57P01"), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate("57P03"), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate("53300"), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate("25006"), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate(NULL), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate(""), UPMON_DB_E_CONN);
	CHECK_EQ(upmon_db_classify_sqlstate("40001"), UPMON_DB_E_RETRY);
	CHECK_EQ(upmon_db_classify_sqlstate("40P01"), UPMON_DB_E_RETRY);
	CHECK_EQ(upmon_db_classify_sqlstate("53200"), UPMON_DB_E_RETRY);
	CHECK_EQ(upmon_db_classify_sqlstate("57014"), UPMON_DB_E_TIMEOUT);
	CHECK_EQ(upmon_db_classify_sqlstate("55P03"), UPMON_DB_E_TIMEOUT);
	CHECK_EQ(upmon_db_classify_sqlstate("23505"), UPMON_DB_E_CONFLICT);
	CHECK_EQ(upmon_db_classify_sqlstate("23P01"), UPMON_DB_E_CONFLICT);
	CHECK_EQ(upmon_db_classify_sqlstate("23503"), UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(upmon_db_classify_sqlstate("23514"), UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(upmon_db_classify_sqlstate("40002"), UPMON_DB_E_CONSTRAINT);
	CHECK_EQ(upmon_db_classify_sqlstate("42601"), UPMON_DB_E_QUERY);
	CHECK_EQ(upmon_db_classify_sqlstate("22P02"), UPMON_DB_E_QUERY);
	CHECK_EQ(upmon_db_classify_sqlstate("57P04"), UPMON_DB_E_QUERY);
	CHECK_EQ(upmon_db_classify_sqlstate("0800"), UPMON_DB_E_CONN);
}

static void
test_transient_and_names(void)
{
	CHECK(upmon_db_error_transient(UPMON_DB_E_CONN));
	CHECK(upmon_db_error_transient(UPMON_DB_E_RETRY));
	CHECK(!upmon_db_error_transient(UPMON_DB_E_TIMEOUT));
	CHECK(!upmon_db_error_transient(UPMON_DB_E_CONFLICT));
	CHECK(!upmon_db_error_transient(UPMON_DB_E_QUERY));
	CHECK_STR(upmon_db_strerror(UPMON_DB_E_CONN), "conn");
	CHECK_STR(upmon_db_strerror(UPMON_DB_E_CONFLICT), "conflict");
	CHECK_STR(upmon_db_strerror(12345), "unknown");
}


static void
test_config(void)
{
	struct upmon_db_config cfg;
	struct upmon_db *db = NULL;

	upmon_db_config_init(&cfg);
	CHECK(cfg.url == NULL);
	CHECK_EQ(cfg.connect_timeout_s, 5);
	CHECK_EQ(cfg.statement_timeout_ms, 30000);
	CHECK_EQ(upmon_db_new(&cfg, &db), UPMON_DB_E_INVALID);
	CHECK(db == NULL);
	cfg.url = "postgresql://nobody@127.0.0.1:1/none";
	cfg.keepalives_count = 0;
	CHECK_EQ(upmon_db_new(&cfg, &db), UPMON_DB_E_INVALID);
	cfg.keepalives_count = 3;
	cfg.reconnect_max_ms = 10;	/* below the minimum backoff */
	CHECK_EQ(upmon_db_new(&cfg, &db), UPMON_DB_E_INVALID);
	cfg.reconnect_max_ms = 5000;
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	CHECK(!upmon_db_connected(db));
	CHECK_EQ(upmon_db_socket(db), -1);
	CHECK_EQ((long long)upmon_db_generation(db), 0);
	CHECK(!upmon_db_in_transaction(db));
	CHECK_EQ(upmon_db_prepare(db, "s1", "SELECT $1", 1), 0);
	CHECK_EQ(upmon_db_prepare(db, "s1", "SELECT $1", 1), 0);
	CHECK_EQ(upmon_db_prepare(db, "s1", "SELECT 2", 0), UPMON_DB_E_INVALID);
	CHECK_EQ(upmon_db_prepare(db, "", "SELECT 1", 0), UPMON_DB_E_INVALID);
	/* rollback outside a transaction is a no-op; commit is misuse */
	CHECK_EQ(upmon_db_rollback(db, NULL), 0);
	CHECK_EQ(upmon_db_commit(db, NULL), UPMON_DB_E_INVALID);
	upmon_db_free(db);
	upmon_db_free(NULL);
}

int
main(void)
{
	RUN(test_classify);
	RUN(test_transient_and_names);
	RUN(test_config);
	return test_finish();
}
