/*
 * Rate limits: fixed-window counters in Redis (upmon:rl:<key>, expiring with the window), so
 * a limit holds across gateway replicas. Redis down means no limit (fail open, counted).
 *
 * A round trip to Redis per request would halve the throughput of a cached read, so for
 * large limits (>= 200 per window) a worker thread takes hits from the shared counter in
 * batches: INCRBY limit/100 (at most 64) and spends them locally until they run out or the
 * window ends. The counter only grants hits below the limit, so the limit is never exceeded;
 * a client spreading over many connections may be refused slightly before reaching it
 * (hits granted to a connection it stopped using). Small limits (auth, login, tests) are
 * counted exactly, one INCR per request.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server_int.h"
#include "upmon/metrics.h"

#define RL_KEY_MAX	320
#define RL_BATCH_MIN_LIMIT	200
#define RL_BATCH_MAX	64

/* KEYS[1] counter; ARGV[1] hits to add, ARGV[2] window ms. Returns {count, ttl ms}. */
static const char incrby_lua[] =
    "local n = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "local t = redis.call('PTTL', KEYS[1])\n"
    "if t < 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  t = tonumber(ARGV[2])\n"
    "end\n"
    "return {n, t}\n";

/* KEYS[1] counter. Returns {count (0 when absent), ttl ms}. */
static const char peek_lua[] =
    "return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1])}\n";

static struct upmon_counter *limited_total;
static struct upmon_counter *unavailable_total;

void
gw_ratelimit_metrics(struct upmon_metrics *m)
{
	limited_total = upmon_metrics_counter(m, "upmon_gateway_ratelimited_total",
	    "Requests refused with 429 by a rate limit.", NULL);
	unavailable_total = upmon_metrics_counter(m, "upmon_gateway_ratelimit_unavailable_total",
	    "Rate-limit checks skipped because Redis did not answer (fail open).", NULL);
}

/* INCRBY n on rkey; stores the new count and the window's ms left. Returns 0 or a negative
 * UPMON_CACHE_E_* code. */
static int
incr_by(struct upmon_cache *c, const char *rkey, long n, long window_s, long long *count,
    long long *ttl_ms)
{
	char by[24], win[24];
	const char *args[2] = { by, win };
	redisReply *rep = NULL;
	int rc;

	if (n == 1)
		return upmon_cache_incr_expire(c, rkey, (long long)window_s * 1000, count,
		    ttl_ms);
	snprintf(by, sizeof(by), "%ld", n);
	snprintf(win, sizeof(win), "%lld", (long long)window_s * 1000);
	if ((rc = upmon_cache_eval(c, incrby_lua, 1, &rkey, 2, args, &rep)) != 0)
		return rc;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return UPMON_CACHE_E_REPLY;
	}
	*count = rep->element[0]->integer;
	*ttl_ms = rep->element[1]->integer;
	freeReplyObject(rep);
	return 0;
}

static int
refuse(struct gw_req *r, long long ttl_ms, long window_s, const char *what)
{
	char retry[24];
	long long secs;

	upmon_counter_inc(limited_total);
	secs = (ttl_ms + 999) / 1000;
	if (secs < 1)
		secs = 1;
	if (secs > window_s)
		secs = window_s;
	snprintf(retry, sizeof(retry), "%lld", secs);
	gw_add_header(r, "Retry-After", retry);
	gw_reply_error(r, 429, "rate_limited", "too many %s, retry in %lld s", what, secs);
	return -EAGAIN;
}

int
gw_rate_hit(struct gw_req *r, const char *key, long limit, long window_s)
{
	struct gw_rl_lease *lease = r->priv->thr != NULL ? &r->priv->thr->lease : NULL;
	char rkey[RL_KEY_MAX];
	long long count = 0, ttl_ms = 0, before;
	int64_t now;
	long n = 1;
	int len;

	if (limit <= 0 || window_s <= 0)
		return 0;
	len = snprintf(rkey, sizeof(rkey), "upmon:rl:%s", key);
	if (len < 0 || (size_t)len >= sizeof(rkey))
		return 0;	/* callers keep keys short; an over-long one is not limited */
	if (limit >= RL_BATCH_MIN_LIMIT && lease != NULL && (size_t)len < sizeof(lease->key)) {
		now = gw_now_ms();
		if (lease->left > 0 && now < lease->until_ms && strcmp(lease->key, rkey) == 0) {
			lease->left--;
			return 0;
		}
		n = limit / 100 < RL_BATCH_MAX ? limit / 100 : RL_BATCH_MAX;
	}
	if (incr_by(gw_cache(r), rkey, n, window_s, &count, &ttl_ms) != 0) {
		upmon_counter_inc(unavailable_total);
		return 0;
	}
	before = count - n;
	if (before >= limit)
		return refuse(r, ttl_ms, window_s, "requests");
	if (n > 1) {
		/* this request takes one of the granted hits, the rest wait in the lease */
		memcpy(lease->key, rkey, (size_t)len + 1);
		lease->left = (long)((count <= limit ? count : limit) - before) - 1;
		lease->until_ms = gw_now_ms() + ttl_ms;
	}
	return 0;
}

int
gw_rate_check(struct gw_req *r, const char *key, long limit, long window_s, const char *what)
{
	char rkey[RL_KEY_MAX];
	const char *k = rkey;
	redisReply *rep = NULL;
	long long count, ttl_ms;
	int len;

	if (limit <= 0 || window_s <= 0)
		return 0;
	len = snprintf(rkey, sizeof(rkey), "upmon:rl:%s", key);
	if (len < 0 || (size_t)len >= sizeof(rkey))
		return 0;
	if (upmon_cache_eval(gw_cache(r), peek_lua, 1, &k, 0, NULL, &rep) != 0) {
		upmon_counter_inc(unavailable_total);
		return 0;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return 0;
	}
	count = rep->element[0]->integer;
	ttl_ms = rep->element[1]->integer;
	freeReplyObject(rep);
	if (count < limit)
		return 0;
	return refuse(r, ttl_ms > 0 ? ttl_ms : (long long)window_s * 1000, window_s, what);
}
