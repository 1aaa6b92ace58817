/*
 * The topology is declared on connect and again on demand, by two handles, without error;
 * afterwards every queue of the table exists exactly once with the configured arguments
 * (checked through the management API), the exchanges have their types, the bindings route,
 * and a handle with different arguments is refused with EPROTO instead of changing them.
 */
#include "test_amqp_support.h"

static struct upmon_amqp_config cfg;

static void
check_queue(struct json_object *queues, const struct upmon_amqp_queue_spec *s)
{
	struct json_object *q = NULL, *args, *v;
	size_t i, n = json_object_array_length(queues);

	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(queues, i);

		if (t_jstr(e, "name") && strcmp(t_jstr(e, "name"), s->name) == 0)
			q = e;
	}
	if (q == NULL) {
		test_fail(__FILE__, __LINE__, "queue %s missing", s->name);
		return;
	}
	args = t_jget(q, "arguments");
	CHECK_STR(t_jstr(q, "type"), "quorum");
	CHECK(json_object_get_boolean(t_jget(q, "durable")));
	CHECK_STR(t_jstr(args, "x-queue-type"), "quorum");
	v = t_jget(args, "x-message-ttl");
	if (s->ttl_ms > 0) {
		if (v == NULL)
			test_fail(__FILE__, __LINE__, "%s has no x-message-ttl: %s", s->name,
			    json_object_to_json_string(args));
		else
			CHECK_EQ(json_object_get_int64(v), s->ttl_ms);
	} else if (v != NULL) {
		test_fail(__FILE__, __LINE__, "%s has an x-message-ttl: %s", s->name,
		    json_object_to_json_string(args));
	}
	if (s->dlx != NULL) {
		CHECK_STR(t_jstr(args, "x-dead-letter-exchange"), s->dlx);
		CHECK_STR(t_jstr(args, "x-dead-letter-routing-key"), s->dlrk);
	} else {
		CHECK(t_jget(args, "x-dead-letter-exchange") == NULL);
	}
	fprintf(stderr, "  %-28s %s\n", s->name, json_object_to_json_string(args));
}

static void
test_declare_twice(void)
{
	struct upmon_amqp *a, *b;

	a = t_open(&cfg);                   /* declares on connect */
	CHECK_EQ(upmon_amqp_declare_topology(a), 0);
	CHECK_EQ(upmon_amqp_declare_topology(a), 0);
	b = t_open(&cfg);                   /* a second process declaring the same */
	CHECK_EQ(upmon_amqp_declare_topology(b), 0);
	CHECK(upmon_amqp_is_connected(a));
	CHECK(upmon_amqp_is_connected(b));
	upmon_amqp_free(b);
	upmon_amqp_free(a);
}

static void
test_queues_have_arguments(void)
{
	static struct upmon_amqp_queue_spec specs[UPMON_AMQP_QUEUES_MAX];
	struct json_object *queues;
	char path[512];
	size_t i, n;

	REQUIRE(upmon_amqp_topology_queues(&cfg, specs, UPMON_AMQP_QUEUES_MAX, &n) == 0);
	CHECK_EQ(n, (4 + 2) + (3 + 2));
	snprintf(path, sizeof(path), "/api/queues/%s", t_vhost_enc());
	queues = t_mgmt(path, NULL);
	REQUIRE(queues != NULL && json_object_is_type(queues, json_type_array));
	/* Exactly the queues of the table: declaring twice created no extra ones. */
	CHECK_EQ(json_object_array_length(queues), n);
	for (i = 0; i < n; i++)
		check_queue(queues, &specs[i]);
	/* The TTLs double per level and stop at the cap. */
	CHECK_EQ(specs[1].ttl_ms, 250);
	CHECK_EQ(specs[2].ttl_ms, 500);
	CHECK_EQ(specs[4].ttl_ms, 1500);
	json_object_put(queues);
}

static void
test_exchanges(void)
{
	static const char *names[][2] = {
		{ "upmon.tasks", "direct" }, { "upmon.events", "topic" }, { "upmon.retry", "direct" },
	};
	struct json_object *x;
	char path[512];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/api/exchanges/%s/%s", t_vhost_enc(), names[i][0]);
		x = t_mgmt(path, NULL);
		REQUIRE(x != NULL);
		CHECK_STR(t_jstr(x, "type"), names[i][1]);
		CHECK(json_object_get_boolean(t_jget(x, "durable")));
		json_object_put(x);
	}
}

static void
test_bindings_route(void)
{
	struct upmon_amqp_message m;
	struct upmon_amqp *c = t_open(&cfg);

	m = t_msg("upmon.tasks", "monitor_tasks", "route-1", "{}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(c, &m, 10000), 0);
	m = t_msg("upmon.events", "alert.down", "route-2", "{}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(c, &m, 10000), 0);
	/* status.* has no queue in the shared topology (gateways bind their own). */
	m = t_msg("upmon.events", "status.1.2", "route-3", "{}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(c, &m, 10000), UPMON_AMQP_ERETURNED);
	m = t_msg("upmon.retry", "monitor_tasks_dead", "route-4", "{}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(c, &m, 10000), 0);
	m = t_msg("upmon.retry", "notifications", "route-5", "{}", NULL);
	CHECK_EQ(upmon_amqp_publish_sync(c, &m, 10000), 0);
	upmon_amqp_free(c);
}

static void
test_mismatch_refused(void)
{
	struct upmon_amqp_config other = cfg;
	struct upmon_amqp *c = NULL;
	struct json_object *q;
	char path[512];
	int rc;

	other.retry_base_ms = 300;          /* different x-message-ttl */
	REQUIRE(upmon_amqp_new(&other, &c) == 0);
	rc = upmon_amqp_connect(c, 3000);
	CHECK_EQ(rc, UPMON_AMQP_EPROTO);
	CHECK_EQ(upmon_amqp_is_connected(c), 0);
	upmon_amqp_free(c);
	/* ...and the existing queue kept its arguments. */
	snprintf(path, sizeof(path), "/api/queues/%s/monitor_tasks.retry.1", t_vhost_enc());
	q = t_mgmt(path, NULL);
	REQUIRE(q != NULL);
	CHECK_EQ(json_object_get_int64(t_jget(t_jget(q, "arguments"), "x-message-ttl")), 250);
	json_object_put(q);
}

int
main(void)
{
	t_log_init();
	t_config(&cfg);
	cfg.retry_levels = 4;
	cfg.retry_base_ms = 250;
	cfg.retry_max_ms = 1500;
	cfg.notify_retry_levels = 3;
	cfg.notify_retry_base_ms = 400;
	cfg.notify_retry_max_ms = 1000;
	RUN(test_declare_twice);
	RUN(test_queues_have_arguments);
	RUN(test_exchanges);
	RUN(test_bindings_route);
	RUN(test_mismatch_refused);
	return test_finish();
}
