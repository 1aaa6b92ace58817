/*
 * cache against a real Redis: set/get/del with binary values and TTLs, the rate-limit counter,
 * scripts (EVALSHA, and EVAL after the server forgot them), "newest wins" status writes, error
 * replies, and a server too busy to answer within op_timeout_ms: the call returns UNAVAILABLE
 * after about the timeout, the next calls return at once during the backoff, and the handle
 * comes back by itself.
 */
#include "test.h"
#include "upmon/backoff.h"
#include "upmon/cache.h"

#include <time.h>

#define MON "test_cache_basic-m1"

static const char *redis_url;



static struct upmon_cache *
open_cache(int op_timeout_ms)
{
	struct upmon_cache_config cfg;
	struct upmon_cache *c = NULL;

	upmon_cache_config_init(&cfg);
	cfg.url = redis_url;
	cfg.op_timeout_ms = op_timeout_ms;
	REQUIRE(upmon_cache_new(&cfg, &c) == 0);
	return c;
}

static void
test_kv(void)
{
	struct upmon_cache *c = open_cache(1000);
	const char bin[] = { 'a', '\0', 'b', '\r', '\n' };
	const char *argv[2] = { "PTTL", "test_cache_basic:ttl" };
	redisReply *r = NULL;
	char *val = NULL;
	size_t len = 0;

	REQUIRE(upmon_cache_connect(c) == 0);
	CHECK_EQ((long long)upmon_cache_generation(c), 1);
	CHECK_EQ(upmon_cache_set(c, "test_cache_basic:bin", bin, sizeof(bin), 0), 0);
	REQUIRE(upmon_cache_get(c, "test_cache_basic:bin", &val, &len) == 0);
	REQUIRE(val != NULL);
	CHECK_EQ(len, sizeof(bin));
	CHECK(memcmp(val, bin, sizeof(bin)) == 0);
	free(val);
	CHECK_EQ(upmon_cache_del(c, "test_cache_basic:bin"), 0);
	CHECK_EQ(upmon_cache_get(c, "test_cache_basic:bin", &val, &len), 0);
	CHECK(val == NULL);
	CHECK_EQ(upmon_cache_del(c, "test_cache_basic:bin"), 0);
	/* TTL */
	CHECK_EQ(upmon_cache_set(c, "test_cache_basic:ttl", "x", 1, 60000), 0);
	REQUIRE(upmon_cache_command_argv(c, 2, argv, NULL, &r) == 0);
	CHECK_EQ(r->type, REDIS_REPLY_INTEGER);
	CHECK_INT(r->integer, >, 50000);
	CHECK_INT(r->integer, <=, 60000);
	freeReplyObject(r);
	/* an error reply: wrong type */
	argv[0] = "LPUSH";
	CHECK_EQ(upmon_cache_command_argv(c, 2, argv, NULL, &r), UPMON_CACHE_E_REPLY);
	CHECK(r == NULL);
	CHECK_CONTAINS(upmon_cache_errstr(c), "wrong number of arguments");
	/* ... which costs no connection */
	CHECK_EQ(upmon_cache_get(c, "test_cache_basic:ttl", &val, NULL), 0);
	CHECK_STR(val, "x");
	free(val);
	CHECK_EQ((long long)upmon_cache_generation(c), 1);
	upmon_cache_free(c);
}

static void
test_rate_limit(void)
{
	struct upmon_cache *c = open_cache(1000);
	long long n = 0, ttl = 0;
	int i;

	upmon_cache_del(c, "test_cache_basic:rl");
	for (i = 1; i <= 5; i++) {
		REQUIRE(upmon_cache_incr_expire(c, "test_cache_basic:rl", 300, &n, &ttl) == 0);
		CHECK_EQ(n, i);
		CHECK_INT(ttl, >, 0);
		CHECK_INT(ttl, <=, 300);
	}
	upmon_sleep_ms(400);
	/* a new window */
	REQUIRE(upmon_cache_incr_expire(c, "test_cache_basic:rl", 300, &n, NULL) == 0);
	CHECK_EQ(n, 1);
	upmon_cache_free(c);
}

static void
test_scripts(void)
{
	struct upmon_cache *c = open_cache(1000);
	const char *keys[1] = { "test_cache_basic:s" }, *args[1] = { "7" };
	const char *flush[2] = { "SCRIPT", "FLUSH" };
	static const char lua[] = "redis.call('SET', KEYS[1], ARGV[1]) "
	    "return redis.call('GET', KEYS[1])";
	redisReply *r = NULL;

	REQUIRE(upmon_cache_eval(c, lua, 1, keys, 1, args, &r) == 0);
	CHECK_EQ(r->type, REDIS_REPLY_STRING);
	CHECK_STR(r->str, "7");
	freeReplyObject(r);
	/* the server forgets every script: EVALSHA answers NOSCRIPT, EVAL takes over */
	REQUIRE(upmon_cache_command_argv(c, 2, flush, NULL, &r) == 0);
	freeReplyObject(r);
	args[0] = "8";
	REQUIRE(upmon_cache_eval(c, lua, 1, keys, 1, args, &r) == 0);
	CHECK_STR(r->str, "8");
	freeReplyObject(r);
	/* a script error is a reply error */
	CHECK_EQ(upmon_cache_eval(c, "return redis.call('NOPE')", 0, NULL, 0, NULL, &r),
	    UPMON_CACHE_E_REPLY);
	CHECK(r == NULL);
	CHECK_EQ((long long)upmon_cache_generation(c), 1);
	upmon_cache_free(c);
}

static void
test_newest_wins(void)
{
	struct upmon_cache *c = open_cache(1000), *other = open_cache(1000);
	const char *flush[2] = { "SCRIPT", "FLUSH" };
	redisReply *r = NULL;
	char *json = NULL;
	int64_t ts = 0;
	int applied = -1;

	upmon_cache_del(c, "upmon:status:test_cache_basic-m1");
	CHECK_EQ(upmon_cache_status_get(c, MON, &json, &ts), 0);
	CHECK(json == NULL);
	CHECK_EQ(upmon_cache_status_put(c, MON, 1000, "{\"status\":\"up\"}", &applied), 0);
	CHECK_EQ(applied, 1);
	/* an older result arriving late changes nothing */
	CHECK_EQ(upmon_cache_status_put(other, MON, 999, "{\"status\":\"down\"}", &applied), 0);
	CHECK_EQ(applied, 0);
	/* nor does a replay of the same timestamp */
	CHECK_EQ(upmon_cache_status_put(c, MON, 1000, "{\"status\":\"down\"}", &applied), 0);
	CHECK_EQ(applied, 0);
	REQUIRE(upmon_cache_status_get(c, MON, &json, &ts) == 0);
	CHECK_STR(json, "{\"status\":\"up\"}");
	CHECK_EQ(ts, 1000);
	free(json);
	/* a newer one wins, also after the script cache was flushed */
	REQUIRE(upmon_cache_command_argv(c, 2, flush, NULL, &r) == 0);
	freeReplyObject(r);
	CHECK_EQ(upmon_cache_status_put(other, MON, 1700000000123LL, "{\"status\":\"down\"}",
	    &applied), 0);
	CHECK_EQ(applied, 1);
	REQUIRE(upmon_cache_status_get(c, MON, &json, &ts) == 0);
	CHECK_STR(json, "{\"status\":\"down\"}");
	CHECK_EQ(ts, 1700000000123LL);
	free(json);
	CHECK_EQ(upmon_cache_status_put(c, MON, 1700000000122LL, "{}", &applied), 0);
	CHECK_EQ(applied, 0);
	upmon_cache_free(other);
	upmon_cache_free(c);
}

/* Many statuses in one call (chunked by 128): each one newest-wins on its own key; a batch
 * holding two results of one monitor keeps the newer; a bad id refuses the whole call. */
static void
test_newest_wins_many(void)
{
	enum { N = 300 };
	static char ids[N][64], js[N][32];
	const char *idp[N], *jsp[N];
	int64_t ts[N];
	int applied[N], i, n_applied = 0;
	struct upmon_cache *c = open_cache(1000);
	char *json = NULL;
	int64_t got = 0;

	for (i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "test_cache_basic-many-%d", i);
		snprintf(js[i], sizeof(js[i]), "{\"n\":%d}", i);
		idp[i] = ids[i];
		jsp[i] = js[i];
		ts[i] = 5000 + i;
		{
			char key[128];

			REQUIRE(upmon_cache_status_key(key, sizeof(key), ids[i]) == 0);
			upmon_cache_del(c, key);
		}
	}
	/* one older entry already stored for id 7 stays unless newer */
	CHECK_EQ(upmon_cache_status_put(c, ids[7], 999999, "{\"old\":1}", NULL), 0);
	CHECK_EQ(upmon_cache_status_put_many(c, N, idp, ts, jsp, applied), 0);
	for (i = 0; i < N; i++)
		n_applied += applied[i];
	CHECK_EQ(n_applied, N - 1);
	CHECK_EQ(applied[7], 0);
	REQUIRE(upmon_cache_status_get(c, ids[299], &json, &got) == 0);
	CHECK_STR(json, "{\"n\":299}");
	CHECK_EQ(got, 5299);
	free(json);
	REQUIRE(upmon_cache_status_get(c, ids[7], &json, &got) == 0);
	CHECK_STR(json, "{\"old\":1}");
	free(json);
	/* the same monitor twice in one call: the newer wins whatever the order */
	idp[0] = idp[1] = ids[0];
	ts[0] = 9001;
	ts[1] = 9000;
	CHECK_EQ(upmon_cache_status_put_many(c, 2, idp, ts, jsp, applied), 0);
	CHECK_EQ(applied[0], 1);
	CHECK_EQ(applied[1], 0);
	REQUIRE(upmon_cache_status_get(c, ids[0], &json, &got) == 0);
	CHECK_EQ(got, 9001);
	CHECK_STR(json, "{\"n\":0}");
	free(json);
	/* a bad argument writes nothing */
	jsp[1] = NULL;
	ts[0] = 9999;
	CHECK_EQ(upmon_cache_status_put_many(c, 2, idp, ts, jsp, applied), UPMON_CACHE_E_INVALID);
	REQUIRE(upmon_cache_status_get(c, ids[0], &json, &got) == 0);
	CHECK_EQ(got, 9001);
	free(json);
	upmon_cache_free(c);
}

static void
test_slow_server(void)
{
	/* keeps Redis busy for ~600 ms: nobody gets an answer meanwhile */
	static const char busy[] =
	    "local t = redis.call('TIME') "
	    "local t0 = t[1] * 1000000 + t[2] "
	    "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - t0 > 600000 "
	    "return 1";
	struct upmon_cache *blocker = open_cache(50), *c = open_cache(100);
	redisReply *r = NULL;
	char *val = NULL;
	int64_t t0, t;
	int i, rc;

	REQUIRE(upmon_cache_connect(c) == 0);
	CHECK_EQ(upmon_cache_eval(blocker, busy, 0, NULL, 0, NULL, &r),
	    UPMON_CACHE_E_UNAVAILABLE);
	t0 = upmon_mono_ms();
	CHECK_EQ(upmon_cache_get(c, "test_cache_basic:x", &val, NULL), UPMON_CACHE_E_UNAVAILABLE);
	t = upmon_mono_ms() - t0;
	CHECK_INT(t, >=, 90);
	CHECK_INT(t, <, 300);
	/* down: the following calls do not wait at all */
	t0 = upmon_mono_ms();
	for (i = 0; i < 100; i++)
		CHECK_EQ(upmon_cache_get(c, "test_cache_basic:x", &val, NULL), UPMON_CACHE_E_UNAVAILABLE);
	CHECK_INT(upmon_mono_ms() - t0, <, 50);
	CHECK(!upmon_cache_available(c));
	CHECK_CONTAINS(upmon_cache_errstr(c), "backing off");
	/* once the server answers again, so does the handle */
	t0 = upmon_mono_ms();
	do {
		upmon_sleep_ms(50);
		rc = upmon_cache_get(c, "test_cache_basic:x", &val, NULL);
	} while (rc != 0 && upmon_mono_ms() - t0 < 5000);
	CHECK_EQ(rc, 0);
	free(val);
	CHECK_INT(upmon_cache_generation(c), >=, 2);
	upmon_cache_free(blocker);
	upmon_cache_free(c);
}

int
main(void)
{
	redis_url = test_env("UPMON_REDIS_URL");
	RUN(test_kv);
	RUN(test_rate_limit);
	RUN(test_scripts);
	RUN(test_newest_wins);
	RUN(test_newest_wins_many);
	RUN(test_slow_server);
	return test_finish();
}
