/*
 * Heartbeats are negotiated and serviced by upmon_amqp_poll: an idle handle that polls keeps
 * its connection for many heartbeat intervals, one that does not poll is dropped by the broker
 * (which shows the first half is meaningful), and the next poll reconnects it.
 */
#include "test_amqp_support.h"

static void
test_poll_keeps_alive(void)
{
	struct upmon_amqp_config cfg;
	struct upmon_amqp_stats st;
	struct upmon_amqp *c;
	int64_t t0;

	t_config(&cfg);
	cfg.heartbeat_s = 1;
	c = t_open(&cfg);
	REQUIRE(upmon_amqp_consume(c, "monitor_tasks", 1) == 0);

	t0 = upmon_mono_ms();
	while (upmon_mono_ms() - t0 < 7000)
		CHECK_EQ(upmon_amqp_poll(c, 250), 0);
	upmon_amqp_get_stats(c, &st);
	CHECK_EQ(st.disconnects, 0);
	CHECK_EQ(st.connects, 1);
	CHECK(upmon_amqp_is_connected(c));

	/* Silent for many intervals: the broker gives up on us. */
	upmon_sleep_ms(8000);
	t0 = upmon_mono_ms();
	while (upmon_mono_ms() - t0 < 5000) {
		(void)upmon_amqp_poll(c, 250);
		upmon_amqp_get_stats(c, &st);
		if (st.disconnects > 0 && upmon_amqp_is_connected(c))
			break;
	}
	fprintf(stderr, "after silence: connects %llu disconnects %llu\n",
	    (unsigned long long)st.connects, (unsigned long long)st.disconnects);
	CHECK_EQ(st.disconnects, 1);
	CHECK_EQ(st.connects, 2);
	CHECK(upmon_amqp_is_connected(c));
	upmon_amqp_free(c);
}

int
main(void)
{
	t_log_init();
	RUN(test_poll_keeps_alive);
	return test_finish();
}
