/*
 * upmon-gateway internals: the request contract every route handler is written against.
 *
 * server.c owns civetweb, the route table (routes.c), authentication, rate limits, body
 * reading and the reply helpers below; each other file implements the handlers of one area
 * (auth.c, monitors.c, history.c, alerts.c, channels.c, maintenance.c, admin_api.c).
 * Symbols are prefixed gw_ because tests link every service's core library together.
 *
 * A request's life: server.c matches the route (404/405 JSON otherwise), applies the rate
 * limits (429 + Retry-After), checks the JWT unless the route is public (401), checks the role
 * for admin routes (404 for non-admins, so admin routes are not advertised), reads the body
 * (413 over UPMON_GATEWAY_MAX_BODY_BYTES, 415 if not application/json, 400 if not a JSON
 * object) and calls the handler. The handler answers with exactly one gw_reply_*() call and
 * returns. Everything a handler leases (database connection) is released by the server after
 * the handler returns.
 */
#ifndef GW_H
#define GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "upmon/cache.h"
#include "upmon/db.h"
#include "upmon/uuid.h"

struct gw;
struct gw_req_priv;
struct upmon_amqp;

#define GW_UUID_LEN	UPMON_UUID_LEN	/* ids are uuids: upmon_uuid_parse() */
#define GW_MAX_PARAMS	2
#define GW_EMAIL_MAX	254

/* The authenticated caller (from the token's claims). */
struct gw_user {
	char id[GW_UUID_LEN + 1];	/* users.id: the owner_id every tenant query filters by */
	char email[GW_EMAIL_MAX + 1];
	bool admin;			/* role = admin (re-checked in the database for admin routes) */
};

struct gw_req {
	struct gw *gw;
	const char *method;		/* "GET", "POST", ... */
	const char *path;		/* after /api/v1: "/monitors/0b5e..." */
	const char *query;		/* raw query string without '?', or NULL */
	const char *route;		/* the matched pattern: "/monitors/{id}" (logs, metrics) */
	/* {id} segments in order, each a syntactically valid uuid in lowercase (a segment that
	 * is not a uuid never matches: the server answers 404) */
	char params[GW_MAX_PARAMS][GW_UUID_LEN + 1];
	struct json_object *body;	/* the parsed JSON object of a GW_R_BODY route; NULL on
					 * other routes; owned by the server */
	char client_ip[48];
	bool authed;			/* false only on GW_R_PUBLIC routes */
	struct gw_user user;
	int status;			/* the reply's status once a gw_reply_* ran; 0 before */
	struct gw_req_priv *priv;	/* server.c's */
};

typedef void (*gw_handler_fn)(struct gw_req *r);

enum gw_route_flags {
	GW_R_PUBLIC = 1 << 0,	/* no token needed */
	GW_R_ADMIN = 1 << 1,	/* role admin, else 404 */
	GW_R_BODY = 1 << 2,	/* a JSON object body is required (r->body) */
	GW_R_AUTHRATE = 1 << 3,	/* the tighter per-IP limit of the auth routes */
};

struct gw_route {
	const char *method;
	const char *pattern;	/* "/monitors/{id}/checks": {id} matches one uuid segment */
	gw_handler_fn handler;
	unsigned flags;
};

/* routes.c: the whole API, in the order of docs/openapi.yaml. */
extern const struct gw_route gw_routes[];
extern const size_t gw_nroutes;

/* The gateway settings a handler may read (settings.c fills them). */
struct gw_settings {
	char *addr;			/* UPMON_GATEWAY_ADDR */
	long port;			/* UPMON_GATEWAY_PORT */
	long threads;			/* UPMON_GATEWAY_THREADS: civetweb workers (one per
					 * keep-alive connection) */
	long db_pool;			/* UPMON_GATEWAY_DB_POOL: PostgreSQL connections */
	char *jwt_secret;		/* UPMON_GATEWAY_JWT_SECRET (>= 32 bytes) */
	bool dev_mode;			/* UPMON_GATEWAY_DEV_MODE: generate a secret if unset */
	long jwt_ttl_s;			/* UPMON_GATEWAY_JWT_TTL_S */
	char *cors_origins;		/* UPMON_GATEWAY_CORS_ORIGINS: comma-separated */
	long max_body_bytes;		/* UPMON_GATEWAY_MAX_BODY_BYTES */
	long rate_ip_per_min;		/* UPMON_GATEWAY_RATE_IP_PER_MIN: 0 = off */
	long rate_auth_ip_per_min;	/* UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN */
	long rate_login_account;	/* UPMON_GATEWAY_RATE_LOGIN_ACCOUNT: failed logins ... */
	long rate_login_window_s;	/* UPMON_GATEWAY_RATE_LOGIN_WINDOW_S: ... per window */
	long list_cache_ttl_ms;		/* UPMON_GATEWAY_LIST_CACHE_TTL_MS: 0 = no list cache */
	char *public_url;		/* UPMON_GATEWAY_PUBLIC_URL: base of dashboard links */
};

const struct gw_settings *gw_settings(const struct gw_req *r);

/* ---- resources (server.c) --------------------------------------------------------------- */

/* Leases a PostgreSQL connection from the pool for the rest of the request (the same one on
 * every call within a request; the server releases it, rolling back an open transaction).
 * Returns 0, or -EAGAIN when no connection became free in time, after replying 503 itself. */
int gw_db(struct gw_req *r, struct upmon_db **out);

/* Gives the request's connection back to the pool now (rolling back an open transaction),
 * before slow work that needs no database (a password hash); a later gw_db() leases one
 * again. No-op without a lease. */
void gw_db_release(struct gw_req *r);

/*
 * Runs one parameterised statement on the request's connection (flags: UPMON_DB_IDEMPOTENT for
 * reads outside a transaction). On failure it has already replied (503 "unavailable" with
 * Retry-After for connection loss, timeouts and pool exhaustion; 409 "conflict" for a unique
 * violation; 400 "validation_failed" for another integrity violation or invalid text such as
 * bad UTF-8; 500 "internal" otherwise, logged with the SQL state, never shown) and returns
 * a negative UPMON_DB_E_* code or -EAGAIN; the handler then just returns. *res is the caller's
 * to PQclear on success.
 */
int gw_sql(struct gw_req *r, unsigned flags, const char *sql, int nparams,
    const char *const *params, PGresult **res);

/* The calling thread's Redis handle (one per civetweb thread, connected lazily; never NULL).
 * Redis may be down: every call may return UPMON_CACHE_E_UNAVAILABLE, and a handler must
 * then fall back to PostgreSQL. */
struct upmon_cache *gw_cache(struct gw_req *r);

/* The gateway's one AMQP connection (admin routes), held exclusively until
 * gw_amqp_release(); the server releases it after the handler if the handler did not.
 * Returns 0, or -EAGAIN when the broker is unreachable, after replying 503 itself. */
int gw_amqp_acquire(struct gw_req *r, struct upmon_amqp **out);
void gw_amqp_release(struct gw_req *r);

/*
 * Counts one hit against key (a Redis fixed-window counter, so the limit holds across
 * gateway replicas): at most limit hits per window_s seconds. Over the limit it replies 429
 * "rate_limited" with Retry-After (seconds left in the window) and returns -EAGAIN; else 0.
 * When Redis is unavailable it lets the request through (fail open, counted in
 * upmon_gateway_ratelimit_unavailable_total). key is a short suffix such as "login:<email>";
 * the server prefixes it. (ratelimit.c)
 */
int gw_rate_hit(struct gw_req *r, const char *key, long limit, long window_s);

/* Like gw_rate_hit() without counting: replies 429 ("too many <what>", Retry-After) and
 * returns -EAGAIN when key already holds limit hits in its window; else 0 (also when Redis
 * is down). For limits counted on failures only, checked before the attempt. */
int gw_rate_check(struct gw_req *r, const char *key, long limit, long window_s,
    const char *what);

/* ---- tokens (token.c; pure functions, used by server.c for every request) ---------------- */

/* Checks an HS256 JWT: the header's alg must be exactly HS256 (none, HS384, RS256... are
 * refused), the signature must match secret, iss must be "upmon", sub a uuid, role "user" or
 * "admin", and exp must be present and > now_s. Fills *user. Returns 0 or -EACCES. */
int gw_token_verify(const char *secret, const char *token, int64_t now_s,
    struct gw_user *user);

/* Issues a token for user valid for ttl_s seconds from now_s; *token is malloc'd (caller
 * frees), *exp_s its expiry. Returns 0, -ENOMEM, -EINVAL. */
int gw_token_issue(const char *secret, const struct gw_user *user, int64_t now_s, long ttl_s,
    char **token, int64_t *exp_s);

/* ---- replies (reply.c) ------------------------------------------------------------------ */

/* Adds a response header to the reply to come ("Location", "Retry-After"). name and value
 * must not contain CR or LF. */
void gw_add_header(struct gw_req *r, const char *name, const char *value);

/* Sends obj as the JSON body with status; takes ownership of obj (NULL sends "{}"). */
void gw_reply_json(struct gw_req *r, int status, struct json_object *obj);

/* Sends {"items": items, "next_cursor": next_cursor or null} with 200; takes items. */
void gw_reply_page(struct gw_req *r, struct json_object *items, const char *next_cursor);

/* Sends 204 with no body. */
void gw_reply_no_content(struct gw_req *r);

/*
 * Sends {"error": {"code": code, "message": message}} with status. code is a short
 * snake_case word from the list in docs/openapi.yaml (bad_request, invalid_json,
 * validation_failed, unauthorized, not_found, method_not_allowed, conflict,
 * payload_too_large, unsupported_media_type, rate_limited, internal, unavailable);
 * message is one lowercase sentence for people, never SQL or internals.
 */
void gw_reply_error(struct gw_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 404 {"error": {"code": "not_found", "message": "<what> not found"}}: the answer for a
 * missing row and for another tenant's row alike. */
void gw_reply_not_found(struct gw_req *r, const char *what);

/* 400 {"error": {"code": "validation_failed", "message": ..., "fields": fields}}, where
 * fields maps each bad field name to what is wrong with it; takes ownership of fields. */
void gw_reply_fields(struct gw_req *r, struct json_object *fields);

/* ---- query strings (reply.c) ------------------------------------------------------------ */

/* Answers 400 (naming every unknown parameter in fields) unless each query parameter is in
 * allowed (NULL-terminated). Returns 0, or -EINVAL after replying. */
int gw_query_allow(struct gw_req *r, const char *const *allowed);

/* Copies the URL-decoded value of parameter name into buf. Returns 0; -ENOENT when absent;
 * -EINVAL after replying 400 when too long for buf or not valid UTF-8 without control
 * characters. */
int gw_query_str(struct gw_req *r, const char *name, char *buf, size_t size);

/* Parses parameter name as an integer in [min, max]; absent gives def. Returns 0, or -EINVAL
 * after replying 400 naming the parameter. */
int gw_query_long(struct gw_req *r, const char *name, long min, long max, long def,
    long *out);

/* Parses parameter name as a time (RFC 3339, or Unix milliseconds); absent gives def.
 * Returns 0, or -EINVAL after replying 400. */
int gw_query_time(struct gw_req *r, const char *name, int64_t def, int64_t *out_ms);

/* ---- cursors (reply.c) -------------------------------------------------------------------- */

/* Opaque pagination cursors: "<ms>,<uuid>" (the sort key of the last item) as base64url.
 * gw_cursor_decode() answers 400 itself on a malformed cursor and returns -EINVAL; absent
 * (NULL or "") returns -ENOENT. */
int gw_cursor_encode(int64_t ms, const char *id, char *buf, size_t size);
int gw_cursor_decode(struct gw_req *r, const char *cursor, int64_t *ms, char *id,
    size_t idsize);

/* ---- pages (reply.c) ------------------------------------------------------------------- */

/* A page request: ?limit and ?cursor, ready for SQL. Fetch p->s_fetch rows (limit + 1, so a
 * next page is known to exist) ordered by (time ms, id) and bounded by the cursor when
 * p->after: pass p->after ? p->s_ms : NULL and p->after ? p->after_id : NULL as parameters. */
struct gw_page {
	long limit;
	bool after;			/* a cursor was given */
	int64_t after_ms;
	char after_id[GW_UUID_LEN + 1];
	char s_ms[24];			/* after_ms as text */
	char s_fetch[24];		/* limit + 1 as text */
};

/* Reads ?limit (1..max, default def) and ?cursor into *p. Returns 0, or -EINVAL after
 * replying 400. */
int gw_page_parse(struct gw_req *r, long def, long max, struct gw_page *p);

/* Sends {"items": items (taken), "next_cursor"}: when nrows > p->limit, the cursor is made of
 * columns ms_col (Unix ms) and id_col of row p->limit - 1 of res, the page's last item. The
 * caller still clears res. */
void gw_page_reply(struct gw_req *r, const struct gw_page *p, PGresult *res, int nrows,
    int ms_col, int id_col, struct json_object *items);

/* ---- result columns as JSON (reply.c) -------------------------------------------------- */

/* Column col of row as a new JSON value, or NULL (JSON null) when it is SQL NULL: an integer,
 * a number, a string, a boolean ('t'), or a time from Unix milliseconds (upmon_ts_to_ms in
 * SQL) as RFC 3339. gw_col_i64 is the bare integer (0 for NULL). */
int64_t gw_col_i64(const PGresult *res, int row, int col);
struct json_object *gw_col_int(const PGresult *res, int row, int col);
struct json_object *gw_col_num(const PGresult *res, int row, int col);
struct json_object *gw_col_str(const PGresult *res, int row, int col);
struct json_object *gw_col_bool(const PGresult *res, int row, int col);
struct json_object *gw_col_time(const PGresult *res, int row, int col);

/* ---- SQL fragments ---------------------------------------------------------------------- */

/*
 * SQL: the element-wise sum of the latency histograms of check_rollups_hourly rows aliased h,
 * one sum() per bucket (history.c summary, alerts.c dashboard): about ten times cheaper than the upmon_hist_sum() aggregate of 0002, whose SQL step function is
 * re-planned for every row (13 ms against 1.2 ms for 720 rows on the reference machine). The
 * bucket count is cardinality(upmon_latency_bounds()) + 1 = 31, fixed by the CHECK constraint
 * of check_rollups_hourly; a migration that changes the bounds must change GW_SQL_HIST_SUM.
 */
#define GW_HB(i)	"sum(h.latency_hist[" #i "])"
#define GW_HB8(a, b, c, d, e, f, g, i) GW_HB(a) "," GW_HB(b) "," GW_HB(c) "," GW_HB(d) "," \
    GW_HB(e) "," GW_HB(f) "," GW_HB(g) "," GW_HB(i)
#define GW_SQL_HIST_SUM "ARRAY[" GW_HB8(1, 2, 3, 4, 5, 6, 7, 8) "," \
    GW_HB8(9, 10, 11, 12, 13, 14, 15, 16) "," GW_HB8(17, 18, 19, 20, 21, 22, 23, 24) "," \
    GW_HB(25) "," GW_HB(26) "," GW_HB(27) "," GW_HB(28) "," GW_HB(29) "," GW_HB(30) "," \
    GW_HB(31) "]::integer[]"

/* ---- handlers ----------------------------------------------------------------------------- */

/* auth.c */
void gw_auth_register(struct gw_req *r);
void gw_auth_login(struct gw_req *r);
void gw_auth_me(struct gw_req *r);
/* monitors.c */
void gw_monitors_list(struct gw_req *r);
void gw_monitors_create(struct gw_req *r);
void gw_monitors_get(struct gw_req *r);
void gw_monitors_put(struct gw_req *r);
void gw_monitors_patch(struct gw_req *r);
void gw_monitors_delete(struct gw_req *r);
void gw_monitors_pause(struct gw_req *r);
void gw_monitors_resume(struct gw_req *r);
/* history.c */
void gw_history_checks(struct gw_req *r);
void gw_history_status(struct gw_req *r);
void gw_history_summary(struct gw_req *r);
void gw_history_incidents(struct gw_req *r);
/* alerts.c */
void gw_alerts_list(struct gw_req *r);
void gw_alerts_ack(struct gw_req *r);
void gw_dashboard_summary(struct gw_req *r);
/* channels.c */
void gw_channels_list(struct gw_req *r);
void gw_channels_create(struct gw_req *r);
void gw_channels_get(struct gw_req *r);
void gw_channels_put(struct gw_req *r);
void gw_channels_patch(struct gw_req *r);
void gw_channels_delete(struct gw_req *r);
void gw_channels_test(struct gw_req *r);
void gw_monitor_channels_get(struct gw_req *r);
void gw_monitor_channels_put(struct gw_req *r);
/* maintenance.c */
void gw_maintenance_list(struct gw_req *r);
void gw_maintenance_create(struct gw_req *r);
void gw_maintenance_get(struct gw_req *r);
void gw_maintenance_put(struct gw_req *r);
void gw_maintenance_patch(struct gw_req *r);
void gw_maintenance_delete(struct gw_req *r);
/* admin_api.c */
void gw_admin_queues(struct gw_req *r);
void gw_admin_dlq_list(struct gw_req *r);
void gw_admin_dlq_replay(struct gw_req *r);
void gw_admin_dlq_purge(struct gw_req *r);
void gw_admin_users(struct gw_req *r);

#endif
