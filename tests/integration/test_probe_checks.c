/*
 * The probe's check engine against real servers on loopback: upmon-test-target (HTTP and
 * TCP, on 127.0.0.1 and 127.0.0.2) and `openssl s_server` (HTTPS with a fresh self-signed
 * certificate). Needs no broker or database; it lives here because it starts servers.
 *
 * Covers: up with ordered timings, 500, connection refused, timeout, keyword present/absent
 * (and over the body cap), expected status ranges, redirects followed / too many / not
 * followed, max response time, HEAD/POST/PUT with headers and body, TCP up/refused, TLS
 * verify failure and certificate expiry, the SSRF guard (loopback, metadata, private, a
 * redirect to loopback, localhost, decimal/octal/hex spellings, mapped IPv6, TCP) with the
 * target's /stats proving no connection was made, 500 concurrent checks through one engine,
 * and a small throughput figure (printed, not asserted).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "test.h"
#include "upmon/config.h"
#include "upmon/backoff.h"
#include "upmon/msg.h"
#include "upmon/ssrf.h"

static pid_t target_pid = -1, tls_pid = -1;
static int port1, port2, tls_port;	/* target on 127.0.0.1 and 127.0.0.2; s_server */
static char tmpdir[256];
static struct probe_engine_config cfg;

static void
stop_servers(void)
{
	if (target_pid > 0) {
		kill(target_pid, SIGTERM);
		waitpid(target_pid, NULL, 0);
		target_pid = -1;
	}
	if (tls_pid > 0) {
		kill(tls_pid, SIGTERM);
		waitpid(tls_pid, NULL, 0);
		tls_pid = -1;
	}
	if (tmpdir[0] != '\0') {
		test_sh("rm -rf '%s'", tmpdir);
		tmpdir[0] = '\0';
	}
}

static pid_t
spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		FILE *f = freopen(log, "w", stderr);

		(void)f;
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void
start_target(void)
{
	char bin[1024], pf[512], log[512];
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--listen", "127.0.0.2:0",
	    "--port-file", pf, "--threads", "128", NULL };
	FILE *f;
	char a1[64], a2[64];
	int i;

	snprintf(bin, sizeof(bin), "%s/upmon-test-target", test_env("UPMON_BIN_DIR"));
	snprintf(pf, sizeof(pf), "%s/target.ports", tmpdir);
	snprintf(log, sizeof(log), "%s/target.log", tmpdir);
	REQUIRE((target_pid = spawn(argv, log)) > 0);
	for (i = 0; i < 100; i++) {
		if ((f = fopen(pf, "r")) != NULL) {
			REQUIRE(fscanf(f, "%63s %d %63s %d", a1, &port1, a2, &port2) == 4);
			fclose(f);
			break;
		}
		upmon_sleep_ms(50);
	}
	REQUIRE(port1 > 0 && port2 > 0);
	CHECK_STR(a1, "127.0.0.1");
	CHECK_STR(a2, "127.0.0.2");
}

/* HTTPS: openssl s_server with a self-signed certificate valid for 30 days. */
static void
start_tls(void)
{
	char cert[512], key[512], log[512], portarg[16];
	char *argv[] = { "/usr/bin/openssl", "s_server", "-quiet", "-www", "-accept", portarg,
	    "-cert", cert, "-key", key, NULL };

	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(log, sizeof(log), "%s/tls.log", tmpdir);
	REQUIRE(test_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost "
	    "-keyout '%s' -out '%s' 2>/dev/null", key, cert) == 0);
	tls_port = test_free_port();
	snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", tls_port);
	REQUIRE((tls_pid = spawn(argv, log)) > 0);
	REQUIRE(test_wait_port(tls_port, 5000) == 0);
}

/* GET /stats on 127.0.0.1 over a plain socket: the target's connection counter. */
static void
stats(long *requests, long *connections)
{
	struct sockaddr_in sin;
	char buf[1024], *p;
	size_t len = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	const char req[] = "GET /stats HTTP/1.0\r\n\r\n";

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port1);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	REQUIRE(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
	while (len + 1 < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	REQUIRE((p = strstr(buf, "{\"requests\":")) != NULL);
	REQUIRE(sscanf(p, "{\"requests\":%ld,\"connections\":%ld}", requests, connections) == 2);
}

static void
http_task(struct upmon_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
http_task(struct upmon_task *t, const char *fmt, ...)
{
	char url[UPMON_URL_MAX + 1];
	va_list ap;

	upmon_task_init(t);
	va_start(ap, fmt);
	vsnprintf(url, sizeof(url), fmt, ap);
	va_end(ap);
	snprintf(t->monitor_id, sizeof(t->monitor_id), "m1");
	t->check.type = UPMON_CHECK_HTTP;
	t->check.timeout_ms = 5000;
	REQUIRE((t->check.url = strdup(url)) != NULL);
}

static void
tcp_task(struct upmon_task *t, const char *host, int port)
{
	upmon_task_init(t);
	t->check.type = UPMON_CHECK_TCP;
	t->check.timeout_ms = 5000;
	REQUIRE((t->check.host = strdup(host)) != NULL);
	t->check.port = port;
}

/* Runs t with cfg, releases t, returns the result. */
static struct probe_result
run(struct upmon_task *t, const struct probe_engine_config *c)
{
	struct probe_result r;

	memset(&r, 0, sizeof(r));
	CHECK_EQ(probe_check_run(c, t, &r), 0);
	upmon_task_release(t);
	return r;
}

static struct probe_result
get(const char *path)
{
	struct upmon_task t;

	http_task(&t, "http://127.0.0.1:%d%s", port1, path);
	return run(&t, &cfg);
}

static void
test_up(void)
{
	struct probe_result r = get("/ok");

	CHECK(r.ok);
	CHECK_EQ(r.status_code, 200);
	CHECK_STR(r.error, "");
	CHECK(!r.blocked);
	CHECK(!r.has_cert);
	CHECK_INT(r.timings.dns_ms, >=, 0);
	CHECK_INT(r.timings.connect_ms, >=, r.timings.dns_ms);
	CHECK_EQ(r.timings.tls_ms, -1);
	CHECK_INT(r.timings.first_byte_ms, >=, r.timings.connect_ms);
	CHECK_INT(r.timings.total_ms, >=, r.timings.first_byte_ms);
	CHECK_EQ(r.latency_ms, r.timings.total_ms);
	CHECK_INT(r.latency_ms, <, 2000);
}

static void
test_status_500(void)
{
	struct probe_result r = get("/status/500");

	CHECK(!r.ok);
	CHECK_EQ(r.status_code, 500);
	CHECK_STR(r.error, "status 500 not in 200-299");
	r = get("/nope");
	CHECK(!r.ok);
	CHECK_STR(r.error, "status 404 not in 200-299");
}

static void
test_refused(void)
{
	struct upmon_task t;
	struct probe_result r;

	http_task(&t, "http://127.0.0.1:%d/ok", test_free_port());
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK(!r.blocked);
	CHECK_EQ(r.status_code, 0);
	CHECK_STR(r.error, "connection refused");
	CHECK_EQ(r.timings.first_byte_ms, -1);
	CHECK_INT(r.timings.total_ms, >=, 0);
}

/* A name glibc refuses without asking any server (empty label): no traffic leaves. */
static void
test_dns_failure(void)
{
	struct upmon_task t;
	struct probe_result r;

	http_task(&t, "http://bad..invalid/");
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK(!r.blocked);
	CHECK_STR(r.error, "dns: could not resolve host bad..invalid");
	CHECK_EQ(r.timings.connect_ms, -1);
	tcp_task(&t, "bad..invalid", 80);
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "dns: could not resolve host bad..invalid");
}

static void
test_timeout(void)
{
	struct upmon_task t;
	struct probe_result r;

	http_task(&t, "http://127.0.0.1:%d/slow/3000", port1);
	t.check.timeout_ms = 500;
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "timeout after 500 ms");
	CHECK_INT(r.latency_ms, >=, 450);
	CHECK_INT(r.latency_ms, <, 2000);
	CHECK_INT(r.timings.connect_ms, >=, 0);
}

static void
test_keyword(void)
{
	struct upmon_task t;
	struct probe_result r;
	struct probe_engine_config small = cfg;

	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	t.check.keyword = strdup("upmon ok");
	r = run(&t, &cfg);
	CHECK(r.ok);
	CHECK_STR(r.error, "");

	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	t.check.keyword = strdup("nothere");
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_EQ(r.status_code, 200);
	CHECK_STR(r.error, "keyword \"nothere\" not found");

	/* absent rule */
	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	t.check.keyword = strdup("upmon");
	t.check.keyword_absent = true;
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "keyword \"upmon\" found");

	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	t.check.keyword = strdup("error");
	t.check.keyword_absent = true;
	r = run(&t, &cfg);
	CHECK(r.ok);

	/* over the body cap: only the first 4 bytes ("upmo") are kept and searched */
	small.max_body_bytes = 4;
	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	t.check.keyword = strdup("ok");
	r = run(&t, &small);
	CHECK(!r.ok);
	CHECK_STR(r.error, "keyword \"ok\" not found in the first 4 bytes (response larger)");
	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	t.check.keyword = strdup("upmo");
	r = run(&t, &small);
	CHECK(r.ok);
}

/* A body over max_body_bytes is not read to its end, keyword or not. */
static void
test_body_cap(void)
{
	struct upmon_task t;
	struct probe_result r;
	struct probe_engine_config small = cfg;
	long req0, conn0, req1, conn1;

	small.max_body_bytes = 1000;
	http_task(&t, "http://127.0.0.1:%d/bytes/50000000", port1);
	r = run(&t, &small);
	CHECK(r.ok);
	CHECK_EQ(r.status_code, 200);
	CHECK_STR(r.error, "");
	CHECK_INT(r.latency_ms, <, 1000);

	http_task(&t, "http://127.0.0.1:%d/bytes/50000000", port1);
	t.check.keyword = strdup("xxxx");
	r = run(&t, &small);
	CHECK(r.ok);

	http_task(&t, "http://127.0.0.1:%d/bytes/50000000", port1);
	t.check.keyword = strdup("y");
	r = run(&t, &small);
	CHECK(!r.ok);
	CHECK_STR(r.error, "keyword \"y\" not found in the first 1000 bytes (response larger)");

	/* exactly the cap is a whole response */
	http_task(&t, "http://127.0.0.1:%d/bytes/1000", port1);
	t.check.keyword = strdup("y");
	r = run(&t, &small);
	CHECK(!r.ok);
	CHECK_STR(r.error, "keyword \"y\" not found");

	/* status is still judged */
	stats(&req0, &conn0);
	http_task(&t, "http://127.0.0.1:%d/status/503", port1);
	t.check.keyword = strdup("status");
	r = run(&t, &small);
	CHECK(!r.ok);
	CHECK_STR(r.error, "status 503 not in 200-299");
	stats(&req1, &conn1);
	CHECK_EQ(conn1 - conn0, 2);
}

static void
test_expected_ranges(void)
{
	struct upmon_task t;
	struct probe_result r;
	const char *codes[] = { "200-299", "301" };
	int i;

	for (i = 0; i < 3; i++) {
		const char *path[] = { "/status/301", "/status/204", "/status/302" };

		http_task(&t, "http://127.0.0.1:%d%s", port1, path[i]);
		t.check.nexpected = 2;
		CHECK_EQ(upmon_status_range_parse(codes[0], &t.check.expected[0]), 0);
		CHECK_EQ(upmon_status_range_parse(codes[1], &t.check.expected[1]), 0);
		r = run(&t, &cfg);
		if (i < 2) {
			CHECK(r.ok);
			CHECK_STR(r.error, "");
		} else {
			CHECK(!r.ok);
			CHECK_EQ(r.status_code, 302);
			CHECK_STR(r.error, "status 302 not in 200-299,301");
		}
	}
}

/* Percent-encodes s for a query parameter. */
static void
urlenc(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s != '\0' && n + 4 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_') {
			out[n++] = (char)c;
		} else {
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	out[n] = '\0';
}

/* A URL that redirects `hops` times on host:port before landing on final. */
static void
redirect_chain(char *url, size_t size, const char *host, int port, int hops, const char *final)
{
	char inner[UPMON_URL_MAX], enc[UPMON_URL_MAX];
	int i, n;

	snprintf(url, size, "%s", final);
	for (i = 0; i < hops; i++) {
		snprintf(inner, sizeof(inner), "%s", url);
		urlenc(inner, enc, sizeof(enc));
		n = snprintf(url, size, "http://%s:%d/redirect?to=%s", host, port, enc);
		REQUIRE(n > 0 && (size_t)n < size);	/* the chains of this test are short */
	}
}

static void
test_redirects(void)
{
	char url[UPMON_URL_MAX], final[128];
	struct upmon_task t;
	struct probe_result r;

	snprintf(final, sizeof(final), "http://127.0.0.1:%d/ok", port1);
	redirect_chain(url, sizeof(url), "127.0.0.1", port1, 2, final);
	http_task(&t, "%s", url);
	t.check.keyword = strdup("upmon ok");
	r = run(&t, &cfg);
	CHECK(r.ok);
	CHECK_EQ(r.status_code, 200);

	redirect_chain(url, sizeof(url), "127.0.0.1", port1, 4, final);
	http_task(&t, "%s", url);
	t.check.max_redirects = 3;
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "too many redirects");

	http_task(&t, "%s", url);
	t.check.follow_redirects = false;
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_EQ(r.status_code, 302);
	CHECK_STR(r.error, "status 302 not in 200-299");

	/* only http and https, also after a redirect */
	http_task(&t, "http://127.0.0.1:%d/redirect?to=file%%3A%%2F%%2F%%2Fetc%%2Fpasswd", port1);
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_CONTAINS(r.error, "unsupported protocol");
}

static void
test_max_latency(void)
{
	struct upmon_task t;
	struct probe_result r;
	char want[64];

	http_task(&t, "http://127.0.0.1:%d/slow/300", port1);
	t.check.max_latency_ms = 100;
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_EQ(r.status_code, 200);
	CHECK_INT(r.latency_ms, >=, 300);
	snprintf(want, sizeof(want), "response time %d ms exceeds 100 ms", r.latency_ms);
	CHECK_STR(r.error, want);

	http_task(&t, "http://127.0.0.1:%d/slow/10", port1);
	t.check.max_latency_ms = 2000;
	r = run(&t, &cfg);
	CHECK(r.ok);
}

static struct probe_result
echo(enum upmon_http_method m, const char *body, const char *keyword)
{
	struct upmon_task t;

	http_task(&t, "http://127.0.0.1:%d/echo", port1);
	t.check.method = m;
	if (body != NULL)
		t.check.body = strdup(body);
	t.check.headers = calloc(2, sizeof(*t.check.headers));
	t.check.nheaders = 2;
	t.check.headers[0].name = strdup("X-Upmon-Test");
	t.check.headers[0].value = strdup("abc 123");
	t.check.headers[1].name = strdup("Content-Type");
	t.check.headers[1].value = strdup("application/json");
	if (keyword != NULL)
		t.check.keyword = strdup(keyword);
	return run(&t, &cfg);
}

static void
test_methods(void)
{
	struct probe_result r;
	long req0, req1, conn0, conn1;

	r = echo(UPMON_HTTP_POST, "{\"hello\":\"world\"}", "method POST\n");
	CHECK(r.ok);
	CHECK_STR(r.error, "");
	r = echo(UPMON_HTTP_POST, "{\"hello\":\"world\"}", "header X-Upmon-Test: abc 123\n");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_POST, "{\"hello\":\"world\"}",
	    "header Content-Type: application/json\n");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_POST, "{\"hello\":\"world\"}", "body\n{\"hello\":\"world\"}");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_POST, "{\"hello\":\"world\"}", "Expect");
	CHECK(!r.ok);		/* no "Expect: 100-continue" */
	r = echo(UPMON_HTTP_PUT, "put body", "method PUT\n");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_PUT, "put body", "body\nput body");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_DELETE, NULL, "method DELETE\n");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_PATCH, "p", "method PATCH\n");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_OPTIONS, NULL, "method OPTIONS\n");
	CHECK(r.ok);
	r = echo(UPMON_HTTP_GET, NULL, "method GET\n");
	CHECK(r.ok);
	{
		char ua[64];

		snprintf(ua, sizeof(ua), "User-Agent: upmon-probe/%s", upmon_version());
		r = echo(UPMON_HTTP_GET, NULL, ua);
		CHECK(r.ok);
	}
	/* HEAD: the target answers with headers only; one request reached it */
	stats(&req0, &conn0);
	r = echo(UPMON_HTTP_HEAD, NULL, NULL);
	CHECK(r.ok);
	CHECK_EQ(r.status_code, 200);
	stats(&req1, &conn1);
	CHECK_EQ(req1 - req0, 2);
}

static void
test_tcp(void)
{
	struct upmon_task t;
	struct probe_result r;

	tcp_task(&t, "127.0.0.1", port1);
	r = run(&t, &cfg);
	CHECK(r.ok);
	CHECK_STR(r.error, "");
	CHECK_EQ(r.status_code, 0);
	CHECK_INT(r.timings.dns_ms, >=, 0);
	CHECK_INT(r.timings.connect_ms, >=, r.timings.dns_ms);
	CHECK_EQ(r.timings.tls_ms, -1);
	CHECK_EQ(r.timings.first_byte_ms, -1);
	CHECK_INT(r.timings.total_ms, >=, r.timings.connect_ms);

	tcp_task(&t, "localhost", port1);
	r = run(&t, &cfg);
	CHECK(r.ok);

	tcp_task(&t, "127.0.0.1", test_free_port());
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "connection refused");

	tcp_task(&t, "::1", test_free_port());
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "connection refused");

	tcp_task(&t, "bad/host", 80);
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_STR(r.error, "bad host");
}

static void
test_tls(void)
{
	struct upmon_task t;
	struct probe_result r;
	int64_t now = upmon_wall_ms();

	start_tls();
	http_task(&t, "https://127.0.0.1:%d/", tls_port);
	r = run(&t, &cfg);
	CHECK(!r.ok);
	CHECK_CONTAINS(r.error, "tls: certificate verify failed: ");
	CHECK_CONTAINS(r.error, "self-signed certificate");

	http_task(&t, "https://127.0.0.1:%d/", tls_port);
	t.check.verify_tls = false;
	t.check.cert_expiry_days = 14;
	r = run(&t, &cfg);
	CHECK(r.ok);
	CHECK_STR(r.error, "");
	CHECK_EQ(r.status_code, 200);
	CHECK(r.has_cert);
	CHECK_INT(r.cert_days_left, >=, 29);
	CHECK_INT(r.cert_days_left, <=, 30);
	CHECK_INT(r.cert_not_after_ms, >, now + 29LL * 86400000);
	CHECK_INT(r.cert_not_after_ms, <, now + 31LL * 86400000);
	CHECK_INT(r.timings.connect_ms, >=, r.timings.dns_ms);
	CHECK_INT(r.timings.tls_ms, >=, r.timings.connect_ms);
	CHECK_INT(r.timings.first_byte_ms, >=, r.timings.tls_ms);
	CHECK_INT(r.timings.total_ms, >=, r.timings.first_byte_ms);

	/* http:// redirecting to https://: the TLS phase and the certificate are still seen */
	http_task(&t, "http://127.0.0.1:%d/redirect?to=https%%3A%%2F%%2F127.0.0.1%%3A%d%%2F",
	    port1, tls_port);
	t.check.verify_tls = false;
	r = run(&t, &cfg);
	CHECK(r.ok);
	CHECK(r.has_cert);
	CHECK_INT(r.cert_days_left, >=, 29);
	CHECK_INT(r.timings.tls_ms, >=, 0);
}

static void
expect_blocked(const struct probe_result *r, const char *what)
{
	test_checks++;
	if (r->ok || !r->blocked || strstr(r->error, "blocked address") == NULL)
		test_fail(__FILE__, __LINE__, "%s: expected blocked, got ok=%d blocked=%d error "
		    "\"%s\"", what, r->ok, r->blocked, r->error);
	CHECK_EQ(r->status_code, 0);
	CHECK_EQ(r->timings.connect_ms, -1);
}

static void
test_ssrf(void)
{
	struct probe_engine_config g = cfg;
	struct upmon_ssrf *guard = NULL;
	struct upmon_task t;
	struct probe_result r;
	char url[UPMON_URL_MAX], final[128], err[256];
	long req0, conn0, req1, conn1;
	const char *hosts[] = {
		"127.0.0.1", "localhost", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001",
		"[::ffff:127.0.0.1]", "127.1", "10.0.0.1", "[::1]", "0.0.0.0",
	};
	size_t i;

	REQUIRE(upmon_ssrf_new(true, "127.0.0.2/32", &guard, err, sizeof(err)) == 0);
	g.guard = guard;
	stats(&req0, &conn0);

	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		http_task(&t, "http://%s:%d/ok", hosts[i], port1);
		r = run(&t, &g);
		expect_blocked(&r, hosts[i]);
		if (i == 0 || i == 2 || i == 3 || i == 4)
			CHECK_STR(r.error, "blocked address 127.0.0.1 (loopback)");
	}
	http_task(&t, "http://169.254.169.254/latest/meta-data/");
	r = run(&t, &g);
	expect_blocked(&r, "metadata");
	CHECK_STR(r.error, "blocked address 169.254.169.254 (cloud metadata)");
	http_task(&t, "http://10.0.0.1/");
	r = run(&t, &g);
	expect_blocked(&r, "10.0.0.1");
	CHECK_STR(r.error, "blocked address 10.0.0.1 (private)");
	tcp_task(&t, "127.0.0.1", port1);
	r = run(&t, &g);
	expect_blocked(&r, "tcp 127.0.0.1");
	tcp_task(&t, "localhost", port1);
	r = run(&t, &g);
	expect_blocked(&r, "tcp localhost");

	/* allowed: 127.0.0.2 (one connection), and its redirect to 127.0.0.1 is refused */
	http_task(&t, "http://127.0.0.2:%d/ok", port2);
	r = run(&t, &g);
	CHECK(r.ok);
	CHECK(!r.blocked);
	snprintf(final, sizeof(final), "http://127.0.0.1:%d/ok", port1);
	redirect_chain(url, sizeof(url), "127.0.0.2", port2, 1, final);
	http_task(&t, "%s", url);
	r = run(&t, &g);
	CHECK(!r.ok);
	CHECK(r.blocked);
	CHECK_STR(r.error, "blocked address 127.0.0.1 (loopback)");

	/* the target saw exactly the two allowed connections and the /stats one */
	stats(&req1, &conn1);
	CHECK_EQ(conn1 - conn0, 3);
	CHECK_EQ(req1 - req0, 3);

	/* with the guard off, the same spellings reach the target */
	http_task(&t, "http://2130706433:%d/ok", port1);
	r = run(&t, &cfg);
	CHECK(r.ok);
	http_task(&t, "http://0177.0.0.1:%d/ok", port1);
	r = run(&t, &cfg);
	CHECK(r.ok);
	upmon_ssrf_free(guard);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Submits n checks of path keeping up to k in flight through one engine; returns the number
 * that came back ok, and checks each ctx comes back exactly once. */
static int
drive(struct probe_engine *e, const char *path, int n, int k, double *secs, double *cpu)
{
	struct upmon_task t;
	struct probe_result r;
	unsigned char *seen = calloc((size_t)n, 1);
	void *ctx;
	int submitted = 0, done = 0, ok = 0, rc;
	double c0 = cpu_seconds();
	int64_t t0 = upmon_mono_ms();

	REQUIRE(seen != NULL);
	http_task(&t, "http://127.0.0.1:%d%s", port1, path);
	t.check.timeout_ms = 20000;
	while (done < n) {
		while (submitted < n && (int)probe_engine_inflight(e) < k) {
			rc = probe_engine_submit(e, &t, (void *)(intptr_t)(submitted + 1));
			REQUIRE(rc == 0);
			submitted++;
		}
		REQUIRE(probe_engine_run(e, 1000, -1) >= 0);
		while (probe_engine_next(e, &ctx, &r) == 0) {
			intptr_t i = (intptr_t)ctx - 1;

			REQUIRE(i >= 0 && i < n);
			CHECK(!seen[i]);
			seen[i] = 1;
			done++;
			ok += r.ok;
			if (!r.ok && ok + 5 > done)
				fprintf(stderr, "check %ld: %s\n", (long)i, r.error);
		}
	}
	*secs = (double)(upmon_mono_ms() - t0) / 1000.0;
	*cpu = cpu_seconds() - c0;
	upmon_task_release(&t);
	free(seen);
	return ok;
}

static void
test_concurrent(void)
{
	struct probe_engine *e = NULL;
	double secs, cpu;
	int ok;

	REQUIRE(probe_engine_new(&cfg, &e) == 0);
	ok = drive(e, "/slow/200", 500, 500, &secs, &cpu);
	CHECK_EQ(ok, 500);
	CHECK_EQ(probe_engine_inflight(e), 0);
	fprintf(stderr, "500 concurrent /slow/200: %.2f s\n", secs);
	CHECK(secs < 15);
	probe_engine_free(e);
}

static void
test_submit_limits(void)
{
	struct probe_engine_config c = cfg;
	struct probe_engine *e = NULL;
	struct upmon_task t;
	struct probe_result r;
	void *ctx;

	c.max_inflight = 2;
	REQUIRE(probe_engine_new(&c, &e) == 0);
	http_task(&t, "http://127.0.0.1:%d/slow/100", port1);
	CHECK_EQ(probe_engine_submit(e, &t, (void *)1), 0);
	CHECK_EQ(probe_engine_submit(e, &t, (void *)2), 0);
	CHECK_EQ(probe_engine_submit(e, &t, (void *)3), -EAGAIN);
	CHECK_EQ(probe_engine_next(e, &ctx, &r), -EAGAIN);
	upmon_task_release(&t);
	/* a task that cannot run completes as a failed result at once */
	probe_engine_free(e);
	REQUIRE(probe_engine_new(&cfg, &e) == 0);
	http_task(&t, "ftp://127.0.0.1/");
	CHECK_EQ(probe_engine_submit(e, &t, (void *)7), 0);
	CHECK_EQ(probe_engine_run(e, 0, -1), 1);
	CHECK_EQ(probe_engine_next(e, &ctx, &r), 0);
	CHECK(ctx == (void *)7);
	CHECK(!r.ok);
	CHECK_STR(r.error, "bad url: not http or https");
	upmon_task_release(&t);
	/* freeing an engine with checks running reports nothing and leaks nothing */
	http_task(&t, "http://127.0.0.1:%d/slow/2000", port1);
	CHECK_EQ(probe_engine_submit(e, &t, NULL), 0);
	CHECK_EQ(probe_engine_run(e, 50, -1), 0);
	upmon_task_release(&t);
	probe_engine_free(e);
	probe_engine_free(NULL);
}

static int
count_fds(void)
{
	char path[64];
	int fd, n = 0;

	for (fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* Every check closes its connection, TCP (connect-only) ones included. */
static void
test_no_fd_leak(void)
{
	struct probe_engine *e = NULL;
	struct upmon_task t;
	struct probe_result r;
	void *ctx;
	int i, kind, before;

	REQUIRE(probe_engine_new(&cfg, &e) == 0);
	before = count_fds();
	for (i = 0; i < 400; i++) {
		kind = i % 2;
		if (kind == 0)
			tcp_task(&t, "127.0.0.1", port1);
		else
			http_task(&t, "http://127.0.0.1:%d/ok", port1);
		CHECK_EQ(probe_engine_submit(e, &t, NULL), 0);
		upmon_task_release(&t);
		while (probe_engine_next(e, &ctx, &r) == -EAGAIN)
			REQUIRE(probe_engine_run(e, 1000, -1) >= 0);
		CHECK(r.ok);
		if (i < 4)	/* nothing stays open after a check, not even until the next */
			CHECK_EQ(count_fds(), before);
	}
	CHECK_EQ(count_fds(), before);
	probe_engine_free(e);
}

/* Out of file descriptors is the probe's problem, not the target's: local_error. */
static void
test_local_error(void)
{
	struct probe_engine *e = NULL;
	struct upmon_task t;
	struct probe_result r;
	struct rlimit saved, low;
	void *ctx;
	int lowest;

	REQUIRE(probe_engine_new(&cfg, &e) == 0);
	http_task(&t, "http://127.0.0.1:%d/ok", port1);
	REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	REQUIRE((lowest = dup(0)) >= 0);	/* the lowest free descriptor number */
	close(lowest);
	low = saved;
	low.rlim_cur = (rlim_t)lowest;		/* no new descriptor can be opened */
	REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
	CHECK_EQ(probe_engine_submit(e, &t, NULL), 0);
	while (probe_engine_next(e, &ctx, &r) == -EAGAIN)
		if (probe_engine_run(e, 1000, -1) < 0)
			break;
	REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
	CHECK(!r.ok);
	CHECK(r.local_error);
	CHECK(!r.blocked);
	CHECK_STR(r.error, "probe: too many open files");
	/* and the same engine works again */
	CHECK_EQ(probe_engine_submit(e, &t, NULL), 0);
	while (probe_engine_next(e, &ctx, &r) == -EAGAIN)
		REQUIRE(probe_engine_run(e, 1000, -1) >= 0);
	CHECK(r.ok);
	CHECK(!r.local_error);
	upmon_task_release(&t);
	probe_engine_free(e);
}

static void
test_throughput(void)
{
	struct probe_engine *e = NULL;
	double secs, cpu;
	int ok, n = 5000;

	REQUIRE(probe_engine_new(&cfg, &e) == 0);
	drive(e, "/ok", 200, 64, &secs, &cpu);	/* warm up the free list */
	ok = drive(e, "/ok", n, 64, &secs, &cpu);
	CHECK_EQ(ok, n);
	fprintf(stderr, "throughput: %d checks of /ok, 64 in flight, one engine: %.0f checks/s, "
	    "%.1f us CPU/check (engine process only; target in another process)\n", n, n / secs,
	    cpu * 1e6 / n);
	probe_engine_free(e);
}

int
main(void)
{
	char tmpl[] = "/tmp/upmon-probe-checks.XXXXXX";

	signal(SIGPIPE, SIG_IGN);
	REQUIRE(mkdtemp(tmpl) != NULL);
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	atexit(stop_servers);
	probe_engine_config_init(&cfg);
	start_target();
	RUN(test_up);
	RUN(test_status_500);
	RUN(test_refused);
	RUN(test_dns_failure);
	RUN(test_timeout);
	RUN(test_keyword);
	RUN(test_body_cap);
	RUN(test_expected_ranges);
	RUN(test_redirects);
	RUN(test_max_latency);
	RUN(test_methods);
	RUN(test_tcp);
	RUN(test_tls);
	RUN(test_ssrf);
	RUN(test_submit_limits);
	RUN(test_no_fd_leak);
	RUN(test_local_error);
	RUN(test_concurrent);
	RUN(test_throughput);
	stop_servers();
	return test_finish();
}
