/*
 * PostgreSQL handle: connect with timeouts and keepalives, reconnect with backoff, run
 * parameterised queries, transactions, prepared statements re-prepared per connection, LISTEN.
 * The contract is in upmon/db.h.
 */
#include "upmon/db.h"
#include "upmon/backoff.h"
#include "upmon/log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DB_MAX_STMT_NAME 63
#define DB_MAX_CHANNEL 63

struct db_stmt {
	char *name;
	char *sql;
	int nparams;
	uint64_t prepared_gen;	/* connection generation it was prepared on; 0 = never */
};

struct upmon_db {
	char *url;
	char *appname;
	int connect_timeout_s;
	int statement_timeout_ms;
	int lock_timeout_ms;
	int ka_idle_s;
	int ka_interval_s;
	int ka_count;
	int tcp_user_timeout_ms;
	int reconnect_min_ms;
	int reconnect_max_ms;

	PGconn *conn;
	uint64_t generation;
	int in_tx;
	int tx_broken;		/* the connection died inside the current transaction */
	unsigned failures;	/* consecutive failed connect attempts */
	int64_t next_connect_ms;	/* monotonic; no attempt before this unless forced */
	uint32_t rng;

	struct db_stmt *stmts;
	size_t nstmts;
	char **channels;
	size_t nchannels;
};

enum db_kind { DB_PARAMS, DB_PREPARED, DB_SCRIPT };



/* Copies msg into err->message as one line: newlines and tabs become spaces, trimmed. */
static void db_set_error(struct upmon_db_error *err, int code, const char *sqlstate,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
db_set_error(struct upmon_db_error *err, int code, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	size_t i, j;
	char *m;

	if (err == NULL)
		return;
	err->code = code;
	err->sqlstate[0] = '\0';
	if (sqlstate != NULL && strlen(sqlstate) == 5)
		memcpy(err->sqlstate, sqlstate, 6);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	m = err->message;
	for (i = 0, j = 0; m[i] != '\0'; i++) {
		char c = m[i] == '\n' || m[i] == '\t' || m[i] == '\r' ? ' ' : m[i];

		if (c == ' ' && (j == 0 || m[j - 1] == ' '))
			continue;
		m[j++] = c;
	}
	while (j > 0 && m[j - 1] == ' ')
		j--;
	m[j] = '\0';
}


int
upmon_db_classify_sqlstate(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return UPMON_DB_E_CONN;
	if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
	    strcmp(s, "57P03") == 0 || strcmp(s, "57P05") == 0 || strcmp(s, "53300") == 0 ||
	    strcmp(s, "25P03") == 0 || strcmp(s, "25006") == 0)
		return UPMON_DB_E_CONN;
	if (strcmp(s, "40002") == 0)
		return UPMON_DB_E_CONSTRAINT;
	if (strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0)
		return UPMON_DB_E_RETRY;
	if (strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0)
		return UPMON_DB_E_TIMEOUT;
	if (strcmp(s, "23505") == 0 || strcmp(s, "23P01") == 0)
		return UPMON_DB_E_CONFLICT;
	if (strncmp(s, "23", 2) == 0)
		return UPMON_DB_E_CONSTRAINT;
	return UPMON_DB_E_QUERY;
}

int
upmon_db_error_transient(int code)
{
	return code == UPMON_DB_E_CONN || code == UPMON_DB_E_RETRY;
}

const char *
upmon_db_strerror(int code)
{
	switch (code) {
	case UPMON_DB_OK: return "ok";
	case UPMON_DB_E_CONN: return "conn";
	case UPMON_DB_E_RETRY: return "retry";
	case UPMON_DB_E_TIMEOUT: return "timeout";
	case UPMON_DB_E_CONFLICT: return "conflict";
	case UPMON_DB_E_CONSTRAINT: return "constraint";
	case UPMON_DB_E_QUERY: return "query";
	case UPMON_DB_E_INVALID: return "invalid";
	case UPMON_DB_E_NOMEM: return "nomem";
	default: return "unknown";
	}
}

void
upmon_db_config_init(struct upmon_db_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->application_name = "upmon";
	cfg->connect_timeout_s = 5;
	cfg->statement_timeout_ms = 30000;
	cfg->lock_timeout_ms = 0;
	cfg->keepalives_idle_s = 30;
	cfg->keepalives_interval_s = 10;
	cfg->keepalives_count = 3;
	cfg->tcp_user_timeout_ms = 30000;
	cfg->reconnect_min_ms = 100;
	cfg->reconnect_max_ms = 5000;
}

static int
in_range(int v, int lo, int hi)
{
	return v >= lo && v <= hi;
}

int
upmon_db_new(const struct upmon_db_config *cfg, struct upmon_db **out)
{
	struct upmon_db *db = NULL;

	*out = NULL;
	if (cfg == NULL || cfg->url == NULL || cfg->url[0] == '\0' ||
	    !in_range(cfg->connect_timeout_s, 1, 3600) ||
	    !in_range(cfg->statement_timeout_ms, 0, INT_MAX) ||
	    !in_range(cfg->lock_timeout_ms, 0, INT_MAX) ||
	    !in_range(cfg->keepalives_idle_s, 1, 86400) ||
	    !in_range(cfg->keepalives_interval_s, 1, 3600) ||
	    !in_range(cfg->keepalives_count, 1, 100) ||
	    !in_range(cfg->tcp_user_timeout_ms, 0, INT_MAX) ||
	    !in_range(cfg->reconnect_min_ms, 1, 600000) ||
	    !in_range(cfg->reconnect_max_ms, cfg->reconnect_min_ms, 600000))
		return UPMON_DB_E_INVALID;
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return UPMON_DB_E_NOMEM;
	db->url = strdup(cfg->url);
	db->appname = strdup(cfg->application_name != NULL ? cfg->application_name : "upmon");
	if (db->url == NULL || db->appname == NULL) {
		upmon_db_free(db);
		return UPMON_DB_E_NOMEM;
	}
	db->connect_timeout_s = cfg->connect_timeout_s;
	db->statement_timeout_ms = cfg->statement_timeout_ms;
	db->lock_timeout_ms = cfg->lock_timeout_ms;
	db->ka_idle_s = cfg->keepalives_idle_s;
	db->ka_interval_s = cfg->keepalives_interval_s;
	db->ka_count = cfg->keepalives_count;
	db->tcp_user_timeout_ms = cfg->tcp_user_timeout_ms;
	db->reconnect_min_ms = cfg->reconnect_min_ms;
	db->reconnect_max_ms = cfg->reconnect_max_ms;
	db->rng = upmon_jitter_seed(db);
	*out = db;
	return 0;
}

static void
db_drop(struct upmon_db *db)
{
	if (db->conn == NULL)
		return;
	PQfinish(db->conn);
	db->conn = NULL;
	if (db->in_tx)
		db->tx_broken = 1;
}

void
upmon_db_free(struct upmon_db *db)
{
	size_t i;

	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	for (i = 0; i < db->nstmts; i++) {
		free(db->stmts[i].name);
		free(db->stmts[i].sql);
	}
	free(db->stmts);
	for (i = 0; i < db->nchannels; i++)
		free(db->channels[i]);
	free(db->channels);
	free(db->url);
	free(db->appname);
	free(db);
}

/* The connection turned out dead: fills err (one line), logs it, drops the connection. */
static int
db_lost(struct upmon_db *db, struct upmon_db_error *err)
{
	struct upmon_db_error local;

	if (err == NULL)
		err = &local;
	db_set_error(err, UPMON_DB_E_CONN, NULL, "database connection lost: %s",
	    PQerrorMessage(db->conn));
	log_warnx("%s", err->message);
	db_drop(db);
	return UPMON_DB_E_CONN;
}

/* Classifies a failed result (res may be NULL) and fills err; drops a dead connection. */
static int
db_fail(struct upmon_db *db, const PGresult *res, struct upmon_db_error *err)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int code, dead = PQstatus(db->conn) != CONNECTION_OK;

	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(db->conn);
	if (dead)
		code = UPMON_DB_E_CONN;
	else if (state == NULL || *state == '\0')
		code = res == NULL ? UPMON_DB_E_NOMEM : UPMON_DB_E_QUERY;
	else
		code = upmon_db_classify_sqlstate(state);
	db_set_error(err, code, state, "%s", msg != NULL && *msg != '\0' ? msg :
	    "unknown database error");
	if (code == UPMON_DB_E_CONN) {
		log_warnx("database connection lost: %s", err != NULL ? err->message : msg);
		db_drop(db);
	}
	return code;
}

/* Runs a parameterless internal command (SET, LISTEN, BEGIN ...) on the live connection. */
static int
db_simple(struct upmon_db *db, const char *sql, struct upmon_db_error *err)
{
	PGresult *res;
	int rc = 0;

	res = PQexec(db->conn, sql);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = db_fail(db, res, err);
	PQclear(res);
	return rc;
}

/* Session settings and LISTENs of a new connection. */
static int
db_setup_session(struct upmon_db *db, struct upmon_db_error *err)
{
	char st[16], lt[16];
	const char *params[2] = { st, lt };
	PGresult *res;
	size_t i;
	int rc = 0;

	snprintf(st, sizeof(st), "%d", db->statement_timeout_ms);
	snprintf(lt, sizeof(lt), "%d", db->lock_timeout_ms);
	res = PQexecParams(db->conn, "SELECT set_config('statement_timeout', $1, false), "
	    "set_config('lock_timeout', $2, false)", 2, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = db_fail(db, res, err);
		goto out;
	}
	for (i = 0; i < db->nchannels; i++) {
		char *id = PQescapeIdentifier(db->conn, db->channels[i], strlen(db->channels[i]));
		char sql[160];

		if (id == NULL) {
			rc = db_fail(db, NULL, err);
			goto out;
		}
		snprintf(sql, sizeof(sql), "LISTEN %s", id);
		PQfreemem(id);
		if ((rc = db_simple(db, sql, err)) != 0)
			goto out;
	}
out:
	PQclear(res);
	return rc;
}

/* Server notices (NOTICE, WARNING) go to the debug log instead of libpq's stderr print. */
static void
db_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("database notice: %.*s", (int)strcspn(message, "\n"), message);
}

/* One connect attempt; on failure arms the backoff. */
static int
db_connect_once(struct upmon_db *db, struct upmon_db_error *err)
{
	char ct[16], kai[16], kav[16], kac[16], tut[16];
	/* defaults first, the URL last: what the URL says wins (libpq keeps the last value) */
	const char *keys[] = { "connect_timeout", "keepalives", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "application_name",
	    "dbname", NULL };
	const char *vals[] = { ct, "1", kai, kav, kac, tut, db->appname, db->url, NULL };
	int rc, delay;

	snprintf(ct, sizeof(ct), "%d", db->connect_timeout_s);
	snprintf(kai, sizeof(kai), "%d", db->ka_idle_s);
	snprintf(kav, sizeof(kav), "%d", db->ka_interval_s);
	snprintf(kac, sizeof(kac), "%d", db->ka_count);
	snprintf(tut, sizeof(tut), "%d", db->tcp_user_timeout_ms);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL) {
		db_set_error(err, UPMON_DB_E_NOMEM, NULL, "out of memory");
		rc = UPMON_DB_E_NOMEM;
		goto fail;
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_set_error(err, UPMON_DB_E_CONN, NULL, "%s", PQerrorMessage(db->conn));
		PQfinish(db->conn);
		db->conn = NULL;
		rc = UPMON_DB_E_CONN;
		goto fail;
	}
	PQsetNoticeProcessor(db->conn, db_notice, NULL);
	db->generation++;
	if ((rc = db_setup_session(db, err)) != 0) {
		db_drop(db);
		goto fail;
	}
	if (db->failures > 0 || db->generation > 1)
		log_info("database connected (connection %llu)",
		    (unsigned long long)db->generation);
	db->failures = 0;
	return 0;
fail:
	delay = upmon_backoff_ms(db->reconnect_min_ms, db->reconnect_max_ms, db->failures,
	    upmon_jitter_next(&db->rng));
	db->next_connect_ms = upmon_mono_ms() + delay;
	if (db->failures == 0)
		log_warnx("database connect failed: %s",
		    err != NULL ? err->message : "unavailable");
	else
		log_debug("database connect failed, attempt %u, next in %d ms",
		    db->failures + 1, delay);
	db->failures++;
	return rc;
}

/*
 * Reads whatever the server sent unasked (notifications, or a FATAL message and the end of
 * the stream when the server closed the session) without blocking. A closed session shows up
 * as a message then EOF, which takes two reads. Returns -1 when the connection is dead.
 */
static int
db_poll_input(struct upmon_db *db)
{
	struct pollfd pfd;
	int i;

	for (i = 0; i < 4; i++) {
		pfd.fd = PQsocket(db->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0)
			return -1;
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (PQconsumeInput(db->conn) == 0 || PQstatus(db->conn) != CONNECTION_OK)
			return -1;
	}
	return PQstatus(db->conn) == CONNECTION_OK ? 0 : -1;
}

/*
 * Makes sure a live connection exists outside a transaction: notices a connection the server
 * closed (non-blocking read), reconnects unless the backoff runs. *attempted is set when a
 * connect was tried.
 */
static int
db_ensure(struct upmon_db *db, int force, int *attempted, struct upmon_db_error *err)
{
	int64_t now;

	if (db->conn != NULL && db_poll_input(db) != 0)
		db_lost(db, err);
	if (db->conn != NULL)
		return 0;
	now = upmon_mono_ms();
	if (!force && now < db->next_connect_ms) {
		db_set_error(err, UPMON_DB_E_CONN, NULL,
		    "database unavailable, next connect attempt in %lld ms",
		    (long long)(db->next_connect_ms - now));
		return UPMON_DB_E_CONN;
	}
	if (attempted != NULL)
		*attempted = 1;
	return db_connect_once(db, err);
}

int
upmon_db_connect(struct upmon_db *db, struct upmon_db_error *err)
{
	if (db->in_tx && (db->conn == NULL || db->tx_broken)) {
		db_set_error(err, UPMON_DB_E_CONN, NULL,
		    "connection lost inside a transaction: roll back and retry");
		return UPMON_DB_E_CONN;
	}
	if (db->in_tx)
		return 0;
	return db_ensure(db, 1, NULL, err);
}

static struct db_stmt *
db_find_stmt(struct upmon_db *db, const char *name)
{
	size_t i;

	for (i = 0; i < db->nstmts; i++)
		if (strcmp(db->stmts[i].name, name) == 0)
			return &db->stmts[i];
	return NULL;
}

/* Executes once on the live connection; no reconnect, no retry. */
static int
db_exec_once(struct upmon_db *db, enum db_kind kind, const char *what, int nparams,
    const char *const *params, PGresult **out, struct upmon_db_error *err)
{
	struct db_stmt *st = NULL;
	PGresult *res = NULL;
	int rc = 0;

	if (kind == DB_PREPARED) {
		st = db_find_stmt(db, what);
		if (st->prepared_gen != db->generation) {
			res = PQprepare(db->conn, st->name, st->sql, st->nparams, NULL);
			if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
				rc = db_fail(db, res, err);
				goto out;
			}
			PQclear(res);
			st->prepared_gen = db->generation;
		}
		res = PQexecPrepared(db->conn, st->name, nparams, params, NULL, NULL, 0);
	} else if (kind == DB_SCRIPT) {
		res = PQexec(db->conn, what);
	} else {
		res = PQexecParams(db->conn, what, nparams, NULL, params, NULL, NULL, 0);
	}
	if (res == NULL) {
		rc = db_fail(db, NULL, err);
		goto out;
	}
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		break;
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
	case PGRES_COPY_BOTH:
		/* leaving COPY mode needs the raw connection: drop it */
		db_set_error(err, UPMON_DB_E_INVALID, NULL, "COPY is not supported here");
		db_drop(db);
		rc = UPMON_DB_E_INVALID;
		goto out;
	default:
		rc = db_fail(db, res, err);
		goto out;
	}
	if (out != NULL) {
		*out = res;
		res = NULL;
	}
out:
	PQclear(res);
	return rc;
}

static int
db_run(struct upmon_db *db, unsigned flags, enum db_kind kind, const char *what, int nparams,
    const char *const *params, PGresult **out, struct upmon_db_error *err)
{
	int rc, attempted = 0, tries;

	if (out != NULL)
		*out = NULL;
	if (what == NULL || nparams < 0 || nparams > 65535 || (nparams > 0 && params == NULL)) {
		db_set_error(err, UPMON_DB_E_INVALID, NULL, "invalid query arguments");
		return UPMON_DB_E_INVALID;
	}
	if (kind == DB_PREPARED && db_find_stmt(db, what) == NULL) {
		db_set_error(err, UPMON_DB_E_INVALID, NULL, "unknown prepared statement %s", what);
		return UPMON_DB_E_INVALID;
	}
	if (db->in_tx) {
		if (db->tx_broken || db->conn == NULL) {
			db_set_error(err, UPMON_DB_E_CONN, NULL,
			    "connection lost inside a transaction: roll back and retry");
			return UPMON_DB_E_CONN;
		}
		return db_exec_once(db, kind, what, nparams, params, out, err);
	}
	for (tries = 0;; tries++) {
		if ((rc = db_ensure(db, tries > 0, &attempted, err)) != 0)
			return rc;
		rc = db_exec_once(db, kind, what, nparams, params, out, err);
		/* one retry, on a fresh connection, for idempotent work that lost its connection,
		 * and only when this call has not spent a connect attempt yet */
		if (rc != UPMON_DB_E_CONN || !(flags & UPMON_DB_IDEMPOTENT) || tries > 0 ||
		    attempted)
			return rc;
	}
}

int
upmon_db_query(struct upmon_db *db, unsigned flags, const char *sql, int nparams,
    const char *const *params, PGresult **res, struct upmon_db_error *err)
{
	return db_run(db, flags, DB_PARAMS, sql, nparams, params, res, err);
}

int
upmon_db_query_prepared(struct upmon_db *db, unsigned flags, const char *name, int nparams,
    const char *const *params, PGresult **res, struct upmon_db_error *err)
{
	return db_run(db, flags, DB_PREPARED, name, nparams, params, res, err);
}

int
upmon_db_exec_script(struct upmon_db *db, const char *sql, struct upmon_db_error *err)
{
	return db_run(db, 0, DB_SCRIPT, sql, 0, NULL, NULL, err);
}

int
upmon_db_prepare(struct upmon_db *db, const char *name, const char *sql, int nparams)
{
	struct db_stmt *st, *grown;

	if (name == NULL || sql == NULL || name[0] == '\0' ||
	    strlen(name) > DB_MAX_STMT_NAME || nparams < 0 || nparams > 65535)
		return UPMON_DB_E_INVALID;
	if ((st = db_find_stmt(db, name)) != NULL)
		return strcmp(st->sql, sql) == 0 && st->nparams == nparams ? 0 :
		    UPMON_DB_E_INVALID;
	grown = realloc(db->stmts, (db->nstmts + 1) * sizeof(*db->stmts));
	if (grown == NULL)
		return UPMON_DB_E_NOMEM;
	db->stmts = grown;
	st = &db->stmts[db->nstmts];
	memset(st, 0, sizeof(*st));
	st->name = strdup(name);
	st->sql = strdup(sql);
	st->nparams = nparams;
	if (st->name == NULL || st->sql == NULL) {
		free(st->name);
		free(st->sql);
		return UPMON_DB_E_NOMEM;
	}
	db->nstmts++;
	return 0;
}

int
upmon_db_begin(struct upmon_db *db, struct upmon_db_error *err)
{
	int rc;

	if (db->in_tx) {
		db_set_error(err, UPMON_DB_E_INVALID, NULL, "already in a transaction");
		return UPMON_DB_E_INVALID;
	}
	/* BEGIN has no effect until something runs after it: always safe to retry */
	rc = db_run(db, UPMON_DB_IDEMPOTENT, DB_SCRIPT, "BEGIN", 0, NULL, NULL, err);
	if (rc == 0) {
		db->in_tx = 1;
		db->tx_broken = 0;
	}
	return rc;
}

int
upmon_db_commit(struct upmon_db *db, struct upmon_db_error *err)
{
	PGresult *res = NULL;
	char why[sizeof(err->message)], state[sizeof(err->sqlstate)];
	int rc;

	if (!db->in_tx) {
		db_set_error(err, UPMON_DB_E_INVALID, NULL, "commit outside a transaction");
		return UPMON_DB_E_INVALID;
	}
	if (db->tx_broken || db->conn == NULL) {
		db->in_tx = 0;
		db->tx_broken = 0;
		db_set_error(err, UPMON_DB_E_CONN, NULL,
		    "connection lost inside the transaction, nothing was committed");
		return UPMON_DB_E_CONN;
	}
	rc = db_exec_once(db, DB_SCRIPT, "COMMIT", 0, NULL, &res, err);
	db->in_tx = 0;
	db->tx_broken = 0;
	if (rc == UPMON_DB_E_CONN && err != NULL) {
		snprintf(why, sizeof(why), "%s", err->message);
		memcpy(state, err->sqlstate, sizeof(state));
		db_set_error(err, UPMON_DB_E_CONN, state,
		    "connection lost at commit, outcome unknown: %s", why);
	} else if (rc == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		db_set_error(err, UPMON_DB_E_QUERY, "25P02",
		    "transaction was aborted by an earlier error and rolled back");
		rc = UPMON_DB_E_QUERY;
	}
	PQclear(res);
	return rc;
}

int
upmon_db_rollback(struct upmon_db *db, struct upmon_db_error *err)
{
	int rc = 0;

	if (!db->in_tx)
		return 0;
	if (!db->tx_broken && db->conn != NULL)
		rc = db_exec_once(db, DB_SCRIPT, "ROLLBACK", 0, NULL, NULL, err);
	db->in_tx = 0;
	db->tx_broken = 0;
	/* a lost connection has rolled the transaction back already */
	return rc == UPMON_DB_E_CONN ? 0 : rc;
}

int
upmon_db_in_transaction(const struct upmon_db *db)
{
	return db->in_tx;
}

int
upmon_db_listen(struct upmon_db *db, const char *channel, struct upmon_db_error *err)
{
	char **grown, *copy, *id = NULL, sql[160];
	size_t i;
	int rc, known = 0;

	if (channel == NULL || channel[0] == '\0' || strlen(channel) > DB_MAX_CHANNEL ||
	    db->in_tx) {
		db_set_error(err, UPMON_DB_E_INVALID, NULL, "invalid LISTEN channel or state");
		return UPMON_DB_E_INVALID;
	}
	for (i = 0; i < db->nchannels; i++)
		known |= strcmp(db->channels[i], channel) == 0;
	if (!known) {
		if ((copy = strdup(channel)) == NULL)
			return UPMON_DB_E_NOMEM;
		grown = realloc(db->channels, (db->nchannels + 1) * sizeof(*grown));
		if (grown == NULL) {
			free(copy);
			return UPMON_DB_E_NOMEM;
		}
		db->channels = grown;
		db->channels[db->nchannels++] = copy;
	}
	/* a new connection LISTENs on every registered channel by itself */
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return db_ensure(db, 0, NULL, err);
	id = PQescapeIdentifier(db->conn, channel, strlen(channel));
	if (id == NULL)
		return db_fail(db, NULL, err);
	snprintf(sql, sizeof(sql), "LISTEN %s", id);
	PQfreemem(id);
	rc = db_run(db, UPMON_DB_IDEMPOTENT, DB_SCRIPT, sql, 0, NULL, NULL, err);
	return rc;
}

int
upmon_db_socket(const struct upmon_db *db)
{
	return db->conn != NULL ? PQsocket(db->conn) : -1;
}

int
upmon_db_notifications(struct upmon_db *db, upmon_db_notify_fn fn, void *arg, int *count,
    struct upmon_db_error *err)
{
	PGnotify *n;
	int rc, seen = 0;

	if (count != NULL)
		*count = 0;
	if (db->conn == NULL) {
		if (db->in_tx) {
			db_set_error(err, UPMON_DB_E_CONN, NULL,
			    "connection lost inside a transaction");
			return UPMON_DB_E_CONN;
		}
		if ((rc = db_ensure(db, 0, NULL, err)) != 0)
			return rc;
	}
	if (db_poll_input(db) != 0)
		return db_lost(db, err);
	while ((n = PQnotifies(db->conn)) != NULL) {
		if (fn != NULL)
			fn(arg, n->relname, n->extra != NULL ? n->extra : "", n->be_pid);
		PQfreemem(n);
		seen++;
	}
	if (count != NULL)
		*count = seen;
	return 0;
}

uint64_t
upmon_db_generation(const struct upmon_db *db)
{
	return db->generation;
}

int
upmon_db_connected(const struct upmon_db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

PGconn *
upmon_db_pgconn(struct upmon_db *db)
{
	return db->conn;
}

const char *
upmon_db_value(const PGresult *res, int row, int col)
{
	if (res == NULL || row < 0 || col < 0 || row >= PQntuples(res) ||
	    col >= PQnfields(res) || PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

int
upmon_db_int64(const PGresult *res, int row, int col, int64_t *out)
{
	const char *v = upmon_db_value(res, row, col);
	char *end;
	long long n;

	if (v == NULL || *v == '\0')
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}
