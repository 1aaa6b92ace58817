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
	long long want;
	int64_t t0;

	want = tp_q(pg, "SELECT count(*) FROM check_results", 0) + NMON * NSLOT;
	t0 = upmon_mono_ms();
	tp_publish_slots(pub, mons, NMON, base, NSLOT);
	if (tp_wait_count(pg, "SELECT count(*) FROM check_results", NULL, want,
	    (int)(t0 + 30000 - upmon_mono_ms()), 20) != 0)
		return -1;
	return upmon_mono_ms() - t0;
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
	char owner[UPMON_ID_MAX + 1];
	int64_t with, without, after;

	tp_setup(workdir, "redis@example.test", &pg, owner, &target, &pub);
	tp_monitors(pg, mons, NMON, owner, "redis", &target, "/ok", 2000);
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
	tp_check_queues_empty(20000);
	CHECK_INT(tp_metric(&p, "upmon_probe_cache_errors_total"), >, 0);

	/* Redis back: the next results are cached again (the handle's backoff is <= 2 s) */
	upmon_sleep_ms(2500);
	after = round_ms(2 * NSLOT);
	CHECK_INT(after, >, 0);
	CHECK_EQ(redis_has(&mons[0], tp_slot(3 * NSLOT - 1)), 0);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results WHERE NOT ok", 0), 0);

	tp_probe_stop(&p, SIGTERM);
	return tp_teardown(workdir, &target, pub, pg);
}
