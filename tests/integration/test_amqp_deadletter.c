/*
 * Dead letters keep their body and message_id and carry the error headers (read back both by
 * consuming monitor_tasks_dead and through the management API an operator uses); a mandatory
 * publish to an unroutable key is reported as returned, alone and inside a pipelined batch;
 * a nack without requeue and an oversized body end in the dead-letter queue with their body.
 */
#include "test_amqp_support.h"

#include <unistd.h>

static struct upmon_amqp_config cfg;

#define BODY "{\"task_id\":\"dl-1\",\"url\":\"https://example.com\"}"
#define FIRST "2024-01-01T00:00:00.000Z"

static void
check_dead_headers(const struct upmon_amqp_headers *h, const char *err, const char *since)
{
	char host[256];
	const char *e, *last;
	int64_t attempt = -1;

	gethostname(host, sizeof(host));
	e = upmon_amqp_headers_get_str(h, UPMON_AMQP_H_ERROR);
	REQUIRE(e != NULL);
	CHECK_EQ(strlen(e), UPMON_AMQP_ERROR_MAX - 1);
	CHECK(strncmp(e, err, UPMON_AMQP_ERROR_MAX - 1) == 0);
	CHECK_EQ(upmon_amqp_headers_get_int(h, UPMON_AMQP_H_ATTEMPT, &attempt), 0);
	CHECK_EQ(attempt, 2);
	CHECK_STR(upmon_amqp_headers_get_str(h, UPMON_AMQP_H_FIRST_FAILURE), FIRST);
	last = upmon_amqp_headers_get_str(h, UPMON_AMQP_H_LAST_FAILURE);
	CHECK(upmon_amqp_is_rfc3339(last));
	CHECK(last != NULL && strcmp(last, since) >= 0);
	CHECK_STR(upmon_amqp_headers_get_str(h, UPMON_AMQP_H_SERVICE), "upmon-test");
	CHECK_STR(upmon_amqp_headers_get_str(h, UPMON_AMQP_H_HOST), host);
	CHECK_STR(upmon_amqp_headers_get_str(h, "x-custom"), "keep me");
}

/* What an operator sees in the management UI: the message with its headers, requeued. */
static void
check_in_management(const char *err)
{
	struct json_object *msgs, *msg, *props, *hdrs;
	char path[512];

	snprintf(path, sizeof(path), "/api/queues/%s/monitor_tasks_dead/get", t_vhost_enc());
	msgs = t_mgmt(path, "{\"count\":1,\"ackmode\":\"ack_requeue_true\","
	    "\"encoding\":\"auto\",\"truncate\":50000}");
	REQUIRE(msgs != NULL && json_object_array_length(msgs) == 1);
	msg = json_object_array_get_idx(msgs, 0);
	props = t_jget(msg, "properties");
	hdrs = t_jget(props, "headers");
	fprintf(stderr, "management sees: %.400s\n", json_object_to_json_string(hdrs));
	CHECK_STR(t_jstr(msg, "payload"), BODY);
	CHECK_STR(t_jstr(props, "message_id"), "dl-1");
	CHECK_EQ(json_object_get_int(t_jget(props, "delivery_mode")), 2);
	CHECK(strncmp(t_jstr(hdrs, UPMON_AMQP_H_ERROR) ? t_jstr(hdrs, UPMON_AMQP_H_ERROR) : "",
	    err, 100) == 0);
	CHECK_EQ(json_object_get_int(t_jget(hdrs, UPMON_AMQP_H_ATTEMPT)), 2);
	CHECK_STR(t_jstr(hdrs, UPMON_AMQP_H_FIRST_FAILURE), FIRST);
	CHECK(t_jstr(hdrs, UPMON_AMQP_H_LAST_FAILURE) != NULL);
	CHECK_STR(t_jstr(hdrs, UPMON_AMQP_H_SERVICE), "upmon-test");
	CHECK(t_jstr(hdrs, UPMON_AMQP_H_HOST) != NULL);
	json_object_put(msgs);
}

static void
test_dead_letter_headers(void)
{
	struct upmon_amqp *c = t_open(&cfg), *ops;
	struct upmon_amqp_headers h;
	struct upmon_amqp_delivery d;
	struct upmon_amqp_message m;
	char err[2000], since[32];

	memcpy(err, "decode: ", 8);
	memset(err + 8, 'z', sizeof(err) - 9);
	err[sizeof(err) - 1] = '\0';
	upmon_rfc3339_ms((int64_t)time(NULL) * 1000, since, sizeof(since));

	upmon_amqp_headers_init(&h);
	upmon_amqp_headers_set_int(&h, UPMON_AMQP_H_ATTEMPT, 2);
	upmon_amqp_headers_set_str(&h, UPMON_AMQP_H_FIRST_FAILURE, FIRST, 0);
	upmon_amqp_headers_set_str(&h, "x-custom", "keep me", 0);
	m = t_msg("upmon.tasks", "monitor_tasks", "dl-1", BODY, &h);
	REQUIRE(upmon_amqp_publish_sync(c, &m, 10000) == 0);
	REQUIRE(upmon_amqp_consume(c, "monitor_tasks", 1) == 0);
	REQUIRE(t_next(c, 10000, &d) == 0);
	CHECK_EQ(d.attempt, 2);
	CHECK_EQ(upmon_amqp_dead_letter(c, &d, err, 10000), 0);
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);
	upmon_amqp_delivery_release(&d);

	check_in_management(err);

	ops = t_open(&cfg);
	REQUIRE(upmon_amqp_consume(ops, "monitor_tasks_dead", 1) == 0);
	REQUIRE(t_next(ops, 10000, &d) == 0);
	CHECK_STR(d.message_id, "dl-1");
	CHECK_EQ(d.body_len, strlen(BODY));
	CHECK_STR((const char *)d.body, BODY);
	check_dead_headers(d.headers, err, since);
	CHECK_EQ(upmon_amqp_ack(ops, &d), 0);
	upmon_amqp_delivery_release(&d);
	upmon_amqp_free(ops);
	upmon_amqp_free(c);
}

static void
test_returned(void)
{
	struct upmon_amqp *c = t_open(&cfg);
	struct upmon_amqp_confirm out[8];
	struct upmon_amqp_message m;
	struct upmon_amqp_stats st;
	uint64_t tags[3];
	size_t n = 0, got = 0, i;
	int rc;

	m = t_msg("upmon.tasks", "no-such-key", "lost-1", "{}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(c, &m, 10000), UPMON_AMQP_ERETURNED);

	/* ok, unroutable, ok -- sent back to back, outcomes collected afterwards. */
	m = t_msg("upmon.tasks", "monitor_tasks", "p-1", "{}", NULL);
	REQUIRE(upmon_amqp_publish(c, &m, &tags[0]) == 0);
	m = t_msg("upmon.tasks", "nowhere", "p-2", "{}", NULL);
	REQUIRE(upmon_amqp_publish(c, &m, &tags[1]) == 0);
	m = t_msg("upmon.tasks", "monitor_tasks", "p-3", "{}", NULL);
	REQUIRE(upmon_amqp_publish(c, &m, &tags[2]) == 0);
	CHECK_EQ(tags[1], tags[0] + 1);
	CHECK_EQ(upmon_amqp_unconfirmed(c), 3);
	do {
		rc = upmon_amqp_confirm_wait(c, 10000, out + got, 8 - got, &n);
		got += n;
	} while (rc == UPMON_AMQP_ETIMEDOUT && n > 0);
	CHECK_EQ(rc, 0);
	REQUIRE(got == 3);
	for (i = 0; i < 3; i++) {
		fprintf(stderr, "  tag %llu %s outcome %d\n", (unsigned long long)out[i].tag,
		    out[i].message_id, out[i].outcome);
		CHECK_EQ(out[i].tag, tags[i]);
	}
	CHECK_STR(out[0].message_id, "p-1");
	CHECK_EQ(out[0].outcome, UPMON_AMQP_ACKED);
	CHECK_STR(out[1].message_id, "p-2");
	CHECK_EQ(out[1].outcome, UPMON_AMQP_RETURNED);
	CHECK_STR(out[2].message_id, "p-3");
	CHECK_EQ(out[2].outcome, UPMON_AMQP_ACKED);
	CHECK_EQ(upmon_amqp_unconfirmed(c), 0);
	/* Reported once: nothing more to collect. */
	CHECK_EQ(upmon_amqp_confirm_wait(c, 0, out, 8, &n), 0);
	CHECK_EQ(n, 0);
	upmon_amqp_get_stats(c, &st);
	CHECK_EQ(st.returned, 2);
	CHECK_EQ(st.acked, 2);
	upmon_amqp_free(c);
}

static void
test_nack_and_oversized(void)
{
	struct upmon_amqp_config small = cfg;
	struct upmon_amqp *c, *big = t_open(&cfg);
	struct upmon_amqp_delivery d;
	struct upmon_amqp_message m;
	struct upmon_amqp_stats st;
	static char body[1001];

	/* drain what the other tests left in monitor_tasks */
	small.max_body = 64;
	c = t_open(&small);
	REQUIRE(upmon_amqp_consume(c, "monitor_tasks", 4) == 0);
	while (upmon_amqp_next(c, 1000, &d) == 0) {
		CHECK_EQ(upmon_amqp_ack(c, &d), 0);
		upmon_amqp_delivery_release(&d);
	}

	m = t_msg("upmon.tasks", "monitor_tasks", "nack-1", "{\"n\":1}", NULL);
	REQUIRE(upmon_amqp_publish_sync(big, &m, 10000) == 0);
	REQUIRE(t_next(c, 10000, &d) == 0);
	CHECK_STR(d.message_id, "nack-1");
	CHECK_EQ(upmon_amqp_nack(c, &d, 0), 0);
	upmon_amqp_delivery_release(&d);

	memset(body, 'b', sizeof(body) - 1);
	m = t_msg("upmon.tasks", "monitor_tasks", "big-1", body, NULL);
	REQUIRE(upmon_amqp_publish_sync(big, &m, 10000) == 0);
	CHECK_EQ(upmon_amqp_next(c, 2000, &d), UPMON_AMQP_ETIMEDOUT);   /* never handed out */
	upmon_amqp_delivery_release(&d);
	upmon_amqp_get_stats(c, &st);
	CHECK_EQ(st.oversized, 1);

	REQUIRE(upmon_amqp_consume(big, "monitor_tasks_dead", 5) == 0);
	REQUIRE(t_next(big, 10000, &d) == 0);
	CHECK_STR(d.message_id, "nack-1");
	CHECK_STR((const char *)d.body, "{\"n\":1}");
	CHECK_EQ(upmon_amqp_ack(big, &d), 0);
	upmon_amqp_delivery_release(&d);
	REQUIRE(t_next(big, 10000, &d) == 0);
	CHECK_STR(d.message_id, "big-1");
	CHECK_EQ(d.body_len, 1000);
	CHECK_EQ(upmon_amqp_ack(big, &d), 0);
	upmon_amqp_delivery_release(&d);
	upmon_amqp_free(c);
	upmon_amqp_free(big);
}

int
main(void)
{
	t_log_init();
	t_config(&cfg);
	cfg.retry_base_ms = 500;
	cfg.retry_max_ms = 4000;
	RUN(test_dead_letter_headers);
	RUN(test_returned);
	RUN(test_nack_and_oversized);
	return test_finish();
}
