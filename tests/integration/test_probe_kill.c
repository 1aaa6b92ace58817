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
	char owner[UPMON_ID_MAX + 1];
	int64_t deadline;
	long long rows = 0;
	double inflight = 0, redelivered;
	PGconn *pg;

	tp_setup(workdir, "kill@example.test", &pg, owner, &target, &pub);
	tp_monitors(pg, mons, NMON, owner, "kill", &target, "/slow/500", 5000);
	tp_publish_slots(pub, mons, NMON, 0, NSLOT);

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
	tp_check_all_stored(pg, NMON * NSLOT);
	redelivered = tp_metric(&p2, "upmon_probe_tasks_redelivered_total");
	fprintf(stderr, "second probe: %.0f redelivered, %.0f duplicates\n", redelivered,
	    tp_metric(&p2, "upmon_probe_tasks_duplicate_total"));
	CHECK_INT(redelivered, >=, 1);

	if (test_failures > 0)
		tp_tail(p1.log);
	tp_probe_stop(&p2, SIGTERM);
	return tp_teardown(workdir, &target, pub, pg);
}
