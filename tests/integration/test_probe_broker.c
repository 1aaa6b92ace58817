/*
 * The worker across a RabbitMQ restart and a shutdown past its timeout:
 *   restart   RabbitMQ restarted while checks are in flight: the probe reconnects and
 *             re-consumes by itself, the acks of the old connection are dropped (the broker
 *             requeued those tasks) and their redeliveries are absorbed as duplicates: every
 *             task has exactly one row, nothing is left in monitor_tasks
 *   timeout   SIGTERM with checks that outlast UPMON_SHUTDOWN_TIMEOUT_MS: the process exits
 *             (status 1) soon after the timeout without acking them; they are back in
 *             monitor_tasks, ready for another probe
 * Runs under tests/support/with-stack.
 */
#include "test_probe_support.h"

#define NMON	10
#define NSLOT	20

static char workdir[] = "/tmp/upmon-probe-broker.XXXXXX";
static PGconn *pg;
static struct tp_target target;
static char owner[UPMON_ID_MAX + 1];

static void
test_restart(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=2", "UPMON_PROBE_CONSUMERS=32",
	    NULL };
	struct tp_monitor mons[NMON];
	struct upmon_amqp *pub;
	struct tp_probe p;
	long long rows;

	pub = tp_publisher();
	tp_monitors(pg, mons, NMON, owner, "restart", &target, "/slow/300", 5000);
	tp_publish_slots(pub, mons, NMON, 0, NSLOT);
	upmon_amqp_free(pub);

	tp_probe_start(&p, workdir, "probe-restart", env);
	(void)tp_wait_count(pg, "SELECT count(*) FROM check_results r JOIN monitors m ON "
	    "m.id = r.monitor_id WHERE m.name LIKE 'restart-%'", NULL, 40, 20000, 50);
	rows = tp_q(pg, "SELECT count(*) FROM check_results", 0);
	CHECK_INT(rows, <, NMON * NSLOT);
	REQUIRE(test_sh("\"$UPMON_CTL\" restart rabbitmq >/dev/null") == 0);
	fprintf(stderr, "rabbitmq restarted with %lld of %d rows stored\n", rows,
	    NMON * NSLOT);

	tp_check_all_stored(pg, NMON * NSLOT);
	fprintf(stderr, "after the restart: %.0f redelivered, %.0f duplicates, %.0f acked\n",
	    tp_metric(&p, "upmon_probe_tasks_redelivered_total"),
	    tp_metric(&p, "upmon_probe_tasks_duplicate_total"),
	    tp_metric(&p, "upmon_probe_tasks_acked_total"));
	tp_probe_stop(&p, SIGTERM);
}

static void
test_timeout(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=1", "UPMON_PROBE_CONSUMERS=8",
	    "UPMON_SHUTDOWN_TIMEOUT_MS=1000", NULL };
	struct upmon_amqp *pub;
	struct tp_monitor m;
	struct tp_probe p;
	char url[256];
	int64_t deadline, t0;
	int st;

	pub = tp_publisher();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow/20000", target.port);
	tp_monitor_create(pg, &m, owner, "timeout", url, NULL, 30000, 0);
	tp_probe_start(&p, workdir, "probe-timeout", env);
	REQUIRE(tp_probe_ready(&p, 20000) == 0);
	tp_publish_slots(pub, &m, 1, 0, 8);
	upmon_amqp_free(pub);
	deadline = upmon_mono_ms() + 10000;
	while (tp_metric(&p, "upmon_probe_inflight") < 8 && upmon_mono_ms() < deadline)
		upmon_sleep_ms(50);
	CHECK_INT(tp_metric(&p, "upmon_probe_inflight"), ==, 8);
	t0 = upmon_mono_ms();
	kill(p.pid, SIGTERM);
	st = tp_wait_pid(p.pid, 10000);
	fprintf(stderr, "exited %lld ms after SIGTERM\n", (long long)(upmon_mono_ms() - t0));
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1);
	CHECK_INT(upmon_mono_ms() - t0, <, 5000);
	if (st == -1)
		tp_kill(p.pid, SIGKILL);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results WHERE monitor_id = $1", 1, m.id),
	    0);
	/* all 8 back in the queue, nobody consuming */
	CHECK_EQ(tp_queue_wait("monitor_tasks", 8, 15000), 0);
	if (test_failures > 0)
		tp_tail(p.log);
}

int
main(void)
{
	tp_setup(workdir, "broker@example.test", &pg, owner, &target, NULL);
	RUN(test_restart);
	RUN(test_timeout);
	return tp_teardown(workdir, &target, NULL, pg);
}
