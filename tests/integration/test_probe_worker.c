/*
 * upmon-probe as a process against real servers:
 *   basic     up / 500 / refused / slow / keyword / confirmed-failure monitors produce the
 *             right check_results rows, monitor_state, Redis status, and every task is acked
 *   malformed a non-JSON body and a task with a bad field are dead-lettered at once with
 *             x-upmon-error naming the reason; a task for a deleted monitor is acked, no row
 *   sigterm   SIGTERM with checks in flight: exit 0, the in-flight tasks committed and acked
 * Runs under tests/support/with-stack.
 */
#include "test_probe_support.h"

static char workdir[] = "/tmp/upmon-probe-worker.XXXXXX";
static PGconn *pg;
static struct upmon_amqp *pub;
static struct tp_target target;
static struct tp_probe probe;
static char owner[UPMON_ID_MAX + 1];

static void
url_of(char *buf, size_t size, const char *path)
{
	snprintf(buf, size, "http://127.0.0.1:%d%s", target.port, path);
}

static long long
rows_of(const char *monitor_id)
{
	return tp_q(pg, "SELECT count(*) FROM check_results WHERE monitor_id = $1", 1,
	    monitor_id);
}

static void
check_state(const struct tp_monitor *m, const char *status)
{
	char got[32];

	tp_qs(pg, got, sizeof(got), "SELECT status FROM monitor_state WHERE monitor_id = $1",
	    1, m->id);
	CHECK_STR(got, status);
}

static void
check_redis(const struct tp_monitor *m, const char *status)
{
	int rc = test_sh("redis-cli -u '%s' --no-auth-warning HGET 'upmon:status:%s' json "
	    "| grep -q '\"status\":\"%s\"'", test_env("UPMON_REDIS_URL"), m->id, status);

	if (rc != 0)
		(void)test_sh("redis-cli -u '%s' --no-auth-warning HGETALL 'upmon:status:%s' >&2",
		    test_env("UPMON_REDIS_URL"), m->id);
	CHECK_EQ(rc, 0);
}

/* The error of the attempt's row matches the regular expression re. */
static void
check_row(const struct tp_monitor *m, int attempt, bool ok, bool final, const char *re)
{
	char a[8], got[64];

	snprintf(a, sizeof(a), "%d", attempt);
	tp_qs(pg, got, sizeof(got), "SELECT ok::text || ',' || final::text || ',' || "
	    "(coalesce(error, '') ~* $3)::text FROM check_results WHERE monitor_id = $1 "
	    "AND attempt = $2::smallint", 3, m->id, a, re);
	if (strcmp(got, "") == 0)
		fprintf(stderr, "no row for %s attempt %d\n", m->url, attempt);
	CHECK_STR(got, ok ? (final ? "true,true,true" : "true,false,true") :
	    (final ? "false,true,true" : "false,false,true"));
}

static void
test_basic(void)
{
	struct tp_monitor up, s500, refused, slow, kw, confirm;
	struct tp_monitor *all[] = { &up, &s500, &refused, &slow, &kw, &confirm };
	struct upmon_task t;
	char url[256];
	size_t i;

	url_of(url, sizeof(url), "/ok");
	tp_monitor_create(pg, &up, owner, "up", url, "upmon ok", 2000, 0);
	url_of(url, sizeof(url), "/status/500");
	tp_monitor_create(pg, &s500, owner, "s500", url, NULL, 2000, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", test_free_port());
	tp_monitor_create(pg, &refused, owner, "refused", url, NULL, 2000, 0);
	url_of(url, sizeof(url), "/slow/3000");
	tp_monitor_create(pg, &slow, owner, "slow", url, NULL, 1000, 0);
	url_of(url, sizeof(url), "/ok");
	tp_monitor_create(pg, &kw, owner, "keyword", url, "not-in-the-body", 2000, 0);
	url_of(url, sizeof(url), "/status/503");
	tp_monitor_create(pg, &confirm, owner, "confirm", url, NULL, 2000, 1);

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tp_task(all[i], tp_slot(1), 1, &t);
		tp_publish_task(pub, &t);
		upmon_task_release(&t);
	}
	CHECK_EQ(tp_confirm_all(pub), 0);
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		CHECK_EQ(tp_wait_count(pg, "SELECT count(*) FROM check_results WHERE "
		    "monitor_id = $1", all[i]->id, all[i] == &confirm ? 2 : 1, 30000, 200), 0);

	check_row(&up, 1, true, true, "^$");
	check_row(&s500, 1, false, true, "500");
	check_row(&refused, 1, false, true, "refused|connect");
	check_row(&slow, 1, false, true, "tim");
	check_row(&kw, 1, false, true, "keyword");
	/* a failure with retries = 1: attempt 1 is not final, its re-probe (attempt 2, queued
	 * by the store through the outbox and the retry queues) is */
	check_row(&confirm, 1, false, false, "503");
	check_row(&confirm, 2, false, true, "503");
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results WHERE monitor_id = $1 AND "
	    "latency_ms IS NOT NULL AND total_ms >= 0", 1, up.id), 1);

	check_state(&up, "up");
	for (i = 1; i < sizeof(all) / sizeof(all[0]); i++)
		check_state(all[i], "down");
	check_redis(&up, "up");
	check_redis(&s500, "down");
	check_redis(&confirm, "down");

	tp_check_queues_empty(20000);
	CHECK_INT(tp_metric(&probe, "upmon_probe_tasks_acked_total"), >=, 7);
	CHECK_INT(tp_metric(&probe, "upmon_probe_checks_total{result=\"up\"}"), >=, 1);
	CHECK_INT(tp_metric(&probe, "upmon_probe_checks_total{result=\"down\"}"), >=, 6);
}

static void
test_malformed(void)
{
	struct tp_monitor m, gone;
	struct json_object *msgs, *msg;
	struct upmon_task t;
	char url[256], *body = NULL, *p;
	const char *err, *key = "\"interval_seconds\":60";
	int found_json = 0, found_field = 0;
	size_t len, i;

	url_of(url, sizeof(url), "/ok");
	tp_monitor_create(pg, &m, owner, "malformed", url, NULL, 2000, 0);
	tp_monitor_create(pg, &gone, owner, "deleted", url, NULL, 2000, 0);
	REQUIRE(tp_q(pg, "DELETE FROM monitors WHERE id = $1", 1, gone.id) == 0);

	tp_publish_raw(pub, "bad-json-1", "this is not json", strlen("this is not json"));
	tp_task(&m, tp_slot(2), 1, &t);
	REQUIRE(upmon_msg_task_encode(&t, &body, &len) == 0);
	p = strstr(body, key);
	REQUIRE(p != NULL);
	/* "interval_seconds":60 -> "interval_seconds":5  (out of range 10..86400) */
	memmove(p + strlen(key) - 1, p + strlen(key), len - (size_t)(p - body) - strlen(key) + 1);
	p[strlen(key) - 2] = '5';
	tp_publish_raw(pub, t.task_id, body, strlen(body));
	free(body);
	upmon_task_release(&t);
	tp_task(&gone, tp_slot(2), 1, &t);
	tp_publish_task(pub, &t);
	upmon_task_release(&t);
	CHECK_EQ(tp_confirm_all(pub), 0);

	CHECK_EQ(tp_queue_wait("monitor_tasks_dead", 2, 20000), 0);
	msgs = tp_queue_get("monitor_tasks_dead", 10);
	REQUIRE(msgs != NULL && json_object_is_type(msgs, json_type_array));
	CHECK_EQ(json_object_array_length(msgs), 2);
	for (i = 0; i < json_object_array_length(msgs); i++) {
		msg = json_object_array_get_idx(msgs, i);
		err = tp_msg_header(msg, UPMON_AMQP_H_ERROR);
		CHECK_CONTAINS(err, "undecodable");
		CHECK(tp_msg_header(msg, UPMON_AMQP_H_SERVICE) != NULL);
		CHECK(tp_msg_header(msg, UPMON_AMQP_H_HOST) != NULL);
		CHECK(upmon_amqp_is_rfc3339(tp_msg_header(msg, UPMON_AMQP_H_LAST_FAILURE) ?
		    tp_msg_header(msg, UPMON_AMQP_H_LAST_FAILURE) : ""));
		if (tp_msg_id(msg) != NULL && strcmp(tp_msg_id(msg), "bad-json-1") == 0)
			found_json = 1;
		else if (err != NULL && strstr(err, "interval_seconds") != NULL)
			found_field = 1;
		else
			fprintf(stderr, "unexpected dead letter: %s\n",
			    json_object_to_json_string(msg));
	}
	CHECK(found_json);
	CHECK(found_field);
	json_object_put(msgs);

	/* the deleted monitor's task: acked, counted, nothing stored */
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 20000), 0);
	CHECK_INT(tp_metric(&probe, "upmon_probe_tasks_gone_total"), >=, 1);
	CHECK_EQ(rows_of(gone.id), 0);
	CHECK_EQ(rows_of(m.id), 0);
	CHECK_INT(tp_metric(&probe, "upmon_probe_tasks_dead_total{reason=\"undecodable\"}"), ==,
	    2);
}

static void
test_sigterm(void)
{
	struct tp_monitor m;
	char url[256];
	int st;
	int64_t deadline;

	url_of(url, sizeof(url), "/slow/2000");
	tp_monitor_create(pg, &m, owner, "sigterm", url, NULL, 10000, 0);
	tp_publish_slots(pub, &m, 1, 100, 20);
	deadline = upmon_mono_ms() + 10000;
	while (tp_metric(&probe, "upmon_probe_inflight") < 20 && upmon_mono_ms() < deadline)
		upmon_sleep_ms(50);
	CHECK_INT(tp_metric(&probe, "upmon_probe_inflight"), ==, 20);
	CHECK_EQ(rows_of(m.id), 0);
	kill(probe.pid, SIGTERM);
	st = tp_wait_pid(probe.pid, 15000);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (st == -1)
		tp_kill(probe.pid, SIGKILL);
	probe.pid = 0;
	CHECK_EQ(rows_of(m.id), 20);
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 10000), 0);
	CHECK_EQ(test_sh("grep -q 'stopped' '%s'", probe.log), 0);
}

int
main(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=2", "UPMON_PROBE_CONSUMERS=16",
	    "UPMON_SHUTDOWN_TIMEOUT_MS=10000", NULL };

	tp_setup(workdir, "worker@example.test", &pg, owner, &target, &pub);
	tp_probe_start(&probe, workdir, "probe", env);
	if (tp_probe_ready(&probe, 20000) != 0) {
		tp_tail(probe.log);
		REQUIRE(!"probe ready");
	}
	RUN(test_basic);
	RUN(test_malformed);
	RUN(test_sigterm);
	tp_probe_stop(&probe, SIGKILL);
	return tp_teardown(workdir, &target, pub, pg);
}
