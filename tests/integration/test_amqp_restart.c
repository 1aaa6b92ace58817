/*
 * A confirmed persistent message survives a broker restart, and the client reconnects on its
 * own: after `$UPMON_CTL restart rabbitmq` the next publish succeeds within its timeout (after
 * the backoff), a consumer registered before the restart is re-issued and receives new
 * messages, and the message published before the restart is consumed with the same body and
 * message_id. While the broker is stopped, operations fail within their timeout and the
 * reconnect attempts are spaced by the backoff (no spinning).
 */
#include "test_amqp_support.h"

static struct upmon_amqp_config cfg;

#define BODY1 "{\"task_id\":\"persist-1\",\"monitor_id\":42}"

static void
ctl(const char *what)
{
	int rc = test_sh("\"$UPMON_CTL\" %s rabbitmq", what);

	if (rc != 0)
		fprintf(stderr, "$UPMON_CTL %s rabbitmq exited %d\n", what, rc);
	REQUIRE(rc == 0);
}

static void
test_survives_restart(void)
{
	struct upmon_amqp *pub = t_open(&cfg), *sub = t_open(&cfg), *work;
	struct upmon_amqp_confirm out[32];
	struct upmon_amqp_delivery d;
	struct upmon_amqp_message m;
	struct upmon_amqp_stats st;
	char id[32];
	uint64_t tag, first = 0;
	size_t n, acked = 0, i;
	int64_t t0;
	int rc, k;

	/* A consumer that exists before the restart (notifications is empty). */
	REQUIRE(upmon_amqp_consume(sub, "notifications", 5) == 0);

	m = t_msg("upmon.tasks", "monitor_tasks", "persist-1", BODY1, NULL);
	REQUIRE(upmon_amqp_publish_sync(pub, &m, 10000) == 0);
	/* And a pipelined batch: 20 publishes, then their confirms. */
	for (k = 0; k < 20; k++) {
		snprintf(id, sizeof(id), "batch-%d", k);
		m = t_msg("upmon.tasks", "monitor_tasks", id, "{}", NULL);
		REQUIRE(upmon_amqp_publish(pub, &m, &tag) == 0);
		if (k == 0)
			first = tag;
		else
			CHECK_EQ(tag, first + (uint64_t)k);
	}
	do {
		rc = upmon_amqp_confirm_wait(pub, 10000, out, 32, &n);
		for (i = 0; i < n; i++) {
			CHECK_EQ(out[i].outcome, UPMON_AMQP_ACKED);
			acked++;
		}
	} while (rc == UPMON_AMQP_ETIMEDOUT && n > 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(acked, 20);

	ctl("restart");

	/* The publisher notices the dead connection and reconnects inside this call. */
	t0 = upmon_mono_ms();
	m = t_msg("upmon.tasks", "monitor_tasks", "persist-2", "{}", NULL);
	rc = upmon_amqp_publish_sync(pub, &m, 60000);
	fprintf(stderr, "publish after restart: %s after %lld ms\n", upmon_amqp_strerror(rc),
	    (long long)(upmon_mono_ms() - t0));
	CHECK_EQ(rc, 0);
	upmon_amqp_get_stats(pub, &st);
	CHECK_INT(st.connects, >=, 2);
	CHECK_INT(st.disconnects, >=, 1);

	/* The pre-restart consumer is re-issued: an alert published now reaches it. */
	m = t_msg("upmon.events", "alert.down", "alert-1", "{\"a\":1}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(pub, &m, 10000), 0);
	if (t_next(sub, 60000, &d) == 0) {
		CHECK_STR(d.message_id, "alert-1");
		CHECK_STR(d.routing_key, "alert.down");
		CHECK_EQ(upmon_amqp_ack(sub, &d), 0);
	} else {
		test_fail(__FILE__, __LINE__, "consumer not re-issued after the restart");
	}
	upmon_amqp_delivery_release(&d);
	upmon_amqp_get_stats(sub, &st);
	CHECK_INT(st.connects, >=, 2);

	/* The message confirmed before the restart is still there, first in the queue. */
	work = t_open(&cfg);
	REQUIRE(upmon_amqp_consume(work, "monitor_tasks", 50) == 0);
	REQUIRE(t_next(work, 10000, &d) == 0);
	CHECK_STR(d.message_id, "persist-1");
	CHECK_EQ(d.body_len, strlen(BODY1));
	CHECK_STR((const char *)d.body, BODY1);
	CHECK_STR(d.exchange, "upmon.tasks");
	CHECK_EQ(upmon_amqp_ack(work, &d), 0);
	upmon_amqp_delivery_release(&d);
	for (k = 0; k < 20; k++) {
		snprintf(id, sizeof(id), "batch-%d", k);
		REQUIRE(t_next(work, 10000, &d) == 0);
		CHECK_STR(d.message_id, id);
		CHECK_EQ(upmon_amqp_ack(work, &d), 0);
		upmon_amqp_delivery_release(&d);
	}
	REQUIRE(t_next(work, 10000, &d) == 0);
	CHECK_STR(d.message_id, "persist-2");
	CHECK_EQ(upmon_amqp_ack(work, &d), 0);
	upmon_amqp_delivery_release(&d);
	upmon_amqp_free(work);
	upmon_amqp_free(sub);
	upmon_amqp_free(pub);
}

static void
test_down_no_spin(void)
{
	struct upmon_amqp *c = t_open(&cfg);
	struct upmon_amqp_message m;
	struct upmon_amqp_stats before, after;
	int64_t t0, took;
	int rc, i;

	ctl("stop");
	upmon_amqp_get_stats(c, &before);
	/* Each call fails within its timeout; a second of failing calls makes few attempts. */
	t0 = upmon_mono_ms();
	m = t_msg("upmon.tasks", "monitor_tasks", "down-1", "{}", NULL);
	rc = upmon_amqp_publish_sync(c, &m, 1500);
	took = upmon_mono_ms() - t0;
	fprintf(stderr, "publish while stopped: %s after %lld ms\n", upmon_amqp_strerror(rc),
	    (long long)took);
	CHECK(rc == UPMON_AMQP_ECONN || rc == UPMON_AMQP_ELOST || rc == UPMON_AMQP_ETIMEDOUT);
	CHECK_INT(took, <, 1500 + 3000 + 500);      /* + at most one connect timeout */
	t0 = upmon_mono_ms();
	for (i = 0; i < 1000; i++)
		if (upmon_amqp_poll(c, 0) == 0)
			break;
	for (i = 0; i < 10; i++)
		(void)upmon_amqp_poll(c, 300);
	upmon_amqp_get_stats(c, &after);
	fprintf(stderr, "connect attempts while down: %llu in %lld ms\n",
	    (unsigned long long)(after.connect_attempts - before.connect_attempts),
	    (long long)(upmon_mono_ms() - t0));
	CHECK_INT(after.connect_attempts - before.connect_attempts, <=, 20);
	CHECK(!upmon_amqp_is_connected(c));

	ctl("start");
	t0 = upmon_mono_ms();
	rc = upmon_amqp_publish_sync(c, &m, 60000);
	fprintf(stderr, "publish after start: %s after %lld ms\n", upmon_amqp_strerror(rc),
	    (long long)(upmon_mono_ms() - t0));
	CHECK_EQ(rc, 0);
	upmon_amqp_free(c);
}

int
main(void)
{
	t_log_init();
	t_config(&cfg);
	RUN(test_survives_restart);
	RUN(test_down_no_spin);
	return test_finish();
}
