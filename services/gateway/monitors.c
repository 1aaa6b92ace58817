/*
 * /monitors: the CRUD handlers of a tenant's monitors (docs/openapi.yaml, Monitors).
 *
 * The definition's rules live in common/src/monitor.c; this file maps requests onto the
 * monitors table. Every statement filters by owner_id = the caller (a parameter), so another
 * tenant's monitor is answered 404 exactly like a missing one. Every write goes through the
 * monitors table, whose trigger (sql/0001) NOTIFYs monitor_changed for the scheduler.
 * Lists are ordered by (created_at, id); the cursor carries created_at in microseconds.
 *
 * List cache: a page is cached in Redis under upmon:gw:mon:<owner>:<gen>:<hash of the
 * normalised query> for list_cache_ttl_ms, where <gen> is upmon:gw:mongen:<owner> (missing =
 * 0). Every write INCRs the generation after its commit, so a list is never staler than the
 * TTL, with any number of gateways. Redis down: straight from PostgreSQL. X-Cache: hit|miss.
 */
#include "gw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/config.h"
#include "upmon/jsonv.h"
#include "upmon/log.h"
#include "upmon/monitor.h"

#define MON_FROM " FROM monitors m LEFT JOIN monitor_state s ON s.monitor_id = m.id"
#define MON_SELECT "SELECT " UPMON_MONITOR_SELECT ", COALESCE(s.status, 'pending')" MON_FROM
#define MON_STATUS_COL UPMON_MONITOR_SELECT_NCOLS

#define LIST_DEFAULT 50
#define LIST_MAX 200

static const char *const no_query[] = { NULL };

/* ---- helpers ------------------------------------------------------------------------------ */

static void
reply_internal(struct gw_req *r, const char *what)
{
	log_warnx("monitors: %s", what);
	gw_reply_error(r, 500, "internal", "internal error");
}

static void
reply_name_conflict(struct gw_req *r)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object(),
	    *f = json_object_new_object();

	json_object_object_add(f, "name", json_object_new_string("is already used by another "
	    "monitor"));
	json_object_object_add(e, "code", json_object_new_string("conflict"));
	json_object_object_add(e, "message", json_object_new_string("a monitor with this name "
	    "already exists"));
	json_object_object_add(e, "fields", f);
	json_object_object_add(o, "error", e);
	gw_reply_json(r, 409, o);
}

/* INCR the caller's list generation (after a committed write); Redis down is fine: lists
 * then expire within their TTL. */
static void
bump_generation(struct gw_req *r)
{
	(void)upmon_cache_monitors_changed(gw_cache(r), r->user.id);
}

/* Drops the cached latest status of monitor id after a delete, pause or resume, so GET
 * .../status answers from PostgreSQL (gone, paused, pending) instead of the last check.
 * Redis down: the stale value stays until the next check of a resumed monitor overwrites it;
 * it is still only served to its owner (the status handler compares owner_id). */
static void
forget_status(struct gw_req *r, const char *id)
{
	char key[96];

	if (upmon_cache_status_key(key, sizeof(key), id) == 0)
		(void)upmon_cache_del(gw_cache(r), key);
}

/* Reads the caller's monitor id into *m (status included). Returns 0, or a negative code
 * after replying (404 when it is not the caller's). for_update: inside a transaction. */
static int
mon_load(struct gw_req *r, const char *id, bool for_update, struct upmon_monitor *m)
{
	const char *p[2] = { id, r->user.id };
	const char *st;
	PGresult *res;
	int rc;

	rc = gw_sql(r, for_update ? 0 : UPMON_DB_IDEMPOTENT, for_update ?
	    MON_SELECT " WHERE m.id = $1 AND m.owner_id = $2 FOR UPDATE OF m" :
	    MON_SELECT " WHERE m.id = $1 AND m.owner_id = $2", 2, p, &res);
	if (rc < 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		gw_reply_not_found(r, "monitor");
		return -ENOENT;
	}
	if (upmon_monitor_from_row(res, 0, 0, m) != 0) {
		PQclear(res);
		reply_internal(r, "cannot read a monitor row");
		return -EINVAL;
	}
	st = upmon_db_value(res, 0, MON_STATUS_COL);
	snprintf(m->status, sizeof(m->status), "%s", st != NULL ? st : "pending");
	PQclear(res);
	return 0;
}

static void
mon_reply(struct gw_req *r, int status, const struct upmon_monitor *m)
{
	struct json_object *o;

	if (upmon_monitor_to_json(m, 0, &o) != 0) {
		reply_internal(r, "out of memory");
		return;
	}
	gw_reply_json(r, status, o);
}

/* Loads the caller's monitor id after a write and answers it with status. */
static void
mon_load_reply(struct gw_req *r, const char *id, int status)
{
	struct upmon_monitor m;

	if (mon_load(r, id, false, &m) != 0)
		return;
	mon_reply(r, status, &m);
	upmon_monitor_release(&m);
}

/* Reads the request body as a monitor (replying 400 with every bad field). */
static int
mon_read_body(struct gw_req *r, enum upmon_monitor_mode mode, const struct upmon_monitor *base,
    struct upmon_monitor *m)
{
	struct json_object *fields = NULL;
	int rc;

	rc = upmon_monitor_from_json(r->body, mode, base, m, &fields);
	if (rc == -EINVAL)
		gw_reply_fields(r, fields);
	else if (rc != 0)
		reply_internal(r, "out of memory");
	return rc;
}

/*
 * Runs sql with params[0..nfixed-1] followed by the monitor's columns. Returns 0 with *res,
 * or a negative code after replying.
 */
static int
mon_write(struct gw_req *r, const char *sql, const char *const *fixed, int nfixed,
    const struct upmon_monitor *m, PGresult **res)
{
	struct upmon_monitor_params mp;
	const char *p[4 + UPMON_MONITOR_NCOLS];
	int i, rc;

	if (upmon_monitor_params(m, &mp) != 0) {
		upmon_monitor_params_release(&mp);
		reply_internal(r, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < nfixed; i++)
		p[i] = fixed[i];
	for (i = 0; i < UPMON_MONITOR_NCOLS; i++)
		p[nfixed + i] = mp.v[i];
	rc = gw_sql(r, 0, sql, nfixed + UPMON_MONITOR_NCOLS, p, res);
	upmon_monitor_params_release(&mp);
	return rc;
}

/* 1 when another monitor of the caller (not id; id may be NULL) has name, 0 if not, or a
 * negative code after replying. */
static int
name_taken(struct gw_req *r, const char *name, const char *id)
{
	const char *p[3] = { r->user.id, name, id };
	PGresult *res;
	int rc;

	rc = gw_sql(r, 0, "SELECT 1 FROM monitors WHERE owner_id = $1 AND name = $2 AND "
	    "($3::uuid IS NULL OR id <> $3::uuid)", 3, p, &res);
	if (rc < 0)
		return rc;
	rc = PQntuples(res) > 0;
	PQclear(res);
	return rc;
}

/* UPDATE the caller's monitor id to m. Returns 0, or a negative code after replying. */
static int
mon_update(struct gw_req *r, const char *id, const struct upmon_monitor *m)
{
	const char *fixed[2] = { id, r->user.id };
	char set[2048], sql[2400];
	PGresult *res;
	int rc;

	if ((rc = name_taken(r, m->name, id)) != 0) {
		if (rc > 0)
			reply_name_conflict(r);
		return rc > 0 ? -EEXIST : rc;
	}
	if (upmon_monitor_sql_list(UPMON_MONITOR_SQL_SET, 3, set, sizeof(set)) != 0) {
		reply_internal(r, "statement too long");
		return -ENOSPC;
	}
	snprintf(sql, sizeof(sql), "UPDATE monitors SET %s WHERE id = $1 AND owner_id = $2 "
	    "RETURNING id", set);
	if ((rc = mon_write(r, sql, fixed, 2, m, &res)) < 0)
		return rc;
	rc = PQntuples(res) == 1 ? 0 : -ENOENT;
	PQclear(res);
	if (rc != 0)
		gw_reply_not_found(r, "monitor");
	return rc;
}

/* ---- handlers ----------------------------------------------------------------------------- */

void
gw_monitors_create(struct gw_req *r)
{
	const char *fixed[1] = { r->user.id };
	struct upmon_monitor m;
	char values[512], sql[1024], loc[128], id[GW_UUID_LEN + 1];
	PGresult *res;

	if (gw_query_allow(r, no_query) != 0 || mon_read_body(r, UPMON_MONITOR_CREATE, NULL,
	    &m) != 0)
		return;
	if (upmon_monitor_sql_list(UPMON_MONITOR_SQL_VALUES, 2, values, sizeof(values)) != 0) {
		reply_internal(r, "statement too long");
		goto out;
	}
	snprintf(sql, sizeof(sql), "INSERT INTO monitors (owner_id, " UPMON_MONITOR_COLUMNS ") "
	    "VALUES ($1, %s) ON CONFLICT (owner_id, name) DO NOTHING RETURNING id", values);
	if (mon_write(r, sql, fixed, 1, &m, &res) < 0)
		goto out;
	if (PQntuples(res) != 1) {
		PQclear(res);
		reply_name_conflict(r);
		goto out;
	}
	snprintf(id, sizeof(id), "%s", upmon_db_value(res, 0, 0));
	PQclear(res);
	bump_generation(r);
	snprintf(loc, sizeof(loc), "/api/v1/monitors/%s", id);
	gw_add_header(r, "Location", loc);
	mon_load_reply(r, id, 201);
out:
	upmon_monitor_release(&m);
}

void
gw_monitors_get(struct gw_req *r)
{
	if (gw_query_allow(r, no_query) != 0)
		return;
	mon_load_reply(r, r->params[0], 200);
}

void
gw_monitors_put(struct gw_req *r)
{
	struct upmon_monitor m;

	if (gw_query_allow(r, no_query) != 0 || mon_read_body(r, UPMON_MONITOR_REPLACE, NULL,
	    &m) != 0)
		return;
	if (mon_update(r, r->params[0], &m) == 0) {
		bump_generation(r);
		mon_load_reply(r, r->params[0], 200);
	}
	upmon_monitor_release(&m);
}

void
gw_monitors_patch(struct gw_req *r)
{
	struct upmon_monitor base, m;
	struct upmon_db_error err;
	struct upmon_db *db;

	memset(&m, 0, sizeof(m));
	memset(&base, 0, sizeof(base));
	if (gw_query_allow(r, no_query) != 0)
		return;
	if (gw_db(r, &db) != 0) {
		gw_add_header(r, "Retry-After", "1");
		gw_reply_error(r, 503, "unavailable", "the database is unavailable");
		return;
	}
	/* read, merge, validate and write under the row lock, so concurrent patches of
	 * different fields both land */
	if (upmon_db_begin(db, &err) != 0) {
		gw_add_header(r, "Retry-After", "1");
		gw_reply_error(r, 503, "unavailable", "the database is unavailable");
		return;
	}
	if (mon_load(r, r->params[0], true, &base) != 0 ||
	    mon_read_body(r, UPMON_MONITOR_PATCH, &base, &m) != 0 ||
	    mon_update(r, r->params[0], &m) != 0)
		goto out;
	if (upmon_db_commit(db, &err) != 0) {
		gw_add_header(r, "Retry-After", "1");
		gw_reply_error(r, 503, "unavailable", "the database is unavailable");
		goto out;
	}
	bump_generation(r);
	mon_load_reply(r, r->params[0], 200);
out:
	upmon_db_rollback(db, NULL);
	upmon_monitor_release(&m);
	upmon_monitor_release(&base);
}

void
gw_monitors_delete(struct gw_req *r)
{
	const char *p[2] = { r->params[0], r->user.id };
	PGresult *res;
	int n;

	if (gw_query_allow(r, no_query) != 0)
		return;
	if (gw_sql(r, 0, "DELETE FROM monitors WHERE id = $1 AND owner_id = $2 RETURNING id", 2,
	    p, &res) < 0)
		return;
	n = PQntuples(res);
	PQclear(res);
	if (n == 0) {
		gw_reply_not_found(r, "monitor");
		return;
	}
	bump_generation(r);
	forget_status(r, r->params[0]);
	gw_reply_no_content(r);
}

/* pause and resume: idempotent; the state row follows by trigger (sql/0001). */
static void
set_paused(struct gw_req *r, bool paused)
{
	const char *p[3] = { r->params[0], r->user.id, paused ? "true" : "false" };
	PGresult *res;
	int changed;

	if (gw_query_allow(r, no_query) != 0)
		return;
	if (gw_sql(r, 0, "UPDATE monitors SET paused = $3::boolean WHERE id = $1 AND "
	    "owner_id = $2 AND paused <> $3::boolean RETURNING id", 3, p, &res) < 0)
		return;
	changed = PQntuples(res);
	PQclear(res);
	if (changed) {
		bump_generation(r);
		forget_status(r, r->params[0]);
	}
	mon_load_reply(r, r->params[0], 200);
}

void
gw_monitors_pause(struct gw_req *r)
{
	set_paused(r, true);
}

void
gw_monitors_resume(struct gw_req *r)
{
	set_paused(r, false);
}

/* ---- list --------------------------------------------------------------------------------- */

struct list_query {
	long limit;
	char cursor[256];
	char status[16];
	char tag[4 * 64 + 1];
	char q[4 * 200 + 1];
	bool has_cursor, has_status, has_tag, has_q;
};

/* Reads and checks the query string; 0, or a negative code after replying. */
static int
list_query_read(struct gw_req *r, struct list_query *lq)
{
	static const char *const allowed[] = { "limit", "cursor", "status", "tag", "q", NULL };
	static const char *const statuses[] = { "pending", "up", "down", "paused", NULL };
	struct json_object *fields;
	const char *why;
	size_t i;
	int rc;

	memset(lq, 0, sizeof(*lq));
	if ((rc = gw_query_allow(r, allowed)) != 0 ||
	    (rc = gw_query_long(r, "limit", 1, LIST_MAX, LIST_DEFAULT, &lq->limit)) != 0)
		return rc;
#define OPT(name, field) do { \
	rc = gw_query_str(r, name, lq->field, sizeof(lq->field)); \
	if (rc == -EINVAL) return rc; \
	lq->has_##field = rc == 0; } while (0)
	OPT("cursor", cursor);
	OPT("status", status);
	OPT("tag", tag);
	OPT("q", q);
#undef OPT
	if (lq->has_status) {
		for (i = 0; statuses[i] != NULL && strcmp(statuses[i], lq->status) != 0; i++)
			;
		if (statuses[i] == NULL) {
			fields = json_object_new_object();
			json_object_object_add(fields, "status", json_object_new_string(
			    "must be one of pending, up, down, paused"));
			gw_reply_fields(r, fields);
			return -EINVAL;
		}
	}
	if (lq->has_tag && upmon_jv_check_text(lq->tag, strlen(lq->tag), 1,
	    UPMON_MONITOR_TAG_MAX, UPMON_JV_NO_CTRL, &why) != 0) {
		fields = json_object_new_object();
		json_object_object_add(fields, "tag", json_object_new_string(why));
		gw_reply_fields(r, fields);
		return -EINVAL;
	}
	return 0;
}

/* FNV-1a 64 over the normalised query, for the cache key. */
static uint64_t
list_hash(const struct list_query *lq)
{
	const char *parts[5] = { lq->has_cursor ? lq->cursor : "", lq->has_status ? lq->status :
	    "", lq->has_tag ? lq->tag : "", lq->has_q ? lq->q : "", NULL };
	uint64_t h = 1469598103934665603ULL;
	char lim[24];
	size_t i;
	const unsigned char *p;

	snprintf(lim, sizeof(lim), "%ld", lq->limit);
	parts[4] = lim;
	for (i = 0; i < 5; i++) {
		for (p = (const unsigned char *)parts[i]; *p != '\0'; p++)
			h = (h ^ *p) * 1099511628211ULL;
		/* a separator no part can contain, and which flags presence */
		h = (h ^ (0x100u + i)) * 1099511628211ULL;
	}
	h = (h ^ (unsigned)(lq->has_cursor | lq->has_status << 1 | lq->has_tag << 2 |
	    lq->has_q << 3)) * 1099511628211ULL;
	return h;
}

/* The cache key of this page, or -1 when the list cache is off or Redis is down. */
static int
list_cache_key(struct gw_req *r, const struct list_query *lq, char *key, size_t size)
{
	char gkey[96], *gen = NULL;
	long g = 0;
	int n;

	if (gw_settings(r)->list_cache_ttl_ms <= 0)
		return -1;
	if (upmon_cache_monitors_gen_key(gkey, sizeof(gkey), r->user.id) != 0)
		return -1;
	if (upmon_cache_get(gw_cache(r), gkey, &gen, NULL) != 0)
		return -1;
	if (gen != NULL && upmon_parse_long(gen, 0, 0x7fffffffffffffffL, &g) != 0)
		g = 0;
	free(gen);
	n = snprintf(key, size, "upmon:gw:mon:%s:%ld:%016" PRIx64, r->user.id, g, list_hash(lq));
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Escapes LIKE's metacharacters (backslash is the escape) and wraps in %...%. */
static void
like_pattern(const char *q, char *buf, size_t size)
{
	size_t n = 0;

	buf[n++] = '%';
	for (; *q != '\0' && n + 4 < size; q++) {
		if (*q == '%' || *q == '_' || *q == '\\')
			buf[n++] = '\\';
		buf[n++] = *q;
	}
	buf[n++] = '%';
	buf[n] = '\0';
}

/* Builds the page {"items", "next_cursor"} from PostgreSQL. Returns 0 with *out, or a
 * negative code after replying. */
static int
list_from_db(struct gw_req *r, const struct list_query *lq, struct json_object **out)
{
	char like[2 * sizeof(lq->q) + 4], ms[24], limit[24], cid[GW_UUID_LEN + 1], next[256];
	const char *p[7] = { r->user.id, NULL, NULL, NULL, NULL, NULL, limit };
	struct json_object *page, *items, *item;
	struct upmon_monitor m;
	int64_t cms = 0;
	PGresult *res;
	int i, n, rc;

	if (lq->has_cursor) {
		if ((rc = gw_cursor_decode(r, lq->cursor, &cms, cid, sizeof(cid))) == -EINVAL)
			return rc;
		if (rc == 0) {
			snprintf(ms, sizeof(ms), "%" PRId64, cms);
			p[4] = ms;
			p[5] = cid;
		}
	}
	if (lq->has_status)
		p[1] = lq->status;
	if (lq->has_tag)
		p[2] = lq->tag;
	if (lq->has_q) {
		like_pattern(lq->q, like, sizeof(like));
		p[3] = like;
	}
	snprintf(limit, sizeof(limit), "%ld", lq->limit + 1);
	/* the cursor holds created_at in microseconds (exact, so the order can follow the
	 * (owner_id, created_at, id) index) */
	rc = gw_sql(r, UPMON_DB_IDEMPOTENT, "SELECT " UPMON_MONITOR_SELECT ", "
	    "COALESCE(s.status, 'pending'), (extract(epoch FROM m.created_at) * 1000000)::bigint"
	    MON_FROM " WHERE m.owner_id = $1"
	    " AND ($2::text IS NULL OR COALESCE(s.status, 'pending') = $2::text)"
	    " AND ($3::text IS NULL OR m.tags @> ARRAY[$3::text])"
	    " AND ($4::text IS NULL OR m.name ILIKE $4::text ESCAPE '\\')"
	    " AND ($5::bigint IS NULL OR (m.created_at, m.id) >"
	    " ('epoch'::timestamptz + $5::bigint * interval '1 microsecond', $6::uuid))"
	    " ORDER BY m.created_at, m.id LIMIT $7::integer", 7, p, &res);
	if (rc < 0)
		return rc;
	n = PQntuples(res);
	page = json_object_new_object();
	items = json_object_new_array();
	json_object_object_add(page, "items", items);
	next[0] = '\0';
	for (i = 0; i < n && i < lq->limit; i++) {
		if (upmon_monitor_from_row(res, i, 0, &m) != 0) {
			PQclear(res);
			json_object_put(page);
			reply_internal(r, "cannot read a monitor row");
			return -EINVAL;
		}
		snprintf(m.status, sizeof(m.status), "%s", upmon_db_value(res, i,
		    MON_STATUS_COL));
		if (upmon_monitor_to_json(&m, 0, &item) == 0)
			json_object_array_add(items, item);
		if (i + 1 == lq->limit && n > lq->limit && (upmon_db_int64(res, i,
		    MON_STATUS_COL + 1, &cms) != 0 ||
		    gw_cursor_encode(cms, m.id, next, sizeof(next)) != 0))
			next[0] = '\0';
		upmon_monitor_release(&m);
	}
	PQclear(res);
	json_object_object_add(page, "next_cursor", next[0] != '\0' ?
	    json_object_new_string(next) : NULL);
	*out = page;
	return 0;
}

void
gw_monitors_list(struct gw_req *r)
{
	struct list_query lq;
	struct json_object *page = NULL;
	char key[256], *cached = NULL;
	const char *text;
	int cache;

	if (list_query_read(r, &lq) != 0)
		return;
	cache = list_cache_key(r, &lq, key, sizeof(key)) == 0;
	if (cache && upmon_cache_get(gw_cache(r), key, &cached, NULL) == 0 && cached != NULL) {
		page = json_tokener_parse(cached);
		free(cached);
		if (page != NULL) {
			gw_add_header(r, "X-Cache", "hit");
			gw_reply_json(r, 200, page);
			return;
		}
	}
	if (list_from_db(r, &lq, &page) != 0)
		return;
	if (cache && (text = json_object_to_json_string_ext(page, JSON_C_TO_STRING_PLAIN)) !=
	    NULL)
		upmon_cache_set(gw_cache(r), key, text, strlen(text),
		    gw_settings(r)->list_cache_ttl_ms);
	gw_add_header(r, "X-Cache", "miss");
	gw_reply_json(r, 200, page);
}
