/*
 * Notification channels: CRUD of the caller's email and webhook channels and their test
 * notification (POST /channels/{id}/test), which is written to the outbox as an alert event
 * of kind test for that channel only; the probe's relay publishes it to upmon.events with
 * routing key alert.test and the mailer delivers it. No alerts row is written for a test.
 *
 * The webhook secret is write-only: answers say has_secret. PUT replaces the whole channel
 * (an omitted secret is removed, an omitted enabled is true); PATCH changes the given fields
 * only (a given config replaces the whole config; "secret": null removes the secret) and
 * validates the result as a whole. Every statement filters by the caller's owner_id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "gw.h"
#include "upmon/jsonv.h"
#include "upmon/log.h"
#include "upmon/msg.h"

#define PAGE_DEFAULT	50
#define PAGE_MAX	200
#define NAME_MAX_CHARS	200
#define EMAILS_MAX	10
#define URL_MAX		2048
#define SECRET_MIN	16
#define SECRET_MAX	512

enum { KIND_EMAIL, KIND_WEBHOOK };

static const char *const kinds[] = { "email", "webhook", NULL };
static const char *const body_keys[] = {
	"name", "kind", "config", "secret", "enabled", NULL,
};

/* The columns every answer is built from, in this order. */
#define CHAN_COLS "id, name, kind, config::text, secret IS NOT NULL, enabled," \
    " upmon_ts_to_ms(created_at), upmon_ts_to_ms(updated_at)"

/* A validated channel, ready for INSERT/UPDATE (strings borrowed from the body or the
 * merged object). */
struct chan_in {
	const char *name;
	int kind;
	const char *config;		/* serialised config object */
	const char *secret;		/* NULL = none */
	bool keep_secret;		/* PATCH without "secret": leave the stored one */
	bool enabled;
};

static struct json_object *
chan_json(const PGresult *res, int i)
{
	struct json_object *o = json_object_new_object(), *cfg;

	cfg = json_tokener_parse(PQgetvalue(res, i, 3));
	if (cfg == NULL)
		cfg = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(PQgetvalue(res, i, 0)));
	json_object_object_add(o, "name", json_object_new_string_len(PQgetvalue(res, i, 1),
	    PQgetlength(res, i, 1)));
	json_object_object_add(o, "kind", json_object_new_string(PQgetvalue(res, i, 2)));
	json_object_object_add(o, "config", cfg);
	json_object_object_add(o, "has_secret",
	    json_object_new_boolean(PQgetvalue(res, i, 4)[0] == 't'));
	json_object_object_add(o, "enabled",
	    json_object_new_boolean(PQgetvalue(res, i, 5)[0] == 't'));
	json_object_object_add(o, "created_at",
	    upmon_json_time(strtoll(PQgetvalue(res, i, 6), NULL, 10)));
	json_object_object_add(o, "updated_at",
	    upmon_json_time(strtoll(PQgetvalue(res, i, 7), NULL, 10)));
	return o;
}

/* Copies the errors of the config validator into v as "config.<field>". */
static void
merge_config_errors(struct upmon_jv *v, struct upmon_jv *cv)
{
	struct json_object *f = upmon_jv_take_fields(cv);
	char key[96];

	json_object_object_foreach(f, k, msg) {
		snprintf(key, sizeof(key), "config.%s", k);
		upmon_jv_fail(v, key, "%s", json_object_get_string(msg));
	}
	json_object_put(f);
}

/* An email address as the mailer will put it in a header: 3..254 characters, one '@' not at
 * either end, no spaces, CR, LF or other control characters. */
static const char *
email_problem(const char *s)
{
	const char *at = strchr(s, '@');
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f)
			return "must not contain spaces or control characters";
	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return "must be an email address (one '@' with text on both sides)";
	return NULL;
}

static void
check_email_config(struct upmon_jv *v, struct json_object *cfg)
{
	static const char *const allowed[] = { "to", NULL };
	struct upmon_jv cv;
	struct json_object *to = NULL;
	const char *why;
	char key[32];
	size_t i, n;

	upmon_jv_init(&cv, cfg);
	upmon_jv_allow(&cv, allowed);
	if (upmon_jv_string_array(&cv, "to", EMAILS_MAX, 3, GW_EMAIL_MAX,
	    UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL, &to) == 0 && to != NULL) {
		n = json_object_array_length(to);
		if (n == 0)
			upmon_jv_fail(&cv, "to", "must have 1 to %d addresses", EMAILS_MAX);
		for (i = 0; i < n; i++) {
			why = email_problem(json_object_get_string(
			    json_object_array_get_idx(to, i)));
			if (why != NULL) {
				snprintf(key, sizeof(key), "to[%zu]", i);
				upmon_jv_fail(&cv, key, "%s", why);
			}
		}
	}
	if (!upmon_jv_ok(&cv))
		merge_config_errors(v, &cv);
	upmon_jv_release(&cv);
}

static void
check_webhook_config(struct upmon_jv *v, struct json_object *cfg)
{
	static const char *const allowed[] = { "url", NULL };
	struct upmon_jv cv;
	const char *url = NULL, *p;
	size_t skip;

	upmon_jv_init(&cv, cfg);
	upmon_jv_allow(&cv, allowed);
	if (upmon_jv_string(&cv, "url", 1, URL_MAX, UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL,
	    &url) == 0 && url != NULL) {
		skip = strncasecmp(url, "https://", 8) == 0 ? 8 :
		    strncasecmp(url, "http://", 7) == 0 ? 7 : 0;
		for (p = url; *p != '\0' && *p != ' '; p++)
			;
		if (skip == 0 || url[skip] == '\0' || url[skip] == '/')
			upmon_jv_fail(&cv, "url", "must be an http:// or https:// URL");
		else if (*p == ' ')
			upmon_jv_fail(&cv, "url", "must not contain spaces");
	}
	if (!upmon_jv_ok(&cv))
		merge_config_errors(v, &cv);
	upmon_jv_release(&cv);
}

/*
 * Validates a whole channel in obj (the body of POST/PUT, or the merged channel of PATCH).
 * patch_secret: the secret may be absent meaning "keep" (PATCH). Fills *in; on errors
 * replies 400 naming every bad field and returns -EINVAL. cfg_text (caller frees) holds
 * the serialised config.
 */
static int
validate(struct gw_req *r, struct json_object *obj, struct json_object *body,
    bool patch, struct chan_in *in, char **cfg_text)
{
	struct upmon_jv v, bv;
	struct json_object *cfg = NULL;
	const char *s;
	int rc;

	memset(in, 0, sizeof(*in));
	in->kind = -1;
	in->enabled = true;
	*cfg_text = NULL;
	/* unknown keys are named from what the client sent */
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
	upmon_jv_string(&v, "name", 1, NAME_MAX_CHARS, UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL,
	    &in->name);
	upmon_jv_enum(&v, "kind", kinds, UPMON_JV_REQUIRED, &in->kind);
	upmon_jv_bool(&v, "enabled", 0, &in->enabled);
	rc = upmon_jv_object(&v, "config", UPMON_JV_REQUIRED, &cfg);
	if (rc == 0 && cfg != NULL && in->kind == KIND_EMAIL)
		check_email_config(&v, cfg);
	else if (rc == 0 && cfg != NULL && in->kind == KIND_WEBHOOK)
		check_webhook_config(&v, cfg);
	s = NULL;
	rc = upmon_jv_string(&v, "secret", SECRET_MIN, SECRET_MAX,
	    UPMON_JV_NULLABLE | UPMON_JV_NO_CTRL, &s);
	if (rc == UPMON_JV_ABSENT && patch)
		in->keep_secret = true;
	if (rc == 0 && s != NULL && in->kind == KIND_EMAIL)
		upmon_jv_fail(&v, "secret", "is only for webhook channels");
	in->secret = s;
	if (!upmon_jv_ok(&v)) {
		gw_reply_fields(r, upmon_jv_take_fields(&v));
		upmon_jv_release(&v);
		return -EINVAL;
	}
	upmon_jv_release(&v);
	if ((*cfg_text = strdup(json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN))) ==
	    NULL) {
		gw_reply_error(r, 500, "internal", "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* ---- list, get ------------------------------------------------------------------------ */

void
gw_channels_list(struct gw_req *r)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	static const char sql[] = "SELECT " CHAN_COLS " FROM notification_channels"
	    " WHERE owner_id = $1::uuid AND ($2::bigint IS NULL"
	    "  OR (upmon_ts_to_ms(created_at), id) > ($2::bigint, $3::uuid))"
	    " ORDER BY upmon_ts_to_ms(created_at), id LIMIT $4::integer";
	const char *params[4];
	struct json_object *items;
	struct gw_page pg;
	PGresult *res = NULL;
	int n, i;

	if (gw_query_allow(r, allowed) < 0 ||
	    gw_page_parse(r, PAGE_DEFAULT, PAGE_MAX, &pg) < 0)
		return;
	params[0] = r->user.id;
	params[1] = pg.after ? pg.s_ms : NULL;
	params[2] = pg.after ? pg.after_id : NULL;
	params[3] = pg.s_fetch;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, sql, 4, params, &res) < 0)
		return;
	n = PQntuples(res);
	items = json_object_new_array();
	for (i = 0; i < n && i < pg.limit; i++)
		json_object_array_add(items, chan_json(res, i));
	gw_page_reply(r, &pg, res, n, 6, 0, items);
	PQclear(res);
}

/* Answers the single row of res (200 or want), or 404 when there is none; clears res. */
static void
reply_row(struct gw_req *r, PGresult *res, int status)
{
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "channel");
		return;
	}
	if (status == 201) {
		char loc[96];

		snprintf(loc, sizeof(loc), "/api/v1/channels/%s", PQgetvalue(res, 0, 0));
		gw_add_header(r, "Location", loc);
	}
	gw_reply_json(r, status, chan_json(res, 0));
	PQclear(res);
}

void
gw_channels_get(struct gw_req *r)
{
	static const char sql[] = "SELECT " CHAN_COLS " FROM notification_channels"
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
gw_channels_create(struct gw_req *r)
{
	static const char sql[] = "INSERT INTO notification_channels"
	    " (owner_id, name, kind, config, secret, enabled)"
	    " VALUES ($1::uuid, $2, $3, $4::jsonb, $5, $6::boolean) RETURNING " CHAN_COLS;
	struct chan_in in;
	const char *params[6];
	char *cfg = NULL;
	PGresult *res = NULL;

	if (validate(r, r->body, r->body, false, &in, &cfg) < 0)
		return;
	params[0] = r->user.id;
	params[1] = in.name;
	params[2] = kinds[in.kind];
	params[3] = cfg;
	params[4] = in.secret;
	params[5] = in.enabled ? "true" : "false";
	if (gw_sql(r, 0, sql, 6, params, &res) == 0)
		reply_row(r, res, 201);
	free(cfg);
}

/* UPDATE of the whole channel from a validated chan_in. */
static void
update(struct gw_req *r, const struct chan_in *in, const char *cfg)
{
	static const char sql[] = "UPDATE notification_channels SET name = $3, kind = $4,"
	    " config = $5::jsonb,"
	    " secret = CASE WHEN $7::boolean THEN secret ELSE $6 END, enabled = $8::boolean"
	    " WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING " CHAN_COLS;
	const char *params[8];
	PGresult *res = NULL;

	params[0] = r->params[0];
	params[1] = r->user.id;
	params[2] = in->name;
	params[3] = kinds[in->kind];
	params[4] = cfg;
	params[5] = in->secret;
	params[6] = in->keep_secret ? "true" : "false";
	params[7] = in->enabled ? "true" : "false";
	if (gw_sql(r, 0, sql, 8, params, &res) == 0)
		reply_row(r, res, 200);
}

void
gw_channels_put(struct gw_req *r)
{
	struct chan_in in;
	char *cfg = NULL;

	if (validate(r, r->body, r->body, false, &in, &cfg) < 0)
		return;
	update(r, &in, cfg);
	free(cfg);
}

void
gw_channels_patch(struct gw_req *r)
{
	static const char sql[] = "SELECT name, kind, config::text, secret IS NOT NULL, enabled"
	    " FROM notification_channels WHERE id = $1::uuid AND owner_id = $2::uuid";
	const char *params[2] = { r->params[0], r->user.id };
	struct json_object *merged, *cfg;
	struct chan_in in;
	PGresult *res = NULL;
	char *cfgtext = NULL;
	bool had_secret;

	if (gw_sql(r, UPMON_DB_IDEMPOTENT, sql, 2, params, &res) < 0)
		return;
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "channel");
		return;
	}
	/* the stored channel, overlaid with the given fields */
	merged = json_object_new_object();
	json_object_object_add(merged, "name", json_object_new_string_len(
	    PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0)));
	json_object_object_add(merged, "kind", json_object_new_string(PQgetvalue(res, 0, 1)));
	if ((cfg = json_tokener_parse(PQgetvalue(res, 0, 2))) == NULL)
		cfg = json_object_new_object();
	json_object_object_add(merged, "config", cfg);
	json_object_object_add(merged, "enabled",
	    json_object_new_boolean(PQgetvalue(res, 0, 4)[0] == 't'));
	had_secret = PQgetvalue(res, 0, 3)[0] == 't';
	PQclear(res);
	json_object_object_foreach(r->body, k, val)
		json_object_object_add(merged, k, json_object_get(val));
	if (validate(r, merged, r->body, true, &in, &cfgtext) == 0) {
		if (in.keep_secret && had_secret && in.kind == KIND_EMAIL) {
			struct json_object *f = json_object_new_object();

			json_object_object_add(f, "secret", json_object_new_string(
			    "is only for webhook channels (send \"secret\": null)"));
			gw_reply_fields(r, f);
		} else {
			update(r, &in, cfgtext);
		}
	}
	free(cfgtext);
	json_object_put(merged);
}

void
gw_channels_delete(struct gw_req *r)
{
	static const char sql[] = "DELETE FROM notification_channels"
	    " WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING id";
	const char *params[2] = { r->params[0], r->user.id };
	PGresult *res = NULL;
	int n;

	if (gw_sql(r, 0, sql, 2, params, &res) < 0)
		return;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1)
		gw_reply_not_found(r, "channel");
	else
		gw_reply_no_content(r);
}

/* ---- test notification ---------------------------------------------------------------- */

/* A random (version 4) uuid in lowercase. Returns 0 or -EIO. */
static int
random_uuid(char out[GW_UUID_LEN + 1])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, GW_UUID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
	    b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

void
gw_channels_test(struct gw_req *r)
{
	/* the INSERT happens only when the channel is the caller's */
	static const char sql[] = "INSERT INTO outbox (exchange, routing_key, message_id, payload)"
	    " SELECT 'upmon.events', $3, $4, $5::jsonb FROM notification_channels"
	    " WHERE id = $1::uuid AND owner_id = $2::uuid RETURNING message_id";
	static const char *const allowed[] = { NULL };
	struct upmon_alert_event ev;
	char uuid[GW_UUID_LEN + 1], key[32], *json = NULL;
	const char *params[5];
	struct json_object *o;
	struct timespec ts;
	PGresult *res = NULL;
	size_t len;
	int rc;

	if (gw_query_allow(r, allowed) < 0)
		return;
	upmon_alert_event_init(&ev);
	ev.kind = UPMON_ALERT_TEST;
	clock_gettime(CLOCK_REALTIME, &ts);
	ev.at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	snprintf(ev.owner_id, sizeof(ev.owner_id), "%s", r->user.id);
	snprintf(ev.channel_id, sizeof(ev.channel_id), "%s", r->params[0]);
	if (random_uuid(uuid) < 0 ||
	    snprintf(ev.alert_id, sizeof(ev.alert_id), "test:%s:%s", r->params[0], uuid) < 0 ||
	    (rc = upmon_msg_alert_encode(&ev, &json, &len)) < 0 ||
	    upmon_msg_alert_routing_key(&ev, key, sizeof(key)) < 0) {
		log_warnx("channel test: cannot build the test notification");
		gw_reply_error(r, 500, "internal", "internal error");
		goto out;
	}
	params[0] = r->params[0];
	params[1] = r->user.id;
	params[2] = key;
	params[3] = ev.alert_id;
	params[4] = json;
	if (gw_sql(r, 0, sql, 5, params, &res) < 0)
		goto out;
	if (PQntuples(res) != 1) {
		PQclear(res);
		gw_reply_not_found(r, "channel");
		goto out;
	}
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "queued", json_object_new_boolean(1));
	json_object_object_add(o, "message_id", json_object_new_string(ev.alert_id));
	gw_reply_json(r, 202, o);
out:
	free(json);
	upmon_alert_event_release(&ev);
}

/* ---- monitor <-> channel links ---------------------------------------------------------- */

#define LINKS_MAX	32

/* The caller's channels linked to monitor $1 (owner $2), ordered by name, id. */
static const char links_sql[] = "SELECT " CHAN_COLS " FROM notification_channels"
    " WHERE owner_id = $2::uuid AND id IN (SELECT channel_id FROM monitor_channels"
    "  WHERE monitor_id = $1::uuid AND owner_id = $2::uuid)"
    " ORDER BY name, id";

/* Answers {"items": [...]} with the monitor's linked channels (after checking that the monitor
 * is the caller's: 404 otherwise). */
static void
links_reply(struct gw_req *r)
{
	static const char msql[] = "SELECT 1 FROM monitors WHERE id = $1::uuid"
	    " AND owner_id = $2::uuid";
	const char *params[2] = { r->params[0], r->user.id };
	struct json_object *o, *items;
	PGresult *res = NULL;
	int n, i;

	if (gw_sql(r, UPMON_DB_IDEMPOTENT, msql, 2, params, &res) < 0)
		return;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1) {
		gw_reply_not_found(r, "monitor");
		return;
	}
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, links_sql, 2, params, &res) < 0)
		return;
	n = PQntuples(res);
	items = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(items, chan_json(res, i));
	PQclear(res);
	o = json_object_new_object();
	json_object_object_add(o, "items", items);
	gw_reply_json(r, 200, o);
}

void
gw_monitor_channels_get(struct gw_req *r)
{
	static const char *const allowed[] = { NULL };

	if (gw_query_allow(r, allowed) < 0)
		return;
	links_reply(r);
}

/*
 * Reads {"channel_ids": [uuid, ...]} (0..LINKS_MAX unique uuids) into arr as a PostgreSQL
 * array literal "{a,b}". Replies 400 naming every bad field and returns -EINVAL.
 */
static int
links_parse(struct gw_req *r, char arr[2 + LINKS_MAX * (GW_UUID_LEN + 1)])
{
	static const char *const allowed[] = { "channel_ids", NULL };
	char ids[LINKS_MAX][GW_UUID_LEN + 1];
	struct json_object *a = NULL;
	struct upmon_jv v;
	size_t i, j, n, len;
	char key[48];
	const char *id;

	upmon_jv_init(&v, r->body);
	upmon_jv_allow(&v, allowed);
	if (upmon_jv_string_array(&v, "channel_ids", LINKS_MAX, 1, 64,
	    UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL, &a) == 0 && a != NULL) {
		n = json_object_array_length(a);
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "channel_ids[%zu]", i);
			id = json_object_get_string(json_object_array_get_idx(a, i));
			if (!upmon_uuid_parse(id, strlen(id), ids[i])) {
				upmon_jv_fail(&v, key, "must be a uuid");
				continue;
			}
			for (j = 0; j < i; j++)
				if (strcmp(ids[i], ids[j]) == 0)
					upmon_jv_fail(&v, key, "duplicate channel %s", ids[i]);
		}
	}
	if (!upmon_jv_ok(&v)) {
		gw_reply_fields(r, upmon_jv_take_fields(&v));
		upmon_jv_release(&v);
		return -EINVAL;
	}
	upmon_jv_release(&v);
	n = json_object_array_length(a);
	len = 0;
	arr[len++] = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			arr[len++] = ',';
		memcpy(arr + len, ids[i], GW_UUID_LEN);
		len += GW_UUID_LEN;
	}
	arr[len++] = '}';
	arr[len] = '\0';
	return 0;
}

void
gw_monitor_channels_put(struct gw_req *r)
{
	static const char lock_sql[] = "SELECT 1 FROM monitors WHERE id = $1::uuid"
	    " AND owner_id = $2::uuid FOR NO KEY UPDATE";
	/* ($1 is named only so that every statement takes the same three parameters) */
	static const char unknown_sql[] = "SELECT u.id FROM unnest($3::uuid[])"
	    " WITH ORDINALITY AS u(id, n) WHERE $1::uuid IS NOT NULL AND NOT EXISTS"
	    " (SELECT 1 FROM notification_channels c WHERE c.id = u.id"
	    "  AND c.owner_id = $2::uuid) ORDER BY u.n LIMIT 1";
	static const char del_sql[] = "DELETE FROM monitor_channels WHERE monitor_id = $1::uuid"
	    " AND owner_id = $2::uuid AND NOT (channel_id = ANY ($3::uuid[]))";
	static const char ins_sql[] = "INSERT INTO monitor_channels"
	    " (monitor_id, channel_id, owner_id) SELECT $1::uuid, u.id, $2::uuid"
	    " FROM unnest($3::uuid[]) AS u(id) ON CONFLICT DO NOTHING";
	static const char *const allowed[] = { NULL };
	char arr[2 + LINKS_MAX * (GW_UUID_LEN + 1)], msg[64];
	struct upmon_db_error err;
	const char *params[3];
	struct json_object *f;
	struct upmon_db *db;
	PGresult *res = NULL;
	int n;

	if (gw_query_allow(r, allowed) < 0 || links_parse(r, arr) < 0)
		return;
	params[0] = r->params[0];
	params[1] = r->user.id;
	params[2] = arr;
	if (gw_db(r, &db) < 0)
		return;
	if (upmon_db_begin(db, NULL) < 0) {
		gw_add_header(r, "Retry-After", "1");
		gw_reply_error(r, 503, "unavailable", "the database is unavailable");
		return;
	}
	/* the lock orders concurrent replacements of the same monitor's set */
	if (gw_sql(r, 0, lock_sql, 2, params, &res) < 0)
		return;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1) {
		gw_reply_not_found(r, "monitor");
		return;
	}
	if (gw_sql(r, 0, unknown_sql, 3, params, &res) < 0)
		return;
	if (PQntuples(res) == 1) {
		snprintf(msg, sizeof(msg), "unknown channel %s", PQgetvalue(res, 0, 0));
		PQclear(res);
		f = json_object_new_object();
		json_object_object_add(f, "channel_ids", json_object_new_string(msg));
		gw_reply_fields(r, f);
		return;
	}
	PQclear(res);
	if (gw_sql(r, 0, del_sql, 3, params, &res) < 0)
		return;
	PQclear(res);
	if (gw_sql(r, 0, ins_sql, 3, params, &res) < 0)
		return;
	PQclear(res);
	if (upmon_db_commit(db, &err) < 0) {
		log_warnx("monitor channels: commit failed: %s", err.message);
		gw_add_header(r, "Retry-After", "1");
		gw_reply_error(r, 503, "unavailable", "the database is unavailable");
		return;
	}
	links_reply(r);
}
