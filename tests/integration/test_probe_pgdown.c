/*
 * R3 in small: PostgreSQL stopped for 30 s under a steady stream of tasks (10/s).
 * No task is acked before its commit: every published task ends with its check_results row
 * or in monitor_tasks_dead, nothing is missing. Processing failures go through the retry
 * queues (3 attempts with 1, 2 and 4 s TTLs here), so tasks that met the outage early are
 * dead-lettered with readable headers and a SYSTEM_ERROR alert (alerts + outbox), while
 * those that met it in its last seconds are stored after the recovery.
 * Runs under tests/support/with-stack.
 */
#include "test_probe_support.h"

#define NMON		10
#define RATE_MS		100	/* one task every RATE_MS */
#define RUN_MS		45000
#define STOP_AT_MS	5000
#define START_AT_MS	35000
#define MAXTASKS	(RUN_MS / RATE_MS + 16)

static char workdir[] = "/tmp/upmon-probe-pgdown.XXXXXX";

struct sent {
	char id[UPMON_TASK_ID_MAX + 1];
	int64_t at;			/* ms since the start */
	int dead, stored;
};

static struct sent sent[MAXTASKS];
static int nsent;

static struct sent *
find(const char *id)
{
	int i;

	for (i = 0; i < nsent; i++)
		if (strcmp(sent[i].id, id) == 0)
			return &sent[i];
	return NULL;
}

static void
mark_stored(PGconn *pg)
{
	PGresult *r;
	struct sent *s;
	int i;

	r = PQexec(pg, "SELECT monitor_id || ':' || upmon_ts_to_ms(scheduled_at) || ':' || "
	    "attempt FROM check_results");
	REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
	for (i = 0; i < PQntuples(r); i++) {
		s = find(PQgetvalue(r, i, 0));
		if (s != NULL)
			s->stored++;
		else
			fprintf(stderr, "unexpected row %s\n", PQgetvalue(r, i, 0));
	}
	PQclear(r);
}

static int
mark_dead(void)
{
	static const char *const hdrs[] = { UPMON_AMQP_H_ERROR, UPMON_AMQP_H_FIRST_FAILURE,
	    UPMON_AMQP_H_LAST_FAILURE, UPMON_AMQP_H_SERVICE, UPMON_AMQP_H_HOST };
	struct json_object *msgs, *msg, *h, *att;
	struct sent *s;
	size_t i, j;
	int n = 0;

	msgs = tp_queue_get("monitor_tasks_dead", MAXTASKS);
	REQUIRE(msgs != NULL && json_object_is_type(msgs, json_type_array));
	for (i = 0; i < json_object_array_length(msgs); i++) {
		msg = json_object_array_get_idx(msgs, i);
		s = tp_msg_id(msg) ? find(tp_msg_id(msg)) : NULL;
		CHECK(s != NULL);
		if (s != NULL)
			s->dead++;
		for (j = 0; j < sizeof(hdrs) / sizeof(hdrs[0]); j++)
			CHECK(tp_msg_header(msg, hdrs[j]) != NULL &&
			    tp_msg_header(msg, hdrs[j])[0] != '\0');
		CHECK_CONTAINS(tp_msg_header(msg, UPMON_AMQP_H_ERROR), "commit failed");
		CHECK_STR(tp_msg_header(msg, UPMON_AMQP_H_SERVICE), "upmon-probe");
		CHECK(upmon_amqp_is_rfc3339(tp_msg_header(msg, UPMON_AMQP_H_FIRST_FAILURE) ?
		    tp_msg_header(msg, UPMON_AMQP_H_FIRST_FAILURE) : ""));
		h = t_jget(t_jget(msg, "properties"), "headers");
		att = t_jget(h, UPMON_AMQP_H_ATTEMPT);
		CHECK(att != NULL && json_object_get_int(att) >= 3);
		if (n == 0)
			fprintf(stderr, "a dead letter's headers: %s\n",
			    json_object_to_json_string(h));
		n++;
	}
	json_object_put(msgs);
	return n;
}

int
main(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=2", "UPMON_PROBE_CONSUMERS=64",
	    "UPMON_PROBE_MAX_ATTEMPTS=3", "UPMON_PROBE_DEAD_BACKOFF_MAX_MS=2000", NULL };
	struct upmon_amqp_confirm out[256];
	struct tp_monitor mons[NMON];
	struct tp_target target;
	struct tp_probe probe;
	struct upmon_amqp *pub;
	struct upmon_task t;
	char owner[UPMON_ID_MAX + 1];
	int64_t t0, now, deadline;
	long long rows, alerts, outbox;
	long dead = 0, u;
	int i, stopped = 0, started = 0, ndead, missing = 0, both = 0, during = 0;
	int during_stored = 0;
	size_t n;
	PGconn *pg;

	tp_retry_cfg.levels = 3;
	tp_retry_cfg.base_ms = 1000;
	tp_retry_cfg.max_ms = 4000;
	tp_setup(workdir, "pgdown@example.test", &pg, owner, &target, &pub);
	tp_monitors(pg, mons, NMON, owner, "pgdown", &target, "/ok", 2000);
	tp_probe_start(&probe, workdir, "probe", env);
	REQUIRE(tp_probe_ready(&probe, 20000) == 0);

	t0 = upmon_mono_ms();
	for (i = 0; (now = upmon_mono_ms() - t0) < RUN_MS && nsent < MAXTASKS; i++) {
		if (!stopped && now >= STOP_AT_MS) {
			REQUIRE(test_sh("\"$UPMON_CTL\" stop postgres >/dev/null") == 0);
			fprintf(stderr, "postgres stopped at %lld ms\n", (long long)now);
			stopped = 1;
		}
		if (!started && now >= START_AT_MS) {
			REQUIRE(test_sh("\"$UPMON_CTL\" start postgres >/dev/null") == 0);
			fprintf(stderr, "postgres started at %lld ms\n",
			    (long long)(upmon_mono_ms() - t0));
			started = 1;
		}
		tp_task(&mons[i % NMON], tp_slot(i / NMON), 1, &t);
		tp_publish_task(pub, &t);
		snprintf(sent[nsent].id, sizeof(sent[nsent].id), "%s", t.task_id);
		sent[nsent].at = upmon_mono_ms() - t0;
		nsent++;
		upmon_task_release(&t);
		(void)upmon_amqp_confirm_wait(pub, 0, out, 256, &n);
		upmon_sleep_ms(t0 + (int64_t)(i + 1) * RATE_MS - upmon_mono_ms());
	}
	CHECK_EQ(tp_confirm_all(pub), 0);
	fprintf(stderr, "published %d tasks\n", nsent);

	/* every task ends as a row or a dead letter */
	PQreset(pg);
	deadline = upmon_mono_ms() + 40000;
	do {
		upmon_sleep_ms(1000);
		rows = tp_q(pg, "SELECT count(*) FROM check_results", 0);
		tp_queue("monitor_tasks_dead", &dead, &u);
	} while (rows + dead < nsent && upmon_mono_ms() < deadline);
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 20000), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks.retry.1", 0, 5000), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks.retry.3", 0, 5000), 0);

	mark_stored(pg);
	ndead = mark_dead();
	for (i = 0; i < nsent; i++) {
		if (sent[i].stored + sent[i].dead == 0) {
			missing++;
			fprintf(stderr, "missing: %s (published at %lld ms)\n", sent[i].id,
			    (long long)sent[i].at);
		}
		if (sent[i].stored > 0 && sent[i].dead > 0)
			both++;
		CHECK(sent[i].stored <= 1 && sent[i].dead <= 1);
		if (sent[i].at >= STOP_AT_MS && sent[i].at < START_AT_MS) {
			during++;
			during_stored += sent[i].stored > 0;
		}
	}
	fprintf(stderr, "rows %lld, dead %d, both %d, missing %d; during the outage %d "
	    "published, %d stored later\n", rows, ndead, both, missing, during, during_stored);
	CHECK_EQ(missing, 0);
	CHECK_EQ(both, 0);
	CHECK_INT(ndead, >, 0);
	CHECK_INT(during_stored, >, 0);
	CHECK_INT(ndead, <, during + 60);

	/* one SYSTEM_ERROR alert per dead letter, each with its outbox row */
	alerts = tp_q(pg, "SELECT count(*) FROM alerts WHERE kind = 'system_error'", 0);
	outbox = tp_q(pg, "SELECT count(*) FROM outbox WHERE routing_key = 'alert.system_error'",
	    0);
	CHECK_EQ(alerts, ndead);
	CHECK_EQ(outbox, ndead);
	CHECK_INT(tp_metric(&probe, "upmon_probe_tasks_dead_total{reason=\"attempts\"}"), ==,
	    ndead);
	CHECK_INT(tp_metric(&probe, "upmon_probe_tasks_retried_total"), >, 0);

	tp_probe_stop(&probe, SIGTERM);
	return tp_teardown(workdir, &target, pub, pg);
}
