/*
 * The store's translations: items into the jsonb argument of upmon_probe_apply(), its rows
 * into outbox messages (re-probe tasks, status events, alert events, all encoded by msg.c),
 * and stored items into the latest-status value written to Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"
#include "upmon/amqp.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define MS_MAX 3600000

void
probe_store_outbox_init(struct store_outbox *ob)
{
	memset(ob, 0, sizeof(*ob));
}

void
probe_store_outbox_release(struct store_outbox *ob)
{
	json_object_put(ob->rows);
	probe_store_outbox_init(ob);
}

int
probe_store_outbox_json(struct store_outbox *ob, const char **param)
{
	if (ob->rows == NULL)
		return -EINVAL;
	if ((*param = json_object_to_json_string_ext(ob->rows, JSON_C_TO_STRING_PLAIN)) == NULL)
		return -ENOMEM;
	return 0;
}

/* Adds one row; payload is taken over (freed here). */
static int
outbox_add(struct store_outbox *ob, const char *exchange, const char *key, const char *id,
    char *payload)
{
	json_object *row = NULL;
	int rc = -ENOMEM;

	if (ob->rows == NULL && (ob->rows = json_object_new_array()) == NULL)
		goto out;
	if ((row = json_object_new_object()) == NULL)
		goto out;
	if (json_object_object_add(row, "e", json_object_new_string(exchange)) != 0 ||
	    json_object_object_add(row, "k", json_object_new_string(key)) != 0 ||
	    json_object_object_add(row, "m", json_object_new_string(id)) != 0 ||
	    json_object_object_add(row, "p", json_object_new_string(payload)) != 0)
		goto out;
	if (json_object_array_add(ob->rows, row) != 0)
		goto out;
	row = NULL;
	ob->count++;
	rc = 0;
out:
	json_object_put(row);
	free(payload);
	return rc;
}

int
probe_store_uuid_ok(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	for (i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == '-' ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL ||
		    s[i] == '\0')
			return 0;
	}
	return s[i] == '\0';
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

void
probe_store_clean_text(char *buf, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, n;

	if (size == 0)
		return;
	while (*p != '\0' && o + 1 < size) {
		n = utf8_len(p);
		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			buf[o++] = *p == '\n' || *p == '\t' || *p == '\r' ? ' ' : '?';
			p++;
			continue;
		}
		if (o + n >= size)
			break;
		memcpy(buf + o, p, n);
		o += n;
		p += n;
	}
	buf[o] = '\0';
}

static int
add_int(json_object *o, const char *key, int64_t v)
{
	return json_object_object_add(o, key, json_object_new_int64(v));
}

/* Adds key: v when v >= 0 (a measured duration). */
static int
add_ms(json_object *o, const char *key, int v)
{
	return v < 0 ? 0 : add_int(o, key, v > MS_MAX ? MS_MAX : v);
}

static int
item_json(const struct probe_store *s, const struct probe_item *it, json_object **out)
{
	const struct upmon_task *t = it->task;
	const struct probe_result *r = &it->result;
	char err[UPMON_ERROR_MAX + 1];
	json_object *o;
	int rc = 0;

	if ((o = json_object_new_object()) == NULL)
		return -ENOMEM;
	rc |= json_object_object_add(o, "monitor_id", json_object_new_string(t->monitor_id));
	rc |= json_object_object_add(o, "owner_id", json_object_new_string(t->owner_id));
	rc |= add_int(o, "slot", t->scheduled_at);
	rc |= add_int(o, "attempt", t->attempt);
	rc |= add_int(o, "retries", t->retries);
	rc |= add_int(o, "interval_s", t->interval_seconds);
	rc |= json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
	if (r->status_code >= 100 && r->status_code <= 999)
		rc |= add_int(o, "status_code", r->status_code);
	rc |= add_ms(o, "latency_ms", r->latency_ms);
	rc |= add_ms(o, "dns_ms", r->timings.dns_ms);
	rc |= add_ms(o, "connect_ms", r->timings.connect_ms);
	rc |= add_ms(o, "tls_ms", r->timings.tls_ms);
	rc |= add_ms(o, "first_byte_ms", r->timings.first_byte_ms);
	rc |= add_ms(o, "total_ms", r->timings.total_ms);
	if (r->error[0] != '\0') {
		probe_store_clean_text(err, sizeof(err), r->error);
		rc |= json_object_object_add(o, "error", json_object_new_string(err));
	}
	if (r->has_cert) {
		rc |= add_int(o, "cert_days_left", r->cert_days_left < -36500 ? -36500 :
		    r->cert_days_left > 36500 ? 36500 : r->cert_days_left);
		rc |= add_int(o, "cert_not_after_ms", r->cert_not_after_ms);
	}
	rc |= json_object_object_add(o, "probe_host", json_object_new_string(s->probe_host));
	if (rc != 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

int
probe_store_items_json(const struct probe_store *s, struct probe_item **order, size_t n,
    char **out)
{
	json_object *arr, *o;
	const char *txt;
	size_t i;
	int rc = -ENOMEM;

	*out = NULL;
	if ((arr = json_object_new_array()) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (item_json(s, order[i], &o) < 0)
			goto out;
		if (json_object_array_add(arr, o) != 0) {
			json_object_put(o);
			goto out;
		}
	}
	if ((txt = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN)) == NULL ||
	    (*out = strdup(txt)) == NULL)
		goto out;
	rc = 0;
out:
	json_object_put(arr);
	return rc;
}

/* The result summary of an item for events and the cache; err holds the error text. */
static void
summary(const struct probe_result *r, struct upmon_result_summary *sum, char *err,
    size_t errlen)
{
	sum->ok = r->ok;
	sum->latency_ms = r->latency_ms < 0 ? 0 : r->latency_ms > MS_MAX ? MS_MAX : r->latency_ms;
	sum->status_code = r->status_code >= 100 && r->status_code <= 599 ? r->status_code : 0;
	probe_store_clean_text(err, errlen, r->error);
	sum->error = err[0] != '\0' ? err : NULL;
}

/* Queues the confirmation re-probe of it: the same task with attempt + 1. */
static int
reprobe(struct probe_store *s, const struct probe_item *it, struct store_outbox *ob)
{
	struct upmon_task next = *it->task;	/* shallow: encoded, never released */
	char key[UPMON_AMQP_NAME_MAX];
	char *json = NULL;
	size_t len;
	int level, rc;

	next.attempt++;
	level = it->task->attempt < s->retry_levels ? it->task->attempt : s->retry_levels;
	if (upmon_task_id_format(next.task_id, sizeof(next.task_id), next.monitor_id,
	    next.scheduled_at, next.attempt) != 0 ||
	    upmon_amqp_retry_queue_name(UPMON_AMQP_Q_TASKS, level, key, sizeof(key)) != 0)
		return -EINVAL;
	if ((rc = upmon_msg_task_encode(&next, &json, &len)) < 0)
		return rc;
	return outbox_add(ob, UPMON_AMQP_EX_RETRY, key, next.task_id, json);
}

static int
status_event(const struct probe_item *it, enum upmon_monitor_status prev, int64_t at,
    struct store_outbox *ob)
{
	struct upmon_status_event ev;
	char key[UPMON_AMQP_NAME_MAX], id[UPMON_AMQP_ID_MAX], err[UPMON_ERROR_MAX + 1];
	char *json = NULL;
	size_t len;
	int rc;

	upmon_status_event_init(&ev);
	memcpy(ev.monitor_id, it->task->monitor_id, sizeof(ev.monitor_id));
	memcpy(ev.owner_id, it->task->owner_id, sizeof(ev.owner_id));
	ev.status = it->status;
	ev.previous = prev;
	ev.at = at;
	upmon_task_id_format(ev.task_id, sizeof(ev.task_id), it->task->monitor_id,
	    it->task->scheduled_at, it->task->attempt);
	ev.has_result = true;
	summary(&it->result, &ev.result, err, sizeof(err));
	snprintf(id, sizeof(id), "status:%s", ev.task_id);
	if ((rc = upmon_msg_status_routing_key(&ev, key, sizeof(key))) < 0 ||
	    (rc = upmon_msg_status_encode(&ev, &json, &len)) < 0)
		return rc;
	return outbox_add(ob, UPMON_AMQP_EX_EVENTS, key, id, json);
}

/* Copies at most max bytes of s without splitting a UTF-8 sequence. */
static char *
dup_utf8(const char *s, size_t max)
{
	size_t n = strlen(s);
	char *d;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if ((d = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Encodes ev (its strings are borrowed) and adds it; ev->alert_id is the message id. */
static int
alert_add(struct store_outbox *ob, struct upmon_alert_event *ev)
{
	char key[UPMON_AMQP_NAME_MAX];
	char *json = NULL;
	size_t len;
	int rc;

	if ((rc = upmon_msg_alert_routing_key(ev, key, sizeof(key))) < 0 ||
	    (rc = upmon_msg_alert_encode(ev, &json, &len)) < 0)
		return rc;
	return outbox_add(ob, UPMON_AMQP_EX_EVENTS, key, ev->alert_id, json);
}

/* What one row of upmon_probe_apply() says about an alert of an item. */
struct alert_row {
	const char *kind, *alert_id, *name, *target;
	int64_t at;
	int64_t outage;			/* recovery: the outage; reminder: down so far */
	bool reminder;
	int cert_days_left;		/* tls_expiry */
};

static int64_t
clamp_outage(int64_t v)
{
	return v < 0 ? 0 : v > 315360000 ? 315360000 : v;
}

static int
alert_event(const struct probe_item *it, const struct alert_row *a, struct store_outbox *ob)
{
	struct upmon_alert_event ev;
	char err[UPMON_ERROR_MAX + 1];
	char *nm = NULL, *tg = NULL;
	int rc = -ENOMEM;

	upmon_alert_event_init(&ev);
	if (upmon_alert_kind_parse(a->kind, &ev.kind) < 0)
		return -EINVAL;
	snprintf(ev.alert_id, sizeof(ev.alert_id), "%s", a->alert_id);
	memcpy(ev.monitor_id, it->task->monitor_id, sizeof(ev.monitor_id));
	memcpy(ev.owner_id, it->task->owner_id, sizeof(ev.owner_id));
	if ((nm = dup_utf8(a->name, UPMON_NAME_MAX)) == NULL ||
	    (tg = dup_utf8(a->target, UPMON_TARGET_MAX)) == NULL)
		goto out;
	ev.monitor_name = nm;
	ev.target = tg;
	ev.at = a->at;
	probe_store_clean_text(err, sizeof(err), it->result.error);
	if (ev.kind == UPMON_ALERT_DOWN && err[0] != '\0')
		ev.error = err;
	if (ev.kind == UPMON_ALERT_DOWN && a->reminder) {
		ev.reminder = true;
		ev.outage_seconds = clamp_outage(a->outage);
	}
	if (ev.kind == UPMON_ALERT_RECOVERY)
		ev.outage_seconds = clamp_outage(a->outage);
	if (ev.kind == UPMON_ALERT_TLS_EXPIRY)
		ev.cert_days_left = a->cert_days_left < -36500 ? -36500 :
		    a->cert_days_left > 36500 ? 36500 : a->cert_days_left;
	rc = alert_add(ob, &ev);
out:
	free(nm);
	free(tg);
	return rc;
}

int
probe_store_syserr_event(struct store_outbox *ob, const struct upmon_task *task,
    int attempts, const char *error, const PGresult *res)
{
	struct upmon_alert_event ev;
	const char *name = upmon_db_value(res, 0, 1), *target = upmon_db_value(res, 0, 2);
	char *nm = NULL, *tg = NULL;
	int64_t at;
	int rc = -ENOMEM;

	upmon_alert_event_init(&ev);
	ev.kind = UPMON_ALERT_SYSTEM_ERROR;
	snprintf(ev.alert_id, sizeof(ev.alert_id), "%s", upmon_db_value(res, 0, 0));
	memcpy(ev.monitor_id, task->monitor_id, sizeof(ev.monitor_id));
	memcpy(ev.owner_id, task->owner_id, sizeof(ev.owner_id));
	if ((name != NULL && (nm = dup_utf8(name, UPMON_NAME_MAX)) == NULL) ||
	    (target != NULL && (tg = dup_utf8(target, UPMON_TARGET_MAX)) == NULL))
		goto out;
	ev.monitor_name = nm;
	ev.target = tg;
	if (upmon_db_int64(res, 0, 3, &at) < 0)
		goto out;
	ev.at = at;
	ev.error = (char *)error;
	upmon_task_id_format(ev.task_id, sizeof(ev.task_id), task->monitor_id,
	    task->scheduled_at, task->attempt);
	ev.attempts = attempts < 1 ? 1 : attempts > 100 ? 100 : attempts;
	rc = alert_add(ob, &ev);
out:
	free(nm);
	free(tg);
	return rc;
}

static int
col_bool(const PGresult *res, int r, int c)
{
	const char *v = upmon_db_value(res, r, c);

	return v != NULL && v[0] == 't';
}

static int
col_status(const PGresult *res, int r, int c, enum upmon_monitor_status *out)
{
	const char *v = upmon_db_value(res, r, c);

	return v != NULL ? upmon_monitor_status_parse(v, out) : -EINVAL;
}

/* Queues the alert event of a; counts it in c. Logs a failure (the batch still commits). */
static void
alert_queue(const struct probe_item *it, const struct alert_row *a, struct upmon_counter *c,
    struct store_outbox *ob)
{
	int rc;

	if ((rc = alert_event(it, a, ob)) < 0)
		log_warnx("store: %s%s alert %s not queued: %s", a->kind,
		    a->reminder ? " reminder" : "", a->alert_id, strerror(-rc));
	else
		upmon_counter_inc(c);
}

/* Adds the messages a stored item calls for. An encoding failure loses only that message:
 * it is logged (and the rest of the batch commits). */
static void
item_messages(struct probe_store *s, const PGresult *res, int r, struct probe_item *it,
    enum upmon_monitor_status prev, int64_t at, struct store_outbox *ob)
{
	const char *kind = upmon_db_value(res, r, 8), *alert_id = upmon_db_value(res, r, 9);
	const char *name = upmon_db_value(res, r, 11), *target = upmon_db_value(res, r, 12);
	const char *tls_id = upmon_db_value(res, r, 13);
	struct alert_row a = { .name = name, .target = target, .at = at };
	int64_t days = 0;
	int rc = 0;

	log_ctx_set(it->task->monitor_id, it->task->task_id);
	if (!it->final && (rc = reprobe(s, it, ob)) == 0)
		it->reprobe = true;
	else if (!it->final)
		log_warnx("store: re-probe not queued: %s", strerror(-rc));
	if (it->changed && (rc = status_event(it, prev, at, ob)) < 0)
		log_warnx("store: status event not queued: %s", strerror(-rc));
	if (kind != NULL && alert_id != NULL && name != NULL && target != NULL) {
		a.kind = kind;
		a.alert_id = alert_id;
		a.reminder = col_bool(res, r, 15);
		upmon_db_int64(res, r, 10, &a.outage);
		alert_queue(it, &a, a.reminder ? s->m_alert_reminder :
		    strcmp(kind, "down") == 0 ? s->m_alert_down : s->m_alert_recovery, ob);
	}
	if (tls_id != NULL && name != NULL && target != NULL &&
	    upmon_db_int64(res, r, 14, &days) == 0) {
		a.kind = "tls_expiry";
		a.alert_id = tls_id;
		a.reminder = false;
		a.outage = 0;
		a.cert_days_left = (int)(days < -36500 ? -36500 : days > 36500 ? 36500 : days);
		alert_queue(it, &a, s->m_alert_tls, ob);
	}
	log_ctx_clear();
}

int
probe_store_read_rows(struct probe_store *s, const PGresult *res, struct probe_item **order,
    struct store_extra *extra, size_t n, struct store_outbox *ob)
{
	enum upmon_monitor_status prev;
	struct probe_item *it;
	int64_t k, outcome, at;
	int r;

	if ((size_t)PQntuples(res) != n || PQnfields(res) != 16)
		return UPMON_DB_E_QUERY;
	for (r = 0; r < (int)n; r++) {
		if (upmon_db_int64(res, r, 0, &k) < 0 || k < 1 || k > (int64_t)n ||
		    upmon_db_int64(res, r, 1, &outcome) < 0 || outcome < 1 || outcome > 3)
			return UPMON_DB_E_QUERY;
		it = order[k - 1];
		it->outcome = (enum probe_item_outcome)outcome;
		it->final = col_bool(res, r, 2);
		if (outcome != PROBE_ITEM_STORED) {
			if (outcome == PROBE_ITEM_DUPLICATE)
				col_status(res, r, 4, &it->status);
			continue;
		}
		if (col_status(res, r, 4, &it->status) < 0 || col_status(res, r, 5, &prev) < 0 ||
		    upmon_db_int64(res, r, 6, &extra[k - 1].since_ms) < 0 ||
		    upmon_db_int64(res, r, 7, &at) < 0)
			return UPMON_DB_E_QUERY;
		extra[k - 1].at_ms = at;
		it->changed = it->status != prev;
		item_messages(s, res, r, it, prev, at, ob);
	}
	return 0;
}

/* Fills st from a stored item. err holds the error text. */
static void
latest_from(const struct probe_item *it, const struct store_extra *x,
    struct upmon_latest_status *st, char *err, size_t errlen)
{
	const struct probe_result *r = &it->result;

	upmon_latest_status_init(st);
	memcpy(st->monitor_id, it->task->monitor_id, sizeof(st->monitor_id));
	memcpy(st->owner_id, it->task->owner_id, sizeof(st->owner_id));
	st->status = it->status;
	st->since = x->since_ms;
	st->checked_at = x->at_ms;
	st->scheduled_at = it->task->scheduled_at;
	st->attempt = it->task->attempt;
	summary(r, &st->result, err, errlen);
	st->timings.dns_ms = r->timings.dns_ms > MS_MAX ? MS_MAX : r->timings.dns_ms;
	st->timings.connect_ms = r->timings.connect_ms > MS_MAX ? MS_MAX : r->timings.connect_ms;
	st->timings.tls_ms = r->timings.tls_ms > MS_MAX ? MS_MAX : r->timings.tls_ms;
	st->timings.first_byte_ms = r->timings.first_byte_ms > MS_MAX ? MS_MAX :
	    r->timings.first_byte_ms;
	st->timings.total_ms = r->timings.total_ms > MS_MAX ? MS_MAX : r->timings.total_ms;
	if (st->timings.dns_ms < 0) st->timings.dns_ms = -1;
	if (st->timings.connect_ms < 0) st->timings.connect_ms = -1;
	if (st->timings.tls_ms < 0) st->timings.tls_ms = -1;
	if (st->timings.first_byte_ms < 0) st->timings.first_byte_ms = -1;
	if (st->timings.total_ms < 0) st->timings.total_ms = -1;
	if (r->has_cert) {
		st->has_cert = true;
		st->cert_days_left = r->cert_days_left < -36500 ? -36500 :
		    r->cert_days_left > 36500 ? 36500 : r->cert_days_left;
	}
}

void
probe_store_cache(struct probe_store *s, const struct probe_item *items, size_t n)
{
	struct upmon_latest_status st;
	char err[UPMON_ERROR_MAX + 1];
	const struct probe_item *it;
	const char **ids = NULL, **json = NULL;
	int64_t *ts = NULL;
	size_t k, m = 0, len;
	int rc;

	if (s->cache == NULL || s->nextra == 0)
		return;
	ids = calloc(s->nextra, sizeof(*ids));
	json = calloc(s->nextra, sizeof(*json));
	ts = calloc(s->nextra, sizeof(*ts));
	if (ids == NULL || json == NULL || ts == NULL)
		goto out;
	for (k = 0; k < s->nextra; k++) {
		char *js;

		it = s->order[k];
		if (it < items || it >= items + n || it->outcome != PROBE_ITEM_STORED)
			continue;
		latest_from(it, &s->extra[k], &st, err, sizeof(err));
		if (upmon_msg_latest_encode(&st, &js, &len) < 0) {
			log_warnx("store: latest status of %s not encodable", it->task->monitor_id);
			continue;
		}
		ids[m] = it->task->monitor_id;
		ts[m] = it->task->scheduled_at + it->task->attempt;
		json[m++] = js;
	}
	/* one round trip for the whole batch; newest wins per monitor */
	if (m > 0 && (rc = upmon_cache_status_put_many(s->cache, m, ids, ts, json, NULL)) < 0) {
		upmon_counter_add(s->m_cache_errors, m);
		log_debug("store: %zu latest-status writes failed: %s", m,
		    upmon_cache_errstr(s->cache));
	}
out:
	for (k = 0; json != NULL && k < m; k++)
		free((char *)json[k]);
	free(ids);
	free(json);
	free(ts);
}
