/*
 * msg: round trips of every message, the exact wire form of a task, and a table of
 * malformed, truncated, oversized, wrongly typed, out-of-range, unknown-field and
 * NUL-containing inputs that must each be refused with a reason naming the problem.
 */
#include "test.h"

#include <errno.h>
#include <stdint.h>

#include "upmon/msg.h"

#define TS 1700000000000LL

/* A TCP task as it appears on the wire (the encoder's exact output). */
static const char tcp_json[] =
    "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\",\"owner_id\":\"o1\","
    "\"scheduled_at\":1700000000000,\"attempt\":1,\"interval_seconds\":60,\"retries\":0,"
    "\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,\"host\":\"db.example\",\"port\":5432}}";

/* The start of a task with an HTTP check; cases append the rest of the check object. */
#define HTTP_NOURL "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\"," \
    "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1," \
    "\"interval_seconds\":60,\"retries\":0,\"check\":{\"type\":\"http\",\"timeout_ms\":1000,"
#define HTTP_HEAD HTTP_NOURL "\"url\":\"https://example.com/\""
#define TCP_HEAD "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\"," \
    "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1,\"retries\":0,"
#define TCP_CHECK "\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,\"host\":\"h\",\"port\":1}"

static void
sample_http_task(struct upmon_task *t)
{
	upmon_task_init(t);
	snprintf(t->monitor_id, sizeof(t->monitor_id), "m-42");
	snprintf(t->owner_id, sizeof(t->owner_id), "7f1c2a6e-6a51-4f0b-9d0e-2b1e7c3d9a10");
	t->scheduled_at = TS;
	t->attempt = 2;
	t->interval_seconds = 60;
	t->retries = 2;
	t->check.type = UPMON_CHECK_HTTP;
	t->check.timeout_ms = 5000;
	t->check.url = strdup("https://example.com/health?x=1&y=\"q\"");
	t->check.method = UPMON_HTTP_POST;
	t->check.nheaders = 2;
	t->check.headers = calloc(2, sizeof(*t->check.headers));
	t->check.headers[0].name = strdup("Content-Type");
	t->check.headers[0].value = strdup("application/json");
	t->check.headers[1].name = strdup("X-Empty");
	t->check.headers[1].value = strdup("");
	t->check.body = strdup("{\"ping\":\"p\\u00e9ng \xc3\xa9\"}\n\t");
	t->check.nexpected = 3;
	t->check.expected[0] = (struct upmon_status_range){ 200, 299 };
	t->check.expected[1] = (struct upmon_status_range){ 301, 301 };
	t->check.expected[2] = (struct upmon_status_range){ 404, 404 };
	t->check.keyword = strdup("\"status\":\"ok\"");
	t->check.max_latency_ms = 2000;
	t->check.follow_redirects = false;
	t->check.max_redirects = 3;
	t->check.verify_tls = false;
	t->check.cert_expiry_days = 14;
}

static void
test_task_round_trip(void)
{
	struct upmon_task t, d;
	char *json = NULL, *json2 = NULL, err[256] = "";
	size_t len = 0, len2 = 0, i;

	sample_http_task(&t);
	REQUIRE(upmon_msg_task_encode(&t, &json, &len) == 0);
	CHECK_EQ(strlen(json), len);
	CHECK_CONTAINS(json, "\"task_id\":\"m-42:1700000000000:2\"");
	CHECK_CONTAINS(json, "\"v\":1,");
	CHECK_CONTAINS(json, "\"expected_status\":[\"200-299\",\"301\",\"404\"]");
	CHECK_EQ(upmon_msg_task_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_STR(d.task_id, "m-42:1700000000000:2");
	CHECK_STR(d.monitor_id, t.monitor_id);
	CHECK_STR(d.owner_id, t.owner_id);
	CHECK_EQ(d.scheduled_at, TS);
	CHECK_EQ(d.attempt, 2);
	CHECK_EQ(d.interval_seconds, 60);
	CHECK_EQ(d.retries, 2);
	CHECK_EQ(d.check.type, UPMON_CHECK_HTTP);
	CHECK_EQ(d.check.timeout_ms, 5000);
	CHECK_STR(d.check.url, t.check.url);
	CHECK_EQ(d.check.method, UPMON_HTTP_POST);
	REQUIRE(d.check.nheaders == 2);
	for (i = 0; i < 2; i++) {
		CHECK_STR(d.check.headers[i].name, t.check.headers[i].name);
		CHECK_STR(d.check.headers[i].value, t.check.headers[i].value);
	}
	CHECK_STR(d.check.body, t.check.body);
	REQUIRE(d.check.nexpected == 3);
	for (i = 0; i < 3; i++) {
		CHECK_EQ(d.check.expected[i].lo, t.check.expected[i].lo);
		CHECK_EQ(d.check.expected[i].hi, t.check.expected[i].hi);
	}
	CHECK_STR(d.check.keyword, t.check.keyword);
	CHECK_EQ(d.check.keyword_absent, false);
	CHECK_EQ(d.check.max_latency_ms, 2000);
	CHECK_EQ(d.check.follow_redirects, false);
	CHECK_EQ(d.check.max_redirects, 3);
	CHECK_EQ(d.check.verify_tls, false);
	CHECK_EQ(d.check.cert_expiry_days, 14);
	/* what was decoded encodes to the same bytes */
	REQUIRE(upmon_msg_task_encode(&d, &json2, &len2) == 0);
	CHECK_STR(json2, json);
	free(json);
	free(json2);
	upmon_task_release(&t);
	upmon_task_release(&d);
}

static void
test_task_wire_form(void)
{
	struct upmon_task t, d;
	char *json = NULL, err[256];
	size_t len;

	upmon_task_init(&t);
	snprintf(t.monitor_id, sizeof(t.monitor_id), "m1");
	snprintf(t.owner_id, sizeof(t.owner_id), "o1");
	t.scheduled_at = TS;
	t.interval_seconds = 60;
	t.check.type = UPMON_CHECK_TCP;
	t.check.timeout_ms = 1000;
	t.check.host = strdup("db.example");
	t.check.port = 5432;
	REQUIRE(upmon_msg_task_encode(&t, &json, &len) == 0);
	CHECK_STR(json, tcp_json);
	CHECK_EQ(upmon_msg_task_decode(tcp_json, strlen(tcp_json), &d, err, sizeof(err)), 0);
	CHECK_STR(d.check.host, "db.example");
	CHECK_EQ(d.check.port, 5432);
	CHECK(d.check.url == NULL);
	upmon_task_release(&d);
	free(json);

	/* defaults of an HTTP check that says only what it must */
	CHECK_EQ(upmon_msg_task_decode(HTTP_HEAD "}}", strlen(HTTP_HEAD "}}"), &d, err,
	    sizeof(err)), 0);
	CHECK_EQ(d.check.method, UPMON_HTTP_GET);
	CHECK_EQ(d.check.nexpected, 1);
	CHECK_EQ(d.check.expected[0].lo, 200);
	CHECK_EQ(d.check.expected[0].hi, 299);
	CHECK_EQ(d.check.follow_redirects, true);
	CHECK_EQ(d.check.max_redirects, 5);
	CHECK_EQ(d.check.verify_tls, true);
	CHECK_EQ(d.check.cert_expiry_days, 0);
	CHECK(d.check.body == NULL && d.check.keyword == NULL && d.check.nheaders == 0);
	upmon_task_release(&d);

	/* json-c turns a lone surrogate escape into U+FFFD: valid UTF-8, so it is accepted */
	CHECK_EQ(upmon_msg_task_decode(HTTP_HEAD ",\"keyword\":\"\\ud800x\"}}",
	    strlen(HTTP_HEAD ",\"keyword\":\"\\ud800x\"}}"), &d, err, sizeof(err)), 0);
	CHECK_STR(d.check.keyword, "\xef\xbf\xbdx");
	upmon_task_release(&d);
	upmon_task_release(&t);
}

#define X64 "0123456789012345678901234567890123456789012345678901234567890123"
#define LONG_2048 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 \
    X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64

struct bad_case {
	const char *what;
	const char *json;
	int rc;
	const char *reason;
};

static const struct bad_case bad_tasks[] = {
	{ "empty", "", -EBADMSG, "task: empty message" },
	{ "not JSON", "hello", -EBADMSG, "task: malformed JSON" },
	{ "truncated", "{\"v\":1,\"task_id\":\"m1:17", -EBADMSG, "task: truncated JSON" },
	{ "trailing garbage", "{\"v\":1} x", -EBADMSG, "trailing data" },
	{ "two documents", "{\"v\":1}{\"v\":1}", -EBADMSG, "trailing data" },
	{ "single quotes", "{'v':1}", -EBADMSG, "unexpected '''" },
	{ "comment", "{\"v\":1 /* hi */}", -EBADMSG, "unexpected '/'" },
	{ "invalid UTF-8", "{\"v\":1,\"monitor_id\":\"\xff\"}", -EBADMSG, "malformed JSON" },
	{ "too deep", "{\"v\":1,\"check\":{\"a\":[[[[[[[[[1]]]]]]]]]}}", -EBADMSG,
	  "malformed JSON" },
	{ "array", "[1,2]", -EBADMSG, "expected a JSON object, got array" },
	{ "string", "\"task\"", -EBADMSG, "expected a JSON object, got string" },
	{ "no version", "{\"monitor_id\":\"m1\"}", -EINVAL, "task: field \"v\": missing" },
	{ "version as string", "{\"v\":\"1\"}", -EINVAL, "field \"v\": expected integer 1" },
	{ "future version", "{\"v\":2}", -EPROTONOSUPPORT, "field \"v\": unsupported version 2" },
	{ "unknown field", TCP_HEAD "\"interval_seconds\":60,\"extra\":1," TCP_CHECK "}",
	  -EINVAL, "task: field \"extra\": unknown field" },
	{ "missing interval", TCP_HEAD TCP_CHECK "}", -EINVAL,
	  "task: field \"interval_seconds\": missing" },
	{ "interval as string", TCP_HEAD "\"interval_seconds\":\"60\"," TCP_CHECK "}", -EINVAL,
	  "task: field \"interval_seconds\": expected integer 10..86400, got string" },
	{ "interval as float", TCP_HEAD "\"interval_seconds\":60.0," TCP_CHECK "}", -EINVAL,
	  "field \"interval_seconds\": expected integer 10..86400, got number" },
	{ "interval as exponent", TCP_HEAD "\"interval_seconds\":6e1," TCP_CHECK "}", -EINVAL,
	  "field \"interval_seconds\": expected integer 10..86400, got number" },
	{ "interval too small", TCP_HEAD "\"interval_seconds\":5," TCP_CHECK "}", -EINVAL,
	  "field \"interval_seconds\": expected integer 10..86400, got 5" },
	{ "interval huge", TCP_HEAD "\"interval_seconds\":99999999999999999999," TCP_CHECK "}",
	  -EINVAL, "field \"interval_seconds\": expected integer 10..86400" },
	{ "interval null", TCP_HEAD "\"interval_seconds\":null," TCP_CHECK "}", -EINVAL,
	  "field \"interval_seconds\": expected integer 10..86400, got null" },
	{ "interval bool", TCP_HEAD "\"interval_seconds\":true," TCP_CHECK "}", -EINVAL,
	  "field \"interval_seconds\": expected integer 10..86400, got boolean" },
	{ "no check", TCP_HEAD "\"interval_seconds\":60}", -EINVAL,
	  "task: field \"check\": missing" },
	{ "check not an object", TCP_HEAD "\"interval_seconds\":60,\"check\":[]}", -EINVAL,
	  "task: field \"check\": expected object, got array" },
	{ "unknown check type", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"icmp\","
	  "\"timeout_ms\":1000}}", -EINVAL,
	  "field \"check.type\": expected one of http|tcp, got \"icmp\"" },
	{ "port out of range", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\","
	  "\"timeout_ms\":1000,\"host\":\"h\",\"port\":70000}}", -EINVAL,
	  "field \"check.port\": expected integer 1..65535, got 70000" },
	{ "host with space", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\","
	  "\"timeout_ms\":1000,\"host\":\"a b\",\"port\":1}}", -EINVAL,
	  "field \"check.host\": expected a host name" },
	{ "NUL escape in host", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\","
	  "\"timeout_ms\":1000,\"host\":\"a\\u0000b\",\"port\":1}}", -EINVAL,
	  "field \"check.host\": contains a NUL character" },
	{ "http field on tcp", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\","
	  "\"timeout_ms\":1000,\"host\":\"h\",\"port\":1,\"url\":\"http://x\"}}", -EINVAL,
	  "field \"check.url\": not allowed for type \"tcp\"" },
	{ "unknown check field", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\","
	  "\"timeout_ms\":1000,\"host\":\"h\",\"port\":1,\"ttl\":1}}", -EINVAL,
	  "field \"check.ttl\": unknown field" },
	{ "timeout missing", TCP_HEAD "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\","
	  "\"host\":\"h\",\"port\":1}}", -EINVAL, "field \"check.timeout_ms\": missing" },
	{ "id with a dot", "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m.1\"}",
	  -EINVAL, "field \"monitor_id\": expected characters [A-Za-z0-9_-]" },
	{ "empty id", "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"\"}",
	  -EINVAL, "field \"monitor_id\": must not be empty" },
	{ "id too long", "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":"
	  "\"0123456789012345678901234567890123456789012345678901234567890123x\"}", -EINVAL,
	  "field \"monitor_id\": longer than 64 bytes" },
	{ "malformed task id", "{\"v\":1,\"task_id\":\"m1-1700000000000-1\"}", -EINVAL,
	  "field \"task_id\": expected \"<monitor_id>:<scheduled_at>:<attempt>\"" },
	{ "task id does not match", "{\"v\":1,\"task_id\":\"m1:1700000000000:2\","
	  "\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,"
	  "\"attempt\":1,\"interval_seconds\":60,\"retries\":0," TCP_CHECK "}", -EINVAL,
	  "field \"task_id\": does not match" },
	{ "scheduled_at negative", "{\"v\":1,\"task_id\":\"m1:1700000000000:1\","
	  "\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"scheduled_at\":-1}", -EINVAL,
	  "field \"scheduled_at\": expected integer 946684800000..4102444800000, got -1" },
	{ "ftp url", HTTP_NOURL "\"url\":\"ftp://example.com/\"}}", -EINVAL,
	  "field \"check.url\": expected an http:// or https:// URL" },
	{ "url with space", HTTP_NOURL "\"url\":\"http://a b/\"}}", -EINVAL,
	  "field \"check.url\": contains spaces or control characters" },
	{ "url missing", HTTP_NOURL "\"method\":\"GET\"}}", -EINVAL,
	  "field \"check.url\": missing" },
	{ "url too long", HTTP_NOURL "\"url\":\"http://" LONG_2048 "\"}}", -EINVAL,
	  "field \"check.url\": longer than 2048 bytes" },
	{ "lower-case method", HTTP_HEAD ",\"method\":\"get\"}}", -EINVAL,
	  "field \"check.method\": expected one of GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS, "
	  "got \"get\"" },
	{ "boolean as string", HTTP_HEAD ",\"follow_redirects\":\"true\"}}", -EINVAL,
	  "field \"check.follow_redirects\": expected boolean, got string" },
	{ "boolean as integer", HTTP_HEAD ",\"verify_tls\":1}}", -EINVAL,
	  "field \"check.verify_tls\": expected boolean, got integer" },
	{ "too many redirects", HTTP_HEAD ",\"max_redirects\":11}}", -EINVAL,
	  "field \"check.max_redirects\": expected integer 0..10, got 11" },
	{ "body null", HTTP_HEAD ",\"body\":null}}", -EINVAL,
	  "field \"check.body\": expected string, got null" },
	{ "tcp field on http", HTTP_HEAD ",\"port\":80}}", -EINVAL,
	  "field \"check.port\": not allowed for type \"http\"" },
	{ "bad header name", HTTP_HEAD ",\"headers\":[{\"name\":\"Bad Name\",\"value\":\"x\"}]}}",
	  -EINVAL, "field \"check.headers[0].name\": expected token characters" },
	{ "header injection", HTTP_HEAD ",\"headers\":[{\"name\":\"A\",\"value\":\"x\"},"
	  "{\"name\":\"X\",\"value\":\"a\\r\\nHost: evil\"}]}}", -EINVAL,
	  "field \"check.headers[1].value\": contains control characters" },
	{ "header extra key", HTTP_HEAD ",\"headers\":[{\"name\":\"A\",\"value\":\"x\",\"q\":1}]}}",
	  -EINVAL, "field \"check.headers[0].q\": unknown field" },
	{ "header not an object", HTTP_HEAD ",\"headers\":[\"A: x\"]}}", -EINVAL,
	  "field \"check.headers[0]\": expected object" },
	{ "header missing value", HTTP_HEAD ",\"headers\":[{\"name\":\"A\"}]}}", -EINVAL,
	  "field \"check.headers[0].value\": missing" },
	{ "headers not an array", HTTP_HEAD ",\"headers\":{\"A\":\"x\"}}}", -EINVAL,
	  "field \"check.headers\": expected array" },
	{ "status code out of range", HTTP_HEAD ",\"expected_status\":[\"200\",\"600\"]}}",
	  -EINVAL, "field \"check.expected_status[1]\": expected \"NNN\" or \"NNN-NNN\"" },
	{ "status range reversed", HTTP_HEAD ",\"expected_status\":[\"299-200\"]}}", -EINVAL,
	  "field \"check.expected_status[0]\"" },
	{ "status as integer", HTTP_HEAD ",\"expected_status\":[200]}}", -EINVAL,
	  "field \"check.expected_status[0]\": expected string" },
	{ "no status codes", HTTP_HEAD ",\"expected_status\":[]}}", -EINVAL,
	  "field \"check.expected_status\": expected 1..16 codes or ranges, got 0" },
	{ "keyword_absent alone", HTTP_HEAD ",\"keyword_absent\":true}}", -EINVAL,
	  "field \"check.keyword_absent\": requires \"keyword\"" },
	{ "empty keyword", HTTP_HEAD ",\"keyword\":\"\"}}", -EINVAL,
	  "field \"check.keyword\": must not be empty" },
	{ "overlong UTF-8 (json-c lets it through)", HTTP_HEAD ",\"keyword\":\"\xc0\xaf\"}}",
	  -EINVAL, "field \"check.keyword\": is not valid UTF-8" },
};

static void
run_bad_cases(void)
{
	struct upmon_task t;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad_tasks) / sizeof(bad_tasks[0]); i++) {
		const struct bad_case *bc = &bad_tasks[i];
		int rc;

		err[0] = '\0';
		rc = upmon_msg_task_decode(bc->json, strlen(bc->json), &t, err, sizeof(err));
		if (rc != bc->rc || strstr(err, bc->reason) == NULL)
			fprintf(stderr, "case \"%s\": rc %d, reason \"%s\"\n", bc->what, rc, err);
		CHECK_EQ(rc, bc->rc);
		CHECK_CONTAINS(err, bc->reason);
		/* a refused message leaves nothing behind */
		CHECK(t.check.url == NULL && t.check.headers == NULL && t.check.host == NULL);
		upmon_task_release(&t);
	}
}

static void
test_nul_and_size(void)
{
	struct upmon_task t;
	char err[256], *big;
	size_t len = strlen(tcp_json);
	char withnul[sizeof(tcp_json)];

	/* a raw NUL byte inside the buffer, even though the JSON before it is fine */
	memcpy(withnul, tcp_json, sizeof(tcp_json));
	withnul[20] = '\0';
	CHECK_EQ(upmon_msg_task_decode(withnul, len, &t, err, sizeof(err)), -EBADMSG);
	CHECK_CONTAINS(err, "task: message contains a NUL byte at offset 20");

	/* over the cap: refused before parsing, even if it is only whitespace */
	big = malloc(UPMON_MSG_MAX_BYTES + 2);
	REQUIRE(big != NULL);
	memset(big, ' ', UPMON_MSG_MAX_BYTES + 1);
	memcpy(big, tcp_json, len);
	big[UPMON_MSG_MAX_BYTES + 1] = '\0';
	CHECK_EQ(upmon_msg_task_decode(big, UPMON_MSG_MAX_BYTES + 1, &t, err, sizeof(err)),
	    -EMSGSIZE);
	CHECK_CONTAINS(err, "task: message is 65537 bytes, over the limit of 65536 bytes");
	/* exactly at the cap it is parsed (trailing whitespace is allowed) */
	CHECK_EQ(upmon_msg_task_decode(big, UPMON_MSG_MAX_BYTES, &t, err, sizeof(err)), 0);
	upmon_task_release(&t);
	free(big);

	/* a smaller configured cap */
	upmon_msg_set_max_bytes(100);
	CHECK_EQ(upmon_msg_max_bytes(), 100);
	CHECK_EQ(upmon_msg_task_decode(tcp_json, len, &t, err, sizeof(err)), -EMSGSIZE);
	upmon_msg_set_max_bytes(0);
	CHECK_EQ(upmon_msg_max_bytes(), UPMON_MSG_MAX_BYTES);

	/* a NULL error buffer is allowed */
	CHECK_EQ(upmon_msg_task_decode("{", 1, &t, NULL, 0), -EBADMSG);
}

static void
test_truncations_and_mutations(void)
{
	struct upmon_task t, d;
	char *json = NULL, *copy, *again, err[256];
	static const char subst[] = { '"', '{', '}', '[', ']', ',', ':', '0', '\\', 'x', '\x80' };
	size_t len, cut, i, k;
	int ok = 0;

	sample_http_task(&t);
	REQUIRE(upmon_msg_task_encode(&t, &json, &len) == 0);
	/* every proper prefix is refused */
	for (cut = 0; cut < len; cut++) {
		if (upmon_msg_task_decode(json, cut, &d, err, sizeof(err)) == 0) {
			fprintf(stderr, "prefix of %zu bytes accepted\n", cut);
			CHECK(0);
		}
		upmon_task_release(&d);
	}
	/* single-byte changes never crash; whatever is accepted encodes again */
	copy = malloc(len);
	REQUIRE(copy != NULL);
	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof(subst); k++) {
			memcpy(copy, json, len);
			copy[i] = subst[k];
			if (upmon_msg_task_decode(copy, len, &d, err, sizeof(err)) == 0) {
				ok++;
				CHECK_EQ(upmon_task_validate(&d, err, sizeof(err)), 0);
				CHECK_EQ(upmon_msg_task_encode(&d, &again, NULL), 0);
				free(again);
			}
			upmon_task_release(&d);
		}
	}
	CHECK(ok > 0);	/* e.g. a digit of a value changed */
	free(copy);
	free(json);
	upmon_task_release(&t);
}

static void
test_task_encode_refuses(void)
{
	struct upmon_task t;
	char *json = NULL, err[256];
	size_t len;

	sample_http_task(&t);
	t.interval_seconds = 5;
	CHECK_EQ(upmon_msg_task_encode(&t, &json, &len), -EINVAL);
	CHECK(json == NULL);
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "task: field \"interval_seconds\": expected integer 10..86400, got 5");
	t.interval_seconds = 60;

	snprintf(t.task_id, sizeof(t.task_id), "m-42:1:2");
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), -EINVAL);
	CHECK_CONTAINS(err, "field \"task_id\": does not match");
	t.task_id[0] = '\0';

	free(t.check.headers[1].value);
	t.check.headers[1].value = strdup("a\nb");
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "task: field \"check.headers[1].value\": contains control characters");
	free(t.check.headers[1].value);
	t.check.headers[1].value = strdup("ok");

	free(t.check.body);
	t.check.body = strdup("\xc3\x28");
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "task: field \"check.body\": is not valid UTF-8");

	/* a body within its cap whose escaped form is over the message cap */
	free(t.check.body);
	t.check.body = malloc(UPMON_BODY_MAX + 1);
	memset(t.check.body, '\x01', UPMON_BODY_MAX);
	t.check.body[UPMON_BODY_MAX] = '\0';
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), 0);
	CHECK_EQ(upmon_msg_task_encode(&t, &json, &len), -EMSGSIZE);
	t.check.body[UPMON_BODY_MAX - 1] = '\0';
	t.check.body[0] = 'x';
	memset(t.check.body, 'x', UPMON_BODY_MAX - 1);
	CHECK_EQ(upmon_msg_task_encode(&t, &json, &len), 0);
	free(json);
	t.check.body[UPMON_BODY_MAX - 1] = 'x';	/* 16384 bytes: still fine */
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), 0);
	free(t.check.body);
	t.check.body = calloc(1, UPMON_BODY_MAX + 2);
	memset(t.check.body, 'x', UPMON_BODY_MAX + 1);
	CHECK_EQ(upmon_task_validate(&t, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "task: field \"check.body\": longer than 16384 bytes");
	upmon_task_release(&t);
}

static void
sample_status(struct upmon_status_event *ev)
{
	upmon_status_event_init(ev);
	snprintf(ev->monitor_id, sizeof(ev->monitor_id), "m1");
	snprintf(ev->owner_id, sizeof(ev->owner_id), "o1");
	ev->status = UPMON_STATUS_DOWN;
	ev->previous = UPMON_STATUS_UP;
	ev->at = TS + 5;
	snprintf(ev->task_id, sizeof(ev->task_id), "m1:%lld:3", TS);
	ev->has_result = true;
	ev->result.ok = false;
	ev->result.latency_ms = 10000;
	ev->result.status_code = 503;
	ev->result.error = strdup("HTTP 503 \"Service Unavailable\"");
}

static void
test_status_events(void)
{
	struct upmon_status_event ev, d;
	char *json = NULL, err[256], key[160];
	size_t len;

	sample_status(&ev);
	REQUIRE(upmon_msg_status_encode(&ev, &json, &len) == 0);
	CHECK_STR(json, "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"down\","
	    "\"previous\":\"up\",\"at\":1700000000005,\"task_id\":\"m1:1700000000000:3\","
	    "\"result\":{\"ok\":false,\"latency_ms\":10000,\"status_code\":503,"
	    "\"error\":\"HTTP 503 \\\"Service Unavailable\\\"\"}}");
	CHECK_EQ(upmon_msg_status_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK_EQ(d.status, UPMON_STATUS_DOWN);
	CHECK_EQ(d.previous, UPMON_STATUS_UP);
	CHECK_EQ(d.at, TS + 5);
	CHECK_STR(d.task_id, ev.task_id);
	CHECK(d.has_result);
	CHECK_EQ(d.result.latency_ms, 10000);
	CHECK_EQ(d.result.status_code, 503);
	CHECK_STR(d.result.error, ev.result.error);
	CHECK_EQ(upmon_msg_status_routing_key(&d, key, sizeof(key)), 0);
	CHECK_STR(key, "status.o1.m1");
	CHECK_EQ(upmon_msg_status_routing_key(&d, key, 8), -ENOSPC);
	upmon_status_event_release(&d);
	free(json);

	/* a pause: no result, no task, no status code */
	upmon_status_event_release(&ev);
	sample_status(&ev);
	free(ev.result.error);
	ev.result.error = NULL;
	ev.has_result = false;
	ev.task_id[0] = '\0';
	ev.status = UPMON_STATUS_PAUSED;
	REQUIRE(upmon_msg_status_encode(&ev, &json, &len) == 0);
	CHECK_STR(json, "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"paused\","
	    "\"previous\":\"up\",\"at\":1700000000005}");
	CHECK_EQ(upmon_msg_status_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK(!d.has_result);
	CHECK_STR(d.task_id, "");
	upmon_status_event_release(&d);
	free(json);

	ev.previous = UPMON_STATUS_PAUSED;
	CHECK_EQ(upmon_msg_status_encode(&ev, &json, &len), -EINVAL);
	CHECK_EQ(upmon_status_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "status: field \"status\": equals \"previous\" (an event is a change)");
	upmon_status_event_release(&ev);
}

#define ST_HEAD "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"at\":1700000000000,"

static const struct bad_case bad_status[] = {
	{ "unknown status", ST_HEAD "\"status\":\"sideways\",\"previous\":\"up\"}", -EINVAL,
	  "status: field \"status\": expected one of pending|up|down|paused, got \"sideways\"" },
	{ "missing previous", ST_HEAD "\"status\":\"up\"}", -EINVAL,
	  "status: field \"previous\": missing" },
	{ "status code 99", ST_HEAD "\"status\":\"up\",\"previous\":\"down\",\"result\":"
	  "{\"ok\":true,\"latency_ms\":1,\"status_code\":99}}", -EINVAL,
	  "status: field \"result.status_code\": expected integer 100..599, got 99" },
	{ "result extra key", ST_HEAD "\"status\":\"up\",\"previous\":\"down\",\"result\":"
	  "{\"ok\":true,\"latency_ms\":1,\"body\":\"x\"}}", -EINVAL,
	  "status: field \"result.body\": unknown field" },
	{ "result ok as string", ST_HEAD "\"status\":\"up\",\"previous\":\"down\",\"result\":"
	  "{\"ok\":\"yes\",\"latency_ms\":1}}", -EINVAL,
	  "status: field \"result.ok\": expected boolean, got string" },
	{ "result not an object", ST_HEAD "\"status\":\"up\",\"previous\":\"down\","
	  "\"result\":true}", -EINVAL, "status: field \"result\": expected object" },
	{ "time as string", "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"up\","
	  "\"previous\":\"down\",\"at\":\"2023-11-14T22:13:20Z\"}", -EINVAL,
	  "status: field \"at\": expected integer 946684800000..4102444800000, got string" },
	{ "time in seconds", "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"up\","
	  "\"previous\":\"down\",\"at\":1700000000}", -EINVAL,
	  "status: field \"at\": expected integer 946684800000..4102444800000, got 1700000000" },
	{ "unknown field", ST_HEAD "\"status\":\"up\",\"previous\":\"down\",\"x\":1}", -EINVAL,
	  "status: field \"x\": unknown field" },
};

#define AL_HEAD "{\"v\":1,\"alert_id\":\"a-1\",\"monitor_id\":\"m1\",\"owner_id\":\"o1\"," \
    "\"monitor_name\":\"API\",\"target\":\"https://api.example/\",\"at\":1700000000000,"

static const struct bad_case bad_alerts[] = {
	{ "unknown kind", AL_HEAD "\"kind\":\"sideways\"}", -EINVAL,
	  "alert: field \"kind\": expected one of down|recovery|system_error|tls_expiry|test" },
	{ "test without channel", AL_HEAD "\"kind\":\"test\"}", -EINVAL,
	  "alert: field \"channel_id\": missing (required for kind \"test\")" },
	{ "test with outage", AL_HEAD "\"kind\":\"test\",\"channel_id\":\"c1\","
	  "\"outage_seconds\":5}", -EINVAL,
	  "alert: field \"outage_seconds\": not allowed for kind \"test\"" },
	{ "bad channel id", AL_HEAD "\"kind\":\"test\",\"channel_id\":\"c 1\"}", -EINVAL,
	  "alert: field \"channel_id\": expected characters [A-Za-z0-9_-]" },
	{ "down without monitor", "{\"v\":1,\"alert_id\":\"a-1\",\"owner_id\":\"o1\","
	  "\"monitor_name\":\"n\",\"target\":\"t\",\"at\":1700000000000,\"kind\":\"down\"}",
	  -EINVAL, "alert: field \"monitor_id\": missing" },
	{ "recovery without outage", AL_HEAD "\"kind\":\"recovery\"}", -EINVAL,
	  "alert: field \"outage_seconds\": missing" },
	{ "down with outage", AL_HEAD "\"kind\":\"down\",\"outage_seconds\":5}", -EINVAL,
	  "alert: field \"outage_seconds\": not allowed for kind \"down\"" },
	{ "down with zero outage", AL_HEAD "\"kind\":\"down\",\"outage_seconds\":0}", -EINVAL,
	  "alert: field \"outage_seconds\": not allowed for kind \"down\" without \"reminder\"" },
	{ "not a reminder with outage", AL_HEAD "\"kind\":\"down\",\"reminder\":false,"
	  "\"outage_seconds\":5}", -EINVAL,
	  "alert: field \"outage_seconds\": not allowed for kind \"down\" without \"reminder\"" },
	{ "reminder as string", AL_HEAD "\"kind\":\"down\",\"reminder\":\"true\"}", -EINVAL,
	  "alert: field \"reminder\": expected boolean" },
	{ "reminder outage too long", AL_HEAD "\"kind\":\"down\",\"reminder\":true,"
	  "\"outage_seconds\":315360001}", -EINVAL,
	  "alert: field \"outage_seconds\": expected integer 0..315360000, got 315360001" },
	{ "recovery reminder", AL_HEAD "\"kind\":\"recovery\",\"outage_seconds\":5,"
	  "\"reminder\":true}", -EINVAL,
	  "alert: field \"reminder\": not allowed for kind \"recovery\"" },
	{ "tls reminder", AL_HEAD "\"kind\":\"tls_expiry\",\"cert_days_left\":3,"
	  "\"reminder\":false}", -EINVAL,
	  "alert: field \"reminder\": not allowed for kind \"tls_expiry\"" },
	{ "test reminder", AL_HEAD "\"kind\":\"test\",\"channel_id\":\"c1\","
	  "\"reminder\":true}", -EINVAL,
	  "alert: field \"reminder\": not allowed for kind \"test\"" },
	{ "negative outage", AL_HEAD "\"kind\":\"recovery\",\"outage_seconds\":-1}", -EINVAL,
	  "alert: field \"outage_seconds\": expected integer 0..315360000, got -1" },
	{ "tls without days", AL_HEAD "\"kind\":\"tls_expiry\"}", -EINVAL,
	  "alert: field \"cert_days_left\": missing" },
	{ "system error without error", AL_HEAD "\"kind\":\"system_error\","
	  "\"task_id\":\"m1:1700000000000:1\",\"attempts\":5}", -EINVAL,
	  "alert: field \"error\": missing (required for kind \"system_error\")" },
	{ "system error without attempts", AL_HEAD "\"kind\":\"system_error\",\"error\":\"db\","
	  "\"task_id\":\"m1:1700000000000:1\"}", -EINVAL, "alert: field \"attempts\": missing" },
	{ "down without name", "{\"v\":1,\"alert_id\":\"a-1\",\"monitor_id\":\"m1\","
	  "\"owner_id\":\"o1\",\"target\":\"t\",\"at\":1700000000000,\"kind\":\"down\"}", -EINVAL,
	  "alert: field \"monitor_name\": missing" },
	{ "alert id with space", "{\"v\":1,\"alert_id\":\"a 1\"}", -EINVAL,
	  "alert: field \"alert_id\": expected characters [A-Za-z0-9_:-]" },
	{ "target with newline", "{\"v\":1,\"alert_id\":\"a1\",\"kind\":\"down\","
	  "\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"target\":\"a\\nb\"}", -EINVAL,
	  "alert: field \"target\": contains control characters" },
	{ "long name", "{\"v\":1,\"alert_id\":\"a1\",\"kind\":\"down\",\"monitor_id\":\"m1\","
	  "\"owner_id\":\"o1\",\"monitor_name\":\"" /* 257 bytes follow */
	  "0123456789012345678901234567890123456789012345678901234567890123"
	  "0123456789012345678901234567890123456789012345678901234567890123"
	  "0123456789012345678901234567890123456789012345678901234567890123"
	  "01234567890123456789012345678901234567890123456789012345678901234\"}", -EINVAL,
	  "alert: field \"monitor_name\": longer than 256 bytes" },
};

static void
run_event_cases(void)
{
	struct upmon_status_event s;
	struct upmon_alert_event a;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
		err[0] = '\0';
		rc = upmon_msg_status_decode(bad_status[i].json, strlen(bad_status[i].json), &s,
		    err, sizeof(err));
		if (rc != bad_status[i].rc || strstr(err, bad_status[i].reason) == NULL)
			fprintf(stderr, "case \"%s\": rc %d, reason \"%s\"\n", bad_status[i].what,
			    rc, err);
		CHECK_EQ(rc, bad_status[i].rc);
		CHECK_CONTAINS(err, bad_status[i].reason);
		CHECK(s.result.error == NULL);
	}
	for (i = 0; i < sizeof(bad_alerts) / sizeof(bad_alerts[0]); i++) {
		err[0] = '\0';
		rc = upmon_msg_alert_decode(bad_alerts[i].json, strlen(bad_alerts[i].json), &a,
		    err, sizeof(err));
		if (rc != bad_alerts[i].rc || strstr(err, bad_alerts[i].reason) == NULL)
			fprintf(stderr, "case \"%s\": rc %d, reason \"%s\"\n", bad_alerts[i].what,
			    rc, err);
		CHECK_EQ(rc, bad_alerts[i].rc);
		CHECK_CONTAINS(err, bad_alerts[i].reason);
		CHECK(a.monitor_name == NULL && a.target == NULL && a.error == NULL);
	}
}

static void
sample_alert(struct upmon_alert_event *ev, enum upmon_alert_kind kind)
{
	upmon_alert_event_init(ev);
	ev->kind = kind;
	snprintf(ev->alert_id, sizeof(ev->alert_id), "m1:%lld:%s", TS,
	    upmon_alert_kind_name(kind));
	snprintf(ev->monitor_id, sizeof(ev->monitor_id), "m1");
	snprintf(ev->owner_id, sizeof(ev->owner_id), "o1");
	ev->monitor_name = strdup("Shop \"API\"\r\nBcc: x@evil");	/* the mailer's problem */
	ev->target = strdup("https://api.example/health");
	ev->at = TS;
	if (kind != UPMON_ALERT_RECOVERY)
		ev->error = strdup("connect: connection refused");
	ev->outage_seconds = kind == UPMON_ALERT_RECOVERY ? 3600 : 0;
	ev->cert_days_left = kind == UPMON_ALERT_TLS_EXPIRY ? -2 : 0;
	if (kind == UPMON_ALERT_SYSTEM_ERROR) {
		snprintf(ev->task_id, sizeof(ev->task_id), "m1:%lld:1", TS);
		ev->attempts = 5;
	}
	if (kind == UPMON_ALERT_TEST)
		snprintf(ev->channel_id, sizeof(ev->channel_id), "c1");
}

static void
test_alert_events(void)
{
	struct upmon_alert_event ev, d;
	char *json = NULL, err[256], key[64];
	size_t len;
	int k;

	for (k = UPMON_ALERT_DOWN; k <= UPMON_ALERT_TEST; k++) {
		sample_alert(&ev, (enum upmon_alert_kind)k);
		REQUIRE(upmon_msg_alert_encode(&ev, &json, &len) == 0);
		CHECK_EQ(upmon_msg_alert_decode(json, len, &d, err, sizeof(err)), 0);
		CHECK_EQ(d.kind, k);
		CHECK_STR(d.alert_id, ev.alert_id);
		CHECK_STR(d.channel_id, ev.channel_id);
		if (k != UPMON_ALERT_TEST)
			CHECK(strstr(json, "channel_id") == NULL);
		CHECK_STR(d.monitor_name, ev.monitor_name);
		CHECK_STR(d.target, ev.target);
		CHECK_EQ(d.at, TS);
		CHECK_EQ(d.outage_seconds, ev.outage_seconds);
		CHECK_EQ(d.cert_days_left, ev.cert_days_left);
		CHECK_STR(d.task_id, ev.task_id);
		CHECK_EQ(d.attempts, ev.attempts);
		if (ev.error != NULL)
			CHECK_STR(d.error, ev.error);
		else
			CHECK(d.error == NULL);
		CHECK_EQ(upmon_msg_alert_routing_key(&d, key, sizeof(key)), 0);
		CHECK_CONTAINS(key, "alert.");
		CHECK_STR(key + 6, upmon_alert_kind_name((enum upmon_alert_kind)k));
		if (k == UPMON_ALERT_RECOVERY)
			CHECK_CONTAINS(json, "\"outage_seconds\":3600}");
		else
			CHECK(strstr(json, "outage_seconds") == NULL);
		free(json);
		upmon_alert_event_release(&d);
		upmon_alert_event_release(&ev);
	}
	/* a system error may lack the monitor's name and target (the database was down) */
	sample_alert(&ev, UPMON_ALERT_SYSTEM_ERROR);
	free(ev.monitor_name);
	free(ev.target);
	ev.monitor_name = ev.target = NULL;
	CHECK_EQ(upmon_msg_alert_encode(&ev, &json, &len), 0);
	free(json);
	ev.kind = UPMON_ALERT_DOWN;
	CHECK_EQ(upmon_alert_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "alert: field \"monitor_name\": missing");
	ev.kind = (enum upmon_alert_kind)7;
	CHECK_EQ(upmon_alert_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_CONTAINS(err, "alert: field \"kind\": expected one of");
	upmon_alert_event_release(&ev);

	/* a channel test has no monitor; a channel may be named on any kind */
	sample_alert(&ev, UPMON_ALERT_TEST);
	ev.monitor_id[0] = '\0';
	free(ev.monitor_name);
	free(ev.target);
	ev.monitor_name = ev.target = NULL;
	REQUIRE(upmon_msg_alert_encode(&ev, &json, &len) == 0);
	CHECK(strstr(json, "monitor_id") == NULL);
	CHECK_CONTAINS(json, "\"kind\":\"test\"");
	CHECK_CONTAINS(json, "\"channel_id\":\"c1\"");
	CHECK_EQ(upmon_msg_alert_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK_STR(d.monitor_id, "");
	CHECK_STR(d.channel_id, "c1");
	CHECK_EQ(upmon_msg_alert_routing_key(&d, key, sizeof(key)), 0);
	CHECK_STR(key, "alert.test");
	free(json);
	upmon_alert_event_release(&d);
	ev.channel_id[0] = '\0';
	CHECK_EQ(upmon_alert_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "alert: field \"channel_id\": missing (required for kind \"test\")");
	ev.kind = UPMON_ALERT_DOWN;
	ev.monitor_name = strdup("n");
	ev.target = strdup("t");
	CHECK_EQ(upmon_alert_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "alert: field \"monitor_id\": missing");
	snprintf(ev.monitor_id, sizeof(ev.monitor_id), "m1");
	snprintf(ev.channel_id, sizeof(ev.channel_id), "c2");
	REQUIRE(upmon_msg_alert_encode(&ev, &json, &len) == 0);
	CHECK_EQ(upmon_msg_alert_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK_STR(d.channel_id, "c2");
	free(json);
	upmon_alert_event_release(&d);
	upmon_alert_event_release(&ev);
}

/* A DOWN reminder: "reminder": true and how long the monitor has been down so far. */
static void
test_alert_reminder(void)
{
	struct upmon_alert_event ev, d;
	char *json = NULL, err[256], key[64];
	size_t len;

	sample_alert(&ev, UPMON_ALERT_DOWN);
	CHECK(!ev.reminder);
	REQUIRE(upmon_msg_alert_encode(&ev, &json, &len) == 0);
	CHECK(strstr(json, "reminder") == NULL);	/* omitted when false */
	CHECK_EQ(upmon_msg_alert_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK(!d.reminder);
	CHECK_EQ(d.outage_seconds, 0);
	free(json);
	upmon_alert_event_release(&d);

	ev.reminder = true;
	ev.outage_seconds = 7260;
	REQUIRE(upmon_msg_alert_encode(&ev, &json, &len) == 0);
	CHECK_CONTAINS(json, "\"reminder\":true");
	CHECK_CONTAINS(json, "\"outage_seconds\":7260");
	CHECK_EQ(upmon_msg_alert_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK_EQ(d.kind, UPMON_ALERT_DOWN);
	CHECK(d.reminder);
	CHECK_EQ(d.outage_seconds, 7260);
	CHECK_STR(d.error, ev.error);
	CHECK_EQ(upmon_msg_alert_routing_key(&d, key, sizeof(key)), 0);
	CHECK_STR(key, "alert.down");
	free(json);
	upmon_alert_event_release(&d);

	/* a reminder may not yet know its duration (0 is omitted and decodes as 0) */
	ev.outage_seconds = 0;
	REQUIRE(upmon_msg_alert_encode(&ev, &json, &len) == 0);
	CHECK(strstr(json, "outage_seconds") == NULL);
	CHECK_EQ(upmon_msg_alert_decode(json, len, &d, err, sizeof(err)), 0);
	CHECK(d.reminder);
	free(json);
	upmon_alert_event_release(&d);

	/* the encoder refuses what the decoder would */
	ev.outage_seconds = 315360001;
	CHECK_EQ(upmon_msg_alert_encode(&ev, &json, &len), -EINVAL);
	CHECK(json == NULL);
	ev.reminder = false;
	ev.outage_seconds = 5;
	CHECK_EQ(upmon_alert_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_CONTAINS(err, "alert: field \"outage_seconds\": not allowed for kind \"down\"");
	CHECK_EQ(upmon_msg_alert_encode(&ev, &json, &len), -EINVAL);
	ev.outage_seconds = 5;
	ev.reminder = true;
	ev.kind = UPMON_ALERT_RECOVERY;
	CHECK_EQ(upmon_alert_event_validate(&ev, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "alert: field \"reminder\": only allowed for kind \"down\"");
	ev.kind = UPMON_ALERT_TLS_EXPIRY;
	CHECK_EQ(upmon_msg_alert_encode(&ev, &json, &len), -EINVAL);
	upmon_alert_event_release(&ev);
}

static void
test_names(void)
{
	enum upmon_monitor_status s;
	enum upmon_alert_kind k;
	struct upmon_status_range r;

	CHECK_STR(upmon_check_type_name(UPMON_CHECK_TCP), "tcp");
	CHECK_STR(upmon_http_method_name(UPMON_HTTP_OPTIONS), "OPTIONS");
	CHECK(upmon_http_method_name((enum upmon_http_method)99) == NULL);
	CHECK_EQ(upmon_monitor_status_parse("paused", &s), 0);
	CHECK_EQ(s, UPMON_STATUS_PAUSED);
	CHECK_EQ(upmon_monitor_status_parse("UP", &s), -EINVAL);
	CHECK_EQ(upmon_alert_kind_parse("tls_expiry", &k), 0);
	CHECK_EQ(k, UPMON_ALERT_TLS_EXPIRY);
	CHECK_EQ(upmon_alert_kind_parse("test", &k), 0);
	CHECK_EQ(k, UPMON_ALERT_TEST);
	CHECK_STR(upmon_alert_kind_name(UPMON_ALERT_TEST), "test");
	CHECK(upmon_alert_kind_name((enum upmon_alert_kind)5) == NULL);
	CHECK_EQ(upmon_status_range_parse("204", &r), 0);
	CHECK(r.lo == 204 && r.hi == 204);
	CHECK_EQ(upmon_status_range_parse("500-599", &r), 0);
	CHECK(r.lo == 500 && r.hi == 599);
	CHECK_EQ(upmon_status_range_parse("099", &r), -EINVAL);
	CHECK_EQ(upmon_status_range_parse("20", &r), -EINVAL);
	CHECK_EQ(upmon_status_range_parse("200-", &r), -EINVAL);
	CHECK_EQ(upmon_status_range_parse("200-2000", &r), -EINVAL);
	CHECK_EQ(upmon_status_range_parse("2x0", &r), -EINVAL);
}

int
main(void)
{
	RUN(test_task_round_trip);
	RUN(test_task_wire_form);
	RUN(run_bad_cases);
	RUN(test_nul_and_size);
	RUN(test_truncations_and_mutations);
	RUN(test_task_encode_refuses);
	RUN(test_status_events);
	RUN(run_event_cases);
	RUN(test_alert_events);
	RUN(test_alert_reminder);
	RUN(test_names);
	return test_finish();
}
