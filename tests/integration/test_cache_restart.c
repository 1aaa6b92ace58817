/*
 * cache across real Redis restarts ($UPMON_CTL restart|stop|start redis): the handle
 * reconnects by itself within a bound after a restart; with Redis stopped every call returns
 * UNAVAILABLE at once (100 calls well under a second) and `start` brings it back; scripts
 * keep working although the restarted server lost its script cache.
 */
#include "test.h"
#include "upmon/backoff.h"
#include "upmon/cache.h"

#include <time.h>

#define RECOVERY_BOUND_MS 10000
#define MON "test_cache_restart"
#define KEY "test_cache_restart:k"

static const char *redis_url;



static void
ctl(const char *action)
{
	REQUIRE(test_sh("\"$UPMON_CTL\" %s redis", action) == 0);
}

/* Writes a status until it works; every failure must be UNAVAILABLE and quick. */
static int64_t
until_ok(struct upmon_cache *c, int64_t ts)
{
	int64_t t0 = upmon_mono_ms(), t, slowest = 0;
	int rc, fails = 0, applied = 0;

	for (;;) {
		t = upmon_mono_ms();
		rc = upmon_cache_status_put(c, MON, ts, "{\"ok\":true}", &applied);
		t = upmon_mono_ms() - t;
		if (t > slowest)
			slowest = t;
		if (rc == 0)
			break;
		if (rc != UPMON_CACHE_E_UNAVAILABLE)
			test_fail(__FILE__, __LINE__, "unexpected code %d (%s)", rc,
			    upmon_cache_errstr(c));
		fails++;
		if (upmon_mono_ms() - t0 > RECOVERY_BOUND_MS)
			break;
		upmon_sleep_ms(20);
	}
	fprintf(stderr, "recovered after %lld ms, %d failed calls, slowest call %lld ms\n",
	    (long long)(upmon_mono_ms() - t0), fails, (long long)slowest);
	CHECK_EQ(rc, 0);
	CHECK_EQ(applied, 1);
	/* connect_timeout_ms + op_timeout_ms at most */
	CHECK_INT(slowest, <=, 400);
	return upmon_mono_ms() - t0;
}

static void
test_restart(void)
{
	struct upmon_cache_config cfg;
	struct upmon_cache *c = NULL;
	char *json = NULL;
	uint64_t gen;

	upmon_cache_config_init(&cfg);
	cfg.url = redis_url;
	REQUIRE(upmon_cache_new(&cfg, &c) == 0);
	REQUIRE(upmon_cache_del(c, "upmon:status:" MON) == 0);
	REQUIRE(upmon_cache_status_put(c, MON, 1, "{}", NULL) == 0);
	gen = upmon_cache_generation(c);
	ctl("restart");
	CHECK_INT(until_ok(c, 2), <, RECOVERY_BOUND_MS);
	CHECK_INT(upmon_cache_generation(c), >, gen);
	REQUIRE(upmon_cache_status_get(c, MON, &json, NULL) == 0);
	CHECK_STR(json, "{\"ok\":true}");
	free(json);
	upmon_cache_free(c);
}

static void
test_stopped(void)
{
	struct upmon_cache_config cfg;
	struct upmon_cache *c = NULL;
	char *val = NULL;
	int64_t t0, elapsed;
	int i, unavailable = 0;

	upmon_cache_config_init(&cfg);
	cfg.url = redis_url;
	REQUIRE(upmon_cache_new(&cfg, &c) == 0);
	REQUIRE(upmon_cache_set(c, KEY, "v", 1, 0) == 0);
	REQUIRE(upmon_cache_del(c, "upmon:status:" MON) == 0);
	ctl("stop");
	t0 = upmon_mono_ms();
	for (i = 0; i < 100; i++) {
		unavailable += upmon_cache_get(c, KEY, &val, NULL) == UPMON_CACHE_E_UNAVAILABLE;
		unavailable += upmon_cache_status_put(c, MON "-stopped", i + 1, "{}", NULL) ==
		    UPMON_CACHE_E_UNAVAILABLE;
	}
	elapsed = upmon_mono_ms() - t0;
	fprintf(stderr, "200 calls against a stopped redis took %lld ms\n", (long long)elapsed);
	CHECK_EQ(unavailable, 200);
	CHECK_INT(elapsed, <, 1000);
	/* spread over time too: one connect attempt per backoff, each refused at once */
	t0 = upmon_mono_ms();
	for (i = 0; i < 100; i++) {
		CHECK_EQ(upmon_cache_get(c, KEY, &val, NULL), UPMON_CACHE_E_UNAVAILABLE);
		upmon_sleep_ms(10);
	}
	CHECK_INT(upmon_mono_ms() - t0, <, 1000 + 1000);
	ctl("start");
	CHECK_INT(until_ok(c, 3), <, RECOVERY_BOUND_MS);
	upmon_cache_free(c);
}

int
main(void)
{
	redis_url = test_env("UPMON_REDIS_URL");
	test_env("UPMON_CTL");
	RUN(test_restart);
	RUN(test_stopped);
	return test_finish();
}
