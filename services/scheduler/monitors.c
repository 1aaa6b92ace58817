/*
 * The in-memory monitor table. Every active monitor is one heap-allocated entry holding its
 * task template (the wire struct of msg.h, attempt 1) and its grid phase; entries have a
 * stable number (the heap's id) and a map from monitor id to number. Rows come from
 * PostgreSQL in pages by id (the partial index monitors_active_idx), so a full load never
 * holds more than one page of PGresult, and the loop can keep publishing between pages.
 * A row that upmon_task_validate() refuses stays in the table marked invalid (not scheduled),
 * so it is warned about once per change, not once per reconcile.
 */
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "upmon/backoff.h"
#include "upmon/db.h"
#include "upmon/log.h"

#define NONE UINT32_MAX
#define SCHED_TEMPLATE_SLOT 946684800000LL	/* 2000-01-01, the wire's lowest slot */

#define MON_COLUMNS \
	"id, owner_id, type, url, host, port, method, headers, body, expected_status, " \
	"keyword, keyword_absent, max_latency_ms, follow_redirects, max_redirects, verify_tls, " \
	"cert_expiry_days, timeout_ms, interval_seconds, retries, " \
	"(extract(epoch FROM updated_at) * 1000000)::int8"

static const char page_sql[] =
	"SELECT " MON_COLUMNS " FROM monitors WHERE NOT paused AND id > $1::uuid "
	"ORDER BY id LIMIT $2";
static const char one_sql[] =
	"SELECT " MON_COLUMNS " FROM monitors WHERE id = $1::uuid AND NOT paused";

enum {
	C_ID, C_OWNER, C_TYPE, C_URL, C_HOST, C_PORT, C_METHOD, C_HEADERS, C_BODY, C_EXPECTED,
	C_KEYWORD, C_KEYWORD_ABSENT, C_MAX_LATENCY, C_FOLLOW, C_MAX_REDIRECTS, C_VERIFY_TLS,
	C_CERT_DAYS, C_TIMEOUT, C_INTERVAL, C_RETRIES, C_UPDATED, C_NCOLS
};

void
sched_monitors_init(struct sched_monitors *t)
{
	memset(t, 0, sizeof(*t));
}

static void
mon_free(struct sched_mon *m)
{
	if (m == NULL)
		return;
	upmon_task_release(&m->task);
	free(m);
}

void
sched_monitors_release(struct sched_monitors *t)
{
	uint32_t i;

	for (i = 0; i < t->nno; i++)
		mon_free(t->byno[i]);
	free(t->byno);
	free(t->freeno);
	free(t->map);
	sched_monitors_init(t);
}

struct sched_mon *
sched_monitors_get(const struct sched_monitors *t, uint32_t no)
{
	if (no >= t->nno)
		return NULL;
	return t->byno[no];
}

/* ---- the id -> number map (linear probing, backward-shift deletion) ---- */

static size_t
map_slot(const struct sched_monitors *t, const char *id)
{
	return (size_t)sched_fnv1a64(id) & (t->mapcap - 1);
}

uint32_t
sched_monitors_find(const struct sched_monitors *t, const char *id)
{
	size_t i;
	uint32_t no;

	if (t->mapcap == 0)
		return NONE;
	for (i = map_slot(t, id);; i = (i + 1) & (t->mapcap - 1)) {
		if ((no = t->map[i]) == NONE)
			return NONE;
		if (strcmp(t->byno[no]->task.monitor_id, id) == 0)
			return no;
	}
}

static void
map_put(struct sched_monitors *t, uint32_t no)
{
	size_t i;

	for (i = map_slot(t, t->byno[no]->task.monitor_id); t->map[i] != NONE;
	    i = (i + 1) & (t->mapcap - 1))
		;
	t->map[i] = no;
}

static int
map_grow(struct sched_monitors *t)
{
	uint32_t *old = t->map, *map;
	size_t oldcap = t->mapcap, ncap, i;

	if ((t->count + 1) * 2 <= t->mapcap)
		return 0;
	ncap = t->mapcap ? t->mapcap * 2 : 1024;
	if ((map = malloc(ncap * sizeof(*map))) == NULL)
		return -ENOMEM;
	for (i = 0; i < ncap; i++)
		map[i] = NONE;
	t->map = map;
	t->mapcap = ncap;
	for (i = 0; i < oldcap; i++)
		if (old[i] != NONE)
			map_put(t, old[i]);
	free(old);
	return 0;
}

static void
map_del(struct sched_monitors *t, uint32_t no)
{
	size_t i, j, k, mask = t->mapcap - 1;

	for (i = map_slot(t, t->byno[no]->task.monitor_id); t->map[i] != no; i = (i + 1) & mask)
		if (t->map[i] == NONE)
			return;
	t->map[i] = NONE;
	for (j = (i + 1) & mask; t->map[j] != NONE; j = (j + 1) & mask) {
		k = map_slot(t, t->byno[t->map[j]]->task.monitor_id);
		/* move map[j] into the hole at i unless its home k lies cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->map[i] = t->map[j];
		t->map[j] = NONE;
		i = j;
	}
}

/* Takes ownership of m; returns its number or NONE (out of memory). */
static uint32_t
table_add(struct sched_monitors *t, struct sched_mon *m)
{
	struct sched_mon **byno;
	uint32_t no, *freeno;
	uint32_t ncap;

	if (map_grow(t) != 0)
		return NONE;
	if (t->nfree > 0) {
		no = t->freeno[--t->nfree];
	} else {
		if (t->nno == t->capno) {
			ncap = t->capno ? t->capno * 2 : 1024;
			if ((byno = realloc(t->byno, ncap * sizeof(*byno))) == NULL)
				return NONE;
			t->byno = byno;
			if ((freeno = realloc(t->freeno, ncap * sizeof(*freeno))) == NULL)
				return NONE;
			t->freeno = freeno;
			t->capno = ncap;
		}
		no = t->nno++;
	}
	t->byno[no] = m;
	map_put(t, no);
	t->count++;
	return no;
}

void
sched_monitors_remove(struct sched_monitors *t, uint32_t no, sched_change_fn fn, void *arg)
{
	struct sched_mon *m = sched_monitors_get(t, no);

	if (m == NULL)
		return;
	if (fn != NULL && !m->invalid)
		fn(arg, no, SCHED_REMOVED);
	if (m->invalid)
		t->invalid--;
	map_del(t, no);
	t->byno[no] = NULL;
	t->freeno[t->nfree++] = no;
	t->count--;
	mon_free(m);
}

/* ---- rows -> tasks ---- */

static int
col_dup(const PGresult *res, int row, int col, char **out)
{
	const char *v = upmon_db_value(res, row, col);

	*out = NULL;
	if (v == NULL)
		return 0;
	if ((*out = strdup(v)) == NULL)
		return -ENOMEM;
	return 0;
}

static int
col_int(const PGresult *res, int row, int col, int def, int *out)
{
	int64_t v;

	if (upmon_db_value(res, row, col) == NULL) {
		*out = def;
		return 0;
	}
	if (upmon_db_int64(res, row, col, &v) != 0 || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static bool
col_bool(const PGresult *res, int row, int col)
{
	const char *v = upmon_db_value(res, row, col);

	return v != NULL && v[0] == 't';
}

static int
parse_expected(const char *text, struct upmon_check *c, char *err, size_t errlen)
{
	char part[16];
	const char *p = text, *comma;
	size_t len;

	c->nexpected = 0;
	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(part) || c->nexpected == UPMON_EXPECTED_MAX) {
			snprintf(err, errlen, "expected_status: bad or too many entries");
			return -EINVAL;
		}
		memcpy(part, p, len);
		part[len] = '\0';
		if (upmon_status_range_parse(part, &c->expected[c->nexpected]) != 0) {
			snprintf(err, errlen, "expected_status: bad entry \"%s\"", part);
			return -EINVAL;
		}
		c->nexpected++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (c->nexpected == 0) {
		snprintf(err, errlen, "expected_status: empty");
		return -EINVAL;
	}
	return 0;
}

static int
parse_headers(const char *text, struct upmon_check *c, char *err, size_t errlen)
{
	struct json_object *obj;
	size_t n, i = 0;
	int rc = 0;

	if (text == NULL || strcmp(text, "{}") == 0)
		return 0;
	obj = json_tokener_parse(text);
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "headers: not a json object");
		rc = -EINVAL;
		goto out;
	}
	n = (size_t)json_object_object_length(obj);
	if (n > UPMON_HEADERS_MAX) {
		snprintf(err, errlen, "headers: %zu entries, at most %d", n, UPMON_HEADERS_MAX);
		rc = -EINVAL;
		goto out;
	}
	if (n == 0)
		goto out;
	if ((c->headers = calloc(n, sizeof(*c->headers))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_foreach(obj, key, val) {
		if (!json_object_is_type(val, json_type_string)) {
			snprintf(err, errlen, "headers: value of \"%.64s\" is not a string", key);
			rc = -EINVAL;
			goto out;
		}
		c->headers[i].name = strdup(key);
		c->headers[i].value = strdup(json_object_get_string(val));
		c->nheaders = ++i;
		if (c->headers[i - 1].name == NULL || c->headers[i - 1].value == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
out:
	json_object_put(obj);
	return rc;
}

static int
parse_method(const char *text, enum upmon_http_method *out)
{
	int i;
	const char *name;

	for (i = UPMON_HTTP_GET; i <= UPMON_HTTP_OPTIONS; i++) {
		name = upmon_http_method_name((enum upmon_http_method)i);
		if (name != NULL && text != NULL && strcmp(name, text) == 0) {
			*out = (enum upmon_http_method)i;
			return 0;
		}
	}
	return -EINVAL;
}

int
sched_monitor_from_row(const struct pg_result *cres, int row, struct upmon_task *t,
    int64_t *updated_us, char *err, size_t errlen)
{
	const PGresult *res = (const PGresult *)cres;
	struct upmon_check *c = &t->check;
	const char *id, *owner, *type;
	int64_t upd;
	int rc;

	err[0] = '\0';
	id = upmon_db_value(res, row, C_ID);
	owner = upmon_db_value(res, row, C_OWNER);
	type = upmon_db_value(res, row, C_TYPE);
	if (id == NULL || owner == NULL || type == NULL || strlen(id) > UPMON_ID_MAX ||
	    strlen(owner) > UPMON_ID_MAX) {
		snprintf(err, errlen, "bad id, owner_id or type");
		return -EINVAL;
	}
	memcpy(t->monitor_id, id, strlen(id) + 1);
	memcpy(t->owner_id, owner, strlen(owner) + 1);
	t->task_id[0] = '\0';
	t->attempt = 1;
	t->scheduled_at = SCHED_TEMPLATE_SLOT;	/* set per publish; valid for the checks */
	if (upmon_db_int64(res, row, C_UPDATED, &upd) != 0)
		upd = 0;
	*updated_us = upd;
	if (strcmp(type, "http") == 0)
		c->type = UPMON_CHECK_HTTP;
	else if (strcmp(type, "tcp") == 0)
		c->type = UPMON_CHECK_TCP;
	else {
		snprintf(err, errlen, "unknown type \"%.32s\"", type);
		return -EINVAL;
	}
	if ((rc = col_dup(res, row, C_URL, &c->url)) != 0 ||
	    (rc = col_dup(res, row, C_HOST, &c->host)) != 0 ||
	    (rc = col_dup(res, row, C_BODY, &c->body)) != 0 ||
	    (rc = col_dup(res, row, C_KEYWORD, &c->keyword)) != 0)
		return rc;
	if (parse_method(upmon_db_value(res, row, C_METHOD), &c->method) != 0) {
		snprintf(err, errlen, "unknown method");
		return -EINVAL;
	}
	if ((rc = parse_headers(upmon_db_value(res, row, C_HEADERS), c, err, errlen)) != 0)
		return rc;
	if (upmon_db_value(res, row, C_EXPECTED) != NULL &&
	    (rc = parse_expected(upmon_db_value(res, row, C_EXPECTED), c, err, errlen)) != 0)
		return rc;
	c->keyword_absent = col_bool(res, row, C_KEYWORD_ABSENT);
	c->follow_redirects = col_bool(res, row, C_FOLLOW);
	c->verify_tls = col_bool(res, row, C_VERIFY_TLS);
	if (col_int(res, row, C_PORT, 0, &c->port) != 0 ||
	    col_int(res, row, C_MAX_LATENCY, 0, &c->max_latency_ms) != 0 ||
	    col_int(res, row, C_MAX_REDIRECTS, 5, &c->max_redirects) != 0 ||
	    col_int(res, row, C_CERT_DAYS, 0, &c->cert_expiry_days) != 0 ||
	    col_int(res, row, C_TIMEOUT, 10000, &c->timeout_ms) != 0 ||
	    col_int(res, row, C_INTERVAL, 60, &t->interval_seconds) != 0 ||
	    col_int(res, row, C_RETRIES, 0, &t->retries) != 0) {
		snprintf(err, errlen, "bad integer column");
		return -EINVAL;
	}
	if (c->type == UPMON_CHECK_TCP) {
		/* the wire refuses http fields on a tcp check: drop the defaults */
		c->nexpected = 0;
	}
	return upmon_task_validate(t, err, errlen);
}

/* ---- applying rows ---- */

static void
apply_row(struct sched_monitors *t, const PGresult *res, int row, sched_change_fn fn,
    void *arg)
{
	struct sched_mon *m, *nm;
	const char *id = upmon_db_value(res, row, C_ID);
	char err[256];
	int64_t upd = 0;
	uint32_t no;
	bool regrid;
	int rc;

	if (id == NULL)
		return;
	no = sched_monitors_find(t, id);
	m = sched_monitors_get(t, no);
	if (m != NULL) {
		m->seen = t->pass;
		if (upmon_db_int64(res, row, C_UPDATED, &upd) == 0 && upd == m->updated_us)
			return;
	}
	if ((nm = calloc(1, sizeof(*nm))) == NULL) {
		log_warnx("out of memory loading monitor %s", id);
		return;
	}
	upmon_task_init(&nm->task);
	rc = sched_monitor_from_row((const struct pg_result *)res, row, &nm->task,
	    &nm->updated_us, err, sizeof(err));
	nm->seen = t->pass;
	nm->version = ++t->next_version;
	if (rc == -ENOMEM) {
		log_warnx("out of memory loading monitor %s", id);
		mon_free(nm);
		return;
	}
	if (rc != 0) {
		log_ctx_set(id, NULL);
		log_warnx("monitor skipped: %s", err);
		log_ctx_clear();
		upmon_task_release(&nm->task);
		memcpy(nm->task.monitor_id, id, strnlen(id, UPMON_ID_MAX));
		nm->invalid = true;
	} else {
		nm->phase_ms = sched_phase_ms(nm->task.monitor_id, nm->task.interval_seconds);
	}
	if (m == NULL) {
		if ((no = table_add(t, nm)) == NONE) {
			log_warnx("out of memory loading monitor %s", id);
			mon_free(nm);
			return;
		}
		if (nm->invalid)
			t->invalid++;
		else if (fn != NULL)
			fn(arg, no, SCHED_ADDED);
		return;
	}
	/* replace m by nm in place: same number, same map slot (same id) */
	regrid = m->invalid || nm->invalid ||
	    m->task.interval_seconds != nm->task.interval_seconds;
	if (m->invalid)
		t->invalid--;
	if (nm->invalid)
		t->invalid++;
	if (!m->invalid && nm->invalid && fn != NULL)
		fn(arg, no, SCHED_REMOVED);
	t->byno[no] = nm;
	if (!nm->invalid && fn != NULL)
		fn(arg, no, m->invalid ? SCHED_ADDED : regrid ? SCHED_REGRID : SCHED_UPDATED);
	mon_free(m);
}

int
sched_monitors_load_all(struct sched_monitors *t, struct upmon_db *db, int batch,
    sched_change_fn fn, sched_tick_fn tick, void *arg, size_t *nloaded)
{
	char last[UPMON_ID_MAX + 1] = "00000000-0000-0000-0000-000000000000";
	char limit[24];
	const char *params[2] = { last, limit };
	struct upmon_db_error err;
	PGresult *res = NULL;
	struct sched_mon *m;
	size_t total = 0;
	uint32_t no;
	int i, n, rc;
	const char *v;

	int64_t tq = 0, ta = 0, t0;

	*nloaded = 0;
	snprintf(limit, sizeof(limit), "%d", batch > 0 ? batch : 5000);
	t->pass++;
	for (;;) {
		t0 = upmon_mono_ms();
		rc = upmon_db_query(db, UPMON_DB_IDEMPOTENT, page_sql, 2, params, &res, &err);
		tq += upmon_mono_ms() - t0;
		if (rc != 0) {
			log_warnx("loading monitors: %s", err.message);
			return rc;
		}
		n = PQntuples(res);
		if (PQnfields(res) != C_NCOLS) {
			PQclear(res);
			return UPMON_DB_E_QUERY;
		}
		t0 = upmon_mono_ms();
		for (i = 0; i < n; i++)
			apply_row(t, res, i, fn, arg);
		ta += upmon_mono_ms() - t0;
		total += (size_t)n;
		if (n > 0 && (v = upmon_db_value(res, n - 1, C_ID)) != NULL)
			snprintf(last, sizeof(last), "%s", v);
		PQclear(res);
		if (n < batch)
			break;
		if (tick != NULL)
			tick(arg);
	}
	for (no = 0; no < t->nno; no++) {
		m = t->byno[no];
		if (m != NULL && m->seen != t->pass)
			sched_monitors_remove(t, no, fn, arg);
	}
	*nloaded = total;
	log_debug("monitors loaded: %zu rows, %lld ms in queries, %lld ms applying", total,
	    (long long)tq, (long long)ta);
	return 0;
}

static bool
is_uuid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F'))) {
			return false;
		}
	}
	return i == 36;
}

int
sched_monitors_load_one(struct sched_monitors *t, struct upmon_db *db, const char *id,
    sched_change_fn fn, void *arg)
{
	const char *params[1] = { id };
	struct upmon_db_error err;
	PGresult *res = NULL;
	uint32_t no;
	int rc;

	if (!is_uuid(id))
		return -EINVAL;
	if ((rc = upmon_db_query(db, UPMON_DB_IDEMPOTENT, one_sql, 1, params, &res,
	    &err)) != 0) {
		log_warnx("loading monitor %s: %s", id, err.message);
		return rc;
	}
	if (PQntuples(res) == 1 && PQnfields(res) == C_NCOLS) {
		apply_row(t, res, 0, fn, arg);
	} else if ((no = sched_monitors_find(t, id)) != NONE) {
		sched_monitors_remove(t, no, fn, arg);
	}
	PQclear(res);
	return 0;
}

