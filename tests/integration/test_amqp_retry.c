/*
 * A message sent to retry queue n comes back on its work queue after that queue's TTL, not
 * before, with x-upmon-attempt incremented and body, message_id and the caller's headers
 * kept; levels past the last are clamped to it; past max_retries the helper dead-letters;
 * notifications return through upmon.retry exactly once.
 */
#include "test_amqp_support.h"

static struct upmon_amqp_config cfg;

/* Clock difference between the broker and us, in ms; the broker never expires early. */
#define SLACK_MS 10

static void
publish_task(struct upmon_amqp *c, const char *id, int attempt)
{
	struct upmon_amqp_headers h;
	struct upmon_amqp_message m;
	char body[128];

	upmon_amqp_headers_init(&h);
	upmon_amqp_headers_set_str(&h, "x-trace", "trace-1", 0);
	if (attempt > 0)
		upmon_amqp_headers_set_int(&h, UPMON_AMQP_H_ATTEMPT, attempt);
	snprintf(body, sizeof(body), "{\"task_id\":\"%s\"}", id);
	m = t_msg("upmon.tasks", "monitor_tasks", id, body, &h);
	REQUIRE(upmon_amqp_publish_sync(c, &m, 10000) == 0);
}

/* Takes the task from the queue, retries it, and measures when it is back. */
static void
retry_round(struct upmon_amqp *c, const char *id, int attempt, int64_t ttl)
{
	struct upmon_amqp_delivery d, back;
	char body[128];
	int64_t t0, early_wait, took;
	int route = 0, rc;

	fprintf(stderr, "retry %s: attempt %d -> %d, expecting ttl %lld ms\n", id, attempt,
	    attempt + 1, (long long)ttl);
	publish_task(c, id, attempt);
	REQUIRE(t_next(c, 10000, &d) == 0);
	CHECK_STR(d.message_id, id);
	CHECK_EQ(d.attempt, attempt);
	snprintf(body, sizeof(body), "{\"task_id\":\"%s\"}", id);

	t0 = upmon_mono_ms();
	rc = upmon_amqp_retry(c, &d, "probe timed out", 10, 10000, &route);
	CHECK_EQ(rc, 0);
	CHECK_EQ(route, UPMON_AMQP_ROUTE_RETRY);
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);      /* after the retry publish was confirmed */
	upmon_amqp_delivery_release(&d);

	/* Not before the TTL: nothing for 3/4 of it. */
	early_wait = ttl * 3 / 4 - (upmon_mono_ms() - t0);
	if (early_wait > 0) {
		rc = upmon_amqp_next(c, (int)early_wait, &back);
		if (rc == 0) {
			test_fail(__FILE__, __LINE__, "%s came back after %lld ms, ttl %lld", id,
			    (long long)(upmon_mono_ms() - t0), (long long)ttl);
			upmon_amqp_delivery_release(&back);
			return;
		}
		CHECK_EQ(rc, UPMON_AMQP_ETIMEDOUT);
	}
	REQUIRE(t_next(c, (int)ttl + 10000, &back) == 0);
	took = upmon_mono_ms() - t0;
	fprintf(stderr, "  back after %lld ms (ttl %lld)\n", (long long)took, (long long)ttl);
	CHECK_INT(took, >=, ttl - SLACK_MS);
	CHECK_INT(took, <, ttl + 5000);
	CHECK_STR(back.message_id, id);
	CHECK_STR((const char *)back.body, body);
	CHECK_STR(back.queue, "monitor_tasks");
	CHECK_STR(back.routing_key, "monitor_tasks");
	CHECK_EQ(back.attempt, attempt + 1);
	CHECK_STR(upmon_amqp_headers_get_str(back.headers, UPMON_AMQP_H_ERROR), "probe timed out");
	CHECK(upmon_amqp_is_rfc3339(upmon_amqp_headers_get_str(back.headers,
	    UPMON_AMQP_H_FIRST_FAILURE)));
	CHECK(upmon_amqp_is_rfc3339(upmon_amqp_headers_get_str(back.headers,
	    UPMON_AMQP_H_LAST_FAILURE)));
	CHECK_STR(upmon_amqp_headers_get_str(back.headers, "x-trace"), "trace-1");
	CHECK_EQ(upmon_amqp_ack(c, &back), 0);
	upmon_amqp_delivery_release(&back);
}

static void
test_retry_levels(void)
{
	struct upmon_amqp *c = t_open(&cfg);

	REQUIRE(upmon_amqp_consume(c, "monitor_tasks", 10) == 0);
	retry_round(c, "task-a", 0, 400);        /* -> retry.1 */
	retry_round(c, "task-b", 1, 800);        /* -> retry.2 */
	retry_round(c, "task-c", 2, 1600);       /* -> retry.3 */
	retry_round(c, "task-d", 4, 1600);       /* attempt 5 clamped to retry.3 */
	upmon_amqp_free(c);
}

static void
test_first_failure_kept(void)
{
	struct upmon_amqp *c = t_open(&cfg);
	struct upmon_amqp_delivery d;
	char first[64];
	int route;

	REQUIRE(upmon_amqp_consume(c, "monitor_tasks", 1) == 0);
	publish_task(c, "task-f", 0);
	REQUIRE(t_next(c, 10000, &d) == 0);
	REQUIRE(upmon_amqp_retry(c, &d, "e1", 10, 10000, &route) == 0);
	REQUIRE(upmon_amqp_ack(c, &d) == 0);
	upmon_amqp_delivery_release(&d);
	REQUIRE(t_next(c, 10000, &d) == 0);
	snprintf(first, sizeof(first), "%s",
	    upmon_amqp_headers_get_str(d.headers, UPMON_AMQP_H_FIRST_FAILURE));
	upmon_sleep_ms(20);
	REQUIRE(upmon_amqp_retry(c, &d, "e2", 10, 10000, &route) == 0);
	REQUIRE(upmon_amqp_ack(c, &d) == 0);
	upmon_amqp_delivery_release(&d);
	REQUIRE(t_next(c, 10000, &d) == 0);
	CHECK_EQ(d.attempt, 2);
	CHECK_STR(upmon_amqp_headers_get_str(d.headers, UPMON_AMQP_H_FIRST_FAILURE), first);
	CHECK(strcmp(upmon_amqp_headers_get_str(d.headers, UPMON_AMQP_H_LAST_FAILURE),
	    first) > 0);
	CHECK_STR(upmon_amqp_headers_get_str(d.headers, UPMON_AMQP_H_ERROR), "e2");
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);
	upmon_amqp_delivery_release(&d);
	upmon_amqp_free(c);
}

static void
test_limit_goes_dead(void)
{
	struct upmon_amqp *c = t_open(&cfg);
	struct upmon_amqp_delivery d;
	int route = 0;

	REQUIRE(upmon_amqp_consume(c, "monitor_tasks", 1) == 0);
	REQUIRE(upmon_amqp_consume(c, "monitor_tasks_dead", 1) == 0);
	publish_task(c, "task-x", 3);
	REQUIRE(t_next(c, 10000, &d) == 0);
	CHECK_STR(d.queue, "monitor_tasks");
	CHECK_EQ(upmon_amqp_retry(c, &d, "still failing", 3, 10000, &route), 0);
	CHECK_EQ(route, UPMON_AMQP_ROUTE_DEAD);
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);
	upmon_amqp_delivery_release(&d);
	REQUIRE(t_next(c, 10000, &d) == 0);
	CHECK_STR(d.queue, "monitor_tasks_dead");
	CHECK_STR(d.message_id, "task-x");
	CHECK_EQ(d.attempt, 3);
	CHECK_STR(upmon_amqp_headers_get_str(d.headers, UPMON_AMQP_H_ERROR), "still failing");
	/* A delivery from a queue without retry queues is refused. */
	CHECK_EQ(upmon_amqp_retry(c, &d, "again", 5, 1000, &route), UPMON_AMQP_EINVAL);
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);
	upmon_amqp_delivery_release(&d);
	upmon_amqp_free(c);
}

static void
test_notifications_return_once(void)
{
	struct upmon_amqp *c = t_open(&cfg);
	struct upmon_amqp_delivery d;
	struct upmon_amqp_message m;
	int64_t t0, took;
	int route = 0;

	REQUIRE(upmon_amqp_consume(c, "notifications", 5) == 0);
	m = t_msg("upmon.events", "alert.down", "alert-7", "{\"alert\":7}", NULL);
	REQUIRE(upmon_amqp_publish_sync(c, &m, 10000) == 0);
	REQUIRE(t_next(c, 10000, &d) == 0);
	t0 = upmon_mono_ms();
	CHECK_EQ(upmon_amqp_retry(c, &d, "smtp 451", 5, 10000, &route), 0);
	CHECK_EQ(route, UPMON_AMQP_ROUTE_RETRY);
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);
	upmon_amqp_delivery_release(&d);
	REQUIRE(t_next(c, 10000, &d) == 0);
	took = upmon_mono_ms() - t0;
	CHECK_INT(took, >=, 300 - SLACK_MS);
	CHECK_STR(d.message_id, "alert-7");
	CHECK_STR(d.queue, "notifications");
	CHECK_EQ(d.attempt, 1);
	CHECK_STR((const char *)d.body, "{\"alert\":7}");
	CHECK_EQ(upmon_amqp_ack(c, &d), 0);
	upmon_amqp_delivery_release(&d);
	/* Exactly one copy came back. */
	CHECK_EQ(upmon_amqp_next(c, 1500, &d), UPMON_AMQP_ETIMEDOUT);
	upmon_amqp_delivery_release(&d);
	upmon_amqp_free(c);
}

int
main(void)
{
	t_log_init();
	t_config(&cfg);
	cfg.retry_levels = 3;
	cfg.retry_base_ms = 400;
	cfg.retry_max_ms = 1600;
	cfg.notify_retry_levels = 2;
	cfg.notify_retry_base_ms = 300;
	cfg.notify_retry_max_ms = 600;
	RUN(test_retry_levels);
	RUN(test_first_failure_kept);
	RUN(test_limit_goes_dead);
	RUN(test_notifications_return_once);
	return test_finish();
}
