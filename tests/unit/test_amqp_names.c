/* Protocol-free parts of the amqp module: retry TTLs, queue names, backoff, the topology
 * table and configuration bounds. */
#include "test.h"

#include <stdint.h>

#include "upmon/amqp.h"

static void
test_retry_ttl(void)
{
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 1), 1000);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 2), 2000);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 3), 4000);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 6), 32000);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 7), 60000);   /* 64000 capped */
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 20), 60000);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(300, 1000, 3), 1000);       /* 1200 capped */
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1000, 60000, 0), 0);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(0, 60000, 1), 0);
	CHECK_EQ(upmon_amqp_retry_ttl_ms(2000, 1000, 1), 0);         /* max < base */
	/* No overflow for huge n. */
	CHECK_EQ(upmon_amqp_retry_ttl_ms(1, 2147483647, 1000), 2147483647);
}

static void
test_names(void)
{
	char buf[256], small[8];

	CHECK_EQ(upmon_amqp_retry_queue_name("monitor_tasks", 3, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "monitor_tasks.retry.3");
	CHECK_EQ(upmon_amqp_dead_queue_name("notifications", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "notifications_dead");
	CHECK_EQ(upmon_amqp_retry_queue_name("monitor_tasks", 1, small, sizeof(small)),
	    UPMON_AMQP_ETOOBIG);
	CHECK_EQ(upmon_amqp_dead_queue_name("", buf, sizeof(buf)), UPMON_AMQP_EINVAL);
	CHECK_EQ(upmon_amqp_retry_queue_name("q", 0, buf, sizeof(buf)), UPMON_AMQP_EINVAL);
}


static const struct upmon_amqp_queue_spec *
find(const struct upmon_amqp_queue_spec *s, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s[i].name, name) == 0)
			return &s[i];
	return NULL;
}

static void
test_topology_table(void)
{
	static struct upmon_amqp_queue_spec s[UPMON_AMQP_QUEUES_MAX];
	const struct upmon_amqp_queue_spec *q;
	struct upmon_amqp_config cfg;
	size_t n;

	upmon_amqp_config_init(&cfg);
	cfg.url = "amqp://guest:guest@localhost:5672/";
	REQUIRE(upmon_amqp_topology_queues(&cfg, s, UPMON_AMQP_QUEUES_MAX, &n) == 0);
	CHECK_EQ(n, 2 * (5 + 2));

	q = find(s, n, "monitor_tasks");
	REQUIRE(q != NULL);
	CHECK_EQ(q->ttl_ms, 0);
	CHECK_STR(q->dlx, "upmon.retry");
	CHECK_STR(q->dlrk, "monitor_tasks_dead");
	CHECK_STR(q->bind_exchange[0], "upmon.tasks");
	CHECK_STR(q->bind_key[0], "monitor_tasks");
	CHECK(q->bind_exchange[1] == NULL);

	q = find(s, n, "monitor_tasks.retry.1");
	REQUIRE(q != NULL);
	CHECK_EQ(q->ttl_ms, 1000);
	CHECK_STR(q->dlx, "upmon.tasks");
	CHECK_STR(q->dlrk, "monitor_tasks");
	CHECK_STR(q->bind_exchange[0], "upmon.retry");
	CHECK_STR(q->bind_key[0], "monitor_tasks.retry.1");
	q = find(s, n, "monitor_tasks.retry.5");
	REQUIRE(q != NULL);
	CHECK_EQ(q->ttl_ms, 16000);
	CHECK(find(s, n, "monitor_tasks.retry.6") == NULL);

	q = find(s, n, "monitor_tasks_dead");
	REQUIRE(q != NULL);
	CHECK(q->dlx == NULL);
	CHECK_EQ(q->ttl_ms, 0);
	CHECK_STR(q->bind_key[0], "monitor_tasks_dead");

	q = find(s, n, "notifications");
	REQUIRE(q != NULL);
	CHECK_STR(q->bind_exchange[0], "upmon.events");
	CHECK_STR(q->bind_key[0], "alert.#");
	CHECK_STR(q->bind_exchange[1], "upmon.retry");
	CHECK_STR(q->bind_key[1], "notifications");
	CHECK_STR(q->dlrk, "notifications_dead");

	q = find(s, n, "notifications.retry.3");
	REQUIRE(q != NULL);
	CHECK_EQ(q->ttl_ms, 20000);
	CHECK_STR(q->dlx, "upmon.retry");
	CHECK_STR(q->dlrk, "notifications");
	CHECK(find(s, n, "notifications_dead") != NULL);

	/* Too small an output array is an error, not a silent truncation. */
	CHECK_EQ(upmon_amqp_topology_queues(&cfg, s, 3, &n), UPMON_AMQP_ETOOBIG);

	/* Levels follow the configuration. */
	cfg.retry_levels = 2;
	cfg.notify_retry_levels = 1;
	REQUIRE(upmon_amqp_topology_queues(&cfg, s, UPMON_AMQP_QUEUES_MAX, &n) == 0);
	CHECK_EQ(n, (2 + 2) + (1 + 2));
}

static void
test_config_check(void)
{
	struct upmon_amqp_config cfg;
	struct upmon_amqp *c = NULL;
	char err[128];

	upmon_amqp_config_init(&cfg);
	CHECK_EQ(cfg.heartbeat_s, 30);
	CHECK_STR(cfg.queue_type, "quorum");
	CHECK_EQ(cfg.retry_levels, 5);
	CHECK_EQ(cfg.retry_base_ms, 1000);
	CHECK_EQ(cfg.retry_max_ms, 60000);
	CHECK_EQ(cfg.max_body, 1 << 20);
	CHECK_EQ(upmon_amqp_config_check(&cfg, err, sizeof(err)), UPMON_AMQP_EINVAL);
	CHECK_CONTAINS(err, "url");
	cfg.url = "amqp://u:p@127.0.0.1:5672/v";
	CHECK_EQ(upmon_amqp_config_check(&cfg, err, sizeof(err)), 0);
	cfg.queue_type = "stream";
	CHECK_EQ(upmon_amqp_config_check(&cfg, err, sizeof(err)), UPMON_AMQP_EINVAL);
	CHECK_CONTAINS(err, "quorum or classic");
	cfg.queue_type = "classic";
	cfg.retry_levels = 21;
	CHECK_EQ(upmon_amqp_config_check(&cfg, err, sizeof(err)), UPMON_AMQP_EINVAL);
	cfg.retry_levels = 3;
	cfg.retry_max_ms = 10;
	CHECK_EQ(upmon_amqp_config_check(&cfg, err, sizeof(err)), UPMON_AMQP_EINVAL);
	CHECK_CONTAINS(err, "base <= max");
	cfg.retry_max_ms = 60000;

	/* new() validates and never connects; free(NULL) is a no-op. */
	CHECK_EQ(upmon_amqp_new(&cfg, &c), 0);
	REQUIRE(c != NULL);
	CHECK_EQ(upmon_amqp_is_connected(c), 0);
	upmon_amqp_free(c);
	upmon_amqp_free(NULL);
	cfg.url = "amqp://u:p@[bad";
	CHECK_EQ(upmon_amqp_new(&cfg, &c), UPMON_AMQP_EINVAL);
	CHECK(c == NULL);
	cfg.url = "amqps://u:p@host/";
	CHECK_EQ(upmon_amqp_new(&cfg, &c), UPMON_AMQP_EINVAL);
}

static void
test_publish_validation(void)
{
	struct upmon_amqp_config cfg;
	struct upmon_amqp_message m;
	struct upmon_amqp *c;
	char id[UPMON_AMQP_ID_MAX + 1];
	uint64_t tag;

	upmon_amqp_config_init(&cfg);
	cfg.url = "amqp://u:p@127.0.0.1:1/v";       /* nothing listens: no I/O expected */
	cfg.max_body = 16;
	REQUIRE(upmon_amqp_new(&cfg, &c) == 0);
	memset(&m, 0, sizeof(m));
	m.exchange = "upmon.tasks";
	m.routing_key = "monitor_tasks";
	m.body = "{}";
	m.body_len = 2;
	CHECK_EQ(upmon_amqp_publish(c, &m, &tag), UPMON_AMQP_EINVAL);   /* no message_id */
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	m.message_id = id;
	CHECK_EQ(upmon_amqp_publish(c, &m, &tag), UPMON_AMQP_ETOOBIG);
	m.message_id = "t1";
	m.body = "01234567890123456789";
	m.body_len = 20;
	CHECK_EQ(upmon_amqp_publish(c, &m, &tag), UPMON_AMQP_ETOOBIG);
	CHECK_EQ(upmon_amqp_consume(c, "", 1), UPMON_AMQP_EINVAL);
	CHECK_EQ(upmon_amqp_consume(c, "q", 0), UPMON_AMQP_EINVAL);
	CHECK_EQ(upmon_amqp_unconfirmed(c), 0);
	CHECK_STR(upmon_amqp_strerror(UPMON_AMQP_ESTALE), "delivery from an earlier connection");
	upmon_amqp_free(c);
}

int
main(void)
{
	RUN(test_retry_ttl);
	RUN(test_names);
	RUN(test_topology_table);
	RUN(test_config_check);
	RUN(test_publish_validation);
	return test_finish();
}
