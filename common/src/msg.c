/*
 * Tasks: what the scheduler publishes to upmon.tasks and the probe consumes from
 * monitor_tasks. The flat fields are described by tables (msg_int.h); headers and expected
 * status codes are arrays handled here. proto/task.schema.json is the same contract.
 */
#include "upmon/msg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"

_Static_assert(sizeof(enum upmon_check_type) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum upmon_http_method) == sizeof(int), "enums are stored as int");

static const char *const check_type_names[] = { "http", "tcp", NULL };
static const char *const method_names[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL,
};

#define T(f) offsetof(struct upmon_task, f)
static const struct mf task_fields[] = {
	{ "task_id", MF_TASKID, MF_REQ, 1, UPMON_TASK_ID_MAX, 0, T(task_id), 0, NULL },
	{ "monitor_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, T(monitor_id), 0, NULL },
	{ "owner_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, T(owner_id), 0, NULL },
	{ "scheduled_at", MF_I64, MF_REQ, MSG_TIME_MIN, MSG_TIME_MAX, 0, T(scheduled_at), 0, NULL },
	{ "attempt", MF_INT, MF_REQ, 1, 32, 0, T(attempt), 0, NULL },
	{ "interval_seconds", MF_INT, MF_REQ, 10, 86400, 0, T(interval_seconds), 0, NULL },
	{ "retries", MF_INT, MF_REQ, 0, 10, 0, T(retries), 0, NULL },
};
#define NTASK (sizeof(task_fields) / sizeof(task_fields[0]))

#define C(f) offsetof(struct upmon_check, f)
static const struct mf check_common[] = {
	{ "type", MF_ENUM, MF_REQ, 0, 0, 0, C(type), 0, check_type_names },
	{ "timeout_ms", MF_INT, MF_REQ, 100, 60000, 0, C(timeout_ms), 0, NULL },
};
static const struct mf check_http[] = {
	{ "url", MF_STR, MF_REQ, 1, UPMON_URL_MAX, 0, C(url), TX_URL, NULL },
	{ "method", MF_ENUM, 0, 0, 0, UPMON_HTTP_GET, C(method), 0, method_names },
	{ "body", MF_STR, 0, 0, UPMON_BODY_MAX, 0, C(body), TX_ANY, NULL },
	{ "keyword", MF_STR, 0, 1, UPMON_KEYWORD_MAX, 0, C(keyword), TX_ANY, NULL },
	{ "keyword_absent", MF_BOOL, 0, 0, 0, 0, C(keyword_absent), 0, NULL },
	{ "max_latency_ms", MF_INT, 0, 0, 60000, 0, C(max_latency_ms), 0, NULL },
	{ "follow_redirects", MF_BOOL, 0, 0, 0, 1, C(follow_redirects), 0, NULL },
	{ "max_redirects", MF_INT, 0, 0, 10, 5, C(max_redirects), 0, NULL },
	{ "verify_tls", MF_BOOL, 0, 0, 0, 1, C(verify_tls), 0, NULL },
	{ "cert_expiry_days", MF_INT, 0, 0, 365, 0, C(cert_expiry_days), 0, NULL },
};
static const struct mf check_tcp[] = {
	{ "host", MF_STR, MF_REQ, 1, UPMON_HOST_MAX, 0, C(host), TX_HOST, NULL },
	{ "port", MF_INT, MF_REQ, 1, 65535, 0, C(port), 0, NULL },
};

#define H(f) offsetof(struct upmon_http_header, f)
static const struct mf header_fields[] = {
	{ "name", MF_STR, MF_REQ, 1, UPMON_HEADER_NAME_MAX, 0, H(name), TX_TOKEN, NULL },
	{ "value", MF_STR, MF_REQ, 0, UPMON_HEADER_VALUE_MAX, 0, H(value), TX_NOCTL, NULL },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *
upmon_check_type_name(enum upmon_check_type t)
{
	return (unsigned)t < N(check_type_names) - 1 ? check_type_names[t] : NULL;
}

const char *
upmon_http_method_name(enum upmon_http_method m)
{
	return (unsigned)m < N(method_names) - 1 ? method_names[m] : NULL;
}

int
upmon_status_range_parse(const char *text, struct upmon_status_range *out)
{
	size_t len = strlen(text);
	int lo, hi;

	if ((len != 3 && len != 7) || !isdigit((unsigned char)text[0]) ||
	    !isdigit((unsigned char)text[1]) || !isdigit((unsigned char)text[2]))
		return -EINVAL;
	lo = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
	hi = lo;
	if (len == 7) {
		if (text[3] != '-' || !isdigit((unsigned char)text[4]) ||
		    !isdigit((unsigned char)text[5]) || !isdigit((unsigned char)text[6]))
			return -EINVAL;
		hi = (text[4] - '0') * 100 + (text[5] - '0') * 10 + (text[6] - '0');
	}
	if (lo < 100 || hi > 599 || lo > hi)
		return -EINVAL;
	out->lo = lo;
	out->hi = hi;
	return 0;
}

int
upmon_task_id_format(char *buf, size_t size, const char *monitor_id, int64_t scheduled_at,
    int attempt)
{
	int n = snprintf(buf, size, "%s:%" PRId64 ":%d", monitor_id, scheduled_at, attempt);

	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

void
upmon_task_init(struct upmon_task *t)
{
	memset(t, 0, sizeof(*t));
	t->attempt = 1;
	t->check.type = UPMON_CHECK_HTTP;
	t->check.timeout_ms = 10000;
	t->check.method = UPMON_HTTP_GET;
	t->check.expected[0].lo = 200;
	t->check.expected[0].hi = 299;
	t->check.nexpected = 1;
	t->check.follow_redirects = true;
	t->check.max_redirects = 5;
	t->check.verify_tls = true;
}

void
upmon_task_release(struct upmon_task *t)
{
	size_t i;

	mf_release(check_http, N(check_http), &t->check);
	mf_release(check_tcp, N(check_tcp), &t->check);
	for (i = 0; i < t->check.nheaders; i++)
		mf_release(header_fields, N(header_fields), &t->check.headers[i]);
	free(t->check.headers);
	upmon_task_init(t);
}

/* ---- validation (also run on what the decoder filled in) ----------------------------- */

static int
validate_headers(struct mctx *c, const struct upmon_check *chk)
{
	size_t i, bytes = 0;
	int rc;

	if (chk->nheaders > UPMON_HEADERS_MAX)
		return mfail(c, "headers", "more than %d headers", UPMON_HEADERS_MAX);
	for (i = 0; i < chk->nheaders; i++) {
		struct mctx hc = *c;

		snprintf(hc.prefix, sizeof(hc.prefix), "check.headers[%u].", (unsigned)i);
		if ((rc = mf_validate(&hc, header_fields, N(header_fields), &chk->headers[i])) < 0)
			return rc;
		bytes += strlen(chk->headers[i].name) + strlen(chk->headers[i].value);
	}
	if (bytes > UPMON_HEADERS_BYTES_MAX)
		return mfail(c, "headers", "more than %d bytes of names and values",
		    UPMON_HEADERS_BYTES_MAX);
	return 0;
}

static int
validate_check(struct mctx *c, const struct upmon_check *chk)
{
	char field[32];
	size_t i;
	int rc;

	if ((rc = mf_validate(c, check_common, N(check_common), chk)) < 0)
		return rc;
	if (chk->type == UPMON_CHECK_TCP)
		return mf_validate(c, check_tcp, N(check_tcp), chk);
	if ((rc = mf_validate(c, check_http, N(check_http), chk)) < 0 ||
	    (rc = validate_headers(c, chk)) < 0)
		return rc;
	if (chk->nexpected < 1 || chk->nexpected > UPMON_EXPECTED_MAX)
		return mfail(c, "expected_status", "expected 1..%d codes or ranges",
		    UPMON_EXPECTED_MAX);
	for (i = 0; i < chk->nexpected; i++) {
		const struct upmon_status_range *r = &chk->expected[i];

		snprintf(field, sizeof(field), "expected_status[%u]", (unsigned)i);
		if (r->lo < 100 || r->hi > 599 || r->lo > r->hi)
			return mfail(c, field, "expected a code or range within 100..599");
	}
	if (chk->keyword_absent && chk->keyword == NULL)
		return mfail(c, "keyword_absent", "requires \"keyword\"");
	return 0;
}

int
upmon_task_validate(const struct upmon_task *t, char *err, size_t errlen)
{
	struct mctx c = { "task", "", err, errlen };
	char id[UPMON_TASK_ID_MAX + 1];
	int rc;

	/* task_id (row 0) may be empty here: the encoder derives it. */
	if ((rc = mf_validate(&c, task_fields + 1, NTASK - 1, t)) < 0)
		return rc;
	if (t->task_id[0] != '\0') {
		if (upmon_task_id_format(id, sizeof(id), t->monitor_id, t->scheduled_at,
		    t->attempt) < 0 || strcmp(id, t->task_id) != 0)
			return mfail(&c, "task_id", "does not match monitor_id, scheduled_at and "
			    "attempt (expected \"%s\")", id);
	}
	snprintf(c.prefix, sizeof(c.prefix), "check.");
	return validate_check(&c, &t->check);
}

/* ---- decoding ------------------------------------------------------------------------- */

static const char *
task_key_ok(const char *key, const void *arg)
{
	(void)arg;
	if (strcmp(key, "v") == 0 || strcmp(key, "check") == 0 ||
	    mf_has(task_fields, NTASK, key))
		return NULL;
	return "unknown field";
}

static const char *
check_key_ok(const char *key, const void *arg)
{
	const struct upmon_check *chk = arg;
	int http = chk->type == UPMON_CHECK_HTTP;
	int in_http = mf_has(check_http, N(check_http), key) || strcmp(key, "headers") == 0 ||
	    strcmp(key, "expected_status") == 0;
	int in_tcp = mf_has(check_tcp, N(check_tcp), key);

	if (mf_has(check_common, N(check_common), key) || (http && in_http) || (!http && in_tcp))
		return NULL;
	if (in_http || in_tcp)
		return http ? "not allowed for type \"http\"" : "not allowed for type \"tcp\"";
	return "unknown field";
}

static const char *
header_key_ok(const char *key, const void *arg)
{
	(void)arg;
	return mf_has(header_fields, N(header_fields), key) ? NULL : "unknown field";
}

static int
decode_headers(struct mctx *c, json_object *arr, struct upmon_check *chk)
{
	size_t i, n;
	int rc;

	if (!json_object_is_type(arr, json_type_array))
		return mfail(c, "headers", "expected array of {name, value}, got %s",
		    mf_json_type(arr));
	n = json_object_array_length(arr);
	if (n > UPMON_HEADERS_MAX)
		return mfail(c, "headers", "more than %d headers", UPMON_HEADERS_MAX);
	if (n == 0)
		return 0;
	if ((chk->headers = calloc(n, sizeof(*chk->headers))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		json_object *h = json_object_array_get_idx(arr, i);
		struct mctx hc = *c;

		snprintf(hc.prefix, sizeof(hc.prefix), "check.headers[%u].", (unsigned)i);
		if (!json_object_is_type(h, json_type_object)) {
			char field[32];

			snprintf(field, sizeof(field), "headers[%u]", (unsigned)i);
			return mfail(c, field, "expected object {name, value}, got %s",
			    mf_json_type(h));
		}
		chk->nheaders = i + 1;	/* from here on, release frees this header */
		if ((rc = mf_check_keys(&hc, h, header_key_ok, NULL)) < 0 ||
		    (rc = mf_decode(&hc, h, header_fields, N(header_fields), &chk->headers[i])) < 0)
			return rc;
	}
	return 0;
}

static int
decode_expected(struct mctx *c, json_object *arr, struct upmon_check *chk)
{
	char field[32], got[48];
	size_t i, n;

	if (!json_object_is_type(arr, json_type_array))
		return mfail(c, "expected_status", "expected array of \"NNN\" or \"NNN-NNN\", "
		    "got %s", mf_json_type(arr));
	n = json_object_array_length(arr);
	if (n < 1 || n > UPMON_EXPECTED_MAX)
		return mfail(c, "expected_status", "expected 1..%d codes or ranges, got %zu",
		    UPMON_EXPECTED_MAX, n);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		snprintf(field, sizeof(field), "expected_status[%u]", (unsigned)i);
		if (!json_object_is_type(e, json_type_string))
			return mfail(c, field, "expected string \"NNN\" or \"NNN-NNN\", got %s",
			    mf_json_type(e));
		if (upmon_status_range_parse(json_object_get_string(e), &chk->expected[i]) < 0 ||
		    strlen(json_object_get_string(e)) != (size_t)json_object_get_string_len(e)) {
			snprintf(got, sizeof(got), "%.40s", json_object_get_string(e));
			return mfail(c, field, "expected \"NNN\" or \"NNN-NNN\" within 100..599, "
			    "got \"%s\"", got);
		}
	}
	chk->nexpected = n;
	return 0;
}

static int
decode_check(struct mctx *c, json_object *root, struct upmon_check *chk)
{
	json_object *obj, *arr;
	int rc;

	if (!json_object_object_get_ex(root, "check", &obj))
		return mfail(c, "check", "missing");
	if (!json_object_is_type(obj, json_type_object))
		return mfail(c, "check", "expected object, got %s", mf_json_type(obj));
	snprintf(c->prefix, sizeof(c->prefix), "check.");
	if ((rc = mf_decode(c, obj, check_common, N(check_common), chk)) < 0 ||
	    (rc = mf_check_keys(c, obj, check_key_ok, chk)) < 0)
		return rc;
	if (chk->type == UPMON_CHECK_TCP)
		return mf_decode(c, obj, check_tcp, N(check_tcp), chk);
	if ((rc = mf_decode(c, obj, check_http, N(check_http), chk)) < 0)
		return rc;
	if (json_object_object_get_ex(obj, "headers", &arr) &&
	    (rc = decode_headers(c, arr, chk)) < 0)
		return rc;
	if (json_object_object_get_ex(obj, "expected_status", &arr) &&
	    (rc = decode_expected(c, arr, chk)) < 0)
		return rc;
	return 0;
}

int
upmon_msg_task_decode(const char *buf, size_t len, struct upmon_task *out, char *err,
    size_t errlen)
{
	struct mctx c = { "task", "", err, errlen };
	json_object *root = NULL;
	int rc;

	upmon_task_init(out);
	if ((rc = msg_parse("task", buf, len, &root, err, errlen)) < 0)
		return rc;
	if ((rc = mf_check_keys(&c, root, task_key_ok, NULL)) < 0 ||
	    (rc = mf_decode(&c, root, task_fields, NTASK, out)) < 0 ||
	    (rc = decode_check(&c, root, &out->check)) < 0)
		goto fail;
	/* ranges were checked while decoding; this adds the cross-field rules */
	if ((rc = upmon_task_validate(out, err, errlen)) < 0)
		goto fail;
	json_object_put(root);
	return 0;
fail:
	json_object_put(root);
	upmon_task_release(out);
	return rc;
}

/* ---- encoding ------------------------------------------------------------------------- */

static int
encode_http_arrays(json_object *obj, const struct upmon_check *chk)
{
	json_object *arr, *h;
	char range[8];
	size_t i;

	if (chk->nheaders > 0) {
		if ((arr = json_object_new_array()) == NULL ||
		    json_object_object_add(obj, "headers", arr) != 0) {
			json_object_put(arr);
			return -ENOMEM;
		}
		for (i = 0; i < chk->nheaders; i++) {
			if ((h = json_object_new_object()) == NULL ||
			    json_object_array_add(arr, h) != 0) {
				json_object_put(h);
				return -ENOMEM;
			}
			if (mf_encode(h, header_fields, N(header_fields), &chk->headers[i]) < 0)
				return -ENOMEM;
		}
	}
	if ((arr = json_object_new_array()) == NULL ||
	    json_object_object_add(obj, "expected_status", arr) != 0) {
		json_object_put(arr);
		return -ENOMEM;
	}
	for (i = 0; i < chk->nexpected; i++) {
		const struct upmon_status_range *r = &chk->expected[i];

		if (r->lo == r->hi)
			snprintf(range, sizeof(range), "%d", r->lo);
		else
			snprintf(range, sizeof(range), "%d-%d", r->lo, r->hi);
		if (json_object_array_add(arr, json_object_new_string(range)) != 0)
			return -ENOMEM;
	}
	return 0;
}

static int
encode_check(json_object *root, const struct upmon_check *chk)
{
	json_object *obj = json_object_new_object();

	if (obj == NULL || json_object_object_add(root, "check", obj) != 0) {
		json_object_put(obj);
		return -ENOMEM;
	}
	if (mf_encode(obj, check_common, N(check_common), chk) < 0)
		return -ENOMEM;
	if (chk->type == UPMON_CHECK_TCP)
		return mf_encode(obj, check_tcp, N(check_tcp), chk);
	if (mf_encode(obj, check_http, N(check_http), chk) < 0)
		return -ENOMEM;
	return encode_http_arrays(obj, chk);
}

int
upmon_msg_task_encode(const struct upmon_task *t, char **out, size_t *len)
{
	struct upmon_task copy;
	json_object *root = NULL;
	char err[8];
	int rc;

	*out = NULL;
	if (upmon_task_validate(t, err, sizeof(err)) < 0)
		return -EINVAL;
	copy = *t;	/* shallow: only task_id is changed, nothing is freed */
	if (copy.task_id[0] == '\0' && upmon_task_id_format(copy.task_id,
	    sizeof(copy.task_id), t->monitor_id, t->scheduled_at, t->attempt) < 0)
		return -EINVAL;
	if ((root = msg_new_root()) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = mf_encode(root, task_fields, NTASK, &copy)) < 0 ||
	    (rc = encode_check(root, &copy.check)) < 0)
		goto out;
	rc = msg_serialize(root, out, len);
out:
	json_object_put(root);
	return rc;
}
