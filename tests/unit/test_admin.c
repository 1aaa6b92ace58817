/*
 * admin: an endpoint on a free port answers /healthz, /readyz (503 until every check passes,
 * naming what is not ready), /metrics (accepted by promtool, and a counter increment shows
 * in the next scrape), 404 and 405 as JSON; binding errors are reported.
 */
#include "test.h"

#include <curl/curl.h>
#include <errno.h>
#include <unistd.h>

#include "upmon/admin.h"
#include "upmon/metrics.h"

struct response {
	long status;
	char *body;
	size_t len;
	char ctype[128];
};

static size_t
collect(char *data, size_t size, size_t n, void *arg)
{
	struct response *r = arg;
	char *p = realloc(r->body, r->len + size * n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + r->len, data, size * n);
	r->len += size * n;
	p[r->len] = '\0';
	r->body = p;
	return size * n;
}

/* Requests path on the endpoint with method (NULL = GET); fills r (free r->body). */
static int
fetch(int port, const char *method, const char *path, struct response *r)
{
	CURL *c = curl_easy_init();
	char url[256];
	char *ct = NULL;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	REQUIRE(c != NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (method != NULL && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (method != NULL)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
	curl_easy_cleanup(c);
	if (r->body == NULL)
		r->body = calloc(1, 1);
	return rc == CURLE_OK ? 0 : -1;
}

static int db_up;

static int
db_check(void *arg, char *reason, size_t size)
{
	(void)arg;
	if (db_up)
		return 0;
	snprintf(reason, size, "connection refused");
	return -1;
}

static void
test_endpoints(void)
{
	const char *not_ready[] = { "amqp", NULL };
	struct upmon_admin_config cfg = { "127.0.0.1", 0, "test", 2, not_ready };
	struct upmon_metrics *m = upmon_metrics_new();
	struct upmon_counter *c;
	struct upmon_admin *a = NULL;
	struct response r;
	char path[] = "/tmp/upmon-test-admin-XXXXXX";
	int port, fd;
	FILE *f;

	REQUIRE(m != NULL);
	REQUIRE(upmon_metrics_add_process(m, "test", "0.1.0") == 0);
	c = upmon_metrics_counter(m, "upmon_test_requests_total", "Requests.", "path", "/x",
	    NULL);
	REQUIRE(upmon_admin_start(&cfg, m, &a) == 0);
	port = upmon_admin_port(a);
	CHECK_INT(port, >, 0);
	CHECK_INT(port, <, 65536);

	REQUIRE(fetch(port, NULL, "/healthz", &r) == 0);
	CHECK_EQ(r.status, 200);
	CHECK_STR(r.body, "ok\n");
	CHECK_CONTAINS(r.ctype, "text/plain");
	free(r.body);

	REQUIRE(fetch(port, "HEAD", "/healthz", &r) == 0);
	CHECK_EQ(r.status, 200);
	CHECK_EQ(r.len, 0);
	free(r.body);

	/* not ready: a flag declared at start and a failing callback */
	CHECK_EQ(upmon_admin_add_check(a, "db", db_check, NULL), 0);
	REQUIRE(fetch(port, NULL, "/readyz", &r) == 0);
	CHECK_EQ(r.status, 503);
	CHECK_CONTAINS(r.ctype, "application/json");
	CHECK_STR(r.body, "{\"ready\":false,\"not_ready\":[\"amqp\",\"db\"],\"checks\":"
	    "{\"amqp\":\"not ready\",\"db\":\"connection refused\"}}");
	free(r.body);
	CHECK(!upmon_admin_is_ready(a));

	CHECK_EQ(upmon_admin_set_ready(a, "amqp", true), 0);
	REQUIRE(fetch(port, NULL, "/readyz", &r) == 0);
	CHECK_EQ(r.status, 503);
	CHECK_CONTAINS(r.body, "\"not_ready\":[\"db\"]");
	free(r.body);

	db_up = 1;
	REQUIRE(fetch(port, NULL, "/readyz", &r) == 0);
	CHECK_EQ(r.status, 200);
	CHECK_STR(r.body, "{\"ready\":true,\"checks\":{\"amqp\":\"ok\",\"db\":\"ok\"}}");
	free(r.body);
	CHECK(upmon_admin_is_ready(a));

	/* draining on SIGTERM */
	CHECK_EQ(upmon_admin_set_ready(a, "shutdown", false), 0);
	REQUIRE(fetch(port, NULL, "/readyz", &r) == 0);
	CHECK_EQ(r.status, 503);
	CHECK_CONTAINS(r.body, "\"not_ready\":[\"shutdown\"]");
	free(r.body);
	CHECK_EQ(upmon_admin_set_ready(a, "shutdown", true), 0);

	/* metrics: format, promtool, and an increment visible in the next scrape */
	REQUIRE(fetch(port, NULL, "/metrics", &r) == 0);
	CHECK_EQ(r.status, 200);
	CHECK_STR(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	CHECK_CONTAINS(r.body, "upmon_test_requests_total{path=\"/x\"} 0\n");
	CHECK_CONTAINS(r.body, "upmon_build_info{version=\"0.1.0\",service=\"test\"} 1\n");
	CHECK_CONTAINS(r.body, "# TYPE process_resident_memory_bytes gauge\n");
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	f = fdopen(fd, "w");
	REQUIRE(f != NULL);
	fwrite(r.body, 1, r.len, f);
	fclose(f);
	CHECK_EQ(test_sh("promtool check metrics < %s", path), 0);
	unlink(path);
	free(r.body);
	upmon_counter_inc(c);
	REQUIRE(fetch(port, NULL, "/metrics?x=1", &r) == 0);
	CHECK_EQ(r.status, 200);
	CHECK_CONTAINS(r.body, "upmon_test_requests_total{path=\"/x\"} 1\n");
	free(r.body);

	REQUIRE(fetch(port, NULL, "/nope", &r) == 0);
	CHECK_EQ(r.status, 404);
	CHECK_CONTAINS(r.ctype, "application/json");
	CHECK_STR(r.body, "{\"error\":\"not found\"}\n");
	free(r.body);
	REQUIRE(fetch(port, NULL, "/healthz/extra", &r) == 0);
	CHECK_EQ(r.status, 404);
	free(r.body);

	REQUIRE(fetch(port, "POST", "/metrics", &r) == 0);
	CHECK_EQ(r.status, 405);
	CHECK_STR(r.body, "{\"error\":\"method not allowed\"}\n");
	free(r.body);

	upmon_admin_stop(a);
	/* the port is released */
	CHECK(fetch(port, NULL, "/healthz", &r) != 0);
	free(r.body);
	upmon_metrics_free(m);
}

static void
test_errors(void)
{
	struct upmon_admin_config cfg = { NULL, 0, "test", 0, NULL };
	struct upmon_admin *a = NULL, *b = NULL;
	char name[16];
	int i;

	cfg.addr = "localhost";
	CHECK_EQ(upmon_admin_start(&cfg, NULL, &a), -EINVAL);
	cfg.addr = "::1";
	CHECK_EQ(upmon_admin_start(&cfg, NULL, &a), -EINVAL);
	cfg.addr = NULL;
	cfg.port = 70000;
	CHECK_EQ(upmon_admin_start(&cfg, NULL, &a), -EINVAL);
	cfg.port = 0;
	REQUIRE(upmon_admin_start(&cfg, NULL, &a) == 0);	/* default 127.0.0.1 */
	CHECK(upmon_admin_is_ready(a));	/* no checks: ready */
	cfg.port = upmon_admin_port(a);
	CHECK_EQ(upmon_admin_start(&cfg, NULL, &b), -EIO);	/* port taken */
	CHECK(b == NULL);

	CHECK_EQ(upmon_admin_set_ready(a, "", true), -EINVAL);
	CHECK_EQ(upmon_admin_set_ready(a, "a-name-that-is-far-too-long-for-a-check", true),
	    -EINVAL);
	CHECK_EQ(upmon_admin_add_check(a, "cb", db_check, NULL), 0);
	CHECK_EQ(upmon_admin_set_ready(a, "cb", true), -EINVAL);
	for (i = 0; i < 15; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		CHECK_EQ(upmon_admin_set_ready(a, name, true), 0);
	}
	CHECK_EQ(upmon_admin_set_ready(a, "one-too-many", true), -ENOSPC);
	upmon_admin_stop(a);
	upmon_admin_stop(NULL);
	CHECK_EQ(upmon_admin_port(NULL), -1);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_endpoints);
	RUN(test_errors);
	curl_global_cleanup();
	return test_finish();
}
