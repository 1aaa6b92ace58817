/*
 * The HTTP server: civetweb on one IPv4 address, one request handler that runs the pipeline
 * of gw.h (route, rate limits, token, role, body, handler), the common response headers,
 * metrics and the access log. Resources a request leases are in resources.c.
 */
#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "server_int.h"
#include "upmon/admin.h"
#include "upmon/metrics.h"

#define API_PREFIX	"/api/v1"
#define API_PREFIX_LEN	(sizeof(API_PREFIX) - 1)
#define JSON_DEPTH	32

/* metric label slots besides the routes of gw_routes */
enum { SLOT_UNMATCHED, SLOT_HEALTHZ, SLOT_READYZ, SLOT_METRICS, SLOT_PREFLIGHT, SLOT_EXTRA };
static const char *const slot_names[SLOT_EXTRA] = {
	"unmatched", "/healthz", "/readyz", "/metrics", "preflight",
};
static const char *const method_names[] = {
	"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "other",
};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))
static const int status_codes[] = {
	200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 501, 503,
};
#define NSTATUS (sizeof(status_codes) / sizeof(status_codes[0]))

static pthread_once_t mg_once = PTHREAD_ONCE_INIT;

static void
mg_library_init(void)
{
	mg_init_library(0);
}

int64_t
gw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- per-thread state --------------------------------------------------------------------- */

static struct gw_thread *
thread_new(struct gw *gw)
{
	struct gw_thread *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->gw = gw;
	if (upmon_cache_new(&gw->cache_cfg, &t->cache) != 0)
		goto fail;
	if ((t->tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		goto fail;
	if ((t->out = malloc(GW_OUT_BYTES)) == NULL ||
	    (t->tok_text = malloc(GW_TOKEN_MAX + 1)) == NULL)
		goto fail;
	json_tokener_set_flags(t->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	return t;
fail:
	upmon_cache_free(t->cache);
	if (t->tok != NULL)
		json_tokener_free(t->tok);
	free(t->out);
	free(t);
	return NULL;
}

static void
thread_free(struct gw_thread *t)
{
	if (t == NULL)
		return;
	upmon_cache_free(t->cache);
	if (t->tok != NULL)
		json_tokener_free(t->tok);
	free(t->body);
	free(t->out);
	free(t->tok_text);
	free(t);
}

static void *
on_init_thread(const struct mg_context *ctx, int thread_type)
{
	struct gw *gw = mg_get_user_data(ctx);

	if (thread_type != 1 || gw == NULL)
		return NULL;
	return thread_new(gw);
}

static void
on_exit_thread(const struct mg_context *ctx, int thread_type, void *user_ptr)
{
	(void)ctx;
	if (thread_type == 1)
		thread_free(user_ptr);
}

/* ---- metrics ------------------------------------------------------------------------------ */

static size_t
method_index(const char *m)
{
	size_t i;

	for (i = 0; i + 1 < NMETHODS; i++)
		if (strcmp(m, method_names[i]) == 0)
			return i;
	return NMETHODS - 1;
}

static void
count_request(struct gw *gw, size_t slot, const char *method, int status, double secs)
{
	struct upmon_counter *c = NULL;
	size_t mi = method_index(method), si, idx = 0;
	const char *route;
	char code[8];

	for (si = 0; si < NSTATUS; si++)
		if (status_codes[si] == status)
			break;
	if (si < NSTATUS) {
		idx = (slot * NMETHODS + mi) * NSTATUS + si;
		c = atomic_load_explicit(&gw->req_counters[idx], memory_order_acquire);
	}
	if (c == NULL) {
		route = slot < gw_nroutes ? gw_routes[slot].pattern :
		    slot_names[slot - gw_nroutes];
		snprintf(code, sizeof(code), "%d", status);
		c = upmon_metrics_counter(gw->metrics, "upmon_gateway_requests_total",
		    "HTTP requests answered, by route, method and status code.", "route", route,
		    "method", method_names[mi], "code", code, NULL);
		if (si < NSTATUS)
			atomic_store_explicit(&gw->req_counters[idx], c, memory_order_release);
	}
	upmon_counter_inc(c);
	upmon_histogram_observe(gw->duration, secs);
}

static int
metrics_init(struct gw *gw)
{
	static const double bounds[] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
	    0.25, 0.5, 1, 2.5, 5, 10, 30 };
	size_t n = (gw_nroutes + SLOT_EXTRA) * NMETHODS * NSTATUS;

	gw->req_counters = calloc(n, sizeof(*gw->req_counters));
	if (gw->req_counters == NULL)
		return -ENOMEM;
	gw->duration = upmon_metrics_histogram(gw->metrics,
	    "upmon_gateway_request_duration_seconds",
	    "Time from the request's headers to the end of the reply.", bounds,
	    sizeof(bounds) / sizeof(bounds[0]), NULL);
	gw_ratelimit_metrics(gw->metrics);
	return 0;
}

/* ---- replies ------------------------------------------------------------------------------ */

/* A response head under construction: bounded, overflow makes it invalid. */
struct head {
	char *buf;
	size_t len, cap;
	bool overflow;
};

static void
head_add(struct head *h, const char *name, const char *value)
{
	int n;

	if (h->overflow)
		return;
	n = snprintf(h->buf + h->len, h->cap - h->len, "%s: %s\r\n", name, value);
	if (n < 0 || (size_t)n >= h->cap - h->len)
		h->overflow = true;
	else
		h->len += (size_t)n;
}

static void
head_raw(struct head *h, const char *text, size_t n)
{
	if (h->overflow || n >= h->cap - h->len) {
		h->overflow = true;
		return;
	}
	memcpy(h->buf + h->len, text, n);
	h->len += n;
}

static void
add_cors(struct gw_req *r, struct head *h, bool preflight)
{
	if (r->gw->s->cors_origins == NULL || r->gw->s->cors_origins[0] == '\0')
		return;
	head_add(h, "Vary", "Origin");
	if (r->priv->origin == NULL)
		return;
	head_add(h, "Access-Control-Allow-Origin", r->priv->origin);
	if (preflight) {
		head_add(h, "Access-Control-Allow-Methods",
		    "GET, POST, PUT, PATCH, DELETE, OPTIONS");
		head_add(h, "Access-Control-Allow-Headers", "Authorization, Content-Type");
		head_add(h, "Access-Control-Max-Age", "600");
	} else {
		head_add(h, "Access-Control-Expose-Headers", "Location, Retry-After, X-Request-Id");
	}
}

/* Whether civetweb keeps the connection open after this answer (its should_keep_alive()
 * rules: HTTP/1.1 without "Connection: close", or "Connection: keep-alive"; never after a
 * 401), so the Connection header tells the client the truth. */
static bool
keep_alive(struct mg_connection *conn, int status)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *c = mg_get_header(conn, "Connection");

	if (status == 401 || status == 413)
		return false;
	if (c != NULL)
		return strcasecmp(c, "keep-alive") == 0;
	return ri->http_version != NULL && strcmp(ri->http_version, "1.1") == 0;
}

/* The Date header's value, formatted once per second per thread. */
static const char *
http_date(struct gw_thread *t)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != t->date_at) {
		gmtime_r(&now, &tm);
		strftime(t->date, sizeof(t->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		t->date_at = now;
	}
	return t->date;
}

/*
 * Writes the whole answer with one write when it fits the thread's buffer (civetweb's own
 * header functions send every header line with a syscall of its own, which cost a third of
 * the throughput of a cached status read).
 */
static void
send_reply(struct gw_req *r, int status, const char *ctype, const char *body, size_t len,
    bool preflight)
{
	struct gw_req_priv *p = r->priv;
	struct mg_connection *c = p->conn;
	struct gw_thread *t = p->thr;
	struct head h;
	char line[64];
	bool ka;
	int i, n;

	if (r->status != 0) {
		if (!p->auto_replied)
			log_warnx("second reply %d dropped (request %s, route %s, first %d)",
			    status, p->reqid, r->route != NULL ? r->route : "-", r->status);
		return;
	}
	r->status = status;
	if (c == NULL) {	/* unit tests */
		free(p->captured);
		p->captured = body != NULL ? strndup(body, len) : strdup("");
		return;
	}
	h.buf = t->out;
	h.cap = GW_OUT_BYTES;
	h.len = 0;
	h.overflow = false;
	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
	    mg_get_response_code_text(c, status));
	head_raw(&h, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	if (ctype != NULL)
		head_add(&h, "Content-Type", ctype);
	if (status != 204) {
		snprintf(line, sizeof(line), "%zu", len);
		head_add(&h, "Content-Length", line);
	}
	head_add(&h, "X-Content-Type-Options", "nosniff");
	head_add(&h, "X-Frame-Options", "DENY");
	head_add(&h, "Referrer-Policy", "no-referrer");
	head_add(&h, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	head_add(&h, "Cache-Control", "no-store");
	head_add(&h, "X-Request-Id", p->reqid);
	add_cors(r, &h, preflight);
	for (i = 0; i < p->nhdr; i++)
		head_add(&h, p->hname[i], p->hval[i]);
	head_add(&h, "Date", http_date(t));
	ka = keep_alive(c, status);
	head_add(&h, "Connection", ka ? "keep-alive" : "close");
	head_raw(&h, "\r\n", 2);
	if (h.overflow) {	/* cannot happen with the bounded extra headers */
		log_error("response head too large (request %s)", p->reqid);
		mg_send_http_error(c, 500, "%s", "internal error");
		return;
	}
	if (p->head)
		len = 0;
	if (len > 0 && len <= h.cap - h.len) {
		memcpy(h.buf + h.len, body, len);
		mg_write(c, h.buf, h.len + len);
	} else {
		mg_write(c, h.buf, h.len);
		if (len > 0)
			mg_write(c, body, len);
	}
}

void
gw_send(struct gw_req *r, int status, const char *ctype, const char *body, size_t len)
{
	send_reply(r, status, ctype, body, len, false);
}

/* ---- request pipeline --------------------------------------------------------------------- */

/* The Origin header when it is one of UPMON_GATEWAY_CORS_ORIGINS (exact match), else NULL. */
static const char *
cors_origin(struct gw *gw, struct mg_connection *conn)
{
	const char *origin = mg_get_header(conn, "Origin"), *list = gw->s->cors_origins, *e;
	size_t olen, n;

	if (origin == NULL || list == NULL || *list == '\0')
		return NULL;
	olen = strlen(origin);
	while (*list != '\0') {
		while (*list == ' ' || *list == ',')
			list++;
		e = list;
		while (*e != '\0' && *e != ',')
			e++;
		n = (size_t)(e - list);
		while (n > 0 && list[n - 1] == ' ')
			n--;
		if (n > 0 && n == olen && memcmp(list, origin, n) == 0)
			return origin;
		list = e;
	}
	return NULL;
}

static bool
json_content_type(const char *ct)
{
	static const char want[] = "application/json";
	char c;

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	c = ct[sizeof(want) - 1];
	return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

static bool
chunked(struct mg_connection *conn)
{
	const char *te = mg_get_header(conn, "Transfer-Encoding");

	return te != NULL && strcasecmp(te, "identity") != 0;
}

/* Reads the body into the thread's buffer (at most max_body_bytes). Returns its length, or
 * -EFBIG (too large), -EIO. */
static long
read_body(struct gw_req *r, const struct mg_request_info *ri)
{
	struct gw_thread *t = r->priv->thr;
	size_t cap = (size_t)r->gw->s->max_body_bytes, got = 0;
	int n;

	if (ri->content_length > (long long)cap)
		return -EFBIG;
	if (t->body == NULL && (t->body = malloc(cap + 1)) == NULL)
		return -EIO;
	while (got <= cap) {
		n = mg_read(r->priv->conn, t->body + got, cap + 1 - got);
		if (n < 0)
			return -EIO;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > cap)
		return -EFBIG;
	return (long)got;
}

/*
 * Whether s[0..len) is UTF-8 as RFC 3629 has it: no overlong forms (C0 80 for NUL), no
 * surrogates, nothing above U+10FFFF. json-c's own check only looks at the byte pattern, so
 * such bytes got into object keys that the answer's "fields" then echoed as invalid UTF-8.
 */
static bool
utf8_strict(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Reads and checks the body of a GW_R_BODY route into r->body. Returns 0, or -1 after
 * replying. */
static int
take_body(struct gw_req *r, const struct mg_request_info *ri)
{
	struct gw_thread *t = r->priv->thr;
	struct json_object *obj;
	size_t end;
	long len;

	if (ri->content_length > r->gw->s->max_body_bytes) {
		gw_reply_error(r, 413, "payload_too_large", "request body is larger than %ld bytes",
		    r->gw->s->max_body_bytes);
		return -1;
	}
	if (!json_content_type(mg_get_header(r->priv->conn, "Content-Type"))) {
		gw_reply_error(r, 415, "unsupported_media_type",
		    "content type must be application/json");
		return -1;
	}
	len = read_body(r, ri);
	if (len == -EFBIG) {
		gw_reply_error(r, 413, "payload_too_large", "request body is larger than %ld bytes",
		    r->gw->s->max_body_bytes);
		return -1;
	}
	if (len < 0) {
		gw_reply_error(r, 400, "bad_request", "could not read the request body");
		return -1;
	}
	end = 0;
	while (end < (size_t)len && strchr(" \t\r\n", t->body[end]) != NULL)
		end++;
	if (end == (size_t)len) {
		gw_reply_error(r, 400, "bad_request", "body must be a JSON object");
		return -1;
	}
	if (!utf8_strict((const unsigned char *)t->body, (size_t)len)) {
		gw_reply_error(r, 400, "invalid_json", "request body is not valid UTF-8");
		return -1;
	}
	json_tokener_reset(t->tok);
	obj = json_tokener_parse_ex(t->tok, t->body, (int)len);
	if (obj == NULL || json_tokener_get_error(t->tok) != json_tokener_success) {
		json_object_put(obj);
		gw_reply_error(r, 400, "invalid_json", "request body is not valid JSON");
		return -1;
	}
	for (end = json_tokener_get_parse_end(t->tok); end < (size_t)len; end++) {
		if (strchr(" \t\r\n", t->body[end]) == NULL || t->body[end] == '\0') {
			json_object_put(obj);
			gw_reply_error(r, 400, "invalid_json",
			    "request body has data after the JSON object");
			return -1;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		gw_reply_error(r, 400, "bad_request", "body must be a JSON object");
		return -1;
	}
	r->body = obj;
	return 0;
}

/* A route without GW_R_BODY: any body is refused. Returns 0, or -1 after replying. */
static int
refuse_body(struct gw_req *r, const struct mg_request_info *ri)
{
	char c;

	if (ri->content_length > 0 || (ri->content_length < 0 && chunked(r->priv->conn) &&
	    mg_read(r->priv->conn, &c, 1) > 0)) {
		gw_reply_error(r, 400, "bad_request", "this request takes no body");
		return -1;
	}
	return 0;
}

/* Verifies token, or finds it in the thread's one-entry cache of the current second. */
static int
verify_token(struct gw_req *r, const char *token, size_t len)
{
	struct gw_thread *t = r->priv->thr;
	int64_t now = (int64_t)time(NULL);

	if (t->tok_at == now && t->tok_len == len && memcmp(t->tok_text, token, len) == 0) {
		r->user = t->tok_user;
		return 0;
	}
	if (gw_token_verify(r->gw->s->jwt_secret, token, now, &r->user) != 0)
		return -EACCES;
	memcpy(t->tok_text, token, len);
	t->tok_len = len;
	t->tok_user = r->user;
	t->tok_at = now;
	return 0;
}

/* Checks the bearer token. Returns 0, or -1 after replying 401. */
static int
authenticate(struct gw_req *r)
{
	const char *h = mg_get_header(r->priv->conn, "Authorization");
	size_t len;

	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		len = strlen(h);
		if (len > 0 && len <= GW_TOKEN_MAX && verify_token(r, h, len) == 0) {
			r->authed = true;
			return 0;
		}
	}
	memset(&r->user, 0, sizeof(r->user));
	gw_add_header(r, "WWW-Authenticate", "Bearer");
	gw_reply_error(r, 401, "unauthorized", "missing, invalid or expired token");
	return -1;
}

/* Admin routes: the role in the database, not only the token's, must be admin. Returns 0, or
 * -1 after replying (404 for everyone else, so admin routes are not advertised). */
static int
require_admin(struct gw_req *r)
{
	const char *params[1] = { r->user.id };
	const char *role;
	PGresult *res = NULL;
	bool admin;

	if (gw_sql(r, UPMON_DB_IDEMPOTENT, "SELECT role FROM users WHERE id = $1", 1, params,
	    &res) != 0)
		return -1;
	role = PQntuples(res) == 1 ? upmon_db_value(res, 0, 0) : NULL;
	admin = role != NULL && strcmp(role, "admin") == 0;
	PQclear(res);
	if (!admin) {
		gw_reply_not_found(r, "resource");
		return -1;
	}
	r->user.admin = true;
	return 0;
}

/* Runs an /api/v1 request: the pipeline of gw.h. Returns the metrics slot. */
static size_t
serve_api(struct gw_req *r, const struct mg_request_info *ri)
{
	const struct gw_route *route;
	char key[80], allow[96];
	bool mismatch;
	long lim;

	if (gw_route_match(r->method, r->path, &route, r->params, &mismatch) != 0) {
		if (strcmp(r->method, "OPTIONS") == 0 && mismatch) {
			gw_route_allow(r->path, allow, sizeof(allow));
			gw_add_header(r, "Allow", allow);
			send_reply(r, 204, NULL, NULL, 0, true);
			return gw_nroutes + SLOT_PREFLIGHT;
		}
		if (mismatch) {
			gw_route_allow(r->path, allow, sizeof(allow));
			gw_add_header(r, "Allow", allow);
			gw_reply_error(r, 405, "method_not_allowed", "method %s is not allowed here",
			    method_names[method_index(r->method)]);
		} else {
			gw_reply_not_found(r, "resource");
		}
		return gw_nroutes + SLOT_UNMATCHED;
	}
	r->route = route->pattern;
	if ((lim = r->gw->s->rate_ip_per_min) > 0) {
		snprintf(key, sizeof(key), "ip:%s", r->client_ip);
		if (gw_rate_hit(r, key, lim, 60) != 0)
			goto done;
	}
	if ((route->flags & GW_R_AUTHRATE) && (lim = r->gw->s->rate_auth_ip_per_min) > 0) {
		snprintf(key, sizeof(key), "auth:%s", r->client_ip);
		if (gw_rate_hit(r, key, lim, 60) != 0)
			goto done;
	}
	if (!(route->flags & GW_R_PUBLIC) && authenticate(r) != 0)
		goto done;
	if ((route->flags & GW_R_ADMIN) && require_admin(r) != 0)
		goto done;
	if ((route->flags & GW_R_BODY) ? take_body(r, ri) != 0 : refuse_body(r, ri) != 0)
		goto done;
	route->handler(r);
	if (r->status == 0) {
		log_error("handler of %s %s did not reply (request %s)", route->method,
		    route->pattern, r->priv->reqid);
		gw_reply_error(r, 500, "internal", "internal error");
	}
done:
	return (size_t)(route - gw_routes);
}

static size_t
serve_ops(struct gw_req *r, const char *uri)
{
	char *text = NULL;
	size_t len = 0;
	bool ready;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		gw_add_header(r, "Allow", "GET, HEAD");
		gw_reply_error(r, 405, "method_not_allowed", "method not allowed");
		return gw_nroutes + SLOT_UNMATCHED;
	}
	if (strcmp(uri, "/healthz") == 0) {
		gw_send(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
		return gw_nroutes + SLOT_HEALTHZ;
	}
	if (strcmp(uri, "/readyz") == 0) {
		ready = r->gw->admin == NULL || upmon_admin_is_ready(r->gw->admin);
		if (ready)
			gw_send(r, 200, "application/json", "{\"ready\":true}", 14);
		else
			gw_send(r, 503, "application/json", "{\"ready\":false}", 15);
		return gw_nroutes + SLOT_READYZ;
	}
	if (upmon_metrics_render(r->gw->metrics, &text, &len) != 0) {
		gw_reply_error(r, 500, "internal", "out of memory");
	} else {
		gw_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
		free(text);
	}
	return gw_nroutes + SLOT_METRICS;
}

/* Access-log lines per worker thread and second beyond which 4xx lines are only counted
 * (a flood of 401s or 429s must not turn into a flood of writes). */
#define LOG_LINES_PER_SEC	20

static void
access_log(struct gw_req *r, size_t slot, int64_t ns)
{
	struct gw_thread *t = r->priv->thr;
	char fields[256];
	const char *route = slot < gw_nroutes ? gw_routes[slot].pattern :
	    slot_names[slot - gw_nroutes];
	int level = r->status >= 500 ? UPMON_LOG_WARN :
	    r->status >= 400 ? UPMON_LOG_INFO : UPMON_LOG_DEBUG;
	int64_t sec;

	if (!log_enabled(level))
		return;
	if (t != NULL && level == UPMON_LOG_INFO) {
		sec = (int64_t)time(NULL);
		if (sec != t->log_sec) {
			if (t->log_skipped > 0)
				log_info("%u request lines skipped (more than %d per second on "
				    "one thread)", t->log_skipped, LOG_LINES_PER_SEC);
			t->log_sec = sec;
			t->log_lines = 0;
			t->log_skipped = 0;
		}
		if (t->log_lines >= LOG_LINES_PER_SEC) {
			t->log_skipped++;
			return;
		}
		t->log_lines++;
	}
	snprintf(fields, sizeof(fields), "method=%s route=%s status=%d ms=%.3f request_id=%s "
	    "client=%s", method_names[method_index(r->method)], route, r->status,
	    (double)ns / 1e6, r->priv->reqid, r->client_ip);
	log_emit(level, fields, "request");
}

static int
handle(struct mg_connection *conn, void *cbdata)
{
	struct gw *gw = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *uri = ri->local_uri != NULL ? ri->local_uri : "";
	int64_t start = now_ns();
	struct gw_req_priv priv;
	struct gw_req r;
	uint64_t seq;
	size_t slot;

	memset(&r, 0, sizeof(r));
	priv.conn = conn;
	priv.thr = mg_get_thread_pointer(conn);
	priv.origin = cors_origin(gw, conn);
	priv.nhdr = 0;
	priv.hlen = 0;
	priv.db = NULL;
	priv.amqp_held = priv.auto_replied = false;
	/* no answer to a HEAD carries a body, errors included: a body there would be read as
	 * the start of the next answer on a keep-alive connection */
	priv.head = ri->request_method != NULL && strcmp(ri->request_method, "HEAD") == 0;
	priv.captured = NULL;
	seq = atomic_fetch_add_explicit(&gw->reqid_seq, 1, memory_order_relaxed);
	snprintf(priv.reqid, sizeof(priv.reqid), "%08x%08x", gw->reqid_prefix,
	    (unsigned)seq);
	r.gw = gw;
	r.priv = &priv;
	r.method = ri->request_method;
	r.query = ri->query_string;
	snprintf(r.client_ip, sizeof(r.client_ip), "%s", ri->remote_addr);

	if (priv.thr == NULL) {
		gw_reply_error(&r, 500, "internal", "internal error");
		slot = gw_nroutes + SLOT_UNMATCHED;
	} else if (strncmp(uri, API_PREFIX, API_PREFIX_LEN) == 0 &&
	    (uri[API_PREFIX_LEN] == '/' || uri[API_PREFIX_LEN] == '\0')) {
		r.path = uri + API_PREFIX_LEN;
		slot = serve_api(&r, ri);
	} else if (strcmp(uri, "/healthz") == 0 || strcmp(uri, "/readyz") == 0 ||
	    strcmp(uri, "/metrics") == 0) {
		r.path = uri;
		slot = serve_ops(&r, uri);
	} else {
		r.path = uri;
		gw_reply_not_found(&r, "resource");
		slot = gw_nroutes + SLOT_UNMATCHED;
	}
	gw_req_release(&r);
	json_object_put(r.body);
	start = now_ns() - start;
	count_request(gw, slot, r.method, r.status, (double)start / 1e9);
	access_log(&r, slot, start);
	return r.status;
}

/* Authorization is the pipeline's (tokens); without this handler civetweb looks for an
 * .htpasswd file on every request. */
static int
auth_ok(struct mg_connection *conn, void *cbdata)
{
	(void)conn;
	(void)cbdata;
	return 1;
}

/*
 * civetweb's own error answers (malformed request line or headers, bad Content-Length or
 * chunking, unsupported HTTP version, oversize head) in the API's shape: the JSON error, the
 * security headers, "Connection: close", and always "HTTP/1.1" in the status line (civetweb
 * echoes the request's version token, which is client text). A bad version is bad input:
 * 400, not civetweb's 505. The message is fixed per status and never repeats client input.
 */
static int
http_error_json(struct mg_connection *conn, int status, const char *errmsg)
{
	struct gw *gw = mg_get_user_data(mg_get_context(conn));
	const struct mg_request_info *ri;
	const char *code, *msg;
	char out[1024], body[256], reqid[GW_REQID_LEN + 1];
	uint64_t seq;
	int n, blen;

	(void)errmsg;
	seq = gw != NULL ? atomic_fetch_add_explicit(&gw->reqid_seq, 1, memory_order_relaxed) : 0;
	snprintf(reqid, sizeof(reqid), "%08x%08x", gw != NULL ? gw->reqid_prefix : 0,
	    (unsigned)seq);
	if (status == 505 || status < 400)
		status = 400;
	switch (status) {
	case 400: code = "bad_request"; msg = "malformed http request"; break;
	case 404: code = "not_found"; msg = "resource not found"; break;
	case 405: code = "method_not_allowed"; msg = "method not allowed"; break;
	case 411: code = "length_required"; msg = "request body length required"; break;
	case 413: code = "payload_too_large"; msg = "request is too large"; break;
	case 414: code = "uri_too_long"; msg = "request target is too long"; break;
	case 431: code = "headers_too_large"; msg = "request headers are too large"; break;
	default:
		if (status >= 500) {
			code = "internal";
			msg = "internal error";
		} else {
			code = "bad_request";
			msg = "bad request";
		}
		break;
	}
	blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
	    code, msg);
	n = snprintf(out, sizeof(out), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %d\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "X-Frame-Options: DENY\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Request-Id: %s\r\n"
	    "Connection: close\r\n\r\n%s",
	    status, mg_get_response_code_text(conn, status), blen, reqid, body);
	if (n > 0 && (size_t)n < sizeof(out)) {
		ri = mg_get_request_info(conn);
		if (ri != NULL && ri->request_method != NULL &&
		    strcmp(ri->request_method, "HEAD") == 0)
			n -= blen;	/* the head only: see handle() */
		mg_write(conn, out, (size_t)n);
	}
	log_debug("civetweb error answer %d (%s)", status, code);
	return 0;
}

static int
log_civetweb(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warnx("http: %s", message);
	return 1;
}

static uint32_t
random_u32(void)
{
	uint32_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		v = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
	if (fd >= 0)
		close(fd);
	return v;
}

int
gw_server_start(const struct gw_server_config *cfg, struct gw **out)
{
	struct mg_callbacks cb;
	struct mg_server_port ports[4];
	struct mg_init_data init;
	struct mg_error_data error;
	struct gw *gw;
	char lport[64], threads[16], etext[256] = "";
	const char *options[] = {
		"listening_ports", lport, "num_threads", threads,
		"request_timeout_ms", "30000", "keep_alive_timeout_ms", "5000",
		"enable_keep_alive", "yes", "tcp_nodelay", "1", "listen_backlog", "1024",
		"decode_url", "yes",
		/* CORS is ours: civetweb must not answer preflights itself */
		"access_control_allow_origin", "", "access_control_allow_methods", "",
		"access_control_allow_headers", "", NULL,
	};
	int n, rc;

	*out = NULL;
	if ((gw = calloc(1, sizeof(*gw))) == NULL)
		return -ENOMEM;
	gw->s = cfg->s;
	gw->common = cfg->common;
	gw->metrics = cfg->metrics;
	gw->admin = cfg->admin;
	gw->reqid_prefix = random_u32();
	if ((rc = gw_resources_init(gw)) != 0 || (rc = metrics_init(gw)) != 0) {
		gw_server_stop(gw);
		return rc;
	}
	snprintf(lport, sizeof(lport), "%s:%ld", cfg->s->addr, cfg->s->port);
	snprintf(threads, sizeof(threads), "%ld", cfg->s->threads);
	pthread_once(&mg_once, mg_library_init);
	memset(&cb, 0, sizeof(cb));
	cb.log_message = log_civetweb;
	cb.http_error = http_error_json;
	cb.init_thread = on_init_thread;
	cb.exit_thread = on_exit_thread;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = gw;
	init.configuration_options = options;
	memset(&error, 0, sizeof(error));
	error.text = etext;
	error.text_buffer_size = sizeof(etext);
	if ((gw->ctx = mg_start2(&init, &error)) == NULL) {
		log_error("cannot listen on %s: %s", lport, etext);
		gw_server_stop(gw);
		return -EIO;
	}
	mg_set_auth_handler(gw->ctx, "/", auth_ok, NULL);
	mg_set_request_handler(gw->ctx, "/", handle, gw);
	n = mg_get_server_ports(gw->ctx, 4, ports);
	gw->port = n > 0 ? ports[0].port : (int)cfg->s->port;
	log_info("api listening on http://%s:%d%s (%ld threads, %ld database connections)",
	    cfg->s->addr, gw->port, API_PREFIX, cfg->s->threads, cfg->s->db_pool);
	*out = gw;
	return 0;
}

int
gw_server_port(const struct gw *gw)
{
	return gw != NULL ? gw->port : -1;
}

void
gw_server_stop(struct gw *gw)
{
	if (gw == NULL)
		return;
	if (gw->ctx != NULL)
		mg_stop(gw->ctx);
	gw_resources_release(gw);
	free(gw->req_counters);
	free(gw);
}

const struct gw_settings *
gw_settings(const struct gw_req *r)
{
	return r->gw->s;
}

void
gw_req_detached_init(struct gw_req *r, struct gw_req_priv *p, const char *query,
    const char *reqid)
{
	memset(r, 0, sizeof(*r));
	memset(p, 0, sizeof(*p));
	r->priv = p;
	r->query = query;
	r->method = "GET";
	snprintf(p->reqid, sizeof(p->reqid), "%s", reqid);
}

void
gw_req_detached_reset(struct gw_req *r)
{
	free(r->priv->captured);
	r->priv->captured = NULL;
	r->status = 0;
	r->priv->nhdr = 0;
	r->priv->hlen = 0;
}
