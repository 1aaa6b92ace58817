/*
 * R1 in small: kill -9 upmon-probe while many checks are in flight (/slow/500 targets),
 * start another one; in the end every task has exactly one row per (monitor, slot,
 * attempt), monitor_tasks is empty with nothing unacked, and the second probe saw the
 * killed one's tasks come back as redeliveries. Runs under tests/support/with-stack.
 */
#include "test_probe_support.h"

#define NMON	20
#define NSLOT	15	/* NMON * NSLOT tasks */

static char workdir[] = "/tmp/upmon-probe-kill.XXXXXX";

int
main(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=2", "UPMON_PROBE_CONSUMERS=32",
	    NULL };
	struct tp_monitor mons[NMON];
	struct tp_target target;
	struct tp_probe p1, p2;
	struct upmon_amqp *pub;
	struct upmon_task t;
	char owner[UPMON_ID_MAX + 1], url[256], name[32];
	int64_t deadline;
	long long rows = 0;
	double inflight = 0, redelivered;
	PGconn *pg;
	int i, k;

	t_log_init();
	REQUIRE(mkdtemp(workdir) != NULL);
	tp_migrate();
	pg = tp_pg();
	tp_user(pg, "kill@example.test", owner);
	tp_target_start(&target, workdir);
	pub = tp_publisher();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow/500", target.port);
	for (i = 0; i < NMON; i++) {
		snprintf(name, sizeof(name), "kill-%d", i);
		tp_monitor_create(pg, &mons[i], owner, name, url, NULL, 5000, 0);
	}
	for (k = 0; k < NSLOT; k++) {
		for (i = 0; i < NMON; i++) {
			tp_task(&mons[i], tp_slot(k), 1, &t);
			tp_publish_task(pub, &t);
			upmon_task_release(&t);
		}
	}
	CHECK_EQ(tp_confirm_all(pub), 0);

	tp_probe_start(&p1, workdir, "probe1", env);
	/* kill it while its 64 channels hold checks and some results are already stored */
	deadline = upmon_mono_ms() + 20000;
	while (upmon_mono_ms() < deadline) {
		inflight = tp_metric(&p1, "upmon_probe_inflight");
		rows = tp_q(pg, "SELECT count(*) FROM check_results", 0);
		if (inflight >= 32 && rows >= 64)
			break;
		upmon_sleep_ms(50);
	}
	CHECK_INT(inflight, >=, 32);
	CHECK_INT(rows, >=, 64);
	CHECK_INT(rows, <, NMON * NSLOT);
	kill(p1.pid, SIGKILL);
	CHECK(tp_wait_pid(p1.pid, 5000) != -1);
	fprintf(stderr, "killed the probe with %.0f in flight, %lld rows stored\n", inflight,
	    rows);

	tp_probe_start(&p2, workdir, "probe2", env);
	deadline = upmon_mono_ms() + 60000;
	while (upmon_mono_ms() < deadline &&
	    tp_q(pg, "SELECT count(*) FROM check_results", 0) < NMON * NSLOT)
		upmon_sleep_ms(250);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results", 0), NMON * NSLOT);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM (SELECT DISTINCT monitor_id, scheduled_at, "
	    "attempt FROM check_results) d", 0), NMON * NSLOT);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results WHERE NOT ok", 0), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 20000), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks_dead", 0, 3000), 0);
	redelivered = tp_metric(&p2, "upmon_probe_tasks_redelivered_total");
	fprintf(stderr, "second probe: %.0f redelivered, %.0f duplicates\n", redelivered,
	    tp_metric(&p2, "upmon_probe_tasks_duplicate_total"));
	CHECK_INT(redelivered, >=, 1);

	if (test_failures > 0) {
		tp_tail(p1.log);
		tp_tail(p2.log);
	}
	tp_kill(p2.pid, SIGTERM);
	tp_kill(target.pid, SIGTERM);
	upmon_amqp_free(pub);
	PQfinish(pg);
	if (test_failures == 0 && getenv("TP_KEEP") == NULL)
		(void)test_sh("rm -rf '%s'", workdir);
	return test_finish();
}
