/*
 * SQL helpers of the tests that drive the probe's store directly (test_probe_store.c,
 * test_probe_tls_reminder.c): one upmon_db connection, `db`, opened by the test, and
 * parameterised queries whose failure ends the test. Header-only (static) so each test stays
 * one file.
 */
#ifndef TEST_STORE_SUPPORT_H
#define TEST_STORE_SUPPORT_H

#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "test.h"
#include "upmon/db.h"

static struct upmon_db *db;

/* Runs sql with params; returns the first value of the first row in buf ("" if none). */
static inline void
q(char *buf, size_t size, const char *sql, int n, const char *const *p)
{
	struct upmon_db_error err;
	PGresult *res = NULL;
	int rc = upmon_db_query(db, 0, sql, n, p, &res, &err);

	if (rc != 0)
		fprintf(stderr, "query failed: %s: %s\n", err.message, sql);
	REQUIRE(rc == 0);
	if (buf != NULL)
		snprintf(buf, size, "%s", PQntuples(res) > 0 && upmon_db_value(res, 0, 0) != NULL ?
		    upmon_db_value(res, 0, 0) : "");
	PQclear(res);
}

/* The first value of sql (with $1 = id, or no parameter when id is NULL) as a number. */
static inline long long
qnum(const char *sql, const char *id)
{
	char buf[64];
	const char *p[1] = { id };

	q(buf, sizeof(buf), sql, id != NULL ? 1 : 0, p);
	return strtoll(buf, NULL, 10);
}

/* The first value of sql with $1 = id, as a string into buf. */
static inline void
qstr(char *buf, size_t size, const char *sql, const char *id)
{
	const char *p[1] = { id };

	q(buf, size, sql, 1, p);
}

/* Runs sql with $1 = id, no result wanted. */
static inline void
exec1(const char *sql, const char *id)
{
	const char *p[1] = { id };

	q(NULL, 0, sql, 1, p);
}

#endif /* TEST_STORE_SUPPORT_H */
