/*
 * Broker outage: RabbitMQ restarted while the scheduler publishes. Publishing resumes after
 * the restart without the scheduler restarting, slots stay on the grid, and every slot that
 * fell due during the outage and is not older than one interval is published when the
 * broker is back (the rest are counted as missed).
 */
#include "test_scheduler_support.h"

#define NMON 20
#define INTERVAL 10

int
main(void)
{
	struct ts_sched s;
	struct ts_recs r = { 0 };
	struct upmon_amqp *c;
	int64_t t_down, t_up;
	size_t after;
	double pub0, pub1, backlog, missed;
	int rc;

	ts_setup(UPMON_LOG_WARN, "o", NMON, INTERVAL);
	ts_start_ready(&s, "outage", NULL, 1);
	c = ts_consumer();
	ts_collect(c, &r, 5000);
	pub0 = ts_metric(&s, "upmon_scheduler_tasks_published_total");
	CHECK_INT(pub0, >, 0);

	t_down = upmon_wall_ms();
	rc = test_sh("\"$UPMON_CTL\" restart rabbitmq >/dev/null");
	t_up = upmon_wall_ms();
	REQUIRE(rc == 0);
	fprintf(stderr, "outage: rabbitmq restart took %lld ms\n", (long long)(t_up - t_down));
	CHECK(ts_alive(&s));
	ts_collect(c, &r, 15000);
	CHECK(ts_alive(&s));
	pub1 = ts_metric(&s, "upmon_scheduler_tasks_published_total");
	backlog = ts_metric(&s, "upmon_scheduler_backlog");
	missed = ts_metric(&s, "upmon_scheduler_missed_slots_total");
	fprintf(stderr, "outage: published %.0f -> %.0f, backlog %.0f, missed %.0f, "
	    "republished %.0f, %zu tasks received\n", pub0, pub1, backlog, missed,
	    ts_metric(&s, "upmon_scheduler_tasks_republished_total"), r.n);
	CHECK_INT(pub1, >, pub0 + NMON);
	CHECK_EQ(backlog, 0);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_leader"), 1);
	after = ts_check_recs(&r, t_up + 1000);
	/* about one slot per monitor per interval after the broker came back */
	CHECK_INT(after, >=, NMON);

	ts_finish(&s, c, &r);
	if (test_failures == 0)
		test_sh("grep -E 'level=(warn|info)' %s | grep -v admin | head -n 8 >&2", s.log);
	ts_done(&s);
	return test_finish();
}
