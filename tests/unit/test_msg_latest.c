/*
 * msg: the latest-status value (Redis upmon:status:<monitor_id>): round trips with and without
 * the optional parts, the exact wire form, every truncation refused, wrong types, out-of-range
 * values, unknown fields at each level, and what the encoder refuses. The JSON Schema in
 * proto/latest_status.schema.json accepts what the encoder writes and refuses the bad cases
 * (validated with tests/support/validate_schema.py, as test_proto_schemas does).
 */
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "upmon/msg.h"

#define TS 1700000000000LL

/* The encoder's exact output for sample() without the optional parts. */
static const char min_json[] =
    "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"down\","
    "\"since\":1700000000000,\"checked_at\":1700000060500,\"scheduled_at\":1700000060000,"
    "\"attempt\":3,\"result\":{\"ok\":false,\"latency_ms\":0},\"timings\":{}}";

static void
sample(struct upmon_latest_status *st, int full)
{
	upmon_latest_status_init(st);
	snprintf(st->monitor_id, sizeof(st->monitor_id), "m1");
	snprintf(st->owner_id, sizeof(st->owner_id), "o1");
	st->status = UPMON_STATUS_DOWN;
	st->since = TS;
	st->checked_at = TS + 60500;
	st->scheduled_at = TS + 60000;
	st->attempt = 3;
	if (!full)
		return;
	st->status = UPMON_STATUS_UP;
	st->result.ok = true;
	st->result.latency_ms = 187;
	st->result.status_code = 200;
	st->result.error = strdup("slow \"but\" fine \xc3\xa9");
	st->timings = (struct upmon_timings){ 3, 10, 40, 120, 187 };
	st->has_cert = true;
	st->cert_days_left = -2;
}

static void
test_round_trip(void)
{
	struct upmon_latest_status st, d;
	char *json = NULL, *json2 = NULL, err[256] = "";
	size_t len, len2;

	sample(&st, 1);
	REQUIRE(upmon_msg_latest_encode(&st, &json, &len) == 0);
	CHECK_EQ(strlen(json), len);
	CHECK_CONTAINS(json, "\"cert_days_left\":-2");
	CHECK_CONTAINS(json, "\"timings\":{\"dns_ms\":3,\"connect_ms\":10,\"tls_ms\":40,"
	    "\"first_byte_ms\":120,\"total_ms\":187}");
	REQUIRE(upmon_msg_latest_decode(json, len, &d, err, sizeof(err)) == 0);
	CHECK_STR(d.monitor_id, "m1");
	CHECK_STR(d.owner_id, "o1");
	CHECK_EQ(d.status, UPMON_STATUS_UP);
	CHECK_EQ(d.since, TS);
	CHECK_EQ(d.checked_at, TS + 60500);
	CHECK_EQ(d.scheduled_at, TS + 60000);
	CHECK_EQ(d.attempt, 3);
	CHECK(d.result.ok);
	CHECK_EQ(d.result.latency_ms, 187);
	CHECK_EQ(d.result.status_code, 200);
	CHECK_STR(d.result.error, st.result.error);
	CHECK_EQ(d.timings.dns_ms, 3);
	CHECK_EQ(d.timings.connect_ms, 10);
	CHECK_EQ(d.timings.tls_ms, 40);
	CHECK_EQ(d.timings.first_byte_ms, 120);
	CHECK_EQ(d.timings.total_ms, 187);
	CHECK(d.has_cert);
	CHECK_EQ(d.cert_days_left, -2);
	REQUIRE(upmon_msg_latest_encode(&d, &json2, &len2) == 0);
	CHECK_STR(json2, json);
	free(json);
	free(json2);
	upmon_latest_status_release(&d);
	upmon_latest_status_release(&st);
	CHECK(st.result.error == NULL);
	CHECK_EQ(st.timings.total_ms, -1);
}

static void
test_minimal(void)
{
	struct upmon_latest_status st, d;
	char *json = NULL, err[256];
	size_t len, cut;

	sample(&st, 0);
	REQUIRE(upmon_msg_latest_encode(&st, &json, &len) == 0);
	CHECK_STR(json, min_json);
	REQUIRE(upmon_msg_latest_decode(min_json, strlen(min_json), &d, err, sizeof(err)) == 0);
	CHECK(!d.has_cert);
	CHECK(d.result.error == NULL);
	CHECK_EQ(d.result.status_code, 0);
	CHECK_EQ(d.timings.dns_ms, -1);
	CHECK_EQ(d.timings.total_ms, -1);
	upmon_latest_status_release(&d);
	/* every proper prefix is refused */
	for (cut = 0; cut < len; cut++) {
		int rc = upmon_msg_latest_decode(json, cut, &d, err, sizeof(err));

		if (rc == 0)
			fprintf(stderr, "prefix of %zu bytes accepted\n", cut);
		CHECK_INT(rc, <, 0);
	}
	free(json);
}

struct bad_case {
	const char *json;
	int rc;
	const char *reason;
};

#define HEAD "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"down\"," \
    "\"since\":1700000000000,\"checked_at\":1700000060500,\"scheduled_at\":1700000060000,"
#define RES "\"result\":{\"ok\":false,\"latency_ms\":0}"
#define TIM "\"timings\":{}"

static const struct bad_case bad[] = {
	{ "", -EBADMSG, "latest: empty message" },
	{ "{\"v\":2}", -EPROTONOSUPPORT, "unsupported version 2" },
	{ HEAD "\"attempt\":3," RES "," TIM "} x", -EBADMSG, "trailing data" },
	{ HEAD "\"attempt\":3," RES "," TIM ",\"extra\":1}", -EINVAL,
	  "latest: field \"extra\": unknown field" },
	{ HEAD "\"attempt\":3," RES "," TIM "}" "", 0, NULL },	/* the good one, for contrast */
	{ HEAD "\"attempt\":3," TIM "}", -EINVAL, "latest: field \"result\": missing" },
	{ HEAD "\"attempt\":3," RES "}", -EINVAL, "latest: field \"timings\": missing" },
	{ HEAD RES "," TIM "}", -EINVAL, "latest: field \"attempt\": missing" },
	{ HEAD "\"attempt\":0," RES "," TIM "}", -EINVAL, "field \"attempt\": expected integer" },
	{ HEAD "\"attempt\":\"3\"," RES "," TIM "}", -EINVAL, "got string" },
	{ HEAD "\"attempt\":3.0," RES "," TIM "}", -EINVAL, "got number" },
	{ HEAD "\"attempt\":3,\"result\":[]," TIM "}", -EINVAL,
	  "field \"result\": expected object, got array" },
	{ HEAD "\"attempt\":3,\"result\":{\"ok\":\"false\",\"latency_ms\":0}," TIM "}", -EINVAL,
	  "field \"result.ok\"" },
	{ HEAD "\"attempt\":3,\"result\":{\"ok\":false,\"latency_ms\":0,\"x\":1}," TIM "}",
	  -EINVAL, "field \"result.x\": unknown field" },
	{ HEAD "\"attempt\":3,\"result\":{\"ok\":false,\"latency_ms\":0,\"status_code\":99},"
	  TIM "}", -EINVAL, "field \"result.status_code\"" },
	{ HEAD "\"attempt\":3," RES ",\"timings\":{\"dns_ms\":-1}}", -EINVAL,
	  "field \"timings.dns_ms\"" },
	{ HEAD "\"attempt\":3," RES ",\"timings\":{\"tcp_ms\":1}}", -EINVAL,
	  "field \"timings.tcp_ms\": unknown field" },
	{ HEAD "\"attempt\":3," RES ",\"timings\":null}", -EINVAL,
	  "field \"timings\": expected object" },
	{ HEAD "\"attempt\":3," RES "," TIM ",\"cert_days_left\":null}", -EINVAL,
	  "field \"cert_days_left\"" },
	{ HEAD "\"attempt\":3," RES "," TIM ",\"cert_days_left\":40000}", -EINVAL,
	  "field \"cert_days_left\"" },
	{ "{\"v\":1,\"monitor_id\":\"m.1\",\"owner_id\":\"o1\",\"status\":\"down\","
	  "\"since\":1700000000000,\"checked_at\":1700000060500,\"scheduled_at\":1700000060000,"
	  "\"attempt\":3," RES "," TIM "}", -EINVAL, "field \"monitor_id\"" },
	{ "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"DOWN\","
	  "\"since\":1700000000000,\"checked_at\":1700000060500,\"scheduled_at\":1700000060000,"
	  "\"attempt\":3," RES "," TIM "}", -EINVAL, "field \"status\"" },
	{ "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"down\","
	  "\"since\":1,\"checked_at\":1700000060500,\"scheduled_at\":1700000060000,"
	  "\"attempt\":3," RES "," TIM "}", -EINVAL, "field \"since\"" },
};

static void
test_bad(void)
{
	struct upmon_latest_status d;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		rc = upmon_msg_latest_decode(bad[i].json, strlen(bad[i].json), &d, err, sizeof(err));
		if (rc != bad[i].rc)
			fprintf(stderr, "case %zu: rc %d (%s): %s\n", i, rc, err, bad[i].json);
		CHECK_EQ(rc, bad[i].rc);
		if (bad[i].reason != NULL)
			CHECK_CONTAINS(err, bad[i].reason);
		if (rc == 0)
			upmon_latest_status_release(&d);
	}
}

static void
test_encoder_refuses(void)
{
	struct upmon_latest_status st;
	char *json = (char *)"x";
	size_t len;

	sample(&st, 1);
	st.attempt = 33;
	CHECK_EQ(upmon_msg_latest_encode(&st, &json, &len), -EINVAL);
	CHECK(json == NULL);
	st.attempt = 1;
	st.timings.tls_ms = -2;
	CHECK_EQ(upmon_msg_latest_encode(&st, &json, &len), -EINVAL);
	st.timings.tls_ms = -1;
	st.result.latency_ms = 3600001;
	CHECK_EQ(upmon_msg_latest_encode(&st, &json, &len), -EINVAL);
	st.result.latency_ms = 1;
	st.monitor_id[0] = '\0';
	CHECK_EQ(upmon_msg_latest_encode(&st, &json, &len), -EINVAL);
	snprintf(st.monitor_id, sizeof(st.monitor_id), "m1");
	free(st.result.error);
	st.result.error = strdup("bad \xff utf-8");
	CHECK_EQ(upmon_msg_latest_encode(&st, &json, &len), -EINVAL);
	upmon_latest_status_release(&st);
}

/* Writes json to a new file in dir; appends its path to list. */
static void
add_doc(const char *dir, char *list, size_t size, int *k, const char *json)
{
	char path[256];
	size_t used = strlen(list);
	FILE *f;

	snprintf(path, sizeof(path), "%s/d%02d.json", dir, (*k)++);
	REQUIRE((f = fopen(path, "w")) != NULL);
	REQUIRE(fwrite(json, 1, strlen(json), f) == strlen(json));
	fclose(f);
	snprintf(list + used, size - used, " %s", path);
}

static void
test_schema(void)
{
	char dir[] = "/tmp/upmon-latest-XXXXXX", valid[4096] = "", invalid[8192] = "";
	const char *src = test_env("UPMON_SOURCE_DIR");
	struct upmon_latest_status st;
	char *json;
	size_t len, i;
	int k = 0;

	REQUIRE(mkdtemp(dir) != NULL);
	sample(&st, 1);
	REQUIRE(upmon_msg_latest_encode(&st, &json, &len) == 0);
	add_doc(dir, valid, sizeof(valid), &k, json);
	free(json);
	upmon_latest_status_release(&st);
	add_doc(dir, valid, sizeof(valid), &k, min_json);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i].rc == 0)
			add_doc(dir, valid, sizeof(valid), &k, bad[i].json);
		else if (bad[i].rc != -EBADMSG &&	/* the schema sees documents, not bytes */
		    strstr(bad[i].reason, "got number") == NULL)	/* 3.0 is an integer there */
			add_doc(dir, invalid, sizeof(invalid), &k, bad[i].json);
	}
	CHECK_EQ(test_sh("/usr/bin/python3 %s/tests/support/validate_schema.py "
	    "%s/proto/latest_status.schema.json --valid%s --invalid%s >/dev/null", src, src, valid,
	    invalid), 0);
	test_sh("rm -rf %s", dir);
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_minimal);
	RUN(test_bad);
	RUN(test_encoder_refuses);
	RUN(test_schema);
	return test_finish();
}
