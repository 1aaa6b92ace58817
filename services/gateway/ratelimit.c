/*
 * Rate limits: fixed-window counters in Redis (upmon:rl:<key>, expiring with the window), so
 * a limit holds across gateway replicas. Redis down means no limit (fail open, counted).
 */
#include <errno.h>
#include <stdio.h>

#include "server_int.h"
#include "upmon/metrics.h"

#define RL_KEY_MAX	320

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

int
gw_rate_hit(struct gw_req *r, const char *key, long limit, long window_s)
{
	char rkey[RL_KEY_MAX], retry[24];
	long long count = 0, ttl_ms = 0, secs;
	int n, rc;

	if (limit <= 0 || window_s <= 0)
		return 0;
	n = snprintf(rkey, sizeof(rkey), "upmon:rl:%s", key);
	if (n < 0 || (size_t)n >= sizeof(rkey))
		return 0;	/* callers keep keys short; an over-long one is not limited */
	rc = upmon_cache_incr_expire(gw_cache(r), rkey, (long long)window_s * 1000, &count,
	    &ttl_ms);
	if (rc != 0) {
		upmon_counter_inc(unavailable_total);
		return 0;
	}
	if (count <= limit)
		return 0;
	upmon_counter_inc(limited_total);
	secs = (ttl_ms + 999) / 1000;
	if (secs < 1)
		secs = 1;
	if (secs > window_s)
		secs = window_s;
	snprintf(retry, sizeof(retry), "%lld", secs);
	gw_add_header(r, "Retry-After", retry);
	gw_reply_error(r, 429, "rate_limited", "too many requests, retry in %lld s", secs);
	return -EAGAIN;
}
