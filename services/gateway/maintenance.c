/*
 * Maintenance windows: CRUD of the caller's windows (table maintenance_windows, sql/0003).
 * While a monitor is inside one of its owner's windows (monitor_id NULL = all of them) the
 * probe's state machine raises no alerts and the checks are left out of uptime.
 *
 * A window is "once" ([starts_at, ends_at)) or "weekly" (on each ISO weekday of weekdays,
 * from start_time for duration_minutes, in time_zone local time). Answers carry every field,
 * null for the other kind's, and "active": whether now is inside the window. PUT replaces the
 * whole window (omitted fields take their defaults); PATCH merges the given fields into the
 * stored window (changing the kind drops the old kind's fields) and validates the result as
 * a whole. Every statement filters by the caller's owner_id; a monitor_id that is not one of
 * the caller's monitors is a validation error, another tenant's window is 404.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "upmon/jsonv.h"
#include "upmon/log.h"

#define PAGE_DEFAULT	50
#define PAGE_MAX	200
#define NAME_MAX_CHARS	200
#define TZ_MAX_CHARS	64
#define DURATION_MAX	10080	/* one week, in minutes */

enum { KIND_ONCE, KIND_WEEKLY };

static const char *const kinds[] = { "once", "weekly", NULL };
static const char *const body_keys[] = {
	"name", "monitor_id", "kind", "starts_at", "ends_at", "weekdays", "start_time",
	"duration_minutes", "time_zone", NULL,
};
static const char *const once_keys[] = { "starts_at", "ends_at", NULL };
static const char *const weekly_keys[] = { "weekdays", "start_time", "duration_minutes",
	NULL };

/* Whether now is inside the window of the current row: the rule of upmon_in_maintenance()
 * (sql/0003) for this one window. */
#define MW_ACTIVE "CASE WHEN kind = 'once' THEN now() >= starts_at AND now() < ends_at" \
    " ELSE EXISTS (SELECT 1 FROM unnest(weekdays) AS wd(d)," \
    "  LATERAL (SELECT now() AT TIME ZONE time_zone AS t) AS l," \
    "  LATERAL (SELECT (l.t::date - ((extract(isodow FROM l.t)::integer - wd.d + 7) % 7))" \
    "   + start_time AS s) AS s0," \
    "  LATERAL (SELECT CASE WHEN s0.s > l.t THEN s0.s - interval '7 days' ELSE s0.s END" \
    "   AS s) AS st" \
    "  WHERE l.t < st.s + make_interval(mins => duration_minutes)) END"

/* The columns every answer is built from, in this order (mw_json). */
#define MW_COLS "id, name, monitor_id::text, kind, upmon_ts_to_ms(starts_at)," \
    " upmon_ts_to_ms(ends_at), array_to_json(weekdays)::text," \
    " to_char(start_time, 'HH24:MI'), duration_minutes, time_zone, " MW_ACTIVE "," \
    " upmon_ts_to_ms(created_at), upmon_ts_to_ms(updated_at)"
#define COL_CREATED	11

/* A validated window, ready for INSERT/UPDATE as text parameters (NULL = SQL NULL). */
struct mw_in {
	const char *name;
	const char *monitor_id;		/* points to monitor_buf or NULL */
	char monitor_buf[GW_UUID_LEN + 1];
	int kind;
	const char *starts_at, *ends_at, *weekdays, *start_time, *duration;
	char s_starts[24], s_ends[24], s_weekdays[24], s_start_time[6], s_duration[24];
	const char *time_zone;
};

static struct json_object *
mw_json(const PGresult *res, int i)
{
	struct json_object *o = json_object_new_object(), *wd = NULL;

	if (!PQgetisnull(res, i, 6))
		wd = json_tokener_parse(PQgetvalue(res, i, 6));
	json_object_object_add(o, "id", gw_col_str(res, i, 0));
	json_object_object_add(o, "name", gw_col_str(res, i, 1));
	json_object_object_add(o, "monitor_id", gw_col_str(res, i, 2));
	json_object_object_add(o, "kind", gw_col_str(res, i, 3));
	json_object_object_add(o, "starts_at", gw_col_time(res, i, 4));
	json_object_object_add(o, "ends_at", gw_col_time(res, i, 5));
	json_object_object_add(o, "weekdays", wd);
	json_object_object_add(o, "start_time", gw_col_str(res, i, 7));
	json_object_object_add(o, "duration_minutes", gw_col_int(res, i, 8));
	json_object_object_add(o, "time_zone", gw_col_str(res, i, 9));
	json_object_object_add(o, "active", json_object_new_boolean(
	    PQgetvalue(res, i, 10)[0] == 't'));
	json_object_object_add(o, "created_at", gw_col_time(res, i, 11));
	json_object_object_add(o, "updated_at", gw_col_time(res, i, 12));
	return o;
}

/* True when key is present and not null. */
static bool
given(struct json_object *obj, const char *key)
{
	struct json_object *val;

	return json_object_object_get_ex(obj, key, &val) && val != NULL;
}

/* An RFC 3339 time field (required) into ms and its text. Returns 0 or -EINVAL. */
static int
read_time(struct upmon_jv *v, const char *key, int64_t *ms, char *buf, size_t size)
{
	const char *s = NULL;

	if (upmon_jv_string(v, key, 1, 64, UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL, &s) != 0)
		return -EINVAL;
	if (upmon_time_parse(s, ms) < 0)
		return upmon_jv_fail(v, key, "must be an RFC 3339 time");
	snprintf(buf, size, "%lld", (long long)*ms);
	return 0;
}

/* weekdays: 1..7 unique ISO weekdays, as the array literal "{1,5}" (sorted). */
static void
read_weekdays(struct upmon_jv *v, struct json_object *obj, struct mw_in *in)
{
	struct json_object *a, *d;
	unsigned seen = 0;
	size_t i, n, len = 0;
	char key[48];
	int day;

	if (!json_object_object_get_ex(obj, "weekdays", &a) || a == NULL) {
		upmon_jv_fail(v, "weekdays", "is required");
		return;
	}
	if (!json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) < 1 || n > 7) {
		upmon_jv_fail(v, "weekdays",
		    "must be an array of 1 to 7 ISO weekdays (1 = monday .. 7 = sunday)");
		return;
	}
	in->s_weekdays[len++] = '{';
	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(a, i);
		snprintf(key, sizeof(key), "weekdays[%zu]", i);
		if (!json_object_is_type(d, json_type_int) ||
		    json_object_get_int64(d) < 1 || json_object_get_int64(d) > 7) {
			upmon_jv_fail(v, key, "must be an integer between 1 and 7");
			continue;
		}
		day = (int)json_object_get_int64(d);
		if (seen & (1u << day)) {
			upmon_jv_fail(v, key, "duplicate weekday %d", day);
			continue;
		}
		seen |= 1u << day;
	}
	/* stored in ascending order */
	for (day = 1; day <= 7; day++) {
		if ((seen & (1u << day)) == 0)
			continue;
		if (len > 1)
			in->s_weekdays[len++] = ',';
		in->s_weekdays[len++] = (char)('0' + day);
	}
	in->s_weekdays[len++] = '}';
	in->s_weekdays[len] = '\0';
	in->weekdays = in->s_weekdays;
}

/* start_time: "HH:MM", 24 h. */
static void
read_start_time(struct upmon_jv *v, struct mw_in *in)
{
	const char *s = NULL;

	if (upmon_jv_string(v, "start_time", 1, 16, UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL,
	    &s) != 0)
		return;
	if (strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' ||
	    s[1] > '9' || (s[0] == '2' && s[1] > '3') || s[3] < '0' || s[3] > '5' ||
	    s[4] < '0' || s[4] > '9') {
		upmon_jv_fail(v, "start_time", "must be a time of day as HH:MM (00:00 to 23:59)");
		return;
	}
	memcpy(in->s_start_time, s, 6);
	in->start_time = in->s_start_time;
}

/* Fields of the kind the window is not: "is only for <kind> windows" unless absent or null. */
static void
refuse_keys(struct upmon_jv *v, struct json_object *obj, const char *const *keys,
    const char *kind)
{
	size_t i;

	for (i = 0; keys[i] != NULL; i++)
		if (given(obj, keys[i]))
			upmon_jv_fail(v, keys[i], "is only for %s windows", kind);
}

/*
 * Checks monitor_id (one of the caller's monitors) and time_zone (a zone PostgreSQL knows)
 * in the database, recording errors in v. An unknown zone makes AT TIME ZONE fail with
 * 22023 (invalid_parameter_value): far cheaper than a lookup in pg_timezone_names, which
 * reads every zone file (45 ms a query). Returns 0, or <0 after a reply (database failure).
 */
static int
check_refs(struct gw_req *r, struct upmon_jv *v, const char *monitor_id, const char *tz)
{
	static const char mon_sql[] = "SELECT 1 FROM monitors WHERE id = $1::uuid"
	    " AND owner_id = $2::uuid";
	static const char tz_sql[] = "SELECT now() AT TIME ZONE $1::text";
	const char *params[2] = { monitor_id, r->user.id };
	struct upmon_db_error err;
	struct upmon_db *db;
	PGresult *res = NULL;
	int n;

	if (monitor_id != NULL) {
		if (gw_sql(r, UPMON_DB_IDEMPOTENT, mon_sql, 2, params, &res) < 0)
			return -EIO;
		n = PQntuples(res);
		PQclear(res);
		if (n != 1)
			upmon_jv_fail(v, "monitor_id", "unknown monitor");
	}
	if (tz == NULL)
		return 0;
	if (gw_db(r, &db) < 0)
		return -EAGAIN;
	if (upmon_db_query(db, UPMON_DB_IDEMPOTENT, tz_sql, 1, &tz, &res, &err) == 0) {
		PQclear(res);
		return 0;
	}
	if (strcmp(err.sqlstate, "22023") == 0) {
		upmon_jv_fail(v, "time_zone", "unknown time zone (an IANA name such as "
		    "Europe/Paris)");
		return 0;
	}
	/* another failure: run it again through gw_sql, which answers it */
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, tz_sql, 1, &tz, &res) < 0)
		return -EIO;
	PQclear(res);
	return 0;
}

/*
 * Validates a whole window in obj (the body of POST/PUT, or the merged window of PATCH);
 * unknown keys are named from body. Fills *in (strings borrowed from obj); on errors replies
 * 400 naming every bad field and returns -EINVAL (or <0 after a database error reply).
 */
static int
validate(struct gw_req *r, struct json_object *obj, struct json_object *body,
    struct mw_in *in)
{
	struct upmon_jv v, bv;
	const char *s;
	int64_t starts = 0, ends = 0;
	long dur = 0;
	bool tz_ok = true;
	int rc, ok_s, ok_e;

	memset(in, 0, sizeof(*in));
	in->kind = -1;
	in->name = "";
	in->time_zone = "UTC";
	upmon_jv_init(&bv, body);
	upmon_jv_allow(&bv, body_keys);
	upmon_jv_init(&v, obj);
	if (!upmon_jv_ok(&bv)) {
		struct json_object *f = upmon_jv_take_fields(&bv);

		json_object_object_foreach(f, k, msg)
			upmon_jv_fail(&v, k, "%s", json_object_get_string(msg));
		json_object_put(f);
	}
	upmon_jv_release(&bv);

	s = NULL;
	if (upmon_jv_string(&v, "name", 0, NAME_MAX_CHARS, UPMON_JV_NULLABLE | UPMON_JV_NO_CTRL,
	    &s) == 0 && s != NULL)
		in->name = s;
	s = NULL;
	if (upmon_jv_string(&v, "monitor_id", 1, 64, UPMON_JV_NULLABLE | UPMON_JV_NO_CTRL,
	    &s) == 0 && s != NULL) {
		if (upmon_uuid_parse(s, strlen(s), in->monitor_buf))
			in->monitor_id = in->monitor_buf;
		else
			upmon_jv_fail(&v, "monitor_id", "must be a uuid");
	}
	s = NULL;
	rc = upmon_jv_string(&v, "time_zone", 1, TZ_MAX_CHARS,
	    UPMON_JV_NULLABLE | UPMON_JV_NO_CTRL, &s);
	if (rc == 0 && s != NULL)
		in->time_zone = s;
	else if (rc < 0)
		tz_ok = false;
	upmon_jv_enum(&v, "kind", kinds, UPMON_JV_REQUIRED, &in->kind);

	if (in->kind == KIND_ONCE) {
		refuse_keys(&v, obj, weekly_keys, "weekly");
		ok_s = read_time(&v, "starts_at", &starts, in->s_starts, sizeof(in->s_starts));
		ok_e = read_time(&v, "ends_at", &ends, in->s_ends, sizeof(in->s_ends));
		if (ok_s == 0 && ok_e == 0 && ends <= starts)
			upmon_jv_fail(&v, "ends_at", "must be after starts_at");
		in->starts_at = in->s_starts;
		in->ends_at = in->s_ends;
	} else if (in->kind == KIND_WEEKLY) {
		refuse_keys(&v, obj, once_keys, "once");
		read_weekdays(&v, obj, in);
		read_start_time(&v, in);
		if (upmon_jv_int(&v, "duration_minutes", 1, DURATION_MAX, UPMON_JV_REQUIRED,
		    &dur, NULL) == 0) {
			snprintf(in->s_duration, sizeof(in->s_duration), "%ld", dur);
			in->duration = in->s_duration;
		}
	}
	if (check_refs(r, &v, in->monitor_id, tz_ok ? in->time_zone : NULL) < 0) {
		upmon_jv_release(&v);
		return -EIO;
	}
	if (!upmon_jv_ok(&v)) {
		gw_reply_fields(r, upmon_jv_take_fields(&v));
		upmon_jv_release(&v);
		return -EINVAL;
	}
	upmon_jv_release(&v);
	return 0;
}

/* The INSERT/UPDATE parameters $2..$10 of in (p[0] is left to the caller). */
static void
mw_params(const struct mw_in *in, const char *p[10])
{
	p[1] = in->monitor_id;
	p[2] = in->name;
	p[3] = kinds[in->kind];
	p[4] = in->kind == KIND_ONCE ? in->starts_at : NULL;
	p[5] = in->kind == KIND_ONCE ? in->ends_at : NULL;
	p[6] = in->kind == KIND_WEEKLY ? in->weekdays : NULL;
	p[7] = in->kind == KIND_WEEKLY ? in->start_time : NULL;
	p[8] = in->kind == KIND_WEEKLY ? in->duration : NULL;
	p[9] = in->time_zone;
}

/* Answers the single row of res (status), or 404 when there is none; clears res. */
static void
reply_row(struct gw_req *r, PGresult *res, int status)
{
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "maintenance window");
		return;
	}
	if (status == 201) {
		char loc[96];

		snprintf(loc, sizeof(loc), "/api/v1/maintenance-windows/%s",
		    PQgetvalue(res, 0, 0));
		gw_add_header(r, "Location", loc);
	}
	gw_reply_json(r, status, mw_json(res, 0));
	PQclear(res);
}

/* ---- list, get ------------------------------------------------------------------------ */

void
gw_maintenance_list(struct gw_req *r)
{
	static const char *const allowed[] = { "limit", "cursor", "monitor_id", NULL };
	static const char sql[] = "SELECT " MW_COLS " FROM maintenance_windows"
	    " WHERE owner_id = $1::uuid AND ($2::uuid IS NULL OR monitor_id = $2::uuid)"
	    " AND ($3::bigint IS NULL"
	    "  OR (upmon_ts_to_ms(created_at), id) > ($3::bigint, $4::uuid))"
	    " ORDER BY upmon_ts_to_ms(created_at), id LIMIT $5::integer";
	const char *params[5];
	char buf[64], mid[GW_UUID_LEN + 1];
	struct json_object *items, *f;
	struct gw_page pg;
	PGresult *res = NULL;
	int n, i, rc;

	if (gw_query_allow(r, allowed) < 0)
		return;
	if ((rc = gw_query_str(r, "monitor_id", buf, sizeof(buf))) == -EINVAL)
		return;
	if (rc == 0 && !upmon_uuid_parse(buf, strlen(buf), mid)) {
		f = json_object_new_object();
		json_object_object_add(f, "monitor_id", json_object_new_string("must be a uuid"));
		gw_reply_fields(r, f);
		return;
	}
	if (gw_page_parse(r, PAGE_DEFAULT, PAGE_MAX, &pg) < 0)
		return;
	params[0] = r->user.id;
	params[1] = rc == 0 ? mid : NULL;
	params[2] = pg.after ? pg.s_ms : NULL;
	params[3] = pg.after ? pg.after_id : NULL;
	params[4] = pg.s_fetch;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, sql, 5, params, &res) < 0)
		return;
	n = PQntuples(res);
	items = json_object_new_array();
	for (i = 0; i < n && i < pg.limit; i++)
		json_object_array_add(items, mw_json(res, i));
	gw_page_reply(r, &pg, res, n, COL_CREATED, 0, items);
	PQclear(res);
}

void
gw_maintenance_get(struct gw_req *r)
{
	static const char sql[] = "SELECT " MW_COLS " FROM maintenance_windows"
	    " WHERE id = $1::uuid AND owner_id = $2::uuid";
	static const char *const allowed[] = { NULL };
	const char *params[2] = { r->params[0], r->user.id };
	PGresult *res = NULL;

	if (gw_query_allow(r, allowed) < 0)
		return;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, sql, 2, params, &res) < 0)
		return;
	reply_row(r, res, 200);
}

/* ---- create, replace, patch, delete --------------------------------------------------- */

void
gw_maintenance_create(struct gw_req *r)
{
	static const char sql[] = "INSERT INTO maintenance_windows (owner_id, monitor_id, name,"
	    " kind, starts_at, ends_at, weekdays, start_time, duration_minutes, time_zone)"
	    " VALUES ($1::uuid, $2::uuid, $3, $4, upmon_ms_to_ts($5::bigint),"
	    " upmon_ms_to_ts($6::bigint), $7::smallint[], $8::time, $9::integer, $10)"
	    " RETURNING " MW_COLS;
	static const char *const allowed[] = { NULL };
	const char *params[10];
	struct mw_in in;
	PGresult *res = NULL;

	if (gw_query_allow(r, allowed) < 0 || validate(r, r->body, r->body, &in) < 0)
		return;
	params[0] = r->user.id;
	mw_params(&in, params);
	if (gw_sql(r, 0, sql, 10, params, &res) == 0)
		reply_row(r, res, 201);
}

/* UPDATE of the whole window from a validated mw_in. */
static void
update(struct gw_req *r, const struct mw_in *in)
{
	static const char sql[] = "UPDATE maintenance_windows SET monitor_id = $2::uuid,"
	    " name = $3, kind = $4, starts_at = upmon_ms_to_ts($5::bigint),"
	    " ends_at = upmon_ms_to_ts($6::bigint), weekdays = $7::smallint[],"
	    " start_time = $8::time, duration_minutes = $9::integer, time_zone = $10"
	    " WHERE id = $11::uuid AND owner_id = $1::uuid RETURNING " MW_COLS;
	const char *params[11];
	PGresult *res = NULL;

	params[0] = r->user.id;
	mw_params(in, params);
	params[10] = r->params[0];
	if (gw_sql(r, 0, sql, 11, params, &res) == 0)
		reply_row(r, res, 200);
}

void
gw_maintenance_put(struct gw_req *r)
{
	static const char *const allowed[] = { NULL };
	struct mw_in in;

	if (gw_query_allow(r, allowed) < 0 || validate(r, r->body, r->body, &in) < 0)
		return;
	update(r, &in);
}

void
gw_maintenance_patch(struct gw_req *r)
{
	static const char sql[] = "SELECT " MW_COLS " FROM maintenance_windows"
	    " WHERE id = $1::uuid AND owner_id = $2::uuid";
	static const char *const allowed[] = { NULL };
	static const char *const readonly[] = { "id", "active", "created_at", "updated_at",
		NULL };
	const char *params[2] = { r->params[0], r->user.id };
	struct json_object *merged, *nk, *ok;
	const char *const *drop;
	struct mw_in in;
	PGresult *res = NULL;
	size_t i;

	if (gw_query_allow(r, allowed) < 0)
		return;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, sql, 2, params, &res) < 0)
		return;
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "maintenance window");
		return;
	}
	/* the stored window without its read-only fields, overlaid with the given ones; a new
	 * kind drops the stored fields of the old one */
	merged = mw_json(res, 0);
	PQclear(res);
	for (i = 0; readonly[i] != NULL; i++)
		json_object_object_del(merged, readonly[i]);
	if (json_object_object_get_ex(r->body, "kind", &nk) &&
	    json_object_object_get_ex(merged, "kind", &ok) &&
	    !json_object_equal(nk, ok)) {
		drop = strcmp(json_object_get_string(ok), "once") == 0 ? once_keys : weekly_keys;
		for (i = 0; drop[i] != NULL; i++)
			json_object_object_del(merged, drop[i]);
	}
	json_object_object_foreach(r->body, k, val)
		json_object_object_add(merged, k, json_object_get(val));
	if (validate(r, merged, r->body, &in) == 0)
		update(r, &in);
	json_object_put(merged);
}

void
gw_maintenance_delete(struct gw_req *r)
{
	static const char sql[] = "DELETE FROM maintenance_windows"
	    " WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING id";
	static const char *const allowed[] = { NULL };
	const char *params[2] = { r->params[0], r->user.id };
	PGresult *res = NULL;
	int n;

	if (gw_query_allow(r, allowed) < 0)
		return;
	if (gw_sql(r, 0, sql, 2, params, &res) < 0)
		return;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1)
		gw_reply_not_found(r, "maintenance window");
	else
		gw_reply_no_content(r);
}
