/* The check engine without a network: defaults, argument errors, tasks that cannot run
 * (they complete as failed results), the in-flight limit, and the SSRF guard refusing an
 * address before any socket exists. Checks against real servers are in
 * tests/integration/test_probe_checks.c. */
#include <errno.h>

#include "engine.h"
#include "test.h"
#include "upmon/msg.h"
#include "upmon/ssrf.h"

static void
http(struct upmon_task *t, const char *url)
{
	upmon_task_init(t);
	t->check.type = UPMON_CHECK_HTTP;
	t->check.timeout_ms = 2000;
	REQUIRE((t->check.url = strdup(url)) != NULL);
}

static void
test_defaults(void)
{
	struct probe_engine_config cfg;
	struct probe_engine *e = (struct probe_engine *)&cfg;

	probe_engine_config_init(&cfg);
	CHECK(cfg.guard == NULL);
	CHECK_EQ(cfg.max_body_bytes, 1024 * 1024);
	CHECK_EQ(cfg.max_inflight, 1024);
	CHECK(cfg.user_agent == NULL);	/* the engine sends "upmon-probe/<version>" */
	cfg.max_inflight = 0;
	CHECK_EQ(probe_engine_new(&cfg, &e), -EINVAL);
	CHECK(e == NULL);
	probe_engine_config_init(&cfg);
	cfg.max_body_bytes = 0;
	CHECK_EQ(probe_engine_new(&cfg, &e), -EINVAL);
	CHECK_EQ(probe_engine_new(NULL, &e), -EINVAL);
	CHECK_EQ(probe_engine_inflight(NULL), 0);
	probe_engine_free(NULL);
}

/* Runs t on e and returns the one result (ctx must come back). */
static struct probe_result
complete(struct probe_engine *e, struct upmon_task *t)
{
	struct probe_result r;
	void *ctx = NULL;
	int rc, i;

	memset(&r, 0, sizeof(r));
	CHECK_EQ(probe_engine_submit(e, t, (void *)0x5a), 0);
	for (i = 0; i < 100 && (rc = probe_engine_next(e, &ctx, &r)) == -EAGAIN; i++)
		REQUIRE(probe_engine_run(e, 100, -1) >= 0);
	CHECK_EQ(rc, 0);
	CHECK(ctx == (void *)0x5a);
	upmon_task_release(t);
	return r;
}

static void
test_cannot_run(void)
{
	struct probe_engine_config cfg;
	struct probe_engine *e = NULL;
	struct upmon_task t;
	struct probe_result r;

	probe_engine_config_init(&cfg);
	REQUIRE(probe_engine_new(&cfg, &e) == 0);

	http(&t, "gopher://127.0.0.1/");
	r = complete(e, &t);
	CHECK(!r.ok);
	CHECK_STR(r.error, "bad url: not http or https");

	http(&t, "http://[::1/");
	r = complete(e, &t);
	CHECK(!r.ok);
	CHECK_CONTAINS(r.error, "bad url: ");
	CHECK(strchr(r.error, '\n') == NULL);

	upmon_task_init(&t);
	t.check.type = UPMON_CHECK_TCP;
	t.check.host = strdup("a b");
	t.check.port = 80;
	r = complete(e, &t);
	CHECK_STR(r.error, "bad host");
	upmon_task_init(&t);
	t.check.type = UPMON_CHECK_TCP;
	t.check.host = strdup("1:2:3");
	t.check.port = 80;
	r = complete(e, &t);
	CHECK_STR(r.error, "bad host");
	upmon_task_init(&t);
	t.check.type = UPMON_CHECK_TCP;
	t.check.host = strdup("example.com");
	t.check.port = 0;
	r = complete(e, &t);
	CHECK_STR(r.error, "bad host or port");

	/* header injection */
	http(&t, "http://127.0.0.1:9/");
	t.check.headers = calloc(1, sizeof(*t.check.headers));
	t.check.nheaders = 1;
	t.check.headers[0].name = strdup("X-A");
	t.check.headers[0].value = strdup("b\r\nHost: evil");
	r = complete(e, &t);
	CHECK_STR(r.error, "bad request header");

	/* an unknown check type is the caller's error */
	http(&t, "http://127.0.0.1/");
	t.check.type = (enum upmon_check_type)7;
	CHECK_EQ(probe_engine_submit(e, &t, NULL), -EINVAL);
	CHECK_EQ(probe_engine_submit(e, NULL, NULL), -EINVAL);
	upmon_task_release(&t);
	CHECK_EQ(probe_engine_inflight(e), 0);
	probe_engine_free(e);
}

static void
test_inflight_limit(void)
{
	struct probe_engine_config cfg;
	struct probe_engine *e = NULL;
	struct upmon_task t;
	struct probe_result r;
	void *ctx;

	probe_engine_config_init(&cfg);
	cfg.max_inflight = 2;
	REQUIRE(probe_engine_new(&cfg, &e) == 0);
	http(&t, "ftp://x/");
	CHECK_EQ(probe_engine_submit(e, &t, (void *)1), 0);
	CHECK_EQ(probe_engine_submit(e, &t, (void *)2), 0);
	CHECK_EQ(probe_engine_inflight(e), 2);
	CHECK_EQ(probe_engine_submit(e, &t, (void *)3), -EAGAIN);
	CHECK_EQ(probe_engine_run(e, 0, -1), 2);
	CHECK_EQ(probe_engine_next(e, &ctx, &r), 0);
	CHECK(ctx == (void *)1);	/* in submission order */
	CHECK_EQ(probe_engine_submit(e, &t, (void *)3), 0);
	CHECK_EQ(probe_engine_next(e, &ctx, &r), 0);
	CHECK(ctx == (void *)2);
	CHECK_EQ(probe_engine_next(e, &ctx, &r), 0);
	CHECK(ctx == (void *)3);
	CHECK_EQ(probe_engine_next(e, &ctx, &r), -EAGAIN);
	CHECK_EQ(probe_engine_inflight(e), 0);
	upmon_task_release(&t);
	probe_engine_free(e);
}

/* The guard refuses in the open-socket callback: no packet is ever sent, so these need no
 * server (and must not reach one). */
static void
test_guard(void)
{
	struct probe_engine_config cfg;
	struct upmon_ssrf *g = NULL;
	struct upmon_task t;
	struct probe_result r;

	REQUIRE(upmon_ssrf_new(true, NULL, &g, NULL, 0) == 0);
	probe_engine_config_init(&cfg);
	cfg.guard = g;
	http(&t, "http://169.254.169.254/latest/meta-data/");
	CHECK_EQ(probe_check_run(&cfg, &t, &r), 0);
	upmon_task_release(&t);
	CHECK(!r.ok);
	CHECK(r.blocked);
	CHECK(!r.local_error);
	CHECK_STR(r.error, "blocked address 169.254.169.254 (cloud metadata)");
	CHECK_EQ(r.timings.connect_ms, -1);
	CHECK_EQ(r.timings.first_byte_ms, -1);

	http(&t, "http://0x7f.1:9/");
	CHECK_EQ(probe_check_run(&cfg, &t, &r), 0);
	upmon_task_release(&t);
	CHECK(r.blocked);
	CHECK_STR(r.error, "blocked address 127.0.0.1 (loopback)");

	http(&t, "http://[fd00::1]:9/");
	CHECK_EQ(probe_check_run(&cfg, &t, &r), 0);
	upmon_task_release(&t);
	CHECK(r.blocked);
	CHECK_STR(r.error, "blocked address fd00::1 (unique local)");
	upmon_ssrf_free(g);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_cannot_run);
	RUN(test_inflight_limit);
	RUN(test_guard);
	return test_finish();
}
