/*
 * clients.h: the shared settings reach the amqp, db and cache configurations, and what they
 * produce passes each module's own checks.
 */
#include "test.h"

#include "upmon/clients.h"

static void
load_defaults(struct upmon_common_settings *s)
{
	struct upmon_config_table t;
	char *env[] = { NULL };
	struct upmon_config_source src = { 0 };

	memset(s, 0, sizeof(*s));
	t = upmon_common_table(s);
	src.envp = env;
	REQUIRE(upmon_config_load(&t, 1, &src) == 0);
}

static void
test_defaults_are_valid(void)
{
	struct upmon_common_settings s;
	struct upmon_config_table t;
	struct upmon_amqp_config a;
	struct upmon_db_config d;
	struct upmon_cache_config c;
	struct upmon_amqp *amqp = NULL;
	struct upmon_db *db = NULL;
	struct upmon_cache *cache = NULL;
	char err[256];

	load_defaults(&s);
	upmon_amqp_config_from(&a, &s, "test");
	CHECK_EQ(upmon_amqp_config_check(&a, err, sizeof(err)), 0);
	CHECK_EQ(upmon_amqp_new(&a, &amqp), 0);
	upmon_db_config_from(&d, &s, "test");
	CHECK_EQ(upmon_db_new(&d, &db), 0);
	upmon_cache_config_from(&c, &s);
	CHECK_EQ(upmon_cache_new(&c, &cache), 0);
	upmon_amqp_free(amqp);
	upmon_db_free(db);
	upmon_cache_free(cache);
	t = upmon_common_table(&s);
	upmon_config_release(&t, 1);
}

static void
test_mapping(void)
{
	struct upmon_common_settings s;
	struct upmon_config_table t;
	struct upmon_amqp_config a;
	struct upmon_db_config d;
	struct upmon_cache_config c;

	load_defaults(&s);
	s.amqp_heartbeat = 7;
	s.amqp_queue_type = UPMON_QUEUE_CLASSIC;
	s.retry_levels = 3;
	s.retry_base_ms = 250;
	s.retry_max_ms = 900;
	s.reconnect_max_ms = 150;
	s.max_message_bytes = 8192;
	s.pg_connect_timeout = 9;
	s.pg_statement_timeout_ms = 1234;
	s.redis_timeout_ms = 77;

	upmon_amqp_config_from(&a, &s, "svc");
	CHECK_STR(a.url, s.amqp_url);
	CHECK_STR(a.service, "svc");
	CHECK_EQ(a.heartbeat_s, 7);
	CHECK_STR(a.queue_type, "classic");
	CHECK_EQ(a.retry_levels, 3);
	CHECK_EQ(a.retry_base_ms, 250);
	CHECK_EQ(a.retry_max_ms, 900);
	CHECK_EQ(a.reconnect_max_ms, 150);
	CHECK_INT(a.reconnect_base_ms, <=, 150);
	CHECK_EQ(a.max_body, 8192);

	upmon_db_config_from(&d, &s, "app");
	CHECK_STR(d.url, s.pg_url);
	CHECK_STR(d.application_name, "app");
	CHECK_EQ(d.connect_timeout_s, 9);
	CHECK_EQ(d.statement_timeout_ms, 1234);
	CHECK_EQ(d.reconnect_max_ms, 150);
	CHECK_INT(d.reconnect_min_ms, <=, 150);

	upmon_cache_config_from(&c, &s);
	CHECK_STR(c.url, s.redis_url);
	CHECK_EQ(c.connect_timeout_ms, 77);
	CHECK_EQ(c.op_timeout_ms, 77);
	CHECK_EQ(c.backoff_max_ms, 150);
	s.reconnect_max_ms = 60000;
	upmon_cache_config_from(&c, &s);
	CHECK_EQ(c.backoff_max_ms, 2000);	/* a Redis that is back is used within seconds */
	t = upmon_common_table(&s);
	upmon_config_release(&t, 1);
}

int
main(void)
{
	RUN(test_defaults_are_valid);
	RUN(test_mapping);
	return test_finish();
}
