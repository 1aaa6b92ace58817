/*
 * upmon-mailer's webhooks against tests/support/webhook_sink.py on loopback (two sinks: on
 * 127.0.0.1 and on 127.0.0.2) and `openssl s_server` (a self-signed certificate), with an
 * SSRF guard that allows 127.0.0.1 only. Needs no broker or database; it lives here because
 * it starts servers.
 *
 * Covers: 2xx SENT with the documented headers, the body of proto/webhook.schema.json and a
 * signature that both mailer_webhook_sign and the sink's Python helper accept; no signature
 * header without a secret; 500/503/408/429 TEMPFAIL; 404/400/410 PERMFAIL; a response slower
 * than the timeout TEMPFAIL within the timeout; a redirect PERMFAIL and not followed;
 * 127.0.0.2 (also spelt 2130706434), 10.0.0.1 and 169.254.169.254 PERMFAIL "blocked address"
 * with no request reaching the 127.0.0.2 sink (which the same POST reaches without a guard);
 * connection refused TEMPFAIL; a certificate that does not verify PERMFAIL; a response over
 * the 64 KiB read cap still judged by its status.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailer.h"
#include "test.h"
#include "upmon/backoff.h"
#include "upmon/config.h"
#include "upmon/ssrf.h"

#define SECRET	"whsec-0123456789abcdef"

struct sink {
	pid_t pid;
	int port;
	char dir[300];
};

static char tmpdir[256];
static struct sink sink1, sink2;	/* on 127.0.0.1 and 127.0.0.2 */
static pid_t tls_pid = -1;
static int tls_port;
static struct upmon_ssrf *guard;
static struct mailer_webhook_config cfg;
static const struct mailer_links links = { "http://127.0.0.1:8080" };

static pid_t
spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		FILE *f = freopen(log, "w", stderr);

		(void)f;
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void
start_sink(struct sink *s, const char *host, const char *name)
{
	char script[1024], pf[512], log[512];
	char *argv[] = { "python3", script, "--host", (char *)host, "--port", "0", "--dir",
	    s->dir, "--port-file", pf, NULL };
	FILE *f;
	int i;

	snprintf(script, sizeof(script), "%s/tests/support/webhook_sink.py",
	    test_env("UPMON_SOURCE_DIR"));
	snprintf(s->dir, sizeof(s->dir), "%s/%s", tmpdir, name);
	snprintf(pf, sizeof(pf), "%s/%s.port", tmpdir, name);
	snprintf(log, sizeof(log), "%s/%s.log", tmpdir, name);
	REQUIRE((s->pid = spawn(argv, log)) > 0);
	for (i = 0; i < 200 && s->port == 0; i++) {
		if ((f = fopen(pf, "r")) != NULL) {
			REQUIRE(fscanf(f, "%d", &s->port) == 1);
			fclose(f);
			break;
		}
		upmon_sleep_ms(50);
	}
	REQUIRE(s->port > 0);
}

/* HTTPS with a self-signed certificate: verification must fail. */
static void
start_tls(void)
{
	char cert[512], key[512], log[512], portarg[32];
	char *argv[] = { "/usr/bin/openssl", "s_server", "-quiet", "-www", "-accept", portarg,
	    "-cert", cert, "-key", key, NULL };

	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(log, sizeof(log), "%s/tls.log", tmpdir);
	REQUIRE(test_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 "
	    "-keyout '%s' -out '%s' 2>/dev/null", key, cert) == 0);
	tls_port = test_free_port();
	snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", tls_port);
	REQUIRE((tls_pid = spawn(argv, log)) > 0);
	REQUIRE(test_wait_port(tls_port, 5000) == 0);
}

static void
stop_all(void)
{
	pid_t *pids[] = { &sink1.pid, &sink2.pid, &tls_pid };
	size_t i;

	for (i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		if (*pids[i] > 0) {
			kill(*pids[i], SIGTERM);
			waitpid(*pids[i], NULL, 0);
			*pids[i] = -1;
		}
	}
	if (tmpdir[0] != '\0') {
		test_sh("rm -rf '%s'", tmpdir);
		tmpdir[0] = '\0';
	}
}

/* Requests the sink has stored so far. */
static int
count(const struct sink *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	int n = 0;
	size_t l;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* The stored request number n (1-based) of s, parsed (caller puts it). */
static struct json_object *
stored(const struct sink *s, int n)
{
	char path[512];
	struct json_object *o;

	snprintf(path, sizeof(path), "%s/%06d.json", s->dir, n);
	o = json_object_from_file(path);
	if (o == NULL)
		test_fail(__FILE__, __LINE__, "cannot read %s", path);
	return o;
}

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void
make_event(struct upmon_alert_event *ev)
{
	upmon_alert_event_init(ev);
	ev->kind = UPMON_ALERT_DOWN;
	snprintf(ev->alert_id, sizeof(ev->alert_id), "down:mon-7:1795000000000");
	snprintf(ev->monitor_id, sizeof(ev->monitor_id), "mon-7");
	snprintf(ev->owner_id, sizeof(ev->owner_id), "owner-7");
	ev->monitor_name = strdup("shop \"eu\"\r\nX-Injected: 1");
	ev->target = strdup("https://shop.example.org/");
	ev->error = strdup("connection refused");
	ev->at = INT64_C(1795000000000);
}

/* POSTs the test event to url with secret (NULL = unsigned) through guard g; returns the
 * outcome in out and the milliseconds it took. */
static int64_t
post(const struct upmon_ssrf *g, const char *url, const char *secret,
    struct mailer_outcome *out)
{
	struct mailer_webhook_config c = cfg;
	struct mailer_channel ch;
	struct upmon_alert_event ev;
	char did[MAILER_DELIVERY_ID_MAX + 1];
	int64_t t0 = upmon_mono_ms();

	c.ssrf = g;
	memset(&ch, 0, sizeof(ch));
	snprintf(ch.id, sizeof(ch.id), "chan-1");
	ch.kind = MAILER_CHANNEL_WEBHOOK;
	ch.url = strdup(url);
	ch.secret = secret != NULL ? strdup(secret) : NULL;
	make_event(&ev);
	mailer_delivery_id(did, sizeof(did), ev.alert_id, ch.id);
	CHECK_EQ(mailer_webhook_send(&c, &links, &ch, &ev, did, out), 0);
	upmon_alert_event_release(&ev);
	mailer_channel_release(&ch);
	return upmon_mono_ms() - t0;
}

static void
test_sent_signed(void)
{
	struct mailer_outcome out;
	struct json_object *req, *hdrs, *body;
	struct upmon_alert_event ev;
	char url[128], sig[80], *want = NULL, did[MAILER_DELIVERY_ID_MAX + 1];
	const char *ts, *b;
	int64_t now = (int64_t)time(NULL);
	long tsv;
	int before = count(&sink1);
	size_t len;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", sink1.port);
	post(guard, url, SECRET, &out);
	CHECK_EQ(out.result, MAILER_SENT);
	CHECK_EQ(out.code, 200);
	CHECK_STR(out.error, "");
	REQUIRE(count(&sink1) == before + 1);
	REQUIRE((req = stored(&sink1, before + 1)) != NULL);
	CHECK_STR(get_str(req, "method"), "POST");
	CHECK_STR(get_str(req, "path"), "/ok");
	REQUIRE(json_object_object_get_ex(req, "headers", &hdrs));
	CHECK_STR(get_str(hdrs, "content-type"), "application/json");
	CHECK_STR(get_str(hdrs, "user-agent"), "upmon-mailer/test");
	CHECK_STR(get_str(hdrs, "x-upmon-event"), "down");
	CHECK_STR(get_str(hdrs, "x-upmon-delivery"), "down:mon-7:1795000000000.chan-1");
	CHECK(get_str(hdrs, "expect") == NULL);
	REQUIRE((ts = get_str(hdrs, "x-upmon-timestamp")) != NULL);
	REQUIRE(upmon_parse_long(ts, 0, 4102444800L, &tsv) == 0);
	CHECK(tsv >= now - 5 && tsv <= now + 5);

	/* the body is exactly mailer_webhook_body's, and the signature covers "<ts>.<body>" */
	REQUIRE((b = get_str(req, "body")) != NULL);
	make_event(&ev);
	mailer_delivery_id(did, sizeof(did), ev.alert_id, "chan-1");
	REQUIRE(mailer_webhook_body(&ev, &links, did, &want, &len) == 0);
	CHECK_STR(b, want);
	CHECK_EQ(mailer_webhook_sign(SECRET, tsv, b, strlen(b), sig, sizeof(sig)), 0);
	CHECK_STR(get_str(hdrs, "x-upmon-signature"), sig);
	REQUIRE((body = json_tokener_parse(b)) != NULL);
	CHECK_STR(get_str(body, "kind"), "down");
	CHECK_STR(get_str(body, "delivery_id"), did);
	json_object_put(body);
	free(want);
	upmon_alert_event_release(&ev);
	json_object_put(req);

	/* the receiver's side: the Python helper of proto/README.md accepts it, and refuses
	 * a wrong secret */
	CHECK_EQ(test_sh("cd '%s/tests/support' && python3 -c 'import sys, webhook_sink as w; "
	    "r = w.read_requests(sys.argv[1])[%d]; "
	    "sys.exit(0 if w.verify_signature(sys.argv[2], r[\"headers\"], r[\"body\"], 300) "
	    "and not w.verify_signature(\"other\", r[\"headers\"], r[\"body\"]) else 1)' "
	    "'%s' '%s'", test_env("UPMON_SOURCE_DIR"), before, sink1.dir, SECRET), 0);

	/* without a secret: no signature header */
	post(guard, url, NULL, &out);
	CHECK_EQ(out.result, MAILER_SENT);
	REQUIRE(count(&sink1) == before + 2);
	REQUIRE((req = stored(&sink1, before + 2)) != NULL);
	REQUIRE(json_object_object_get_ex(req, "headers", &hdrs));
	CHECK(get_str(hdrs, "x-upmon-signature") == NULL);
	CHECK(get_str(hdrs, "x-upmon-timestamp") != NULL);
	json_object_put(req);
}

static void
test_statuses(void)
{
	static const struct {
		int status;
		enum mailer_result want;
	} v[] = {
		{ 200, MAILER_SENT }, { 201, MAILER_SENT }, { 204, MAILER_SENT },
		{ 500, MAILER_TEMPFAIL }, { 502, MAILER_TEMPFAIL }, { 503, MAILER_TEMPFAIL },
		{ 408, MAILER_TEMPFAIL }, { 425, MAILER_TEMPFAIL }, { 429, MAILER_TEMPFAIL },
		{ 400, MAILER_PERMFAIL }, { 401, MAILER_PERMFAIL }, { 404, MAILER_PERMFAIL },
		{ 410, MAILER_PERMFAIL }, { 413, MAILER_PERMFAIL },
	};
	struct mailer_outcome out;
	char url[128], want[32];
	size_t i;
	int before = count(&sink1);

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/status/%d", sink1.port,
		    v[i].status);
		post(guard, url, SECRET, &out);
		if (out.result != v[i].want)
			fprintf(stderr, "status %d: result %d, error \"%s\"\n", v[i].status,
			    (int)out.result, out.error);
		CHECK_EQ(out.result, v[i].want);
		CHECK_EQ(out.code, v[i].status);
		if (v[i].want != MAILER_SENT) {
			snprintf(want, sizeof(want), "http %d", v[i].status);
			CHECK_CONTAINS(out.error, want);
		}
	}
	CHECK_EQ(count(&sink1), before + (int)(sizeof(v) / sizeof(v[0])));
	/* the unknown path of the sink is a 404 too, with its body quoted in the error */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nowhere", sink1.port);
	post(guard, url, NULL, &out);
	CHECK_EQ(out.result, MAILER_PERMFAIL);
	CHECK_STR(out.error, "http 404: {\"error\": \"not found\"}");

	/* a 1 MB answer: read up to 64 KiB, judged by its status */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big/1000000", sink1.port);
	post(guard, url, NULL, &out);
	CHECK_EQ(out.result, MAILER_SENT);
	CHECK_EQ(out.code, 200);
}

static void
test_timeout_redirect_refused(void)
{
	struct mailer_outcome out;
	char url[128];
	int64_t ms;
	int before;

	/* slower than the 1 s timeout: TEMPFAIL after about 1 s */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow/4000", sink1.port);
	ms = post(guard, url, SECRET, &out);
	CHECK_EQ(out.result, MAILER_TEMPFAIL);
	CHECK_CONTAINS(out.error, "timeout");
	CHECK_INT(ms, >=, 900);
	CHECK_INT(ms, <, 3000);
	/* within it: sent */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow/200", sink1.port);
	post(guard, url, SECRET, &out);
	CHECK_EQ(out.result, MAILER_SENT);

	/* a redirect is not followed: PERMFAIL, and /ok is never requested */
	before = count(&sink1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/redirect", sink1.port);
	post(guard, url, SECRET, &out);
	CHECK_EQ(out.result, MAILER_PERMFAIL);
	CHECK_EQ(out.code, 302);
	CHECK_CONTAINS(out.error, "redirects are not followed");
	upmon_sleep_ms(200);
	CHECK_EQ(count(&sink1), before + 1);

	/* nothing listens: connection refused, TEMPFAIL */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", test_free_port());
	post(guard, url, SECRET, &out);
	CHECK_EQ(out.result, MAILER_TEMPFAIL);
	CHECK_CONTAINS(out.error, "connection refused");
}

static void
test_ssrf(void)
{
	struct mailer_outcome out;
	char urls[4][128], url[128];
	size_t i;
	int64_t ms;

	snprintf(urls[0], sizeof(urls[0]), "http://127.0.0.2:%d/ok", sink2.port);
	snprintf(urls[1], sizeof(urls[1]), "http://2130706434:%d/ok", sink2.port);
	snprintf(urls[2], sizeof(urls[2]), "http://10.0.0.1/ok");
	snprintf(urls[3], sizeof(urls[3]), "http://169.254.169.254/latest/meta-data/");
	for (i = 0; i < 4; i++) {
		ms = post(guard, urls[i], SECRET, &out);
		CHECK_EQ(out.result, MAILER_PERMFAIL);
		CHECK_CONTAINS(out.error, "blocked address");
		CHECK_INT(ms, <, 1000);		/* refused before connecting, no timeout */
	}
	CHECK_CONTAINS(out.error, "169.254.169.254");
	upmon_sleep_ms(200);
	CHECK_EQ(count(&sink2), 0);

	/* the same POST without the guard reaches the 127.0.0.2 sink: the zero above means
	 * the guard stopped it */
	post(NULL, urls[0], SECRET, &out);
	CHECK_EQ(out.result, MAILER_SENT);
	CHECK_EQ(count(&sink2), 1);

	/* a guard that is off allows everything too */
	snprintf(url, sizeof(url), "http://127.0.0.2:%d/status/204", sink2.port);
	{
		struct upmon_ssrf *off = NULL;
		char err[128];

		REQUIRE(upmon_ssrf_new(false, NULL, &off, err, sizeof(err)) == 0);
		post(off, url, NULL, &out);
		CHECK_EQ(out.result, MAILER_SENT);
		CHECK_EQ(out.code, 204);
		upmon_ssrf_free(off);
	}
}

static void
test_tls_verify(void)
{
	struct mailer_outcome out;
	char url[128];

	start_tls();
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", tls_port);
	post(guard, url, SECRET, &out);
	CHECK_EQ(out.result, MAILER_PERMFAIL);
	CHECK_CONTAINS(out.error, "tls: certificate verify failed");
}

int
main(void)
{
	char err[128];

	REQUIRE(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mailer_webhook.XXXXXX");
	REQUIRE(mkdtemp(tmpdir) != NULL);
	REQUIRE(upmon_ssrf_new(true, "127.0.0.1/32", &guard, err, sizeof(err)) == 0);
	cfg.timeout_ms = 1000;
	cfg.connect_timeout_ms = 1000;
	cfg.user_agent = "upmon-mailer/test";
	start_sink(&sink1, "127.0.0.1", "sink1");
	start_sink(&sink2, "127.0.0.2", "sink2");

	RUN(test_sent_signed);
	RUN(test_statuses);
	RUN(test_timeout_redirect_refused);
	RUN(test_ssrf);
	RUN(test_tls_verify);

	stop_all();
	upmon_ssrf_free(guard);
	curl_global_cleanup();
	return test_finish();
}
