/*
 * upmon-scheduler against real PostgreSQL and RabbitMQ: every active monitor's tasks arrive
 * on its fixed grid with message_id == task_id and the monitor's check definition; LISTEN
 * monitor_changed is followed (insert starts tasks, an update of interval and url changes
 * them, pause and delete stop them); SIGTERM exits 0.
 */
#include "test_scheduler_support.h"

#define INTERVAL 10

struct mon {
	char id[UPMON_ID_MAX + 1];
	char url[128];
};

static struct mon mons[32];
static size_t nmons;

static void
load_ids(void)
{
	struct upmon_db_error err;
	PGresult *res = NULL;
	int i;

	REQUIRE(upmon_db_query(ts_db, 0, "SELECT id, coalesce(url, '') FROM monitors "
	    "ORDER BY name", 0, NULL, &res, &err) == 0);
	for (i = 0; i < PQntuples(res) && nmons < 32; i++, nmons++) {
		snprintf(mons[nmons].id, sizeof(mons[nmons].id), "%s", PQgetvalue(res, i, 0));
		snprintf(mons[nmons].url, sizeof(mons[nmons].url), "%s", PQgetvalue(res, i, 1));
	}
	PQclear(res);
}

static char *
id_of(const char *name)
{
	return ts_scalar("SELECT id FROM monitors WHERE name = $1", 1, name, NULL);
}

int
main(void)
{
	struct ts_sched s;
	struct ts_recs r = { 0 };
	struct upmon_amqp *c;
	char *tcp_id, *hdr_id, *upd_id, *pause_id, *del_id, *new_id;
	int64_t t_change, period = INTERVAL * 1000;
	size_t i, j, n, late = 0, badattempt = 0, badurl = 0;
	int seen_tcp = 0, seen_hdr = 0;
	int64_t last;

	ts_setup(UPMON_LOG_WARN, "m", 18, INTERVAL);
	REQUIRE(ts_sql("INSERT INTO monitors (owner_id, name, type, host, port, interval_seconds,"
	    " timeout_ms) VALUES ('" TS_OWNER "', 'tcp1', 'tcp', '127.0.0.1', 9, 10, 1000)",
	    0, NULL, NULL, NULL) == 0);
	REQUIRE(ts_sql("INSERT INTO monitors (owner_id, name, type, url, method, headers, body, "
	    "expected_status, keyword, keyword_absent, max_latency_ms, interval_seconds, "
	    "timeout_ms) VALUES ('" TS_OWNER "', 'hdr1', 'http', 'https://127.0.0.1:9/h', "
	    "'POST', '{\"X-A\": \"1\", \"X-B\": \"two\"}', 'payload', '200,301-302', 'down', "
	    "true, 5000, 10, 2000)", 0, NULL, NULL, NULL) == 0);
	load_ids();
	REQUIRE(nmons == 20);
	tcp_id = id_of("tcp1");
	hdr_id = id_of("hdr1");
	upd_id = id_of("m1");
	pause_id = id_of("m2");
	del_id = id_of("m3");

	ts_start_ready(&s, "publish", NULL, 1);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_monitors"), 20);
	c = ts_consumer();
	ts_collect(c, &r, 6000);

	/* changes followed through LISTEN monitor_changed */
	t_change = upmon_wall_ms();
	REQUIRE(ts_sql("INSERT INTO monitors (owner_id, name, type, url, interval_seconds, "
	    "timeout_ms) VALUES ('" TS_OWNER "', 'new1', 'http', 'http://127.0.0.1:9/new1', 10, "
	    "1000)", 0, NULL, NULL, NULL) == 0);
	REQUIRE(ts_sql("UPDATE monitors SET url = 'http://127.0.0.1:9/changed', "
	    "interval_seconds = 20 WHERE id = $1", 1, upd_id, NULL, NULL) == 0);
	REQUIRE(ts_sql("UPDATE monitors SET paused = true WHERE id = $1", 1, pause_id, NULL,
	    NULL) == 0);
	REQUIRE(ts_sql("DELETE FROM monitors WHERE id = $1", 1, del_id, NULL, NULL) == 0);
	new_id = id_of("new1");
	ts_collect(c, &r, 24000);
	fprintf(stderr, "%zu tasks received\n", r.n);

	CHECK_EQ(r.bad, 0);
	REQUIRE(r.n > 40);
	(void)ts_check_recs(&r, INT64_MAX);
	for (i = 0; i < r.n; i++) {
		const struct ts_rec *x = &r.v[i];
		bool after = x->slot > t_change + 2000;

		if (x->attempt != 1)
			badattempt++;
		if (x->received - x->slot > 2000 || x->received < x->slot - 50)
			late++;
		if (strcmp(x->monitor_id, upd_id) == 0 && after) {
			CHECK_EQ(x->interval, 20);
			CHECK_STR(x->url, "http://127.0.0.1:9/changed");
			continue;
		}
		if (strcmp(x->monitor_id, pause_id) == 0 || strcmp(x->monitor_id, del_id) == 0) {
			if (after)
				fprintf(stderr, "task of a paused/deleted monitor: %s\n",
				    x->message_id);
			CHECK(!after);
			continue;
		}
		if (strcmp(x->monitor_id, new_id) == 0) {
			CHECK_STR(x->url, "http://127.0.0.1:9/new1");
			continue;
		}
		for (j = 0; j < nmons; j++)
			if (strcmp(mons[j].id, x->monitor_id) == 0)
				break;
		if (j == nmons || (strcmp(x->monitor_id, upd_id) != 0 &&
		    strcmp(mons[j].url, x->url) != 0))
			badurl++;
	}
	CHECK_EQ(badattempt, 0);
	CHECK_EQ(late, 0);
	CHECK_EQ(badurl, 0);

	/* per unchanged monitor: consecutive slots exactly one interval apart, >= 2 of them */
	for (j = 0; j < nmons; j++) {
		if (strcmp(mons[j].id, upd_id) == 0 || strcmp(mons[j].id, pause_id) == 0 ||
		    strcmp(mons[j].id, del_id) == 0)
			continue;
		n = 0;
		last = 0;
		for (i = 0; i < r.n; i++) {
			if (strcmp(r.v[i].monitor_id, mons[j].id) != 0)
				continue;
			if (n > 0 && r.v[i].slot != last + period && r.v[i].slot != last) {
				fprintf(stderr, "monitor %s: slot %lld after %lld\n", mons[j].id,
				    (long long)r.v[i].slot, (long long)last);
				CHECK(!"consecutive slots one interval apart");
			}
			if (r.v[i].slot != last)
				n++;
			last = r.v[i].slot;
		}
		CHECK_INT(n, >=, 2);
	}

	/* the check definition travels with the task */
	for (i = 0; i < r.n; i++) {
		if (strcmp(r.v[i].monitor_id, tcp_id) == 0)
			seen_tcp++;
		if (strcmp(r.v[i].monitor_id, hdr_id) == 0)
			seen_hdr++;
	}
	CHECK_INT(seen_tcp, >=, 2);
	CHECK_INT(seen_hdr, >=, 2);
	{
		/* decode one more task of hdr1 in full: consume until it comes */
		struct upmon_amqp_delivery d;
		struct upmon_task t;
		char err[256];
		int64_t deadline = upmon_mono_ms() + 12000;
		int found = 0, found_tcp = 0;

		while (upmon_mono_ms() < deadline && (!found || !found_tcp)) {
			memset(&d, 0, sizeof(d));
			if (upmon_amqp_next(c, 500, &d) != 0)
				continue;
			if (upmon_msg_task_decode((const char *)d.body, d.body_len, &t, err,
			    sizeof(err)) == 0) {
				if (!found && strcmp(t.monitor_id, hdr_id) == 0) {
					found = 1;
					CHECK_STR(t.owner_id, TS_OWNER);
					CHECK_EQ(t.check.type, UPMON_CHECK_HTTP);
					CHECK_EQ(t.check.method, UPMON_HTTP_POST);
					CHECK_STR(t.check.url, "https://127.0.0.1:9/h");
					CHECK_STR(t.check.body, "payload");
					CHECK_STR(t.check.keyword, "down");
					CHECK(t.check.keyword_absent);
					CHECK_EQ(t.check.max_latency_ms, 5000);
					CHECK_EQ(t.check.timeout_ms, 2000);
					CHECK_EQ(t.check.nheaders, 2);
					CHECK_EQ(t.check.nexpected, 2);
					CHECK_EQ(t.check.expected[0].lo, 200);
					CHECK_EQ(t.check.expected[1].hi, 302);
					CHECK_EQ(t.retries, 2);
					CHECK_EQ(t.interval_seconds, 10);
				}
				if (!found_tcp && strcmp(t.monitor_id, tcp_id) == 0) {
					found_tcp = 1;
					CHECK_EQ(t.check.type, UPMON_CHECK_TCP);
					CHECK_STR(t.check.host, "127.0.0.1");
					CHECK_EQ(t.check.port, 9);
				}
				upmon_task_release(&t);
			}
			(void)upmon_amqp_ack(c, &d);
			upmon_amqp_delivery_release(&d);
		}
		CHECK(found);
		CHECK(found_tcp);
	}

	/* the inserted monitor started, the updated one moved to its 20 s grid */
	n = 0;
	for (i = 0; i < r.n; i++)
		if (strcmp(r.v[i].monitor_id, new_id) == 0 && r.v[i].slot >= t_change &&
		    r.v[i].slot <= t_change + 2000 + period)
			n++;
	CHECK_INT(n, >=, 1);
	n = 0;
	for (i = 0; i < r.n; i++)
		if (strcmp(r.v[i].monitor_id, upd_id) == 0 && r.v[i].interval == 20)
			n++;
	CHECK_INT(n, >=, 1);

	/* metrics: 20 + 1 inserted - 1 paused - 1 deleted */
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_monitors"), 19);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_leader"), 1);
	CHECK_EQ(ts_metric(&s, "upmon_scheduler_invalid_monitors"), 0);
	CHECK_INT(ts_metric(&s, "upmon_scheduler_tasks_published_total"), >=, r.n);
	CHECK_INT(ts_metric(&s, "upmon_scheduler_tasks_confirmed_total"), >=, r.n);
	CHECK_INT(ts_metric(&s, "upmon_scheduler_lateness_seconds_count"), >=, r.n);
	CHECK_INT(ts_metric(&s, "upmon_scheduler_lateness_seconds_bucket{le=\"0.1\"}"), >=,
	    r.n * 9 / 10);
	{
		char *pt = ts_scalar("SELECT floor(extract(epoch FROM published_through) * 1000)"
		    "::int8 FROM scheduler_state WHERE id = 1", 0, NULL, NULL);
		int64_t v = strtoll(pt, NULL, 10);

		CHECK_INT(v, >, upmon_wall_ms() - 5000);
		free(pt);
	}

	ts_finish(&s, c, &r);
	free(tcp_id);
	free(hdr_id);
	free(upd_id);
	free(pause_id);
	free(del_id);
	free(new_id);
	ts_done(&s);
	return test_finish();
}
