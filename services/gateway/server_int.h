/*
 * Internals shared by server.c, reply.c, ratelimit.c and main.c (not for handlers: they use
 * gw.h only).
 */
#ifndef GW_SERVER_INT_H
#define GW_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <pthread.h>
#include <stdatomic.h>

#include "gw.h"
#include "upmon/amqp.h"
#include "upmon/cache.h"
#include "upmon/config.h"
#include "upmon/log.h"

struct upmon_metrics;
struct upmon_admin;
struct upmon_counter;

#define GW_HDR_MAX	8	/* extra headers a handler may add */
#define GW_HDR_BYTES	1024	/* their total size */
#define GW_REQID_LEN	16
#define GW_TOKEN_MAX	4096	/* longer bearer tokens are refused */
#define GW_OUT_BYTES	32768	/* answers up to this size go out in one write */

/* What the server needs from main(). Everything must outlive the server. */
struct gw_server_config {
	const struct gw_settings *s;
	const struct upmon_common_settings *common;
	struct upmon_metrics *metrics;
	struct upmon_admin *admin;	/* /readyz on the API port asks it; may be NULL */
};

/* Starts the HTTP server (civetweb) and its resources (database pool, AMQP handle; no I/O
 * until the first request needs them). Returns 0, -EINVAL, -EIO (cannot listen; logged),
 * -ENOMEM. */
int gw_server_start(const struct gw_server_config *cfg, struct gw **out);

/* Stops accepting, waits for the requests in flight, frees everything. NULL is a no-op. */
void gw_server_stop(struct gw *gw);

/* The TCP port bound. */
int gw_server_port(const struct gw *gw);

/*
 * Matches method and path (relative to /api/v1, without the query) against gw_routes.
 * On a match returns 0 with *route set and params filled with the {id} segments in lowercase.
 * Returns -ENOENT when nothing matches; *method_mismatch is then true when the path matched
 * a route of another method (answer 405 with Allow). Pure function (unit-tested).
 */
int gw_route_match(const char *method, const char *path, const struct gw_route **route,
    char params[][GW_UUID_LEN + 1], bool *method_mismatch);

/* Writes the Allow header value for path (every method of the routes matching it, plus
 * OPTIONS) into buf. */
void gw_route_allow(const char *path, char *buf, size_t size);

/* One per civetweb worker thread (init_thread callback), freed when the thread exits. */
struct gw_thread {
	struct gw *gw;
	struct upmon_cache *cache;	/* this thread's Redis handle */
	struct json_tokener *tok;	/* reused for every body */
	char *body;			/* max_body_bytes + 1, allocated on first use */
	char *out;			/* GW_OUT_BYTES: the answer, written at once */
	/* the last token verified on this thread, trusted again within the same second only
	 * (gw_token_verify compares exp with whole seconds, so its answer cannot change) */
	char *tok_text;			/* GW_TOKEN_MAX + 1 */
	size_t tok_len;
	int64_t tok_at;			/* the second it was verified in; 0 = none */
	struct gw_user tok_user;
	/* rate-limit hits taken from the shared counter in advance (ratelimit.c) */
	struct gw_rl_lease {
		char key[96];
		long left;		/* hits still granted */
		int64_t until_ms;	/* end of the counter's window (gw_now_ms) */
	} lease;
	int64_t log_sec;		/* access-log budget: the second ... */
	unsigned log_lines;		/* ... lines written in it ... */
	unsigned log_skipped;		/* ... and lines skipped since the last summary */
	time_t date_at;			/* second of date */
	char date[40];			/* the Date header */
	struct log_ratelimit warn_rl;	/* repeated resource warnings */
};

/* The server (server.c) and its shared resources (resources.c). */
struct gw {
	struct mg_context *ctx;
	const struct gw_settings *s;
	const struct upmon_common_settings *common;
	struct upmon_metrics *metrics;
	struct upmon_admin *admin;
	int port;
	struct upmon_cache_config cache_cfg;
	/* PostgreSQL pool: pool[0..npool), free ones on the free stack */
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct upmon_db **pool;
	struct upmon_db **free_db;
	size_t npool, nfree;
	struct upmon_gauge *pool_in_use;
	struct upmon_counter *pool_timeouts;
	/* AMQP: one handle, one holder at a time */
	pthread_mutex_t amqp_mu;
	struct upmon_amqp *amqp;
	/* per (route, method, status) request counters, registered on first use */
	struct upmon_counter *_Atomic *req_counters;
	struct upmon_histogram *duration;
	uint32_t reqid_prefix;
	_Atomic uint64_t reqid_seq;
};

/* resources.c: creates the pool and the AMQP handle (no I/O). Returns 0 or -ENOMEM/-EINVAL. */
int gw_resources_init(struct gw *gw);
/* Frees them (no request may be running). */
void gw_resources_release(struct gw *gw);
/* Gives back what the request leased (rolls back an open transaction). */
void gw_req_release(struct gw_req *r);

/* Per-request state of server.c. */
struct gw_req_priv {
	struct mg_connection *conn;
	struct gw_thread *thr;
	const char *origin;		/* the Origin header when allowed by CORS, else NULL */
	char reqid[GW_REQID_LEN + 1];
	int nhdr;
	const char *hname[GW_HDR_MAX];
	const char *hval[GW_HDR_MAX];
	char hbuf[GW_HDR_BYTES];
	size_t hlen;
	struct upmon_db *db;		/* leased from the pool, or NULL */
	bool amqp_held;
	bool auto_replied;		/* a resource failure already answered 503 */
	char *captured;			/* without conn (unit tests): the body sent, malloc'd */
	bool head;			/* HEAD request: no body sent */
};

/*
 * Sends the reply: status, the security and CORS headers, the handler's extra headers,
 * X-Request-Id, Content-Type (when ctype is not NULL) and Content-Length, then body. Sets
 * r->status. A second reply on the same request is logged and dropped. (server.c)
 */
void gw_send(struct gw_req *r, int status, const char *ctype, const char *body, size_t len);

/* A request without a connection (unit tests, fuzz targets): GET with the raw query string
 * query, replies captured in p->captured (malloc'd) instead of sent. reset frees the capture
 * and clears the reply state so the same request can answer again. (server.c) */
void gw_req_detached_init(struct gw_req *r, struct gw_req_priv *p, const char *query,
    const char *reqid);
void gw_req_detached_reset(struct gw_req *r);

/* Builds {"error": {"code", "message"[, "fields"]}} (takes fields; NULL = no "fields").
 * Returns a new object, or NULL when out of memory. (reply.c) */
struct json_object *gw_error_object(const char *code, const char *message,
    struct json_object *fields);

/* The number of milliseconds since an unspecified start (monotonic). */
int64_t gw_now_ms(void);

/* ratelimit.c: metrics registration (called once at start). */
void gw_ratelimit_metrics(struct upmon_metrics *m);

/* reply.c, for tests: the URL-decoding of one query component into buf (NUL-terminated).
 * Returns the decoded length, or -EINVAL (bad %-escape, NUL) / -ENOSPC. */
int gw_url_decode(const char *s, size_t len, char *buf, size_t size);

#endif
