/*
 * The outbox relay against real PostgreSQL and RabbitMQ: rows inserted into outbox are
 * published (an alert reaches the notifications queue, a re-probe task goes through
 * monitor_tasks.retry.1 and comes back to monitor_tasks after the TTL) and marked sent; a
 * status event nobody listens to is marked sent as 'unroutable'; an alert the broker cannot
 * route stays unsent with its error and attempts; with RabbitMQ stopped rows stay unsent and
 * go out once it is back; stop publishes what is waiting; the metrics count.
 */
#include "test_amqp_support.h"

#include "relay.h"
#include "upmon/db.h"
#include "upmon/metrics.h"
#include "upmon/msg.h"

static struct upmon_db *db;
static struct upmon_amqp_config acfg;
static struct upmon_metrics *metrics;

static void
sql(const char *text, int n, const char *const *p, char *out, size_t size)
{
	struct upmon_db_error err;
	PGresult *res = NULL;
	int rc = upmon_db_query(db, UPMON_DB_IDEMPOTENT, text, n, p, &res, &err);

	if (rc != 0)
		fprintf(stderr, "query failed: %s: %s\n", err.message, text);
	REQUIRE(rc == 0);
	if (out != NULL)
		snprintf(out, size, "%s", PQntuples(res) > 0 && upmon_db_value(res, 0, 0) != NULL ?
		    upmon_db_value(res, 0, 0) : "");
	PQclear(res);
}

static void
outbox_add(const char *exchange, const char *key, const char *id, const char *payload)
{
	const char *p[4] = { exchange, key, id, payload };

	sql("INSERT INTO outbox (exchange, routing_key, message_id, payload) "
	    "VALUES ($1, $2, $3, $4::jsonb)", 4, p, NULL, 0);
}

/* The value of column col (sent_at IS NOT NULL, last_error, attempts) of row id. */
static void
row(const char *expr, const char *id, char *out, size_t size)
{
	char text[256];
	const char *p[1] = { id };

	snprintf(text, sizeof(text), "SELECT %s FROM outbox WHERE message_id = $1", expr);
	sql(text, 1, p, out, size);
}

/* Waits up to ms for row id to be sent. */
static int
wait_sent(const char *id, int ms)
{
	int64_t end = upmon_mono_ms() + ms;
	char buf[16];

	do {
		row("sent_at IS NOT NULL", id, buf, sizeof(buf));
		if (strcmp(buf, "t") == 0)
			return 1;
		upmon_sleep_ms(50);
	} while (upmon_mono_ms() < end);
	return 0;
}

/* Consumes from c until a delivery with message_id id arrives (up to ms); 1 if it did. */
static int
receive(struct upmon_amqp *c, const char *id, int ms, char *body, size_t size)
{
	int64_t end = upmon_mono_ms() + ms;
	struct upmon_amqp_delivery d;
	int found = 0;

	while (!found && upmon_mono_ms() < end) {
		if (upmon_amqp_next(c, 200, &d) != 0)
			continue;
		if (strcmp(d.message_id, id) == 0) {
			found = 1;
			if (body != NULL)
				snprintf(body, size, "%s", (const char *)d.body);
		}
		upmon_amqp_ack(c, &d);
		upmon_amqp_delivery_release(&d);
	}
	return found;
}

static struct probe_relay *
start_relay(int poll_ms)
{
	struct probe_relay_config cfg;
	struct probe_relay *r = NULL;

	probe_relay_config_init(&cfg);
	cfg.db.url = test_env("UPMON_PG_URL");
	cfg.db.connect_timeout_s = 2;
	cfg.db.reconnect_max_ms = 1000;
	cfg.amqp = acfg;
	cfg.batch = 50;
	cfg.poll_ms = poll_ms;
	cfg.metrics = metrics;
	REQUIRE(probe_relay_start(&cfg, &r) == 0);
	return r;
}

static const char alert_json[] = "{\"v\":1,\"alert_id\":\"%s\",\"kind\":\"down\","
    "\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"monitor_name\":\"n\",\"target\":"
    "\"https://example.test/\",\"at\":1700000000000}";

static void
test_setup(void)
{
	struct upmon_db_config cfg;

	t_log_init();
	log_set_level(UPMON_LOG_WARN);
	REQUIRE(test_sh("\"$UPMON_BIN_DIR/upmonctl\" migrate >/dev/null") == 0);
	upmon_db_config_init(&cfg);
	cfg.url = test_env("UPMON_PG_URL");
	REQUIRE(upmon_db_new(&cfg, &db) == 0);
	t_config(&acfg);
	acfg.retry_base_ms = 200;
	acfg.retry_max_ms = 1000;
	acfg.notify_retry_base_ms = 200;
	acfg.notify_retry_max_ms = 1000;
	acfg.heartbeat_s = 5;
	REQUIRE((metrics = upmon_metrics_new()) != NULL);
}

static void
test_publish(void)
{
	struct probe_relay *r = start_relay(60000);	/* only a wake gets it going */
	struct upmon_amqp *c = t_open(&acfg);
	struct upmon_task t;
	char body[2048], buf[64], err[256], *task = NULL;
	size_t len;

	REQUIRE(upmon_amqp_declare_topology(c) == 0);
	REQUIRE(upmon_amqp_consume(c, UPMON_AMQP_Q_NOTIFY, 10) == 0);
	REQUIRE(upmon_amqp_consume(c, UPMON_AMQP_Q_TASKS, 10) == 0);
	/* an alert, a re-probe task, a status event nobody listens to */
	snprintf(body, sizeof(body), alert_json, "relay-a1");
	outbox_add("upmon.events", "alert.down", "relay-a1", body);
	upmon_task_init(&t);
	snprintf(t.monitor_id, sizeof(t.monitor_id), "m1");
	snprintf(t.owner_id, sizeof(t.owner_id), "o1");
	t.scheduled_at = 1700000000000LL;
	t.attempt = 2;
	t.retries = 2;
	t.interval_seconds = 60;
	t.check.url = strdup("https://example.test/");
	REQUIRE(upmon_msg_task_encode(&t, &task, &len) == 0);
	upmon_task_release(&t);
	outbox_add("upmon.retry", "monitor_tasks.retry.1", "m1:1700000000000:2", task);
	free(task);
	outbox_add("upmon.events", "status.o1.m1", "status:m1:1700000000000:1",
	    "{\"v\":1,\"monitor_id\":\"m1\",\"owner_id\":\"o1\",\"status\":\"up\","
	    "\"previous\":\"pending\",\"at\":1700000000000}");
	probe_relay_wake(r);
	CHECK(wait_sent("relay-a1", 10000));
	CHECK(wait_sent("m1:1700000000000:2", 10000));
	CHECK(wait_sent("status:m1:1700000000000:1", 10000));
	row("coalesce(last_error, '') || '/' || attempts", "status:m1:1700000000000:1", buf,
	    sizeof(buf));
	CHECK_STR(buf, "unroutable/1");
	row("coalesce(last_error, '') || '/' || attempts", "relay-a1", buf, sizeof(buf));
	CHECK_STR(buf, "/1");
	/* the alert reached the mailer's queue; the task came back from retry.1 after its TTL */
	CHECK(receive(c, "relay-a1", 10000, body, sizeof(body)));
	{
		struct upmon_alert_event ae;

		CHECK_EQ(upmon_msg_alert_decode(body, strlen(body), &ae, err, sizeof(err)), 0);
		CHECK_STR(ae.alert_id, "relay-a1");
		upmon_alert_event_release(&ae);
	}
	CHECK(receive(c, "m1:1700000000000:2", 10000, body, sizeof(body)));
	REQUIRE(upmon_msg_task_decode(body, strlen(body), &t, err, sizeof(err)) == 0);
	CHECK_EQ(t.attempt, 2);
	upmon_task_release(&t);
	/* a row the broker cannot route (and not a status event) stays unsent with its error
	 * and a backoff before the next attempt */
	outbox_add("upmon.tasks", "no-such-queue", "relay-lost", "{\"v\":1}");
	probe_relay_wake(r);
	upmon_sleep_ms(1500);
	row("(sent_at IS NULL)::text || '/' || coalesce(last_error, '') || '/' || "
	    "(attempts >= 1)::text || '/' || (next_attempt_at IS NOT NULL)::text", "relay-lost", buf,
	    sizeof(buf));
	CHECK_STR(buf, "true/unroutable/true/true");
	sql("DELETE FROM outbox WHERE message_id = 'relay-lost'", 0, NULL, NULL, 0);
	probe_relay_stop(r, 2000);
	upmon_amqp_free(c);
}

static void
test_broker_down(void)
{
	struct probe_relay *r = start_relay(200);
	struct upmon_amqp *c;
	char body[2048], buf[16];
	int64_t t0;

	upmon_sleep_ms(500);
	REQUIRE(test_sh("\"$UPMON_CTL\" stop rabbitmq >/dev/null") == 0);
	snprintf(body, sizeof(body), alert_json, "relay-a2");
	outbox_add("upmon.events", "alert.down", "relay-a2", body);
	probe_relay_wake(r);
	upmon_sleep_ms(2000);
	row("sent_at IS NULL", "relay-a2", buf, sizeof(buf));
	CHECK_STR(buf, "t");
	t0 = upmon_mono_ms();
	REQUIRE(test_sh("\"$UPMON_CTL\" start rabbitmq >/dev/null") == 0);
	CHECK(wait_sent("relay-a2", 30000));
	fprintf(stderr, "relay: sent %lld ms after the broker start command\n",
	    (long long)(upmon_mono_ms() - t0));
	c = t_open(&acfg);
	REQUIRE(upmon_amqp_consume(c, UPMON_AMQP_Q_NOTIFY, 10) == 0);
	CHECK(receive(c, "relay-a2", 10000, NULL, 0));
	/* stop publishes what is waiting */
	snprintf(body, sizeof(body), alert_json, "relay-a3");
	outbox_add("upmon.events", "alert.down", "relay-a3", body);
	probe_relay_stop(r, 5000);
	row("sent_at IS NOT NULL", "relay-a3", buf, sizeof(buf));
	CHECK_STR(buf, "t");
	CHECK(receive(c, "relay-a3", 10000, NULL, 0));
	upmon_amqp_free(c);
}

static void
test_metrics(void)
{
	char *text = NULL;
	size_t len;

	REQUIRE(upmon_metrics_render(metrics, &text, &len) == 0);
	CHECK_CONTAINS(text, "upmon_probe_outbox_published_total 5");
	CHECK_CONTAINS(text, "upmon_probe_outbox_errors_total");
	CHECK_CONTAINS(text, "upmon_probe_outbox_pending");
	free(text);
}

int
main(void)
{
	RUN(test_setup);
	RUN(test_publish);
	RUN(test_broker_down);
	RUN(test_metrics);
	upmon_db_free(db);
	upmon_metrics_free(metrics);
	return test_finish();
}
