/*
 * PostgreSQL restarted under a leading scheduler: the session advisory lock dies with the
 * connection, so the scheduler must notice (the lock handle reconnects, its generation
 * changes), stop publishing, become standby, take the lock again on the new server and
 * resume on the same grid, counting the slots nobody published, without a restart.
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
	int64_t t_up;
	size_t after;
	int rc;

	ts_setup(UPMON_LOG_ERROR, "p", NMON, INTERVAL);
	ts_start_ready(&s, "pgrestart", NULL, 1);
	c = ts_consumer();
	ts_collect(c, &r, 3000);
	upmon_db_free(ts_db);
	ts_db = NULL;

	rc = test_sh("\"$UPMON_CTL\" restart postgres >/dev/null");
	t_up = upmon_wall_ms();
	REQUIRE(rc == 0);
	CHECK(ts_alive(&s));
	ts_collect(c, &r, 14000);
	CHECK(ts_alive(&s));
	/* lost, then led again */
	CHECK_EQ(test_sh("grep -q 'leader lock session lost' %s", s.log), 0);
	CHECK_EQ(test_sh("grep -q 'msg=\"standby: leader lock lost' %s", s.log), 0);
	CHECK_EQ(test_sh("test \"$(grep -c 'msg=\"leader:' %s)\" -ge 2", s.log), 0);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_leader"), 1);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_monitors"), NMON);
	after = ts_check_recs(&r, t_up + 2000);
	fprintf(stderr, "pgrestart: %zu tasks, %zu after the restart, missed %.0f\n", r.n,
	    after, ts_metric(&s, "upmon_scheduler_missed_slots_total"));
	CHECK_INT(after, >=, NMON / 2);

	ts_finish(&s, c, &r);
	ts_done(&s);
	return test_finish();
}
