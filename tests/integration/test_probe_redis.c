/*
 * Redis is only a write-through cache for the probe: with Redis stopped, tasks are checked,
 * stored and acked as fast as with it (same batch of 400 tasks against /ok timed with and
 * without Redis, in one run), and once Redis is back the next results reach it again.
 * Runs under tests/support/with-stack.
 */
#include "test_probe_support.h"

#define NMON	20
#define NSLOT	20

static char workdir[] = "/tmp/upmon-probe-redis.XXXXXX";
static PGconn *pg;
static struct upmon_amqp *pub;
static struct tp_monitor mons[NMON];

/* Publishes one round (slots base..base+NSLOT-1 of every monitor) and returns the ms until
 * all its rows are stored, or -1. */
static int64_t
round_ms(int base)
{
	struct upmon_task t;
	long long want;
	int64_t t0, deadline;
	int i, k;

	want = tp_q(pg, "SELECT count(*) FROM check_results", 0) + NMON * NSLOT;
	t0 = upmon_mono_ms();
	for (k = 0; k < NSLOT; k++) {
		for (i = 0; i < NMON; i++) {
			tp_task(&mons[i], tp_slot(base + k), 1, &t);
			tp_publish_task(pub, &t);
			upmon_task_release(&t);
		}
	}
	CHECK_EQ(tp_confirm_all(pub), 0);
	deadline = t0 + 30000;
	while (upmon_mono_ms() < deadline) {
		if (tp_q(pg, "SELECT count(*) FROM check_results", 0) >= want)
			return upmon_mono_ms() - t0;
		upmon_sleep_ms(20);
	}
	return -1;
}

static int
redis_has(const struct tp_monitor *m, int64_t slot)
{
	/* the cached latest status names the slot of the newest result */
	return test_sh("redis-cli -u '%s' --no-auth-warning HGET 'upmon:status:%s' json "
	    "| grep -q '%lld'", test_env("UPMON_REDIS_URL"), m->id, (long long)slot);
}

int
main(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=2", "UPMON_PROBE_CONSUMERS=32",
	    "UPMON_REDIS_TIMEOUT_MS=500", NULL };
	struct tp_target target;
	struct tp_probe p;
	char owner[UPMON_ID_MAX + 1], url[256], name[32];
	int64_t with, without, after;
	int i;

	t_log_init();
	REQUIRE(mkdtemp(workdir) != NULL);
	tp_migrate();
	pg = tp_pg();
	tp_user(pg, "redis@example.test", owner);
	tp_target_start(&target, workdir);
	pub = tp_publisher();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", target.port);
	for (i = 0; i < NMON; i++) {
		snprintf(name, sizeof(name), "redis-%d", i);
		tp_monitor_create(pg, &mons[i], owner, name, url, NULL, 2000, 0);
	}
	tp_probe_start(&p, workdir, "probe", env);
	REQUIRE(tp_probe_ready(&p, 20000) == 0);

	with = round_ms(0);
	CHECK_EQ(redis_has(&mons[0], tp_slot(NSLOT - 1)), 0);
	REQUIRE(test_sh("\"$UPMON_CTL\" stop redis >/dev/null") == 0);
	without = round_ms(NSLOT);
	REQUIRE(test_sh("\"$UPMON_CTL\" start redis >/dev/null") == 0);
	fprintf(stderr, "%d tasks stored in %lld ms with Redis, %lld ms without\n",
	    NMON * NSLOT, (long long)with, (long long)without);
	CHECK_INT(with, >, 0);
	CHECK_INT(without, >, 0);
	/* no stall per task or per batch: within 2x (+1 s of noise) of the run with Redis */
	CHECK_INT(without, <, 2 * with + 1000);
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 10000), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks_dead", 0, 3000), 0);
	CHECK_INT(tp_metric(&p, "upmon_probe_cache_errors_total"), >, 0);

	/* Redis back: the next results are cached again (the handle's backoff is <= 2 s) */
	upmon_sleep_ms(2500);
	after = round_ms(2 * NSLOT);
	CHECK_INT(after, >, 0);
	CHECK_EQ(redis_has(&mons[0], tp_slot(3 * NSLOT - 1)), 0);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results WHERE NOT ok", 0), 0);

	if (test_failures > 0)
		tp_tail(p.log);
	tp_kill(p.pid, SIGTERM);
	tp_kill(target.pid, SIGTERM);
	upmon_amqp_free(pub);
	PQfinish(pg);
	if (test_failures == 0 && getenv("TP_KEEP") == NULL)
		(void)test_sh("rm -rf '%s'", workdir);
	return test_finish();
}
