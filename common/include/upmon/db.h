/*
 * PostgreSQL access (libpq): one connection per handle, parameterised queries only.
 *
 * A handle is used by one thread at a time (give each worker thread its own). It connects
 * lazily (or with upmon_db_connect()), with connect_timeout, TCP keepalives, tcp_user_timeout,
 * a per-session statement_timeout and application_name.
 *
 * Reconnect: when the connection is found broken, the handle drops it and the next call outside
 * a transaction reconnects, at most one attempt per call, with exponential backoff between
 * attempts (capped, jittered): while the backoff runs a call fails at once with
 * UPMON_DB_E_CONN. Registered prepared statements and LISTEN channels are restored on the new
 * connection. A call therefore blocks for at most
 *     connect_timeout_s (one connect attempt) + statement_timeout_ms (the statement)
 * plus network time, which tcp_user_timeout_ms and the keepalives bound when the peer vanishes.
 *
 * Inside a transaction nothing is retried or reconnected: once the connection is lost every
 * call fails with UPMON_DB_E_CONN until upmon_db_rollback() ends the transaction. Outside one,
 * a query is retried once on a fresh connection only when the caller passes UPMON_DB_IDEMPOTENT
 * and the failure was a connection failure.
 *
 * Results are libpq's PGresult: a successful call hands the caller a PGresult it must release
 * with PQclear(); on failure no result is returned and err (when not NULL) says why.
 */
#ifndef UPMON_DB_H
#define UPMON_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Error codes (negative; 0 is success). */
enum {
	UPMON_DB_OK = 0,
	/* no usable connection: server down, connection lost, admin shutdown (08xxx, 57P0x,
	 * 53300). Transient: retry later; the handle reconnects by itself. */
	UPMON_DB_E_CONN = -1,
	/* serialization failure or deadlock (40001, 40P01): retry the whole transaction */
	UPMON_DB_E_RETRY = -2,
	/* statement_timeout or lock_timeout hit, or the query was cancelled (57014, 55P03) */
	UPMON_DB_E_TIMEOUT = -3,
	/* unique or exclusion violation (23505, 23P01) */
	UPMON_DB_E_CONFLICT = -4,
	/* other integrity violation: check, foreign key, not null (23xxx) */
	UPMON_DB_E_CONSTRAINT = -5,
	/* any other server error (syntax, permissions, data): permanent */
	UPMON_DB_E_QUERY = -6,
	/* misuse: bad arguments, call in the wrong transaction state, unknown statement */
	UPMON_DB_E_INVALID = -7,
	UPMON_DB_E_NOMEM = -8,
};

struct upmon_db_error {
	int code;		/* one of UPMON_DB_E_* */
	char sqlstate[6];	/* five characters, or "" when the server sent none */
	char message[256];	/* one line, no trailing newline */
};

struct upmon_db_config {
	const char *url;		/* libpq URI or key=value conninfo; required */
	const char *application_name;	/* default "upmon" */
	int connect_timeout_s;		/* default 5; libpq treats 1 as 2 */
	int statement_timeout_ms;	/* default 30000; 0 = no limit */
	int lock_timeout_ms;		/* default 0 = no limit */
	int keepalives_idle_s;		/* default 30 */
	int keepalives_interval_s;	/* default 10 */
	int keepalives_count;		/* default 3 */
	int tcp_user_timeout_ms;	/* default 30000; 0 = system default */
	int reconnect_min_ms;		/* first backoff, default 100 */
	int reconnect_max_ms;		/* backoff cap, default 5000 */
};

/* Flags of upmon_db_query() and upmon_db_query_prepared(). */
#define UPMON_DB_IDEMPOTENT 0x1	/* outside a transaction, retry once after a reconnect */

struct upmon_db;

/* Fills cfg with the defaults above (url NULL). */
void upmon_db_config_init(struct upmon_db_config *cfg);

/*
 * Creates a handle from cfg (strings are copied; cfg may go away). No I/O: the first call
 * that needs the server connects. Returns 0, UPMON_DB_E_INVALID (url missing, a setting out of
 * range) or UPMON_DB_E_NOMEM. The caller owns *out and frees it with upmon_db_free().
 */
int upmon_db_new(const struct upmon_db_config *cfg, struct upmon_db **out);

/* Closes the connection and frees the handle; NULL is a no-op. */
void upmon_db_free(struct upmon_db *db);

/*
 * Connects now if not connected (ignoring a running backoff). Returns 0 or UPMON_DB_E_CONN
 * with err filled. Useful at start-up to report a bad URL early.
 */
int upmon_db_connect(struct upmon_db *db, struct upmon_db_error *err);

/*
 * Runs sql with nparams text parameters ($1..$n; a NULL entry is SQL NULL). On success returns
 * 0 and, when res is not NULL, stores a PGresult the caller must PQclear() (rows or command
 * status). On failure returns a negative UPMON_DB_E_* code, sets *res to NULL and fills err.
 * flags: 0 or UPMON_DB_IDEMPOTENT.
 */
int upmon_db_query(struct upmon_db *db, unsigned flags, const char *sql, int nparams,
    const char *const *params, PGresult **res, struct upmon_db_error *err);

/*
 * Registers a prepared statement under name (copied, at most 63 bytes). It is prepared on the
 * current connection when first used and again on every new connection. Registering the same
 * name twice with the same SQL is a no-op; with different SQL it is UPMON_DB_E_INVALID.
 * Returns 0, UPMON_DB_E_INVALID or UPMON_DB_E_NOMEM. No I/O.
 */
int upmon_db_prepare(struct upmon_db *db, const char *name, const char *sql, int nparams);

/* Like upmon_db_query() for a statement registered with upmon_db_prepare(). */
int upmon_db_query_prepared(struct upmon_db *db, unsigned flags, const char *name,
    int nparams, const char *const *params, PGresult **res, struct upmon_db_error *err);

/*
 * Runs a trusted, constant SQL script that may hold several statements (simple query
 * protocol, no parameters): schema migrations only, never anything built from input.
 * Same return and retry rules as upmon_db_query() without flags.
 */
int upmon_db_exec_script(struct upmon_db *db, const char *sql, struct upmon_db_error *err);

/*
 * Transactions. begin may reconnect first (nothing has run yet); inside the transaction no call
 * reconnects. commit returning UPMON_DB_E_CONN means the outcome is unknown: the transaction may
 * or may not have committed, so make the work idempotent. Committing a transaction that an
 * earlier error aborted rolls it back and returns UPMON_DB_E_QUERY. Any failed call inside a
 * transaction leaves it aborted: call upmon_db_rollback(), which always ends the transaction
 * state of the handle and returns 0 unless a live server refused the ROLLBACK (outside a
 * transaction it is a no-op returning 0, so cleanup paths may call it unconditionally).
 * begin inside a transaction, or commit outside one, is UPMON_DB_E_INVALID.
 */
int upmon_db_begin(struct upmon_db *db, struct upmon_db_error *err);
int upmon_db_commit(struct upmon_db *db, struct upmon_db_error *err);
int upmon_db_rollback(struct upmon_db *db, struct upmon_db_error *err);
/* 1 between a successful begin and its commit/rollback, else 0. */
int upmon_db_in_transaction(const struct upmon_db *db);

/*
 * LISTEN support. upmon_db_listen() registers channel (at most 63 bytes) and issues LISTEN
 * now (connecting if needed) and again on every new connection; the channel stays registered
 * even when this call fails (UPMON_DB_E_CONN: it is listened to once the handle reconnects).
 * Notifications sent while the handle was disconnected are lost: compare
 * upmon_db_generation() to notice a reconnect and reload what you follow. Not inside a
 * transaction (UPMON_DB_E_INVALID). Returns 0 or a negative code.
 */
int upmon_db_listen(struct upmon_db *db, const char *channel, struct upmon_db_error *err);

/*
 * The connection's socket for poll()/epoll (readable = notifications may be waiting), or -1
 * when disconnected. The descriptor changes on reconnect; do not close it.
 */
int upmon_db_socket(const struct upmon_db *db);

typedef void (*upmon_db_notify_fn)(void *arg, const char *channel, const char *payload,
    int backend_pid);

/*
 * Reads what arrived on the socket without blocking and calls fn for each pending
 * notification (strings valid during the call only). Stores the count in *count when not
 * NULL. Returns 0, or UPMON_DB_E_CONN when the connection turned out to be broken (the handle
 * reconnects on a later call; resubscription is automatic).
 */
int upmon_db_notifications(struct upmon_db *db, upmon_db_notify_fn fn, void *arg, int *count,
    struct upmon_db_error *err);

/* Number of successful connects so far (0 before the first); changes on every reconnect. */
uint64_t upmon_db_generation(const struct upmon_db *db);

/* 1 when the handle holds a connection believed to be good, else 0 (no I/O). */
int upmon_db_connected(const struct upmon_db *db);

/*
 * The live PGconn for things this API lacks (COPY, large objects), or NULL. Owned by the
 * handle; do not close it, do not keep it past the next call on the handle.
 */
PGconn *upmon_db_pgconn(struct upmon_db *db);

/*
 * Maps a SQLSTATE (5 characters, may be NULL or empty) to an UPMON_DB_E_* code as described
 * above; a NULL/empty state maps to UPMON_DB_E_CONN (libpq-side failure).
 */
int upmon_db_classify_sqlstate(const char *sqlstate);

/* 1 when an error code is worth retrying later (E_CONN, E_RETRY), else 0. */
int upmon_db_error_transient(int code);

/* Short name of a code: "conn", "retry", "timeout", "conflict", ... */
const char *upmon_db_strerror(int code);

/*
 * Result helpers. upmon_db_value() returns the text value of (row, col), or NULL when it is
 * SQL NULL or out of range. upmon_db_int64() parses it as a decimal integer: 0, or -1 when
 * NULL, out of range or not an integer.
 */
const char *upmon_db_value(const PGresult *res, int row, int col);
int upmon_db_int64(const PGresult *res, int row, int col, int64_t *out);


#endif
