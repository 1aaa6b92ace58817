/*
 * The admin routes (role admin; the server answers 404 to everyone else): queue counters,
 * the dead-letter queues (list, replay, purge through upmon/dlq.h, the same code as
 * `upmonctl dlq`) and the user list.
 *
 * The dead-letter operations run on a short-lived connection of their own (dlq.h says why)
 * made from the configuration of the gateway's AMQP handle, which is held meanwhile, so
 * admin operations on the broker run one at a time.
 */
#include "gw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/amqp.h"
#include "upmon/dlq.h"
#include "upmon/jsonv.h"
#include "upmon/log.h"

#define ADMIN_BODY_MAX 65536	/* bytes of a dead message's body shown by the list */
#define ADMIN_DLQ_LIST_MAX 100
#define ADMIN_USERS_MAX 200

/* ---- helpers ------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is not one. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string of up to max bytes of s, with every invalid UTF-8 byte as U+FFFD (a dead
 * message may be anything, and the answer must stay valid JSON). NULL on ENOMEM. */
static struct json_object *
json_text(const void *p, size_t len, size_t max)
{
	const unsigned char *s = p;
	struct json_object *o;
	size_t i = 0, o_len = 0, k;
	char *buf;

	if (len > max)
		len = max;
	if ((buf = malloc(len * 3 + 1)) == NULL)
		return NULL;
	while (i < len) {
		if ((k = utf8_seq(s + i, len - i)) == 0) {
			memcpy(buf + o_len, "\xef\xbf\xbd", 3);
			o_len += 3;
			i++;
			continue;
		}
		memcpy(buf + o_len, s + i, k);
		o_len += k;
		i += k;
	}
	o = json_object_new_string_len(buf, (int)o_len);
	free(buf);
	return o;
}

/* Reads ?queue= as one of the dead-letter queues into buf; replies 400 otherwise. */
static int
dead_queue_param(struct gw_req *r, char *buf, size_t size)
{
	struct json_object *fields;
	int rc;

	rc = gw_query_str(r, "queue", buf, size);
	if (rc == -EINVAL)
		return rc;
	if (rc == 0 && upmon_dlq_known(buf))
		return 0;
	fields = json_object_new_object();
	json_object_object_add(fields, "queue", json_object_new_string(rc == -ENOENT ?
	    "is required" : "must be monitor_tasks_dead or notifications_dead"));
	gw_reply_fields(r, fields);
	return -EINVAL;
}

static void
reply_unavailable(struct gw_req *r)
{
	gw_add_header(r, "Retry-After", "5");
	gw_reply_error(r, 503, "unavailable", "the message broker is unavailable");
}

/* Answers a failed broker operation: 503 when the broker could not be reached, else 500. */
static void
reply_amqp_error(struct gw_req *r, int rc, const char *what, const char *err)
{
	log_warnx("admin %s: %s", what, err != NULL && *err ? err : upmon_amqp_strerror(rc));
	if (rc == UPMON_AMQP_ECONN || rc == UPMON_AMQP_ETIMEDOUT || rc == UPMON_AMQP_ELOST)
		reply_unavailable(r);
	else
		gw_reply_error(r, 500, "internal", "the message broker refused the operation");
}

/* Leases the gateway's AMQP handle and copies its configuration; 503 on failure (the
 * server's gw_amqp_acquire answers it itself; answer here only if it did not). */
static int
amqp_config(struct gw_req *r, struct upmon_amqp **c, struct upmon_amqp_config *cfg)
{
	if (gw_amqp_acquire(r, c) != 0) {
		if (r->status == 0)
			reply_unavailable(r);
		return -EAGAIN;
	}
	upmon_dlq_config_of(*c, cfg);
	return 0;
}

/* ---- GET /admin/queues -------------------------------------------------------------------- */

void
gw_admin_queues(struct gw_req *r)
{
	static const char *const allowed[] = { NULL };
	struct upmon_amqp_queue_spec *specs = NULL;
	struct upmon_amqp_config cfg;
	struct upmon_amqp *c;
	struct json_object *queues, *out;
	size_t i, n;
	long messages, consumers;
	int rc;

	if (gw_query_allow(r, allowed) != 0 || amqp_config(r, &c, &cfg) != 0)
		return;
	if ((specs = calloc(UPMON_AMQP_QUEUES_MAX, sizeof(*specs))) == NULL) {
		gw_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if ((rc = upmon_amqp_topology_queues(&cfg, specs, UPMON_AMQP_QUEUES_MAX, &n)) != 0) {
		reply_amqp_error(r, rc, "queues", "topology");
		goto out;
	}
	queues = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *q;

		if ((rc = upmon_dlq_queue_stat(c, specs[i].name, &messages, &consumers)) != 0) {
			json_object_put(queues);
			reply_amqp_error(r, rc, "queues", specs[i].name);
			goto out;
		}
		q = json_object_new_object();
		json_object_object_add(q, "name", json_object_new_string(specs[i].name));
		json_object_object_add(q, "messages", json_object_new_int64(messages));
		json_object_object_add(q, "consumers", json_object_new_int64(consumers));
		json_object_array_add(queues, q);
	}
	out = json_object_new_object();
	json_object_object_add(out, "queues", queues);
	gw_reply_json(r, 200, out);
out:
	free(specs);
	gw_amqp_release(r);
}

/* ---- /admin/dlq --------------------------------------------------------------------------- */

/* upmon_dlq_fn: one item of the list answer. */
static int
add_dead(const struct upmon_amqp_delivery *d, void *arg)
{
	struct json_object *items = arg, *it, *h, *v;
	size_t i;

	if ((it = json_object_new_object()) == NULL)
		return UPMON_AMQP_ENOMEM;
	json_object_array_add(items, it);
	json_object_object_add(it, "message_id", json_text(d->message_id,
	    strlen(d->message_id), UPMON_AMQP_ID_MAX));
	json_object_object_add(it, "routing_key", json_text(d->routing_key,
	    strlen(d->routing_key), UPMON_AMQP_NAME_MAX));
	json_object_object_add(it, "redelivered", json_object_new_boolean(d->redelivered));
	h = json_object_new_object();
	json_object_object_add(it, "headers", h);
	for (i = 0; d->headers != NULL && i < d->headers->count; i++) {
		const char *k = upmon_amqp_headers_key(d->headers, i);
		const char *s = upmon_amqp_headers_value_str(d->headers, i);
		int64_t num;

		if (s != NULL)
			v = json_text(s, strlen(s), UPMON_AMQP_HEADERS_ARENA);
		else if (upmon_amqp_headers_get_int(d->headers, k, &num) == 0)
			v = json_object_new_int64(num);
		else
			continue;
		json_object_object_add(h, k, v);
	}
	if ((v = json_text(d->body, d->body_len, ADMIN_BODY_MAX)) == NULL)
		return UPMON_AMQP_ENOMEM;
	json_object_object_add(it, "body", v);
	return 0;
}

void
gw_admin_dlq_list(struct gw_req *r)
{
	static const char *const allowed[] = { "queue", "limit", NULL };
	struct upmon_amqp_config cfg;
	struct upmon_amqp *c;
	struct json_object *items, *out;
	char queue[64], err[512];
	long limit;
	int n, rc;

	if (gw_query_allow(r, allowed) != 0 || dead_queue_param(r, queue, sizeof(queue)) != 0 ||
	    gw_query_long(r, "limit", 1, ADMIN_DLQ_LIST_MAX, 20, &limit) != 0 ||
	    amqp_config(r, &c, &cfg) != 0)
		return;
	items = json_object_new_array();
	rc = upmon_dlq_list(&cfg, queue, (int)limit, add_dead, items, &n, err, sizeof(err));
	gw_amqp_release(r);
	if (rc != 0) {
		json_object_put(items);
		reply_amqp_error(r, rc, "dlq list", err);
		return;
	}
	out = json_object_new_object();
	json_object_object_add(out, "queue", json_object_new_string(queue));
	json_object_object_add(out, "items", items);
	gw_reply_json(r, 200, out);
}

static void
reply_count(struct gw_req *r, const char *queue, const char *key, int n)
{
	struct json_object *out = json_object_new_object();

	json_object_object_add(out, "queue", json_object_new_string(queue));
	json_object_object_add(out, key, json_object_new_int(n));
	gw_reply_json(r, 200, out);
}

void
gw_admin_dlq_replay(struct gw_req *r)
{
	static const char *const allowed[] = { "queue", "limit", NULL };
	static const char *const queues[] = { "monitor_tasks_dead", "notifications_dead",
		NULL };
	struct upmon_amqp_config cfg;
	struct upmon_amqp *c;
	struct upmon_jv v;
	char err[512];
	long limit = 100;
	int qi = -1, n, rc;

	upmon_jv_init(&v, r->body);
	upmon_jv_allow(&v, allowed);
	(void)upmon_jv_enum(&v, "queue", queues, UPMON_JV_REQUIRED, &qi);
	(void)upmon_jv_int(&v, "limit", 1, UPMON_DLQ_LIMIT_MAX, 0, &limit, NULL);
	if (!upmon_jv_ok(&v)) {
		gw_reply_fields(r, upmon_jv_take_fields(&v));
		upmon_jv_release(&v);
		return;
	}
	upmon_jv_release(&v);
	if (amqp_config(r, &c, &cfg) != 0)
		return;
	rc = upmon_dlq_replay(&cfg, queues[qi], (int)limit, &n, err, sizeof(err));
	gw_amqp_release(r);
	if (rc != 0) {
		log_warnx("admin dlq replay: %d messages replayed before the failure", n);
		reply_amqp_error(r, rc, "dlq replay", err);
		return;
	}
	log_info("admin dlq replay: %d messages from %s by %s", n, queues[qi], r->user.email);
	reply_count(r, queues[qi], "replayed", n);
}

void
gw_admin_dlq_purge(struct gw_req *r)
{
	static const char *const allowed[] = { "queue", NULL };
	struct upmon_amqp_config cfg;
	struct upmon_amqp *c;
	char queue[64], err[512];
	int n, rc;

	if (gw_query_allow(r, allowed) != 0 || dead_queue_param(r, queue, sizeof(queue)) != 0 ||
	    amqp_config(r, &c, &cfg) != 0)
		return;
	rc = upmon_dlq_purge(&cfg, queue, UPMON_DLQ_LIMIT_MAX, &n, err, sizeof(err));
	gw_amqp_release(r);
	if (rc != 0) {
		log_warnx("admin dlq purge: %d messages purged before the failure", n);
		reply_amqp_error(r, rc, "dlq purge", err);
		return;
	}
	log_info("admin dlq purge: %d messages from %s by %s", n, queue, r->user.email);
	reply_count(r, queue, "purged", n);
}

/* ---- GET /admin/users --------------------------------------------------------------------- */

void
gw_admin_users(struct gw_req *r)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	static const char sql[] =
	    "SELECT u.id, u.email, u.role, upmon_ts_to_ms(u.created_at),"
	    " (SELECT count(*) FROM monitors m WHERE m.owner_id = u.id)"
	    " FROM users u"
	    " WHERE $1::bigint IS NULL OR (upmon_ts_to_ms(u.created_at), u.id) > ($1, $2::uuid)"
	    " ORDER BY upmon_ts_to_ms(u.created_at), u.id LIMIT $3";
	const char *params[3];
	struct json_object *items;
	struct gw_page pg;
	PGresult *res;
	int i, rows;

	if (gw_query_allow(r, allowed) != 0 ||
	    gw_page_parse(r, 50, ADMIN_USERS_MAX, &pg) != 0)
		return;
	params[0] = pg.after ? pg.s_ms : NULL;
	params[1] = pg.after ? pg.after_id : NULL;
	params[2] = pg.s_fetch;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, sql, 3, params, &res) != 0)
		return;
	items = json_object_new_array();
	rows = PQntuples(res);
	for (i = 0; i < rows && i < pg.limit; i++) {
		struct json_object *u = json_object_new_object();

		json_object_object_add(u, "id", json_object_new_string(PQgetvalue(res, i, 0)));
		json_object_object_add(u, "email", json_object_new_string(PQgetvalue(res, i, 1)));
		json_object_object_add(u, "role", json_object_new_string(PQgetvalue(res, i, 2)));
		json_object_object_add(u, "created_at",
		    upmon_json_time(strtoll(PQgetvalue(res, i, 3), NULL, 10)));
		json_object_object_add(u, "monitors",
		    json_object_new_int64(strtoll(PQgetvalue(res, i, 4), NULL, 10)));
		json_object_array_add(items, u);
	}
	gw_page_reply(r, &pg, res, rows, 3, 0, items);
	PQclear(res);
}
