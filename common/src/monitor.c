/*
 * A monitor definition (monitor.h): defaults, reading from JSON with every rule, writing as
 * JSON. The SQL side is monitor_sql.c.
 */
#include "upmon/monitor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/jsonv.h"

static const char *const type_names[] = { "http", "tcp", NULL };
static const char *const method_names[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL,
};

/* Every input field, in the order of the API's Monitor. */
static const char *const monitor_keys[] = {
	"name", "type", "url", "host", "port", "method", "headers", "body", "expected_status",
	"keyword", "keyword_absent", "max_latency_ms", "follow_redirects", "max_redirects",
	"verify_tls", "cert_expiry_days", "timeout_ms", "interval_seconds", "retries",
	"failure_threshold", "recovery_threshold", "reminder_minutes", "paused", "tags", NULL,
};

#define DEF_EXPECTED "200-299"

int
upmon_monitor_init(struct upmon_monitor *m)
{
	memset(m, 0, sizeof(*m));
	m->type = UPMON_CHECK_HTTP;
	m->method = UPMON_HTTP_GET;
	m->follow_redirects = true;
	m->max_redirects = 5;
	m->verify_tls = true;
	m->cert_expiry_days = 14;
	m->timeout_ms = 10000;
	m->interval_seconds = 60;
	m->retries = 2;
	m->failure_threshold = 1;
	m->recovery_threshold = 1;
	m->headers = json_object_new_object();
	m->tags = json_object_new_array();
	m->expected_status = strdup(DEF_EXPECTED);
	if (m->headers == NULL || m->tags == NULL || m->expected_status == NULL)
		return -ENOMEM;
	return 0;
}

void
upmon_monitor_release(struct upmon_monitor *m)
{
	free(m->name);
	free(m->url);
	free(m->host);
	free(m->body);
	free(m->expected_status);
	free(m->keyword);
	json_object_put(m->headers);
	json_object_put(m->tags);
	memset(m, 0, sizeof(*m));
}

/* strdup that keeps NULL; sets *err on failure. */
static char *
dup_or_null(const char *s, int *err)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*err = -ENOMEM;
	return d;
}

static struct json_object *
json_copy(struct json_object *src, int *err)
{
	struct json_object *dst = NULL;

	if (src == NULL)
		return NULL;
	if (json_object_deep_copy(src, &dst, NULL) != 0) {
		*err = -ENOMEM;
		return NULL;
	}
	return dst;
}

int
upmon_monitor_copy(struct upmon_monitor *dst, const struct upmon_monitor *src)
{
	int err = 0;

	*dst = *src;
	dst->name = dup_or_null(src->name, &err);
	dst->url = dup_or_null(src->url, &err);
	dst->host = dup_or_null(src->host, &err);
	dst->body = dup_or_null(src->body, &err);
	dst->expected_status = dup_or_null(src->expected_status, &err);
	dst->keyword = dup_or_null(src->keyword, &err);
	dst->headers = json_copy(src->headers, &err);
	dst->tags = json_copy(src->tags, &err);
	if (err != 0)
		upmon_monitor_release(dst);
	return err;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* True when key is present with the value null. */
static bool
is_null(const struct upmon_jv *v, const char *key)
{
	struct json_object *val;

	return !v->bad_object && json_object_object_get_ex(v->obj, key, &val) && val == NULL;
}

/* True when field already has an error. */
static bool
failed(const struct upmon_jv *v, const char *field)
{
	return v->fields != NULL && json_object_object_get_ex(v->fields, field, NULL);
}

static int
replace_str(char **dst, const char *s)
{
	char *d = NULL;

	if (s != NULL && (d = strdup(s)) == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

/*
 * A string field: absent keeps *dst; null (when nullable) sets def (may be NULL); else the
 * value, checked for maxchars characters and maxbytes bytes (the wire's limit).
 */
static int
get_str(struct upmon_jv *v, const char *key, size_t minc, size_t maxc, size_t maxbytes,
    unsigned flags, bool nullable, const char *def, char **dst)
{
	const char *s;
	int rc;

	rc = upmon_jv_string(v, key, minc, maxc, flags | (nullable ? UPMON_JV_NULLABLE : 0), &s);
	if (rc != 0)
		return rc;
	if (s == NULL)
		return replace_str(dst, def);
	if (strlen(s) > maxbytes)
		return upmon_jv_fail(v, key, "is too long (at most %zu bytes)", maxbytes);
	return replace_str(dst, s);
}

/* An integer field: absent keeps *dst; null (when nullable) sets def. */
static void
get_int(struct upmon_jv *v, const char *key, long min, long max, unsigned flags, bool nullable,
    int def, int *dst)
{
	bool isnull = false;
	long n = 0;

	if (upmon_jv_int(v, key, min, max, flags | (nullable ? UPMON_JV_NULLABLE : 0), &n,
	    &isnull) == 0)
		*dst = isnull ? def : (int)n;
}

/* A boolean with a default: null resets it. */
static void
get_bool(struct upmon_jv *v, const char *key, bool def, bool *dst)
{
	bool b;

	if (is_null(v, key))
		*dst = def;
	else if (upmon_jv_bool(v, key, 0, &b) == 0)
		*dst = b;
}

/*
 * True when valid UTF-8 s holds a character that PostgreSQL's [[:cntrl:]] (and, with
 * spaces, [[:space:]]) may match beyond ASCII, depending on the database's locale: C1
 * controls, the line and paragraph separators, and Unicode spaces. The checks of sql/0001
 * would refuse them without naming the field.
 */
static bool
has_wide_ctrl(const char *s, bool spaces)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned long cp;

	for (; *p != '\0'; p++) {
		if (*p < 0xc0)
			continue;
		if (*p < 0xe0 && p[1] != '\0') {
			cp = ((unsigned long)(*p & 0x1f) << 6) | (p[1] & 0x3f);
		} else if (*p < 0xf0 && p[1] != '\0' && p[2] != '\0') {
			cp = ((unsigned long)(*p & 0x0f) << 12) | ((unsigned long)(p[1] & 0x3f) << 6) |
			    (p[2] & 0x3f);
		} else {
			continue;
		}
		if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
			return true;
		if (spaces && (cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
		    cp == 0x202f || cp == 0x205f || cp == 0x3000))
			return true;
	}
	return false;
}

static bool
url_ok(const char *s)
{
	size_t off;

	if (strncmp(s, "http://", 7) == 0)
		off = 7;
	else if (strncmp(s, "https://", 8) == 0)
		off = 8;
	else
		return false;
	if (s[off] == '\0')
		return false;
	return strchr(s, ' ') == NULL && !has_wide_ctrl(s, true);
}

static bool
host_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == ':' || c == '_'))
			return false;
	}
	return true;
}

static bool
tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "200-299,301": 1..16 codes or ranges within 100..599 (msg.h, sql/0001). */
static bool
expected_ok(const char *s)
{
	struct upmon_status_range r;
	char part[8];
	size_t n, count = 0;

	for (;;) {
		n = strcspn(s, ",");
		if (n == 0 || n >= sizeof(part))
			return false;
		memcpy(part, s, n);
		part[n] = '\0';
		if (upmon_status_range_parse(part, &r) != 0 || ++count > UPMON_EXPECTED_MAX)
			return false;
		if (s[n] == '\0')
			return true;
		s += n + 1;
	}
}

static int
get_headers(struct upmon_jv *v, struct upmon_monitor *m)
{
	struct json_object *obj, *copy = NULL;
	const char *why, *val;
	char field[160];
	size_t bytes = 0, len;
	int rc, bad = 0;

	if (is_null(v, "headers")) {
		copy = json_object_new_object();
		goto set;
	}
	if ((rc = upmon_jv_object(v, "headers", 0, &obj)) != 0)
		return rc;
	if (json_object_object_length(obj) > UPMON_HEADERS_MAX)
		return upmon_jv_fail(v, "headers", "has too many entries (at most %d)",
		    UPMON_HEADERS_MAX);
	json_object_object_foreach(obj, name, value) {
		const unsigned char *p = (const unsigned char *)name;

		len = strlen(name);
		if (len == 0 || len > UPMON_HEADER_NAME_MAX) {
			bad = upmon_jv_fail(v, "headers", "header names must have 1 to %d characters",
			    UPMON_HEADER_NAME_MAX);
			continue;
		}
		for (; *p != '\0' && tchar(*p); p++)
			;
		if (*p != '\0') {
			bad = upmon_jv_fail(v, "headers", "header names must be HTTP tokens "
			    "[A-Za-z0-9!#$%%&'*+.^_`|~-]");
			continue;
		}
		snprintf(field, sizeof(field), "headers.%s", name);
		if (!json_object_is_type(value, json_type_string)) {
			bad = upmon_jv_fail(v, field, "must be a string");
			continue;
		}
		val = json_object_get_string(value);
		if (upmon_jv_check_text(val, (size_t)json_object_get_string_len(value), 0,
		    UPMON_HEADER_VALUE_MAX, UPMON_JV_NO_CTRL, &why) != 0) {
			bad = upmon_jv_fail(v, field, "%s", why);
			continue;
		}
		if (strlen(val) > UPMON_HEADER_VALUE_MAX) {
			bad = upmon_jv_fail(v, field, "is too long (at most %d bytes)",
			    UPMON_HEADER_VALUE_MAX);
			continue;
		}
		bytes += len + strlen(val);
	}
	if (bad)
		return bad;
	/* the wire's sum, and sql/0001's length(headers::text) with its quotes and separators */
	if (bytes > UPMON_HEADERS_BYTES_MAX || bytes + 8 * (size_t)json_object_object_length(obj) >
	    UPMON_HEADERS_BYTES_MAX)
		return upmon_jv_fail(v, "headers", "is too large (at most %d bytes of names and "
		    "values)", UPMON_HEADERS_BYTES_MAX - 8 * UPMON_HEADERS_MAX);
	if (json_object_deep_copy(obj, &copy, NULL) != 0)
		copy = NULL;
set:
	if (copy == NULL)
		return -ENOMEM;
	json_object_put(m->headers);
	m->headers = copy;
	return 0;
}

static int
get_tags(struct upmon_jv *v, struct upmon_monitor *m)
{
	struct json_object *arr, *copy = NULL;
	int rc;

	rc = upmon_jv_string_array(v, "tags", UPMON_MONITOR_TAGS_MAX, 1, UPMON_MONITOR_TAG_MAX,
	    UPMON_JV_NO_CTRL | UPMON_JV_NULLABLE, &arr);
	if (rc != 0)
		return rc;
	if (arr == NULL)
		copy = json_object_new_array();
	else if (json_object_deep_copy(arr, &copy, NULL) != 0)
		copy = NULL;
	if (copy == NULL)
		return -ENOMEM;
	json_object_put(m->tags);
	m->tags = copy;
	return 0;
}

/* Reads every field present (or required) into m; errors are recorded in v. Returns
 * -ENOMEM only; validation errors are in v. */
static int
read_fields(struct upmon_jv *v, struct upmon_monitor *m, unsigned req)
{
	int t, rc;
	bool nomem = false;

#define STR(...) do { if (get_str(v, __VA_ARGS__) == -ENOMEM) nomem = true; } while (0)
	STR("name", 1, UPMON_MONITOR_NAME_MAX, 4 * UPMON_MONITOR_NAME_MAX,
	    req | UPMON_JV_NO_CTRL, false, NULL, &m->name);
	if (m->name != NULL && !failed(v, "name") && upmon_jv_has(v, "name") &&
	    has_wide_ctrl(m->name, false))
		upmon_jv_fail(v, "name", "must not contain control characters");
	if (upmon_jv_enum(v, "type", type_names, req, &t) == 0)
		m->type = (enum upmon_check_type)t;
	STR("url", 1, UPMON_URL_MAX, UPMON_URL_MAX, UPMON_JV_NO_CTRL, true, NULL, &m->url);
	if (m->url != NULL && !failed(v, "url") && upmon_jv_has(v, "url") && !url_ok(m->url))
		upmon_jv_fail(v, "url", "must be an http:// or https:// URL without spaces");
	STR("host", 1, UPMON_HOST_MAX, UPMON_HOST_MAX, UPMON_JV_NO_CTRL, true, NULL, &m->host);
	if (m->host != NULL && !failed(v, "host") && upmon_jv_has(v, "host") && !host_ok(m->host))
		upmon_jv_fail(v, "host", "must be a host name or IP address [A-Za-z0-9._:-]");
	get_int(v, "port", 1, 65535, 0, true, 0, &m->port);
	if (is_null(v, "method"))
		m->method = UPMON_HTTP_GET;
	else if (upmon_jv_enum(v, "method", method_names, 0, &t) == 0)
		m->method = (enum upmon_http_method)t;
	if (get_headers(v, m) == -ENOMEM)
		nomem = true;
	STR("body", 0, UPMON_BODY_MAX, UPMON_BODY_MAX, 0, true, NULL, &m->body);
	STR("expected_status", 1, UPMON_MONITOR_EXPECTED_MAX, UPMON_MONITOR_EXPECTED_MAX, 0,
	    true, DEF_EXPECTED, &m->expected_status);
	if (!failed(v, "expected_status") && upmon_jv_has(v, "expected_status") &&
	    !expected_ok(m->expected_status))
		upmon_jv_fail(v, "expected_status", "must be 1 to %d status codes or ranges within "
		    "100..599, such as \"200-299,301\"", UPMON_EXPECTED_MAX);
	STR("keyword", 1, UPMON_KEYWORD_MAX, UPMON_KEYWORD_MAX, 0, true, NULL, &m->keyword);
	get_bool(v, "keyword_absent", false, &m->keyword_absent);
	get_int(v, "max_latency_ms", 1, 60000, 0, true, 0, &m->max_latency_ms);
	get_bool(v, "follow_redirects", true, &m->follow_redirects);
	get_int(v, "max_redirects", 0, 10, 0, true, 5, &m->max_redirects);
	get_bool(v, "verify_tls", true, &m->verify_tls);
	get_int(v, "cert_expiry_days", 0, 365, 0, true, 14, &m->cert_expiry_days);
	get_int(v, "timeout_ms", 100, 60000, 0, true, 10000, &m->timeout_ms);
	get_int(v, "interval_seconds", 10, 86400, req, false, 60, &m->interval_seconds);
	get_int(v, "retries", 0, 10, 0, true, 2, &m->retries);
	get_int(v, "failure_threshold", 1, 100, 0, true, 1, &m->failure_threshold);
	get_int(v, "recovery_threshold", 1, 100, 0, true, 1, &m->recovery_threshold);
	get_int(v, "reminder_minutes", 1, 10080, 0, true, 0, &m->reminder_minutes);
	get_bool(v, "paused", false, &m->paused);
	if ((rc = get_tags(v, m)) == -ENOMEM)
		nomem = true;
#undef STR
	return nomem ? -ENOMEM : 0;
}

/* The rules between fields, checked on the merged result. */
static void
check_rules(struct upmon_jv *v, struct upmon_monitor *m)
{
	if (!failed(v, "type")) {
		if (m->type == UPMON_CHECK_HTTP) {
			if (m->url == NULL)
				upmon_jv_fail(v, "url", "is required");
			if (m->host != NULL)
				upmon_jv_fail(v, "host", "must be null for http monitors");
			if (m->port != 0)
				upmon_jv_fail(v, "port", "must be null for http monitors");
		} else {
			if (m->url != NULL)
				upmon_jv_fail(v, "url", "must be null for tcp monitors");
			if (m->host == NULL)
				upmon_jv_fail(v, "host", "is required");
			if (m->port == 0)
				upmon_jv_fail(v, "port", "is required");
		}
	}
	if (m->keyword_absent && m->keyword == NULL && !failed(v, "keyword"))
		upmon_jv_fail(v, "keyword_absent", "requires keyword");
	if (!failed(v, "interval_seconds") &&
	    (long)m->timeout_ms > (long)m->interval_seconds * 1000)
		upmon_jv_fail(v, "timeout_ms", "must not exceed interval_seconds * 1000 (%ld)",
		    (long)m->interval_seconds * 1000);
}

/*
 * RFC 7396 for the one object field: a PATCH's headers object is merged into base's (a null
 * value removes that header). Returns a new body with the merged headers, or NULL when
 * there is nothing to merge (or no memory: the plain body is then read as given).
 */
static struct json_object *
merge_headers(struct json_object *obj, const struct upmon_monitor *base)
{
	struct json_object *h, *merged = NULL, *out;

	if (obj == NULL || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "headers", &h) ||
	    !json_object_is_type(h, json_type_object) ||
	    json_object_deep_copy(base->headers, &merged, NULL) != 0)
		return NULL;
	json_object_object_foreach(h, name, val) {
		if (val == NULL)
			json_object_object_del(merged, name);
		else
			json_object_object_add(merged, name, json_object_get(val));
	}
	if ((out = json_object_new_object()) == NULL) {
		json_object_put(merged);
		return NULL;
	}
	json_object_object_foreach(obj, key, v) {
		if (strcmp(key, "headers") == 0)
			json_object_object_add(out, key, merged);
		else
			json_object_object_add(out, key, json_object_get(v));
	}
	return out;
}

int
upmon_monitor_from_json(struct json_object *obj, enum upmon_monitor_mode mode,
    const struct upmon_monitor *base, struct upmon_monitor *out, struct json_object **fields)
{
	struct json_object *merged = NULL;
	struct upmon_jv v;
	struct upmon_monitor m;
	unsigned req = mode == UPMON_MONITOR_PATCH ? 0 : UPMON_JV_REQUIRED;
	int rc;

	if (fields != NULL)
		*fields = NULL;
	memset(out, 0, sizeof(*out));
	if (mode == UPMON_MONITOR_PATCH) {
		if (base == NULL)
			return -EINVAL;
		rc = upmon_monitor_copy(&m, base);
	} else {
		rc = upmon_monitor_init(&m);
	}
	if (rc != 0) {
		upmon_monitor_release(&m);
		return -ENOMEM;
	}
	if (mode == UPMON_MONITOR_PATCH && (merged = merge_headers(obj, base)) != NULL)
		obj = merged;
	upmon_jv_init(&v, obj);
	upmon_jv_allow(&v, monitor_keys);
	if ((rc = read_fields(&v, &m, req)) != 0)
		goto fail;
	/* a type change drops the old type's target unless the patch names it */
	if (mode == UPMON_MONITOR_PATCH && m.type != base->type) {
		if (!upmon_jv_has(&v, "url"))
			rc = replace_str(&m.url, NULL);
		if (!upmon_jv_has(&v, "host"))
			rc = replace_str(&m.host, NULL);
		if (!upmon_jv_has(&v, "port"))
			m.port = 0;
	}
	if (!v.bad_object)
		check_rules(&v, &m);
	if (!upmon_jv_ok(&v)) {
		rc = -EINVAL;
		if (fields != NULL)
			*fields = upmon_jv_take_fields(&v);
		goto fail;
	}
	upmon_jv_release(&v);
	json_object_put(merged);
	*out = m;
	return 0;
fail:
	upmon_jv_release(&v);
	json_object_put(merged);
	upmon_monitor_release(&m);
	return rc;
}

/* ---- writing ------------------------------------------------------------------------------ */

static int
add(struct json_object *o, const char *key, struct json_object *val, int *err)
{
	if (json_object_object_add(o, key, val) != 0) {
		json_object_put(val);
		*err = -ENOMEM;
	}
	return *err;
}

static struct json_object *
str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static struct json_object *
int_or_null(int n)
{
	return n != 0 ? json_object_new_int(n) : NULL;
}

int
upmon_monitor_to_json(const struct upmon_monitor *m, unsigned flags,
    struct json_object **out)
{
	struct json_object *o, *headers = NULL, *tags = NULL;
	bool row = !(flags & UPMON_MONITOR_JSON_DEFINITION);
	int err = 0;

	*out = NULL;
	if ((o = json_object_new_object()) == NULL)
		return -ENOMEM;
	if (json_object_deep_copy(m->headers, &headers, NULL) != 0 ||
	    json_object_deep_copy(m->tags, &tags, NULL) != 0) {
		json_object_put(headers);
		json_object_put(o);
		return -ENOMEM;
	}
	if (row)
		add(o, "id", json_object_new_string(m->id), &err);
	add(o, "name", str_or_null(m->name), &err);
	add(o, "type", json_object_new_string(type_names[m->type == UPMON_CHECK_TCP]), &err);
	add(o, "url", str_or_null(m->url), &err);
	add(o, "host", str_or_null(m->host), &err);
	add(o, "port", int_or_null(m->port), &err);
	add(o, "method", json_object_new_string(upmon_http_method_name(m->method) ?
	    upmon_http_method_name(m->method) : "GET"), &err);
	add(o, "headers", headers, &err);
	add(o, "body", str_or_null(m->body), &err);
	add(o, "expected_status", str_or_null(m->expected_status), &err);
	add(o, "keyword", str_or_null(m->keyword), &err);
	add(o, "keyword_absent", json_object_new_boolean(m->keyword_absent), &err);
	add(o, "max_latency_ms", int_or_null(m->max_latency_ms), &err);
	add(o, "follow_redirects", json_object_new_boolean(m->follow_redirects), &err);
	add(o, "max_redirects", json_object_new_int(m->max_redirects), &err);
	add(o, "verify_tls", json_object_new_boolean(m->verify_tls), &err);
	add(o, "cert_expiry_days", json_object_new_int(m->cert_expiry_days), &err);
	add(o, "timeout_ms", json_object_new_int(m->timeout_ms), &err);
	add(o, "interval_seconds", json_object_new_int(m->interval_seconds), &err);
	add(o, "retries", json_object_new_int(m->retries), &err);
	add(o, "failure_threshold", json_object_new_int(m->failure_threshold), &err);
	add(o, "recovery_threshold", json_object_new_int(m->recovery_threshold), &err);
	add(o, "reminder_minutes", int_or_null(m->reminder_minutes), &err);
	add(o, "paused", json_object_new_boolean(m->paused), &err);
	add(o, "tags", tags, &err);
	if (row) {
		add(o, "status", json_object_new_string(m->status[0] != '\0' ? m->status :
		    (m->paused ? "paused" : "pending")), &err);
		add(o, "created_at", upmon_json_time(m->created_ms), &err);
		add(o, "updated_at", upmon_json_time(m->updated_ms), &err);
	}
	if (err != 0) {
		json_object_put(o);
		return err;
	}
	*out = o;
	return 0;
}
