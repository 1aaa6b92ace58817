/*
 * Alerts and the dashboard: GET /alerts, POST /alerts/{id}/ack, GET /dashboard/summary.
 *
 * Every query filters by owner_id = the caller (a parameter), so another tenant's alert is
 * simply not found. Lists are newest first and paged on (created_at in ms, id).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "upmon/jsonv.h"

#define LIST_DEFAULT	50
#define LIST_MAX	200
#define CURSOR_MAX	256
#define NO_TIME		INT64_MIN

static const char *const alert_kinds[] = { "down", "recovery", "system_error", "tls_expiry",
	NULL };

#define ALERT_COLS \
	"a.id::text, a.monitor_id::text, m.name, a.kind, a.message, a.details::text, " \
	"upmon_ts_to_ms(a.created_at), upmon_ts_to_ms(a.acked_at), a.acked_by::text"

/* One alert from a row of ALERT_COLS. */
static struct json_object *
alert_json(PGresult *res, int row)
{
	struct json_object *a = json_object_new_object(), *details;

	details = json_tokener_parse(PQgetvalue(res, row, 5));
	if (details == NULL || !json_object_is_type(details, json_type_object)) {
		json_object_put(details);
		details = json_object_new_object();
	}
	json_object_object_add(a, "id", json_object_new_string(PQgetvalue(res, row, 0)));
	json_object_object_add(a, "monitor_id", gw_col_str(res, row, 1));
	json_object_object_add(a, "monitor_name", gw_col_str(res, row, 2));
	json_object_object_add(a, "kind", json_object_new_string(PQgetvalue(res, row, 3)));
	json_object_object_add(a, "message", json_object_new_string(PQgetvalue(res, row, 4)));
	json_object_object_add(a, "details", details);
	json_object_object_add(a, "created_at", gw_col_time(res, row, 6));
	json_object_object_add(a, "acked_at", gw_col_time(res, row, 7));
	json_object_object_add(a, "acked_by", gw_col_str(res, row, 8));
	return a;
}

static void
reply_field(struct gw_req *r, const char *field, const char *what)
{
	struct json_object *f = json_object_new_object();

	json_object_object_add(f, field, json_object_new_string(what));
	gw_reply_fields(r, f);
}

/* The list's filters, read from the query string (400 already answered on -EINVAL). */
struct alert_filter {
	char monitor_id[GW_UUID_LEN + 1];
	const char *kind;	/* static strings */
	const char *acked;
	int64_t from, to;
	struct gw_page page;
	bool has_monitor, has_kind, has_acked;
};

static int
read_filter(struct gw_req *r, struct alert_filter *f)
{
	static const char *const allowed[] = { "monitor_id", "kind", "acked", "from", "to",
		"limit", "cursor", NULL };
	char buf[CURSOR_MAX];
	size_t i;
	int rc;

	memset(f, 0, sizeof(*f));
	if (gw_query_allow(r, allowed) != 0)
		return -EINVAL;
	rc = gw_query_str(r, "monitor_id", buf, sizeof(buf));
	if (rc == -EINVAL)
		return rc;
	if (rc == 0) {
		if (!upmon_uuid_parse(buf, strlen(buf), f->monitor_id)) {
			reply_field(r, "monitor_id", "must be a uuid");
			return -EINVAL;
		}
		f->has_monitor = true;
	}
	rc = gw_query_str(r, "kind", buf, sizeof(buf));
	if (rc == -EINVAL)
		return rc;
	if (rc == 0) {
		for (i = 0; alert_kinds[i] != NULL; i++)
			if (strcmp(buf, alert_kinds[i]) == 0)
				break;
		if (alert_kinds[i] == NULL) {
			reply_field(r, "kind",
			    "must be one of down, recovery, system_error, tls_expiry");
			return -EINVAL;
		}
		f->kind = alert_kinds[i];
		f->has_kind = true;
	}
	rc = gw_query_str(r, "acked", buf, sizeof(buf));
	if (rc == -EINVAL)
		return rc;
	if (rc == 0) {
		if (strcmp(buf, "true") != 0 && strcmp(buf, "false") != 0) {
			reply_field(r, "acked", "must be true or false");
			return -EINVAL;
		}
		f->acked = buf[0] == 't' ? "true" : "false";
		f->has_acked = true;
	}
	if (gw_query_time(r, "from", NO_TIME, &f->from) != 0 ||
	    gw_query_time(r, "to", NO_TIME, &f->to) != 0 ||
	    gw_page_parse(r, LIST_DEFAULT, LIST_MAX, &f->page) != 0)
		return -EINVAL;
	return 0;
}

void
gw_alerts_list(struct gw_req *r)
{
	struct alert_filter f;
	char from[24], to[24];
	const char *params[9];
	struct json_object *items;
	PGresult *res = NULL;
	int i, n;

	if (read_filter(r, &f) != 0)
		return;
	snprintf(from, sizeof(from), "%" PRId64, f.from);
	snprintf(to, sizeof(to), "%" PRId64, f.to);
	params[0] = r->user.id;
	params[1] = f.has_monitor ? f.monitor_id : NULL;
	params[2] = f.has_kind ? f.kind : NULL;
	params[3] = f.has_acked ? f.acked : NULL;
	params[4] = f.from != NO_TIME ? from : NULL;
	params[5] = f.to != NO_TIME ? to : NULL;
	params[6] = f.page.after ? f.page.s_ms : NULL;
	params[7] = f.page.after ? f.page.after_id : NULL;
	params[8] = f.page.s_fetch;
	/* times are compared at millisecond precision, as the API shows them, over [from, to)
	 * as for checks; the cursor's condition repeats the sort key (ms, id), and its created_at bound lets
	 * the (owner_id, created_at DESC, id) index narrow the scan */
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, "SELECT " ALERT_COLS " FROM alerts a "
	    "LEFT JOIN monitors m ON m.id = a.monitor_id AND m.owner_id = a.owner_id "
	    "WHERE a.owner_id = $1 "
	    "AND ($2::uuid IS NULL OR a.monitor_id = $2::uuid) "
	    "AND ($3::text IS NULL OR a.kind = $3::text) "
	    "AND ($4::boolean IS NULL OR (a.acked_at IS NOT NULL) = $4::boolean) "
	    "AND ($5::bigint IS NULL OR a.created_at >= to_timestamp($5::bigint / 1000.0)) "
	    "AND ($6::bigint IS NULL OR a.created_at < to_timestamp($6::bigint / 1000.0)) "
	    "AND ($7::bigint IS NULL OR (a.created_at < to_timestamp(($7::bigint + 1) / 1000.0) "
	    "AND (upmon_ts_to_ms(a.created_at), a.id) < ($7::bigint, $8::uuid))) "
	    "ORDER BY upmon_ts_to_ms(a.created_at) DESC, a.id DESC LIMIT $9::integer",
	    9, params, &res) != 0)
		return;
	n = PQntuples(res);
	items = json_object_new_array();
	for (i = 0; i < n && i < f.page.limit; i++)
		json_object_array_add(items, alert_json(res, i));
	gw_page_reply(r, &f.page, res, n, 6, 0, items);
	PQclear(res);
}

void
gw_alerts_ack(struct gw_req *r)
{
	static const char *const allowed[] = { NULL };
	const char *params[2] = { r->params[0], r->user.id };
	PGresult *res = NULL;

	if (gw_query_allow(r, allowed) != 0)
		return;
	/* SET's right-hand sides see the old row: an acked alert keeps its first ack */
	if (gw_sql(r, 0, "WITH u AS (UPDATE alerts SET "
	    "acked_at = coalesce(acked_at, now()), "
	    "acked_by = CASE WHEN acked_at IS NULL THEN $2::uuid ELSE acked_by END "
	    "WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING *) "
	    "SELECT " ALERT_COLS " FROM u a "
	    "LEFT JOIN monitors m ON m.id = a.monitor_id AND m.owner_id = a.owner_id",
	    2, params, &res) != 0)
		return;
	if (PQntuples(res) != 1)
		gw_reply_not_found(r, "alert");
	else
		gw_reply_json(r, 200, alert_json(res, 0));
	PQclear(res);
}

void
gw_dashboard_summary(struct gw_req *r)
{
	static const char *const allowed[] = { NULL };
	static const char *const names[] = { "total", "up", "down", "pending", "paused" };
	const char *params[1] = { r->user.id };
	struct json_object *out, *mon;
	PGresult *res = NULL;
	int i;

	if (gw_query_allow(r, allowed) != 0)
		return;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, "WITH s AS (SELECT count(*) AS total, "
	    "count(*) FILTER (WHERE status = 'up') AS up, "
	    "count(*) FILTER (WHERE status = 'down') AS down, "
	    "count(*) FILTER (WHERE status = 'pending') AS pending, "
	    "count(*) FILTER (WHERE status = 'paused') AS paused "
	    "FROM monitor_state WHERE owner_id = $1::uuid), "
	    "h AS (SELECT sum(h.checks) AS c, sum(h.failures) AS f, "
	    "max(h.latency_max_ms) FILTER (WHERE h.latency_count > 0) AS mx, "
	    GW_SQL_HIST_SUM " AS hist FROM check_rollups_hourly h "
	    "WHERE h.owner_id = $1::uuid "
	    "AND h.hour >= date_trunc('hour', now() - interval '24 hours', 'UTC')), "
	    "a AS (SELECT count(*) FILTER (WHERE created_at >= "
	    "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today, "
	    "count(*) FILTER (WHERE acked_at IS NULL) AS unacked "
	    "FROM alerts WHERE owner_id = $1::uuid) "
	    "SELECT s.total, s.up, s.down, s.pending, s.paused, "
	    "CASE WHEN h.c > 0 THEN round(100.0 * (h.c - h.f) / h.c, 3) END, "
	    "round(least(upmon_hist_quantile(h.hist, 0.95), h.mx)::numeric, 3), a.today, "
	    "a.unacked "
	    "FROM s, h, a", 1, params, &res) != 0)
		return;
	mon = json_object_new_object();
	for (i = 0; i < 5; i++)
		json_object_object_add(mon, names[i], gw_col_int(res, 0, i));
	out = json_object_new_object();
	json_object_object_add(out, "monitors", mon);
	json_object_object_add(out, "uptime_24h_pct", gw_col_num(res, 0, 5));
	json_object_object_add(out, "p95_24h_ms", gw_col_num(res, 0, 6));
	json_object_object_add(out, "alerts_today", gw_col_int(res, 0, 7));
	json_object_object_add(out, "unacked_alerts", gw_col_int(res, 0, 8));
	gw_reply_json(r, 200, out);
	PQclear(res);
}
