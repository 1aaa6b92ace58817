/*
 * R6: two schedulers, one leader. Only the leader publishes; after kill -9 of the leader the
 * standby publishes within 5 s (measured and printed), counts the slots nobody published as
 * missed, and across both no (monitor_id, scheduled_at) carries two different message ids.
 */
#include "test_scheduler_support.h"

#define NMON 100
#define INTERVAL 10

static int
cmp_rec(const void *a, const void *b)
{
	const struct ts_rec *x = a, *y = b;
	int c = strcmp(x->monitor_id, y->monitor_id);

	if (c != 0)
		return c;
	return (x->slot > y->slot) - (x->slot < y->slot);
}

int
main(void)
{
	struct ts_sched a, b;
	struct ts_recs r = { 0 };
	struct upmon_amqp *c;
	int64_t t_kill, t_leader = -1, t_pub = -1, now;
	size_t i, conflicts = 0, after = 0;
	double missed;

	ts_setup(UPMON_LOG_WARN, "f", NMON, INTERVAL);

	ts_start_ready(&a, "failover-a", NULL, 1);
	ts_start_ready(&b, "failover-b", NULL, 0);
	c = ts_consumer();
	ts_collect(c, &r, 6000);
	CHECK_EQ(ts_metric(&b, "upmon_scheduler_leader"), 0);
	CHECK_EQ(ts_metric(&b, "upmon_scheduler_tasks_published_total"), 0);
	CHECK_INT(ts_metric(&a, "upmon_scheduler_tasks_published_total"), >, 0);
	CHECK_INT(r.n, >, 0);

	t_kill = upmon_mono_ms();
	CHECK_EQ(ts_stop(&a, SIGKILL, 5000), 128 + SIGKILL);
	/* the standby takes over: poll its metrics */
	while ((now = upmon_mono_ms()) - t_kill < 10000) {
		if (t_leader < 0 && ts_metric(&b, "upmon_scheduler_leader") == 1)
			t_leader = now;
		if (t_leader >= 0 && ts_metric(&b, "upmon_scheduler_tasks_published_total") > 0) {
			t_pub = upmon_mono_ms();
			break;
		}
		upmon_sleep_ms(25);
	}
	fprintf(stderr, "failover: standby leader after %lld ms, first publish after %lld ms\n",
	    (long long)(t_leader < 0 ? -1 : t_leader - t_kill),
	    (long long)(t_pub < 0 ? -1 : t_pub - t_kill));
	CHECK(t_leader >= 0);
	CHECK(t_pub >= 0);
	CHECK_INT(t_pub - t_kill, <=, 5000);
	ts_collect(c, &r, 8000);
	missed = ts_metric(&b, "upmon_scheduler_missed_slots_total");
	fprintf(stderr, "failover: %zu tasks received, %.0f missed slots counted by the standby\n",
	    r.n, missed);
	CHECK_INT(missed, >, 0);
	/* an upper bound: no more than the slots of the outage plus 2 s of state staleness */
	CHECK_INT(missed, <=, NMON * (double)(t_pub - t_kill + 2000) / (INTERVAL * 1000) + 5);
	test_sh("grep -h 'leader:' %s >&2", b.log);

	/* no slot with two different ids; everything on the grid */
	qsort(r.v, r.n, sizeof(*r.v), cmp_rec);
	(void)ts_check_recs(&r, INT64_MAX);
	for (i = 0; i < r.n; i++) {
		if (i > 0 && strcmp(r.v[i].monitor_id, r.v[i - 1].monitor_id) == 0 &&
		    r.v[i].slot == r.v[i - 1].slot &&
		    strcmp(r.v[i].message_id, r.v[i - 1].message_id) != 0)
			conflicts++;
		if (r.v[i].received > upmon_wall_ms() - 8000)
			after++;
	}
	CHECK_EQ(conflicts, 0);
	CHECK_INT(after, >, NMON / 2);

	ts_finish(&b, c, &r);
	if (test_failures > 0)
		ts_show_log(&a);
	ts_done(&a);
	ts_done(&b);
	return test_finish();
}
