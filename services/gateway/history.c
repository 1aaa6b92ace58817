/*
 * History and statistics of one monitor: its check results (GET /monitors/{id}/checks), its
 * latest status (/status, the hot path: Redis first, PostgreSQL when Redis has nothing, is
 * down or holds another owner's value), its uptime and latency summary over 24h/7d/30d from
 * the hourly rollups (/summary) and its incidents, DOWN alerts paired with the RECOVERY that
 * ended them (/incidents).
 *
 * Every query filters by the caller's owner_id; another tenant's monitor is 404 like a
 * missing one. Times leave SQL as Unix ms (upmon_ts_to_ms) and enter JSON via
 * upmon_json_time().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "upmon/jsonv.h"
#include "upmon/msg.h"

#define CHECKS_DEFAULT	100
#define CHECKS_MAX	1000
#define PAGE_DEFAULT	50
#define PAGE_MAX	200
#define DAY_MS		INT64_C(86400000)
/* checks cursor: (scheduled_at ms, attempt) packed as ms * ATT_SPAN + attempt */
#define ATT_SPAN	128

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds {"dns_ms", ..., "total_ms"} from five consecutive columns starting at col. */
static void
add_timings_pg(struct json_object *obj, const PGresult *res, int row, int col)
{
	static const char *const names[] = {
		"dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms",
	};
	struct json_object *t = json_object_new_object();
	int i;

	for (i = 0; i < 5; i++)
		json_object_object_add(t, names[i], gw_col_int(res, row, col + i));
	json_object_object_add(obj, "timings", t);
}

/* "true"/"false" query parameter; *out -1 when absent. Returns 0 or -EINVAL (replied). */
static int
query_bool(struct gw_req *r, const char *name, int *out)
{
	char buf[8];
	int rc;

	*out = -1;
	if ((rc = gw_query_str(r, name, buf, sizeof(buf))) == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (strcmp(buf, "true") == 0 || strcmp(buf, "false") == 0) {
		*out = buf[0] == 't';
		return 0;
	}
	gw_reply_error(r, 400, "bad_request", "%s must be true or false", name);
	return -EINVAL;
}

/* ---- GET /monitors/{id}/checks -------------------------------------------------------- */

/* One row per call: m is the owner check (no row = 404), c the page (NULL columns when the
 * range is empty). Ordered newest first by (scheduled_at, attempt), which the primary key
 * serves; the scheduled_at bounds prune the daily partitions. */
static const char checks_sql[] =
    "SELECT c.sched, c.attempt, c.final, c.ok, c.status_code, c.latency_ms, c.error,"
    " c.dns_ms, c.connect_ms, c.tls_ms, c.first_byte_ms, c.total_ms, c.cert_days_left,"
    " c.checked, c.probe_host"
    " FROM monitors m LEFT JOIN LATERAL ("
    "  SELECT upmon_ts_to_ms(x.scheduled_at) AS sched, x.attempt, x.final, x.ok,"
    "   x.status_code, x.latency_ms, x.error, x.dns_ms, x.connect_ms, x.tls_ms,"
    "   x.first_byte_ms, x.total_ms, x.cert_days_left,"
    "   upmon_ts_to_ms(x.checked_at) AS checked, x.probe_host"
    "  FROM check_results x"
    "  WHERE x.monitor_id = m.id AND x.owner_id = m.owner_id"
    "   AND x.scheduled_at >= upmon_ms_to_ts($3::bigint)"
    "   AND x.scheduled_at < upmon_ms_to_ts($4::bigint)"
    "   AND ($5::boolean IS NULL OR x.final = $5::boolean)"
    "   AND ($6::bigint IS NULL OR (x.scheduled_at, x.attempt)"
    "    < (upmon_ms_to_ts($6::bigint), $7::smallint))"
    "  ORDER BY x.scheduled_at DESC, x.attempt DESC"
    "  LIMIT $8::integer) c ON true"
    " WHERE m.id = $1::uuid AND m.owner_id = $2::uuid"
    " ORDER BY c.sched DESC, c.attempt DESC";

static struct json_object *
check_item(const PGresult *res, int i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "scheduled_at", gw_col_time(res, i, 0));
	json_object_object_add(o, "attempt", gw_col_int(res, i, 1));
	json_object_object_add(o, "final", gw_col_bool(res, i, 2));
	json_object_object_add(o, "ok", gw_col_bool(res, i, 3));
	json_object_object_add(o, "status_code", gw_col_int(res, i, 4));
	json_object_object_add(o, "latency_ms", gw_col_int(res, i, 5));
	json_object_object_add(o, "error", gw_col_str(res, i, 6));
	add_timings_pg(o, res, i, 7);
	json_object_object_add(o, "cert_days_left", gw_col_int(res, i, 12));
	json_object_object_add(o, "checked_at", gw_col_time(res, i, 13));
	json_object_object_add(o, "probe_host", gw_col_str(res, i, 14));
	return o;
}

void
gw_history_checks(struct gw_req *r)
{
	static const char *const allowed[] = { "from", "to", "limit", "cursor", "final", NULL };
	char cursor[256], cid[GW_UUID_LEN + 1], s_from[24], s_to[24], s_final[8], s_cms[24],
	    s_catt[16], s_limit[24], next[256];
	const char *params[8];
	struct json_object *items;
	PGresult *res = NULL;
	int64_t now = now_ms(), from, to, ckey;
	long limit;
	int final, rc, n, i, has_cursor = 0;

	if (gw_query_allow(r, allowed) < 0 ||
	    gw_query_time(r, "to", now, &to) < 0 ||
	    gw_query_time(r, "from", to - DAY_MS, &from) < 0 ||
	    gw_query_long(r, "limit", 1, CHECKS_MAX, CHECKS_DEFAULT, &limit) < 0 ||
	    query_bool(r, "final", &final) < 0)
		return;
	if ((rc = gw_query_str(r, "cursor", cursor, sizeof(cursor))) == 0) {
		if (gw_cursor_decode(r, cursor, &ckey, cid, sizeof(cid)) < 0)
			return;
		if (ckey < 0 || strcmp(cid, r->params[0]) != 0) {
			gw_reply_error(r, 400, "bad_request", "invalid cursor");
			return;
		}
		has_cursor = 1;
	} else if (rc != -ENOENT)
		return;
	snprintf(s_from, sizeof(s_from), "%lld", (long long)from);
	snprintf(s_to, sizeof(s_to), "%lld", (long long)to);
	snprintf(s_final, sizeof(s_final), "%s", final ? "true" : "false");
	snprintf(s_limit, sizeof(s_limit), "%ld", limit + 1);
	if (has_cursor) {
		snprintf(s_cms, sizeof(s_cms), "%lld", (long long)(ckey / ATT_SPAN));
		snprintf(s_catt, sizeof(s_catt), "%d", (int)(ckey % ATT_SPAN));
	}
	params[0] = r->params[0];
	params[1] = r->user.id;
	params[2] = s_from;
	params[3] = s_to;
	params[4] = final < 0 ? NULL : s_final;
	params[5] = has_cursor ? s_cms : NULL;
	params[6] = has_cursor ? s_catt : NULL;
	params[7] = s_limit;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, checks_sql, 8, params, &res) < 0)
		return;
	if ((n = PQntuples(res)) == 0) {
		PQclear(res);
		gw_reply_not_found(r, "monitor");
		return;
	}
	if (PQgetisnull(res, 0, 0))
		n = 0;			/* the monitor, without results in range */
	items = json_object_new_array();
	for (i = 0; i < n && i < limit; i++)
		json_object_array_add(items, check_item(res, i));
	next[0] = '\0';
	if (n > limit) {
		ckey = gw_col_i64(res, (int)limit - 1, 0) * ATT_SPAN + gw_col_i64(res, (int)limit - 1, 1);
		if (gw_cursor_encode(ckey, r->params[0], next, sizeof(next)) < 0)
			next[0] = '\0';
	}
	PQclear(res);
	gw_reply_page(r, items, next[0] != '\0' ? next : NULL);
}

/* ---- GET /monitors/{id}/status -------------------------------------------------------- */

static struct json_object *
ms_or_null(int v)
{
	return v < 0 ? NULL : json_object_new_int(v);
}

/* The answer from a cached latest status. */
static struct json_object *
status_from_cache(const struct upmon_latest_status *st)
{
	struct json_object *o = json_object_new_object(), *t;

	json_object_object_add(o, "monitor_id", json_object_new_string(st->monitor_id));
	json_object_object_add(o, "status",
	    json_object_new_string(upmon_monitor_status_name(st->status)));
	json_object_object_add(o, "since", upmon_json_time(st->since));
	json_object_object_add(o, "checked_at", upmon_json_time(st->checked_at));
	json_object_object_add(o, "scheduled_at", upmon_json_time(st->scheduled_at));
	json_object_object_add(o, "attempt", json_object_new_int(st->attempt));
	json_object_object_add(o, "ok", json_object_new_boolean(st->result.ok));
	json_object_object_add(o, "status_code", st->result.status_code > 0 ?
	    json_object_new_int(st->result.status_code) : NULL);
	json_object_object_add(o, "latency_ms", json_object_new_int(st->result.latency_ms));
	json_object_object_add(o, "error", st->result.error != NULL ?
	    json_object_new_string(st->result.error) : NULL);
	t = json_object_new_object();
	json_object_object_add(t, "dns_ms", ms_or_null(st->timings.dns_ms));
	json_object_object_add(t, "connect_ms", ms_or_null(st->timings.connect_ms));
	json_object_object_add(t, "tls_ms", ms_or_null(st->timings.tls_ms));
	json_object_object_add(t, "first_byte_ms", ms_or_null(st->timings.first_byte_ms));
	json_object_object_add(t, "total_ms", ms_or_null(st->timings.total_ms));
	json_object_object_add(o, "timings", t);
	json_object_object_add(o, "cert_days_left", st->has_cert ?
	    json_object_new_int(st->cert_days_left) : NULL);
	json_object_object_add(o, "source", json_object_new_string("cache"));
	return o;
}

/*
 * Answers from Redis when it holds this caller's monitor. Returns 1 when it replied, 0 to
 * fall back to PostgreSQL (no value, Redis unavailable, an undecodable value, or a value of
 * another owner: a foreign id must answer 404 from the database, never the cached status).
 */
static int
status_cached(struct gw_req *r)
{
	struct upmon_latest_status st;
	char *json = NULL, err[128];
	int rc;

	if (upmon_cache_status_get(gw_cache(r), r->params[0], &json, NULL) != 0 ||
	    json == NULL)
		return 0;
	rc = upmon_msg_latest_decode(json, strlen(json), &st, err, sizeof(err));
	free(json);
	if (rc < 0)
		return 0;
	if (strcmp(st.owner_id, r->user.id) != 0 || strcmp(st.monitor_id, r->params[0]) != 0) {
		upmon_latest_status_release(&st);
		return 0;
	}
	gw_reply_json(r, 200, status_from_cache(&st));
	upmon_latest_status_release(&st);
	return 1;
}

/* The database's view: monitor_state (the state machine's row) and paused straight from
 * monitors. The timings of the result it last applied are a second statement: with its
 * slot as a parameter PostgreSQL prunes check_results to one partition when planning,
 * where a join would plan a scan of every daily partition (5 ms with 32 of them). */
static const char status_sql[] =
    "SELECT CASE WHEN m.paused THEN 'paused' ELSE coalesce(s.status, 'pending') END,"
    " upmon_ts_to_ms(coalesce(s.last_change_at, m.created_at)),"
    " upmon_ts_to_ms(s.last_checked_at), upmon_ts_to_ms(s.last_slot), s.last_attempt,"
    " s.last_ok, s.last_status_code, s.last_latency_ms, s.last_error, s.cert_days_left"
    " FROM monitors m"
    " LEFT JOIN monitor_state s ON s.monitor_id = m.id AND s.owner_id = m.owner_id"
    " WHERE m.id = $1::uuid AND m.owner_id = $2::uuid";

static const char timings_sql[] =
    "SELECT dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms FROM check_results"
    " WHERE monitor_id = $1::uuid AND owner_id = $2::uuid"
    " AND scheduled_at = upmon_ms_to_ts($3::bigint) AND attempt = $4::smallint";

/* Adds "timings" of the result at (slot, attempt) of res's row, all null without one.
 * Returns 0, or -1 after gw_sql() replied. */
static int
add_timings_db(struct gw_req *r, struct json_object *o, const PGresult *st)
{
	static const char *const names[] = {
		"dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms",
	};
	const char *params[4] = { r->params[0], r->user.id, NULL, NULL };
	struct json_object *t;
	PGresult *res = NULL;
	int i;

	if (!PQgetisnull(st, 0, 3) && !PQgetisnull(st, 0, 4)) {
		params[2] = PQgetvalue(st, 0, 3);
		params[3] = PQgetvalue(st, 0, 4);
		if (gw_sql(r, UPMON_DB_IDEMPOTENT, timings_sql, 4, params, &res) < 0)
			return -1;
		if (PQntuples(res) == 1) {
			add_timings_pg(o, res, 0, 0);
			PQclear(res);
			return 0;
		}
		PQclear(res);
	}
	t = json_object_new_object();
	for (i = 0; i < 5; i++)
		json_object_object_add(t, names[i], NULL);
	json_object_object_add(o, "timings", t);
	return 0;
}

void
gw_history_status(struct gw_req *r)
{
	static const char *const allowed[] = { NULL };
	const char *params[2] = { r->params[0], r->user.id };
	struct json_object *o;
	PGresult *res = NULL;

	if (gw_query_allow(r, allowed) < 0)
		return;
	if (status_cached(r))
		return;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, status_sql, 2, params, &res) < 0)
		return;
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "monitor");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "monitor_id", json_object_new_string(r->params[0]));
	json_object_object_add(o, "status", gw_col_str(res, 0, 0));
	json_object_object_add(o, "since", gw_col_time(res, 0, 1));
	json_object_object_add(o, "checked_at", gw_col_time(res, 0, 2));
	json_object_object_add(o, "scheduled_at", gw_col_time(res, 0, 3));
	json_object_object_add(o, "attempt", gw_col_int(res, 0, 4));
	json_object_object_add(o, "ok", gw_col_bool(res, 0, 5));
	json_object_object_add(o, "status_code", gw_col_int(res, 0, 6));
	json_object_object_add(o, "latency_ms", gw_col_int(res, 0, 7));
	json_object_object_add(o, "error", gw_col_str(res, 0, 8));
	if (add_timings_db(r, o, res) < 0) {
		json_object_put(o);
		PQclear(res);
		return;
	}
	json_object_object_add(o, "cert_days_left", gw_col_int(res, 0, 9));
	json_object_object_add(o, "source", json_object_new_string("database"));
	PQclear(res);
	gw_reply_json(r, 200, o);
}

/* ---- GET /monitors/{id}/summary ------------------------------------------------------- */

/*
 * One statement: the window's hourly rollups (hours >= the start of the hour window ago,
 * UTC) summed, the quantiles of the summed histogram, and the DOWN alerts raised in the
 * window. No row = not the caller's monitor.
 */
static const char summary_sql[] =
    "SELECT upmon_ts_to_ms(w.f), upmon_ts_to_ms(w.t), r.checks, r.failures, r.maint,"
    " CASE WHEN r.checks > 0 THEN 100.0 * (r.checks - r.failures) / r.checks END,"
    " CASE WHEN r.lat_n > 0 THEN r.lat_sum::double precision / r.lat_n END,"
    " least(upmon_hist_quantile(r.hist, 0.5), r.lat_max),"
    " least(upmon_hist_quantile(r.hist, 0.95), r.lat_max),"
    " least(upmon_hist_quantile(r.hist, 0.99), r.lat_max), r.lat_max, r.down_s,"
    " (SELECT count(*) FROM alerts a WHERE a.monitor_id = m.id AND a.owner_id = m.owner_id"
    "   AND a.kind = 'down' AND a.created_at >= w.f)"
    " FROM monitors m"
    " CROSS JOIN (SELECT date_trunc('hour', now() - $3::interval, 'UTC') AS f,"
    "  now() AS t) w"
    " CROSS JOIN LATERAL (SELECT coalesce(sum(h.checks), 0) AS checks,"
    "  coalesce(sum(h.failures), 0) AS failures,"
    "  coalesce(sum(h.maintenance_checks), 0) AS maint,"
    "  coalesce(sum(h.latency_count), 0) AS lat_n,"
    "  coalesce(sum(h.latency_sum_ms), 0) AS lat_sum,"
    "  max(h.latency_max_ms) FILTER (WHERE h.latency_count > 0) AS lat_max,"
    "  " GW_SQL_HIST_SUM " AS hist,"
    "  coalesce(sum(h.downtime_seconds), 0) AS down_s"
    "  FROM check_rollups_hourly h"
    "  WHERE h.monitor_id = m.id AND h.owner_id = m.owner_id AND h.hour >= w.f) r"
    " WHERE m.id = $1::uuid AND m.owner_id = $2::uuid";

void
gw_history_summary(struct gw_req *r)
{
	static const char *const allowed[] = { "window", NULL };
	static const char *const windows[] = { "24h", "7d", "30d", NULL };
	static const char *const intervals[] = { "24 hours", "7 days", "30 days" };
	const char *params[3];
	char win[8];
	struct json_object *o, *fields;
	PGresult *res = NULL;
	int rc, w = 0;

	if (gw_query_allow(r, allowed) < 0)
		return;
	if ((rc = gw_query_str(r, "window", win, sizeof(win))) == 0) {
		for (w = 0; windows[w] != NULL && strcmp(windows[w], win) != 0; w++)
			;
	} else if (rc == -EINVAL) {
		return;
	}
	if (windows[w] == NULL) {
		fields = json_object_new_object();
		json_object_object_add(fields, "window",
		    json_object_new_string("must be one of 24h, 7d, 30d"));
		gw_reply_fields(r, fields);
		return;
	}
	params[0] = r->params[0];
	params[1] = r->user.id;
	params[2] = intervals[w];
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, summary_sql, 3, params, &res) < 0)
		return;
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "monitor");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "window", json_object_new_string(windows[w]));
	json_object_object_add(o, "from", gw_col_time(res, 0, 0));
	json_object_object_add(o, "to", gw_col_time(res, 0, 1));
	json_object_object_add(o, "uptime_pct", gw_col_num(res, 0, 5));
	json_object_object_add(o, "checks", gw_col_int(res, 0, 2));
	json_object_object_add(o, "failures", gw_col_int(res, 0, 3));
	json_object_object_add(o, "maintenance_checks", gw_col_int(res, 0, 4));
	json_object_object_add(o, "avg_ms", gw_col_num(res, 0, 6));
	json_object_object_add(o, "p50_ms", gw_col_num(res, 0, 7));
	json_object_object_add(o, "p95_ms", gw_col_num(res, 0, 8));
	json_object_object_add(o, "p99_ms", gw_col_num(res, 0, 9));
	json_object_object_add(o, "max_ms", gw_col_num(res, 0, 10));
	json_object_object_add(o, "incidents", gw_col_int(res, 0, 12));
	json_object_object_add(o, "downtime_seconds", gw_col_int(res, 0, 11));
	PQclear(res);
	gw_reply_json(r, 200, o);
}

/* ---- GET /monitors/{id}/incidents ----------------------------------------------------- */

/*
 * The DOWN alerts of the monitor newest first, each with the first RECOVERY alert of the
 * monitor at or after it. The cursor is (created_at in ms, id); the sort uses the same
 * millisecond key so that alerts within one millisecond page without gaps.
 */
static const char incidents_sql[] =
    "SELECT d.id, d.ms, upmon_ts_to_ms(rec.created_at), rec.id, d.message,"
    " floor(extract(epoch FROM rec.created_at - d.created_at))::bigint"
    " FROM monitors m LEFT JOIN LATERAL ("
    "  SELECT a.id, a.created_at, upmon_ts_to_ms(a.created_at) AS ms, a.message"
    "  FROM alerts a WHERE a.monitor_id = m.id AND a.owner_id = m.owner_id"
    "   AND a.kind = 'down'"
    "   AND ($3::bigint IS NULL OR (upmon_ts_to_ms(a.created_at), a.id)"
    "    < ($3::bigint, $4::uuid))"
    "  ORDER BY 3 DESC, a.id DESC LIMIT $5::integer) d ON true"
    " LEFT JOIN LATERAL ("
    "  SELECT x.id, x.created_at FROM alerts x"
    "  WHERE x.monitor_id = m.id AND x.owner_id = m.owner_id AND x.kind = 'recovery'"
    "   AND x.created_at >= d.created_at"
    "  ORDER BY x.created_at, x.id LIMIT 1) rec ON true"
    " WHERE m.id = $1::uuid AND m.owner_id = $2::uuid"
    " ORDER BY d.ms DESC, d.id DESC";

static struct json_object *
incident_item(const PGresult *res, int i)
{
	struct json_object *o = json_object_new_object();
	int open = PQgetisnull(res, i, 3);

	json_object_object_add(o, "id", gw_col_str(res, i, 0));
	json_object_object_add(o, "started_at", gw_col_time(res, i, 1));
	json_object_object_add(o, "resolved_at", gw_col_time(res, i, 2));
	json_object_object_add(o, "duration_seconds", open ? NULL : gw_col_int(res, i, 5));
	json_object_object_add(o, "ongoing", json_object_new_boolean(open));
	json_object_object_add(o, "message", gw_col_str(res, i, 4));
	json_object_object_add(o, "recovery_alert_id", gw_col_str(res, i, 3));
	return o;
}

void
gw_history_incidents(struct gw_req *r)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	const char *params[5];
	struct json_object *items;
	struct gw_page pg;
	PGresult *res = NULL;
	int n, i;

	if (gw_query_allow(r, allowed) < 0 ||
	    gw_page_parse(r, PAGE_DEFAULT, PAGE_MAX, &pg) < 0)
		return;
	params[0] = r->params[0];
	params[1] = r->user.id;
	params[2] = pg.after ? pg.s_ms : NULL;
	params[3] = pg.after ? pg.after_id : NULL;
	params[4] = pg.s_fetch;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, incidents_sql, 5, params, &res) < 0)
		return;
	if ((n = PQntuples(res)) == 0) {
		PQclear(res);
		gw_reply_not_found(r, "monitor");
		return;
	}
	if (PQgetisnull(res, 0, 0))
		n = 0;
	items = json_object_new_array();
	for (i = 0; i < n && i < pg.limit; i++)
		json_object_array_add(items, incident_item(res, i));
	gw_page_reply(r, &pg, res, n, 1, 0, items);
	PQclear(res);
}
