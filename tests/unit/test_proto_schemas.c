/*
 * The JSON Schemas in proto/ against the real encoder: every sample message the encoder writes is
 * valid under its schema, and a set of bad documents is rejected by the schema AND by the
 * decoder (so the two contracts agree, and the test can fail). Validation runs
 * tests/support/validate_schema.py under /usr/bin/python3 (python3-jsonschema).
 */
#include "test.h"

#include <errno.h>
#include <unistd.h>

#include "upmon/msg.h"

#define TS 1700000000000LL

enum kind { TASK, STATUS, ALERT };

static const char *const schema_file[] = {
	"task.schema.json", "status_event.schema.json", "alert_event.schema.json",
};

static char dir[] = "/tmp/upmon-proto-XXXXXX";
/* Space-separated file lists per schema, passed to the validator. */
static char valid[3][4096], invalid[3][4096];
static int nfiles;

/* Writes a document to a new file in dir and appends its path to list. */
static void
add_doc(char *list, const char *json, size_t len)
{
	char path[256];
	size_t used;
	FILE *f;

	snprintf(path, sizeof(path), "%s/doc%02d.json", dir, nfiles++);
	f = fopen(path, "w");
	REQUIRE(f != NULL);
	REQUIRE(fwrite(json, 1, len, f) == len);
	fclose(f);
	used = strlen(list);
	REQUIRE(snprintf(list + used, 4096 - used, " %s", path) < (int)(4096 - used));
}

static void
add_encoded(enum kind k, char *json, size_t len, int rc)
{
	CHECK_EQ(rc, 0);
	if (rc == 0)
		add_doc(valid[k], json, len);
	free(json);
}

static void
encode_tasks(void)
{
	struct upmon_task t;
	char *json;
	size_t len;
	int rc;

	upmon_task_init(&t);
	snprintf(t.monitor_id, sizeof(t.monitor_id), "42");
	snprintf(t.owner_id, sizeof(t.owner_id), "7f1c2a6e-6a51-4f0b-9d0e-2b1e7c3d9a10");
	t.scheduled_at = TS;
	t.interval_seconds = 30;
	t.check.url = strdup("https://example.com/");
	rc = upmon_msg_task_encode(&t, &json, &len);	/* defaults only */
	add_encoded(TASK, json, len, rc);

	t.attempt = 3;
	t.retries = 2;
	t.check.method = UPMON_HTTP_POST;
	t.check.nheaders = 1;
	t.check.headers = calloc(1, sizeof(*t.check.headers));
	t.check.headers[0].name = strdup("Authorization");
	t.check.headers[0].value = strdup("Bearer x.y.z \xc3\xa9");
	t.check.body = strdup("line1\nline2\t\"quoted\" \\ /");
	t.check.nexpected = 2;
	t.check.expected[1] = (struct upmon_status_range){ 418, 418 };
	t.check.keyword = strdup("healthy");
	t.check.keyword_absent = true;
	t.check.max_latency_ms = 60000;
	t.check.max_redirects = 0;
	t.check.cert_expiry_days = 365;
	rc = upmon_msg_task_encode(&t, &json, &len);	/* every HTTP field */
	add_encoded(TASK, json, len, rc);
	upmon_task_release(&t);

	snprintf(t.monitor_id, sizeof(t.monitor_id), "m_1-x");
	snprintf(t.owner_id, sizeof(t.owner_id), "1");
	t.scheduled_at = TS;
	t.interval_seconds = 86400;
	t.check.type = UPMON_CHECK_TCP;
	t.check.timeout_ms = 100;
	t.check.host = strdup("2001:db8::1");
	t.check.port = 65535;
	rc = upmon_msg_task_encode(&t, &json, &len);
	add_encoded(TASK, json, len, rc);
	upmon_task_release(&t);
}

static void
encode_events(void)
{
	struct upmon_status_event s;
	struct upmon_alert_event a;
	char *json;
	size_t len;
	int k, rc;

	upmon_status_event_init(&s);
	snprintf(s.monitor_id, sizeof(s.monitor_id), "m1");
	snprintf(s.owner_id, sizeof(s.owner_id), "o1");
	s.status = UPMON_STATUS_UP;
	s.previous = UPMON_STATUS_PENDING;
	s.at = TS;
	snprintf(s.task_id, sizeof(s.task_id), "m1:%lld:1", TS);
	s.has_result = true;
	s.result.ok = true;
	s.result.latency_ms = 12;
	s.result.status_code = 200;
	rc = upmon_msg_status_encode(&s, &json, &len);
	add_encoded(STATUS, json, len, rc);
	s.status = UPMON_STATUS_DOWN;
	s.previous = UPMON_STATUS_UP;
	s.result.ok = false;
	s.result.status_code = 0;
	s.result.error = strdup("connect: connection refused");
	rc = upmon_msg_status_encode(&s, &json, &len);
	add_encoded(STATUS, json, len, rc);
	upmon_status_event_release(&s);

	for (k = UPMON_ALERT_DOWN; k <= UPMON_ALERT_TLS_EXPIRY; k++) {
		upmon_alert_event_init(&a);
		a.kind = (enum upmon_alert_kind)k;
		snprintf(a.alert_id, sizeof(a.alert_id), "%d", 1000 + k);
		snprintf(a.monitor_id, sizeof(a.monitor_id), "m1");
		snprintf(a.owner_id, sizeof(a.owner_id), "o1");
		a.at = TS;
		if (k != UPMON_ALERT_SYSTEM_ERROR) {
			a.monitor_name = strdup("Shop API \xe2\x9c\x93");
			a.target = strdup("https://shop.example/health");
		}
		if (k == UPMON_ALERT_DOWN || k == UPMON_ALERT_SYSTEM_ERROR)
			a.error = strdup("HTTP 503");
		a.outage_seconds = k == UPMON_ALERT_RECOVERY ? 125 : 0;
		a.cert_days_left = k == UPMON_ALERT_TLS_EXPIRY ? 7 : 0;
		if (k == UPMON_ALERT_SYSTEM_ERROR) {
			snprintf(a.task_id, sizeof(a.task_id), "m1:%lld:1", TS);
			a.attempts = 5;
		}
		rc = upmon_msg_alert_encode(&a, &json, &len);
		add_encoded(ALERT, json, len, rc);
		upmon_alert_event_release(&a);
	}
}

#define TASK_HEAD "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\"," \
    "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1,\"retries\":0," \
    "\"interval_seconds\":60,"
#define HTTP(rest) TASK_HEAD "\"check\":{\"type\":\"http\",\"timeout_ms\":1000," \
    "\"url\":\"https://e.example/\"" rest "}}"
#define TCP(rest) TASK_HEAD "\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000," \
    "\"host\":\"h\",\"port\":1" rest "}}"
#define STATUS_DOC(rest) "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\"," \
    "\"at\":1700000000000" rest "}"
#define ALERT_DOC(rest) "{\"v\":1,\"alert_id\":\"a1\",\"monitor_id\":\"m1\"," \
    "\"owner_id\":\"o1\",\"at\":1700000000000,\"monitor_name\":\"n\",\"target\":\"t\"" rest "}"

struct doc {
	enum kind kind;
	const char *json;
};

/* Hand-written documents both contracts accept. */
static const struct doc good_docs[] = {
	{ TASK, HTTP("") },
	{ TASK, HTTP(",\"expected_status\":[\"100-599\"],\"headers\":[]") },
	{ TASK, TCP("") },
	{ STATUS, STATUS_DOC(",\"status\":\"paused\",\"previous\":\"down\"") },
	{ ALERT, ALERT_DOC(",\"kind\":\"recovery\",\"outage_seconds\":0") },
	{ ALERT, ALERT_DOC(",\"kind\":\"down\",\"reminder\":true,\"outage_seconds\":5") },
};

/* Documents both contracts must reject. */
static const struct doc bad_docs[] = {
	{ TASK, TCP(",\"extra\":1") },
	{ TASK, TASK_HEAD "\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,\"host\":\"h\","
	  "\"port\":1},\"extra\":true}" },
	{ TASK, "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\","
	  "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1,\"retries\":0,"
	  "\"interval_seconds\":\"60\",\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,"
	  "\"host\":\"h\",\"port\":1}}" },
	{ TASK, "{\"v\":1,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\","
	  "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1,\"retries\":0,"
	  "\"interval_seconds\":5,\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,"
	  "\"host\":\"h\",\"port\":1}}" },
	{ TASK, "{\"v\":2,\"task_id\":\"m1:1700000000000:1\",\"monitor_id\":\"m1\","
	  "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1,\"retries\":0,"
	  "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,"
	  "\"host\":\"h\",\"port\":1}}" },
	{ TASK, TASK_HEAD "\"check\":{\"type\":\"icmp\",\"timeout_ms\":1000}}" },
	{ TASK, TASK_HEAD "\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,\"host\":\"h\"}}" },
	{ TASK, TCP(",\"url\":\"http://x.example/\"") },
	{ TASK, HTTP(",\"port\":80") },
	{ TASK, TASK_HEAD "\"check\":{\"type\":\"http\",\"timeout_ms\":1000,"
	  "\"url\":\"ftp://e.example/\"}}" },
	{ TASK, HTTP(",\"method\":\"get\"") },
	{ TASK, HTTP(",\"verify_tls\":\"false\"") },
	{ TASK, HTTP(",\"headers\":[{\"name\":\"X\",\"value\":\"a\\r\\nHost: evil\"}]") },
	{ TASK, HTTP(",\"headers\":[{\"name\":\"Bad Name\",\"value\":\"x\"}]") },
	{ TASK, HTTP(",\"expected_status\":[\"600\"]") },
	{ TASK, HTTP(",\"expected_status\":[200]") },
	{ TASK, HTTP(",\"expected_status\":[]") },
	{ TASK, HTTP(",\"keyword_absent\":true") },
	{ TASK, HTTP(",\"max_redirects\":11") },
	{ TASK, "{\"v\":1,\"task_id\":\"m.1:1700000000000:1\",\"monitor_id\":\"m.1\","
	  "\"owner_id\":\"o1\",\"scheduled_at\":1700000000000,\"attempt\":1,\"retries\":0,"
	  "\"interval_seconds\":60,\"check\":{\"type\":\"tcp\",\"timeout_ms\":1000,"
	  "\"host\":\"h\",\"port\":1}}" },
	{ STATUS, STATUS_DOC(",\"status\":\"up\",\"previous\":\"up\"") },
	{ STATUS, STATUS_DOC(",\"status\":\"sideways\",\"previous\":\"up\"") },
	{ STATUS, STATUS_DOC(",\"status\":\"up\"") },
	{ STATUS, STATUS_DOC(",\"status\":\"up\",\"previous\":\"down\",\"result\":{\"ok\":true,"
	  "\"latency_ms\":1,\"status_code\":99}") },
	{ STATUS, STATUS_DOC(",\"status\":\"up\",\"previous\":\"down\",\"result\":{\"ok\":true}") },
	{ STATUS, STATUS_DOC(",\"status\":\"up\",\"previous\":\"down\",\"seen\":1") },
	{ ALERT, ALERT_DOC(",\"kind\":\"recovery\"") },
	{ ALERT, ALERT_DOC(",\"kind\":\"down\",\"outage_seconds\":5") },
	{ ALERT, ALERT_DOC(",\"kind\":\"down\",\"reminder\":false,\"outage_seconds\":0") },
	{ ALERT, ALERT_DOC(",\"kind\":\"recovery\",\"outage_seconds\":5,\"reminder\":true") },
	{ ALERT, ALERT_DOC(",\"kind\":\"tls_expiry\"") },
	{ ALERT, ALERT_DOC(",\"kind\":\"system_error\",\"task_id\":\"m1:1700000000000:1\","
	  "\"attempts\":5") },
	{ ALERT, ALERT_DOC(",\"kind\":\"panic\"") },
	{ ALERT, "{\"v\":1,\"alert_id\":\"a 1\",\"monitor_id\":\"m1\",\"owner_id\":\"o1\","
	  "\"at\":1700000000000,\"monitor_name\":\"n\",\"target\":\"t\",\"kind\":\"down\"}" },
	{ ALERT, "{\"v\":1,\"alert_id\":\"a1\",\"monitor_id\":\"m1\",\"owner_id\":\"o1\","
	  "\"at\":1700000000000,\"target\":\"t\",\"kind\":\"down\"}" },
};

/* Decodes json with the decoder for kind; returns its result. */
static int
decode(enum kind k, const char *json)
{
	struct upmon_task t;
	struct upmon_status_event s;
	struct upmon_alert_event a;
	char err[256];
	int rc;

	switch (k) {
	case TASK:
		rc = upmon_msg_task_decode(json, strlen(json), &t, err, sizeof(err));
		upmon_task_release(&t);
		return rc;
	case STATUS:
		rc = upmon_msg_status_decode(json, strlen(json), &s, err, sizeof(err));
		upmon_status_event_release(&s);
		return rc;
	case ALERT:
		rc = upmon_msg_alert_decode(json, strlen(json), &a, err, sizeof(err));
		upmon_alert_event_release(&a);
		return rc;
	}
	return -1;
}

static void
test_schemas(void)
{
	const char *src = test_env("UPMON_SOURCE_DIR");
	size_t i;
	int k;

	REQUIRE(mkdtemp(dir) != NULL);
	encode_tasks();
	encode_events();
	for (i = 0; i < sizeof(good_docs) / sizeof(good_docs[0]); i++) {
		if (decode(good_docs[i].kind, good_docs[i].json) != 0)
			fprintf(stderr, "decoder refused good doc %zu: %s\n", i, good_docs[i].json);
		CHECK_EQ(decode(good_docs[i].kind, good_docs[i].json), 0);
		add_doc(valid[good_docs[i].kind], good_docs[i].json, strlen(good_docs[i].json));
	}
	for (i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		if (decode(bad_docs[i].kind, bad_docs[i].json) == 0)
			fprintf(stderr, "decoder accepted bad doc %zu: %s\n", i, bad_docs[i].json);
		CHECK_INT(decode(bad_docs[i].kind, bad_docs[i].json), <, 0);
		add_doc(invalid[bad_docs[i].kind], bad_docs[i].json, strlen(bad_docs[i].json));
	}
	for (k = TASK; k <= ALERT; k++) {
		CHECK(valid[k][0] != '\0' && invalid[k][0] != '\0');
		CHECK_EQ(test_sh("/usr/bin/python3 %s/tests/support/validate_schema.py "
		    "%s/proto/%s --valid%s --invalid%s", src, src, schema_file[k], valid[k],
		    invalid[k]), 0);
	}
	/* the validator itself can fail: an encoded task is not a status event */
	CHECK_EQ(test_sh("/usr/bin/python3 %s/tests/support/validate_schema.py "
	    "%s/proto/%s --valid%s >/dev/null", src, src, schema_file[STATUS], valid[TASK]), 1);
	test_sh("rm -rf %s", dir);
}

int
main(void)
{
	RUN(test_schemas);
	return test_finish();
}
