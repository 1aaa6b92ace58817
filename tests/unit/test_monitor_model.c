/*
 * The monitor model (monitor.h): defaults, every field's bounds (one bad value per field
 * names that field), unknown fields, the type/target rules, PATCH merge semantics, the JSON
 * round trip, the SQL parameter order and strings that must survive verbatim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "upmon/monitor.h"

static struct json_object *
parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	REQUIRE(o != NULL);
	return o;
}

/* from_json on text; returns the rc and leaves the fields JSON text in buf ("" if none). */
static int
read_text(const char *text, enum upmon_monitor_mode mode, const struct upmon_monitor *base,
    struct upmon_monitor *out, char *buf, size_t size)
{
	struct json_object *o = parse(text), *fields = NULL;
	int rc = upmon_monitor_from_json(o, mode, base, out, &fields);

	snprintf(buf, size, "%s", fields ? json_object_to_json_string_ext(fields,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "");
	json_object_put(fields);
	json_object_put(o);
	return rc;
}

static const char *
to_text(const struct upmon_monitor *m, unsigned flags, char *buf, size_t size)
{
	struct json_object *o;

	REQUIRE(upmon_monitor_to_json(m, flags, &o) == 0);
	snprintf(buf, size, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return buf;
}

/*
 * What the scheduler does with a stored monitor (services/scheduler/monitors.c): a task whose
 * check must pass the wire's validation. Returns upmon_task_validate()'s result.
 */
static int
wire_check(const struct upmon_monitor *m, char *err, size_t errlen)
{
	struct upmon_task t;
	char part[16];
	const char *p = m->expected_status;
	size_t n, i = 0;
	int rc;

	upmon_task_init(&t);
	snprintf(t.monitor_id, sizeof(t.monitor_id), "0b5e0000-0000-4000-8000-000000000001");
	snprintf(t.owner_id, sizeof(t.owner_id), "0b5e0000-0000-4000-8000-000000000002");
	t.scheduled_at = 1763742000000;
	t.interval_seconds = m->interval_seconds;
	t.retries = m->retries;
	t.check.type = m->type;
	t.check.timeout_ms = m->timeout_ms;
	t.check.url = m->url ? strdup(m->url) : NULL;
	t.check.host = m->host ? strdup(m->host) : NULL;
	t.check.port = m->port;
	t.check.method = m->method;
	t.check.body = m->body ? strdup(m->body) : NULL;
	t.check.keyword = m->keyword ? strdup(m->keyword) : NULL;
	t.check.keyword_absent = m->keyword_absent;
	t.check.max_latency_ms = m->max_latency_ms;
	t.check.follow_redirects = m->follow_redirects;
	t.check.max_redirects = m->max_redirects;
	t.check.verify_tls = m->verify_tls;
	t.check.cert_expiry_days = m->cert_expiry_days;
	t.check.nheaders = (size_t)json_object_object_length(m->headers);
	t.check.headers = calloc(t.check.nheaders + 1, sizeof(*t.check.headers));
	json_object_object_foreach(m->headers, name, val) {
		t.check.headers[i].name = strdup(name);
		t.check.headers[i++].value = strdup(json_object_get_string(val));
	}
	t.check.nexpected = 0;
	while (m->type == UPMON_CHECK_HTTP && *p != '\0') {
		n = strcspn(p, ",");
		snprintf(part, sizeof(part), "%.*s", (int)n, p);
		REQUIRE(upmon_status_range_parse(part, &t.check.expected[t.check.nexpected++]) == 0);
		p += n + (p[n] == ',');
	}
	rc = upmon_task_validate(&t, err, errlen);
	upmon_task_release(&t);
	return rc;
}

static void
test_defaults(void)
{
	struct upmon_monitor m;
	char f[1024], j[4096];

	CHECK_EQ(read_text("{\"name\": \"a\", \"type\": \"http\", \"url\": \"https://e.test/\", "
	    "\"interval_seconds\": 30}", UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), 0);
	CHECK_STR(f, "");
	to_text(&m, UPMON_MONITOR_JSON_DEFINITION, j, sizeof(j));
	CHECK_STR(j, "{\"name\":\"a\",\"type\":\"http\",\"url\":\"https://e.test/\",\"host\":null,"
	    "\"port\":null,\"method\":\"GET\",\"headers\":{},\"body\":null,"
	    "\"expected_status\":\"200-299\",\"keyword\":null,\"keyword_absent\":false,"
	    "\"max_latency_ms\":null,\"follow_redirects\":true,\"max_redirects\":5,"
	    "\"verify_tls\":true,\"cert_expiry_days\":14,\"timeout_ms\":10000,"
	    "\"interval_seconds\":30,\"retries\":2,\"failure_threshold\":1,"
	    "\"recovery_threshold\":1,\"reminder_minutes\":null,\"paused\":false,\"tags\":[]}");
	/* a full row adds id, status and times */
	memcpy(m.id, "0b5e0000-0000-4000-8000-000000000001", 37);
	m.created_ms = 1763742000123;
	m.updated_ms = 1763742000456;
	to_text(&m, 0, j, sizeof(j));
	CHECK_CONTAINS(j, "{\"id\":\"0b5e0000-0000-4000-8000-000000000001\",\"name\":\"a\",");
	CHECK_CONTAINS(j, "\"tags\":[],\"status\":\"pending\",\"created_at\":"
	    "\"2025-11-21T16:20:00.123Z\",\"updated_at\":\"2025-11-21T16:20:00.456Z\"}");
	upmon_monitor_release(&m);
	upmon_monitor_release(&m);	/* twice is safe */
}

static void
test_required(void)
{
	struct upmon_monitor m;
	char f[1024];

	CHECK_EQ(read_text("{}", UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"name\":\"is required\",\"type\":\"is required\","
	    "\"interval_seconds\":\"is required\"}");
	CHECK_EQ(read_text("{\"name\": \"a\", \"type\": \"http\", \"interval_seconds\": 60}",
	    UPMON_MONITOR_REPLACE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"url\":\"is required\"}");
	CHECK_EQ(read_text("{\"name\": \"a\", \"type\": \"tcp\", \"interval_seconds\": 60}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"host\":\"is required\",\"port\":\"is required\"}");
	CHECK_EQ(read_text("[1]", UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"body\":\"must be a JSON object\"");
}

/* One bad value per field: the answer names exactly that field. */
static void
test_bounds(void)
{
	static const struct {
		const char *field;
		const char *json;	/* replaces the field in a valid http monitor */
		const char *msg;	/* part of the expected message */
	} cases[] = {
		{ "name", "\"\"", "must not be empty" },
		{ "name", "\"a\\nb\"", "control characters" },
		{ "name", "5", "must be a string" },
		{ "name", "null", "is required" },
		{ "name", "\"a\\u0085b\"", "control characters" },
		{ "name", "\"a\\u2028b\"", "control characters" },
		{ "type", "\"icmp\"", "must be one of http, tcp" },
		{ "url", "\"https://e.test/a\\u3000b\"", "without spaces" },
		{ "url", "\"https://e.test/a\\u0085b\"", "without spaces" },
		{ "url", "\"ftp://e.test/\"", "http://" },
		{ "url", "\"https://e.test/a b\"", "without spaces" },
		{ "url", "\"https://\"", "http://" },
		{ "method", "\"get\"", "must be one of GET" },
		{ "headers", "[]", "must be an object" },
		{ "headers", "{\"X Y\": \"v\"}", "HTTP tokens" },
		{ "headers.X", "{\"X\": 1}", "must be a string" },
		{ "headers.X", "{\"X\": \"a\\r\\nb\"}", "control characters" },
		{ "body", "7", "must be a string" },
		{ "expected_status", "\"200-\"", "such as" },
		{ "expected_status", "\"99\"", "such as" },
		{ "expected_status", "\"600\"", "such as" },
		{ "expected_status", "\"299-200\"", "such as" },
		{ "expected_status", "\"200,\"", "such as" },
		{ "keyword", "\"\"", "must not be empty" },
		{ "keyword_absent", "\"yes\"", "true or false" },
		{ "max_latency_ms", "0", "between 1 and 60000" },
		{ "max_latency_ms", "60001", "between 1 and 60000" },
		{ "follow_redirects", "1", "true or false" },
		{ "max_redirects", "11", "between 0 and 10" },
		{ "verify_tls", "\"true\"", "true or false" },
		{ "cert_expiry_days", "366", "between 0 and 365" },
		{ "timeout_ms", "99", "between 100 and 60000" },
		{ "timeout_ms", "60001", "between 100 and 60000" },
		{ "interval_seconds", "9", "between 10 and 86400" },
		{ "interval_seconds", "86401", "between 10 and 86400" },
		{ "interval_seconds", "60.5", "must be an integer" },
		{ "retries", "11", "between 0 and 10" },
		{ "retries", "-1", "between 0 and 10" },
		{ "failure_threshold", "0", "between 1 and 100" },
		{ "recovery_threshold", "101", "between 1 and 100" },
		{ "reminder_minutes", "10081", "between 1 and 10080" },
		{ "reminder_minutes", "0", "between 1 and 10080" },
		{ "paused", "null", "" },	/* null resets: valid, see below */
		{ "tags", "\"a\"", "array of strings" },
		{ "tags[1]", "[\"a\", \"\"]", "must not be empty" },
		{ "tags[0]", "[\"a\\u0001\"]", "control characters" },
		{ "nonsense", "1", "unknown field" },
	};
	struct upmon_monitor m;
	char text[512], f[1024], want[128];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *key = cases[i].field;
		char top[64];

		/* headers.X and tags[1] are reported under their sub-name but sent as the field */
		snprintf(top, sizeof(top), "%.*s", (int)strcspn(key, ".["), key);
		/* a valid http monitor without that key, plus the bad value */
		snprintf(text, sizeof(text), "{%s%s%s%s\"%s\": %s}",
		    strcmp(top, "name") ? "\"name\": \"n\", " : "",
		    strcmp(top, "type") ? "\"type\": \"http\", " : "",
		    strcmp(top, "url") ? "\"url\": \"https://e.test/\", " : "",
		    strcmp(top, "interval_seconds") ? "\"interval_seconds\": 60, " : "",
		    top, cases[i].json);
		rc = read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f));
		if (cases[i].msg[0] == '\0') {
			CHECK_EQ(rc, 0);
			upmon_monitor_release(&m);
			continue;
		}
		if (rc != -EINVAL)
			fprintf(stderr, "case %zu: %s\n", i, text);
		CHECK_EQ(rc, -EINVAL);
		snprintf(want, sizeof(want), "{\"%s\":\"", key);
		CHECK_CONTAINS(f, want);
		CHECK_CONTAINS(f, cases[i].msg);
		/* exactly one field named */
		CHECK_EQ(strchr(strchr(f, ':') + 1, ',') == NULL ||
		    strstr(f, "\",\"") == NULL, 1);
	}
}

static void
test_limits_at_edge(void)
{
	struct upmon_monitor m;
	char text[40000], f[1024], big[20000];
	int n, i;

	/* the largest values of every bounded field are accepted */
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"tcp\", \"host\": \"db-1.internal:x_y\", "
	    "\"port\": 65535, \"interval_seconds\": 86400, \"timeout_ms\": 60000, "
	    "\"max_latency_ms\": 60000, \"max_redirects\": 10, \"cert_expiry_days\": 0, "
	    "\"retries\": 10, \"failure_threshold\": 100, \"recovery_threshold\": 100, "
	    "\"reminder_minutes\": 10080, \"expected_status\": \"100-599,200,201,202,203,204,205,"
	    "206,207,208,226,300,301,302,303,304\"}", UPMON_MONITOR_CREATE, NULL, &m, f,
	    sizeof(f)), 0);
	CHECK_STR(f, "");
	CHECK_EQ(wire_check(&m, f, sizeof(f)), 0);
	upmon_monitor_release(&m);
	/* 17 expected codes is one too many */
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"http\", \"url\": \"http://e.test\", "
	    "\"interval_seconds\": 60, \"expected_status\": \"100-599,200,201,202,203,204,205,"
	    "206,207,208,226,300,301,302,303,304,305\"}", UPMON_MONITOR_CREATE, NULL, &m, f,
	    sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "expected_status");
	/* body: 16384 bytes ok, 16385 not */
	memset(big, 'b', 16385);
	big[16384] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"n\", \"type\": \"http\", \"url\": "
	    "\"http://e.test\", \"interval_seconds\": 60, \"body\": \"%s\"}", big);
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), 0);
	CHECK_EQ(wire_check(&m, f, sizeof(f)), 0);
	upmon_monitor_release(&m);
	big[16384] = 'b';
	big[16385] = '\0';
	snprintf(text, sizeof(text), "{\"name\": \"n\", \"type\": \"http\", \"url\": "
	    "\"http://e.test\", \"interval_seconds\": 60, \"body\": \"%s\"}", big);
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"body\":\"is too long");
	/* name: 200 characters ok (multi-byte too), 201 not */
	n = snprintf(text, sizeof(text), "{\"type\": \"http\", \"url\": \"http://e.test\", "
	    "\"interval_seconds\": 60, \"name\": \"");
	for (i = 0; i < 200; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "\xe7\x9b\xa3");
	snprintf(text + n, sizeof(text) - (size_t)n, "\"}");
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), 0);
	upmon_monitor_release(&m);
	snprintf(text + n, sizeof(text) - (size_t)n, "x\"}");
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"name\":\"is too long");
	/* 33 headers, 33 tags */
	n = snprintf(text, sizeof(text), "{\"name\": \"n\", \"type\": \"http\", \"url\": "
	    "\"http://e.test\", \"interval_seconds\": 60, \"headers\": {");
	for (i = 0; i < 33; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "%s\"H%d\": \"v\"", i ? ", " : "",
		    i);
	n += snprintf(text + n, sizeof(text) - (size_t)n, "}, \"tags\": [");
	for (i = 0; i < 33; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "%s\"t%d\"", i ? ", " : "", i);
	snprintf(text + n, sizeof(text) - (size_t)n, "]}");
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"headers\":\"has too many entries");
	CHECK_CONTAINS(f, "\"tags\":\"has too many items");
	/* 32 headers of 200 bytes: accepted, and a valid task on the wire */
	n = snprintf(text, sizeof(text), "{\"name\": \"n\", \"type\": \"http\", \"url\": "
	    "\"http://e.test\", \"interval_seconds\": 60, \"headers\": {");
	memset(big, 'v', 200);
	big[200] = '\0';
	for (i = 0; i < 32; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "%s\"H%02d\": \"%s\"",
		    i ? ", " : "", i, big);
	snprintf(text + n, sizeof(text) - (size_t)n, "}}");
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), 0);
	CHECK_EQ(wire_check(&m, f, sizeof(f)), 0);
	upmon_monitor_release(&m);
	/* headers that fit the wire's count but not its bytes */
	n = snprintf(text, sizeof(text), "{\"name\": \"n\", \"type\": \"http\", \"url\": "
	    "\"http://e.test\", \"interval_seconds\": 60, \"headers\": {");
	memset(big, 'v', 2000);
	big[2000] = '\0';
	for (i = 0; i < 5; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "%s\"H%d\": \"%s\"",
		    i ? ", " : "", i, big);
	snprintf(text + n, sizeof(text) - (size_t)n, "}}");
	CHECK_EQ(read_text(text, UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"headers\":\"is too large");
}

static void
test_cross_rules(void)
{
	struct upmon_monitor m;
	char f[1024];

	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"http\", \"url\": \"http://e.test\", "
	    "\"host\": \"e.test\", \"port\": 80, \"interval_seconds\": 60}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"host\":\"must be null for http monitors\","
	    "\"port\":\"must be null for http monitors\"}");
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"tcp\", \"url\": \"http://e.test\", "
	    "\"host\": \"e.test\", \"port\": 80, \"interval_seconds\": 60}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"url\":\"must be null for tcp monitors\"}");
	/* null targets of the other type are fine */
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"tcp\", \"url\": null, "
	    "\"host\": \"10.0.0.1\", \"port\": 5432, \"interval_seconds\": 60}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), 0);
	upmon_monitor_release(&m);
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"tcp\", \"host\": \"a/b\", "
	    "\"port\": 65536, \"interval_seconds\": 60}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"host\":\"must be a host name");
	CHECK_CONTAINS(f, "\"port\":\"must be between 1 and 65535\"");
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"http\", \"url\": \"http://e.test\", "
	    "\"keyword_absent\": true, \"interval_seconds\": 60}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"keyword_absent\":\"requires keyword\"}");
	CHECK_EQ(read_text("{\"name\": \"n\", \"type\": \"http\", \"url\": \"http://e.test\", "
	    "\"timeout_ms\": 20000, \"interval_seconds\": 10}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"timeout_ms\":\"must not exceed interval_seconds * 1000 (10000)\"}");
	/* several at once */
	CHECK_EQ(read_text("{\"name\": \"\", \"type\": \"http\", \"url\": \"x\", "
	    "\"retries\": 99, \"interval_seconds\": 1, \"zzz\": 1}",
	    UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"name\":");
	CHECK_CONTAINS(f, "\"url\":");
	CHECK_CONTAINS(f, "\"retries\":");
	CHECK_CONTAINS(f, "\"interval_seconds\":");
	CHECK_CONTAINS(f, "\"zzz\":\"unknown field\"");
}

static void
test_patch(void)
{
	struct upmon_monitor base, m, m2;
	char f[1024], j[4096];

	REQUIRE(read_text("{\"name\": \"n\", \"type\": \"http\", \"url\": \"http://e.test\", "
	    "\"interval_seconds\": 60, \"retries\": 5, \"keyword\": \"ok\", \"tags\": [\"a\"], "
	    "\"headers\": {\"X-A\": \"1\"}, \"reminder_minutes\": 30, \"method\": \"POST\", "
	    "\"timeout_ms\": 20000}",
	    UPMON_MONITOR_CREATE, NULL, &base, f, sizeof(f)) == 0);
	/* only given fields change */
	CHECK_EQ(read_text("{\"retries\": 1}", UPMON_MONITOR_PATCH, &base, &m, f, sizeof(f)), 0);
	CHECK_EQ(m.retries, 1);
	CHECK_STR(m.keyword, "ok");
	CHECK_EQ(m.reminder_minutes, 30);
	CHECK_EQ(m.method, UPMON_HTTP_POST);
	CHECK_EQ((int)json_object_array_length(m.tags), 1);
	upmon_monitor_release(&m);
	/* null clears nullable fields and resets defaulted ones */
	CHECK_EQ(read_text("{\"keyword\": null, \"reminder_minutes\": null, \"retries\": null, "
	    "\"method\": null, \"tags\": null, \"headers\": null, \"expected_status\": null, "
	    "\"follow_redirects\": null}", UPMON_MONITOR_PATCH, &base, &m, f, sizeof(f)), 0);
	CHECK_STR(f, "");
	CHECK(m.keyword == NULL);
	CHECK_EQ(m.reminder_minutes, 0);
	CHECK_EQ(m.retries, 2);
	CHECK_EQ(m.method, UPMON_HTTP_GET);
	CHECK_EQ((int)json_object_array_length(m.tags), 0);
	CHECK_EQ(json_object_object_length(m.headers), 0);
	CHECK_STR(m.expected_status, "200-299");
	CHECK_EQ(m.follow_redirects, 1);
	upmon_monitor_release(&m);
	/* headers merge as RFC 7396 says: add, replace, remove by null */
	CHECK_EQ(read_text("{\"headers\": {\"X-B\": \"2\"}}", UPMON_MONITOR_PATCH, &base, &m, f,
	    sizeof(f)), 0);
	CHECK_STR(json_object_to_json_string_ext(m.headers, JSON_C_TO_STRING_PLAIN),
	    "{\"X-A\":\"1\",\"X-B\":\"2\"}");
	upmon_monitor_release(&m);
	CHECK_EQ(read_text("{\"headers\": {\"X-A\": null, \"X-C\": \"3\"}}", UPMON_MONITOR_PATCH,
	    &base, &m, f, sizeof(f)), 0);
	CHECK_STR(json_object_to_json_string_ext(m.headers, JSON_C_TO_STRING_PLAIN),
	    "{\"X-C\":\"3\"}");
	CHECK_EQ(json_object_object_length(base.headers), 1);	/* base untouched */
	upmon_monitor_release(&m);
	CHECK_EQ(read_text("{\"headers\": {\"X-A\": 5}}", UPMON_MONITOR_PATCH, &base, &m, f,
	    sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"headers.X-A\":\"must be a string\"}");
	/* required fields cannot be nulled */
	CHECK_EQ(read_text("{\"name\": null, \"interval_seconds\": null}", UPMON_MONITOR_PATCH,
	    &base, &m, f, sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"name\":\"must not be null\"");
	CHECK_CONTAINS(f, "\"interval_seconds\":\"must not be null\"");
	/* a type change needs the matching target; the old one is dropped */
	CHECK_EQ(read_text("{\"type\": \"tcp\"}", UPMON_MONITOR_PATCH, &base, &m, f, sizeof(f)),
	    -EINVAL);
	CHECK_STR(f, "{\"host\":\"is required\",\"port\":\"is required\"}");
	CHECK_EQ(read_text("{\"type\": \"tcp\", \"host\": \"e.test\", \"port\": 443}",
	    UPMON_MONITOR_PATCH, &base, &m, f, sizeof(f)), 0);
	CHECK(m.url == NULL);
	CHECK_EQ(m.type, UPMON_CHECK_TCP);
	/* the merged whole is validated: keyword_absent without the keyword it needs */
	CHECK_EQ(read_text("{\"keyword_absent\": true, \"keyword\": null}", UPMON_MONITOR_PATCH,
	    &base, &m2, f, sizeof(f)), -EINVAL);
	CHECK_STR(f, "{\"keyword_absent\":\"requires keyword\"}");
	CHECK_EQ(read_text("{\"interval_seconds\": 10}", UPMON_MONITOR_PATCH, &base, &m2, f,
	    sizeof(f)), -EINVAL);
	CHECK_CONTAINS(f, "\"timeout_ms\":");
	/* patch with {} changes nothing */
	CHECK_EQ(read_text("{}", UPMON_MONITOR_PATCH, &base, &m2, f, sizeof(f)), 0);
	to_text(&m2, 0, j, sizeof(j));
	{
		char j2[4096];

		CHECK_STR(j, to_text(&base, 0, j2, sizeof(j2)));
	}
	upmon_monitor_release(&m2);
	upmon_monitor_release(&m);
	upmon_monitor_release(&base);
}

static void
test_round_trip(void)
{
	static const char *const nasty = "'; DROP TABLE monitors; --\" \\ %_ "
	    "\xc3\x9c" "berwachung \xe2\x9c\x93 \xe7\x9b\xa3\xe8\xa6\x96 \xf0\x9f\x9a\x80";
	struct upmon_monitor m, m2;
	struct json_object *in, *o, *h, *tags, *fields = NULL;
	char url[256], j1[8192], j2[8192];

	snprintf(url, sizeof(url), "https://e.test/%%_\xc3\x9c?q=\xe7\x9b\xa3&x='\"\\");
	in = json_object_new_object();
	h = json_object_new_object();
	tags = json_object_new_array();
	json_object_object_add(in, "name", json_object_new_string(nasty));
	json_object_object_add(in, "type", json_object_new_string("http"));
	json_object_object_add(in, "url", json_object_new_string(url));
	json_object_object_add(in, "interval_seconds", json_object_new_int(60));
	json_object_object_add(in, "keyword", json_object_new_string(nasty));
	json_object_object_add(in, "body", json_object_new_string(nasty));
	json_object_object_add(h, "X-T", json_object_new_string(nasty));
	json_object_object_add(in, "headers", h);
	json_object_array_add(tags, json_object_new_string(nasty));
	json_object_array_add(tags, json_object_new_string("b"));
	json_object_object_add(in, "tags", tags);
	json_object_object_add(in, "paused", json_object_new_boolean(1));
	json_object_object_add(in, "max_latency_ms", json_object_new_int(500));
	REQUIRE(upmon_monitor_from_json(in, UPMON_MONITOR_CREATE, NULL, &m, &fields) == 0);
	json_object_put(in);
	CHECK_STR(m.name, nasty);
	CHECK_STR(m.url, url);
	CHECK_EQ(wire_check(&m, j1, sizeof(j1)), 0);
	REQUIRE(upmon_monitor_to_json(&m, UPMON_MONITOR_JSON_DEFINITION, &o) == 0);
	REQUIRE(upmon_monitor_from_json(o, UPMON_MONITOR_CREATE, NULL, &m2, NULL) == 0);
	json_object_put(o);
	CHECK_STR(to_text(&m, 0, j1, sizeof(j1)), to_text(&m2, 0, j2, sizeof(j2)));
	CHECK_STR(m2.keyword, nasty);
	CHECK_STR(m2.body, nasty);
	CHECK_STR(json_object_get_string(json_object_object_get(m2.headers, "X-T")), nasty);
	CHECK_STR(json_object_get_string(json_object_array_get_idx(m2.tags, 0)), nasty);
	CHECK_EQ(m2.paused, 1);
	CHECK_EQ(m2.max_latency_ms, 500);
	upmon_monitor_release(&m2);
	upmon_monitor_release(&m);
}

static void
test_sql(void)
{
	struct upmon_monitor m;
	struct upmon_monitor_params p;
	char f[1024], buf[2048];

	REQUIRE(read_text("{\"name\": \"n\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 22, "
	    "\"interval_seconds\": 60, \"tags\": [\"a\\\"b\", \"c\\\\d\", \"{x,y}\"], "
	    "\"headers\": {\"A\": \"/\"}}", UPMON_MONITOR_CREATE, NULL, &m, f, sizeof(f)) == 0);
	REQUIRE(upmon_monitor_params(&m, &p) == 0);
	CHECK_STR(p.v[0], "n");
	CHECK_STR(p.v[1], "tcp");
	CHECK(p.v[2] == NULL);
	CHECK_STR(p.v[3], "h");
	CHECK_STR(p.v[4], "22");
	CHECK_STR(p.v[5], "GET");
	CHECK_STR(p.v[6], "{\"A\":\"/\"}");
	CHECK(p.v[11] == NULL);		/* max_latency_ms */
	CHECK_STR(p.v[12], "true");	/* follow_redirects */
	CHECK(p.v[21] == NULL);		/* reminder_minutes */
	CHECK_STR(p.v[22], "false");	/* paused */
	CHECK_STR(p.v[23], "{\"a\\\"b\",\"c\\\\d\",\"{x,y}\"}");
	upmon_monitor_params_release(&p);
	upmon_monitor_release(&m);

	REQUIRE(upmon_monitor_sql_list(UPMON_MONITOR_SQL_VALUES, 2, buf, sizeof(buf)) == 0);
	CHECK_CONTAINS(buf, "$2, $3, $4");
	CHECK_CONTAINS(buf, "$25");
	CHECK(strstr(buf, "$26") == NULL);
	REQUIRE(upmon_monitor_sql_list(UPMON_MONITOR_SQL_SET, 3, buf, sizeof(buf)) == 0);
	CHECK_CONTAINS(buf, "name = $3, type = $4,");
	CHECK_CONTAINS(buf, "tags = $26");
	REQUIRE(upmon_monitor_sql_list(UPMON_MONITOR_SQL_DIFFERS, 1, buf, sizeof(buf)) == 0);
	CHECK_CONTAINS(buf, "(m.name, m.type,");
	CHECK_CONTAINS(buf, "m.tags) IS DISTINCT FROM (EXCLUDED.name,");
	CHECK_CONTAINS(buf, "EXCLUDED.tags)");
	CHECK_EQ(upmon_monitor_sql_list(UPMON_MONITOR_SQL_SET, 3, buf, 20), -ENOSPC);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_required);
	RUN(test_bounds);
	RUN(test_limits_at_edge);
	RUN(test_cross_rules);
	RUN(test_patch);
	RUN(test_round_trip);
	RUN(test_sql);
	return test_finish();
}
