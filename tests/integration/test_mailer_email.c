/*
 * upmon-mailer's email sender (services/mailer/email.c, libesmtp) against upmon-smtp-sink
 * instances this test starts on free loopback ports: plain; STARTTLS with AUTH required; and
 * implicit TLS. Certificates come from the openssl CLI in a temporary directory: a CA, a
 * server certificate it signed (subjectAltName DNS:localhost and IP:127.0.0.1 only, so the
 * host check of an IP address is exercised), and a second, unrelated CA.
 * Needs no broker or database; it lives here because it starts servers.
 *
 * Covers: a parsed .eml (Date, From, To, Subject, Message-ID <delivery@upmon>,
 * X-Upmon-Delivery, MIME-Version, multipart/alternative with a quoted-printable text/plain and
 * text/html part carrying name, target, state, error and the dashboard link; CRLF line ends,
 * no line over 998); a monitor name "x\r\nBcc: evil@x" that injects no header; a non-ASCII
 * subject RFC 2047-encoded; a recipient with CR/LF refused (PERMFAIL, nothing stored);
 * STARTTLS verified against the CA file with AUTH (X-Upmon-TLS / X-Upmon-Auth recorded); a
 * wrong password PERMFAIL 535; a certificate from another CA PERMFAIL (SENT without
 * verification); one from the right CA for another host PERMFAIL (SENT unverified); STARTTLS required but not offered PERMFAIL; implicit TLS SENT and PERMFAIL
 * with the wrong CA; tempfail@ TEMPFAIL 451; permfail@ PERMFAIL 550; one refused and one
 * accepted SENT with the refusal noted; connection refused TEMPFAIL; a server slower than the
 * timeout TEMPFAIL within about the timeout, the message stored (the duplicate case); four
 * threads sending at once over STARTTLS + AUTH, every message arriving.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailer.h"
#include "test.h"
#include "upmon/msg.h"

#define DELIVERY "a-1.0b6c1c7e-2222-4333-8444-555566667777"

struct sink {
	pid_t pid;
	int port;
	char dir[300];
};

static char tmp[64];
static const char *bindir;

static int
port_open(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Starts upmon-smtp-sink with the extra options opts (NULL-terminated, at most 8) into
 * its own maildir tmp/name, and waits until it listens. */
static void
sink_start(struct sink *s, const char *name, const char *const *opts)
{
	const char *argv[16];
	char exe[512], port[16];
	int i, n = 0;

	s->port = test_free_port();
	snprintf(s->dir, sizeof(s->dir), "%s/%s", tmp, name);
	snprintf(exe, sizeof(exe), "%s/upmon-smtp-sink", bindir);
	snprintf(port, sizeof(port), "%d", s->port);
	argv[n++] = exe;
	argv[n++] = "-p";
	argv[n++] = port;
	argv[n++] = "-d";
	argv[n++] = s->dir;
	for (i = 0; opts[i] != NULL && n < 15; i++)
		argv[n++] = opts[i];
	argv[n] = NULL;
	s->pid = fork();
	REQUIRE(s->pid >= 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);	/* no orphan sink when a REQUIRE exits */
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 100 && !port_open(s->port); i++)
		usleep(50000);
	REQUIRE(port_open(s->port));
}

static void
sink_stop(struct sink *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

/* Number of stored messages, and the newest one's path in newest (may be NULL). */
static int
sink_count(const struct sink *s, char *newest, size_t size)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	char best[256] = "";
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len < 4 || strcmp(e->d_name + len - 4, ".eml") != 0)
			continue;
		n++;
		if (strcmp(e->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", e->d_name);
	}
	closedir(d);
	if (newest != NULL)
		snprintf(newest, size, "%s/%s", s->dir, best);
	return n;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	REQUIRE(f != NULL);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	REQUIRE(buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return buf;
}

static void
event(struct upmon_alert_event *ev, enum upmon_alert_kind kind, const char *name)
{
	upmon_alert_event_init(ev);
	ev->kind = kind;
	snprintf(ev->alert_id, sizeof(ev->alert_id), "a-1");
	snprintf(ev->monitor_id, sizeof(ev->monitor_id), "0b6c1c7e-1111-4222-8333-444455556666");
	snprintf(ev->owner_id, sizeof(ev->owner_id), "o-1");
	ev->monitor_name = strdup(name);
	ev->target = strdup("https://api.example.org/health?a=1&b=2");
	ev->error = strdup("connection refused");
	ev->at = 1700000000000LL;
}

static void
channel(struct mailer_channel *ch, const char *a, const char *b)
{
	memset(ch, 0, sizeof(*ch));
	snprintf(ch->id, sizeof(ch->id), "0b6c1c7e-2222-4333-8444-555566667777");
	ch->kind = MAILER_CHANNEL_EMAIL;
	ch->to[ch->nto++] = strdup(a);
	if (b != NULL)
		ch->to[ch->nto++] = strdup(b);
}

static void
config(struct mailer_smtp_config *c, const struct sink *s, enum mailer_smtp_tls tls)
{
	memset(c, 0, sizeof(*c));
	c->host = "127.0.0.1";
	c->port = s != NULL ? s->port : 1;
	c->tls = tls;
	c->verify_tls = true;
	c->from = "upmon <upmon@localhost>";
	c->timeout_ms = 5000;
}

static const struct mailer_links links = { "http://127.0.0.1:8080" };

/* Sends ev to ch and returns the outcome's result. */
static enum mailer_result
send1(const struct mailer_smtp_config *c, const struct mailer_channel *ch,
    const struct upmon_alert_event *ev, struct mailer_outcome *out)
{
	int rc = mailer_email_send(c, &links, ch, ev, DELIVERY, out);

	CHECK_EQ(rc, 0);
	fprintf(stderr, "   result %d code %d error \"%s\"\n", out->result, out->code, out->error);
	return out->result;
}

/* Decodes quoted-printable in place (soft breaks removed, CRLF kept as LF). */
static void
qp_decode(char *s)
{
	char *w = s;

	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=' && s[1] != '\0' && s[2] != '\0') {
			char hex[3] = { s[1], s[2], 0 };

			*w++ = (char)strtol(hex, NULL, 16);
			s += 3;
		} else if (s[0] == '\r' && s[1] == '\n') {
			*w++ = '\n';
			s += 2;
		} else
			*w++ = *s++;
	}
	*w = '\0';
}

/* The part of msg after the "Content-Type: <type>" header up to the next boundary line. */
static char *
mime_part(const char *msg, const char *type)
{
	char needle[128], *p, *end, *body;

	snprintf(needle, sizeof(needle), "Content-Type: %s", type);
	p = strstr(msg, needle);
	if (p == NULL)
		return NULL;
	if ((p = strstr(p, "\r\n\r\n")) == NULL)
		return NULL;
	p += 4;
	end = strstr(p, "\r\n--=_upmon_");
	if (end == NULL)
		return NULL;
	body = strndup(p, (size_t)(end - p));
	qp_decode(body);
	return body;
}

static void
test_plain_and_injection(const struct sink *plain)
{
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;
	char path[512], *msg, *hdr_end, *text, *html, *line;
	int before = sink_count(plain, NULL, 0);

	event(&ev, UPMON_ALERT_DOWN, "x\r\nBcc: evil@x");
	channel(&ch, "ops@example.org", "team@example.org");
	config(&c, plain, MAILER_SMTP_TLS_NONE);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	CHECK_EQ(out.code, 250);
	CHECK_STR(out.error, "");
	CHECK_EQ(sink_count(plain, path, sizeof(path)), before + 1);
	msg = slurp(path);
	CHECK_CONTAINS(msg, "X-Upmon-Envelope-From: <upmon@localhost>\r\n");
	CHECK_CONTAINS(msg, "X-Upmon-Envelope-To: <ops@example.org>\r\n");
	CHECK_CONTAINS(msg, "X-Upmon-Envelope-To: <team@example.org>\r\n");
	CHECK(strstr(msg, "evil@x>") == NULL);		/* never an envelope recipient */
	hdr_end = strstr(msg, "\r\n\r\n");
	REQUIRE(hdr_end != NULL);
	*hdr_end = '\0';
	CHECK_CONTAINS(msg, "\r\nSubject: [DOWN] x  Bcc: evil@x is down: connection refused\r\n");
	CHECK(strstr(msg, "\nBcc:") == NULL);		/* no injected header */
	CHECK_CONTAINS(msg, "\r\nMessage-ID: <" DELIVERY "@upmon>\r\n");
	CHECK_CONTAINS(msg, "\r\nX-Upmon-Delivery: " DELIVERY "\r\n");
	CHECK_CONTAINS(msg, "\r\nX-Upmon-Event: down\r\n");
	CHECK_CONTAINS(msg, "\r\nFrom: upmon <upmon@localhost>\r\n");
	CHECK_CONTAINS(msg, "\r\nTo: ops@example.org,\r\n team@example.org\r\n");
	CHECK_CONTAINS(msg, "\r\nDate: ");
	CHECK_CONTAINS(msg, " +0000\r\n");
	CHECK_CONTAINS(msg, "\r\nMIME-Version: 1.0\r\n");
	CHECK_CONTAINS(msg, "\r\nContent-Type: multipart/alternative; boundary=\"=_upmon_");
	*hdr_end = '\r';
	/* CRLF everywhere, lines < 998 */
	for (line = msg; (line = strchr(line, '\n')) != NULL; line++)
		CHECK(line[-1] == '\r');
	for (line = msg; *line != '\0';) {
		size_t n = strcspn(line, "\n");

		CHECK_INT(n, <, 998);
		line += n + (line[n] != '\0');
	}
	text = mime_part(msg, "text/plain; charset=utf-8");
	html = mime_part(msg, "text/html; charset=utf-8");
	REQUIRE(text != NULL && html != NULL);
	CHECK_CONTAINS(text, "Monitor:     x  Bcc: evil@x\n");
	CHECK_CONTAINS(text, "Target:      https://api.example.org/health?a=1&b=2\n");
	CHECK_CONTAINS(text, "State:       DOWN\n");
	CHECK_CONTAINS(text, "Error:       connection refused\n");
	CHECK_CONTAINS(text, "Time:        2023-11-14T22:13:20Z");
	CHECK_CONTAINS(text, "Dashboard:   http://127.0.0.1:8080/monitors/"
	    "0b6c1c7e-1111-4222-8333-444455556666\n");
	CHECK_CONTAINS(html, "https://api.example.org/health?a=1&amp;b=2");
	CHECK_CONTAINS(html, "<a href=\"http://127.0.0.1:8080/monitors/"
	    "0b6c1c7e-1111-4222-8333-444455556666\">");
	free(text);
	free(html);
	free(msg);
	upmon_alert_event_release(&ev);
	mailer_channel_release(&ch);

	/* a recipient with CR/LF: refused, nothing stored */
	event(&ev, UPMON_ALERT_DOWN, "api");
	channel(&ch, "ops@example.org\r\nBcc: evil@x", NULL);
	before = sink_count(plain, NULL, 0);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_CONTAINS(out.error, "recipient");
	CHECK_EQ(sink_count(plain, NULL, 0), before);
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
}

/* Decodes the RFC 2047 base64 words of the Subject header of msg into out. */
static void
subject_decode(const char *msg, char *out, size_t size)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = strstr(msg, "\r\nSubject: "), *end;
	size_t n = 0;

	out[0] = '\0';
	if (p == NULL)
		return;
	end = strstr(p + 2, "\r\n");
	while (end != NULL && end[2] == ' ')	/* folded */
		end = strstr(end + 2, "\r\n");
	while ((p = strstr(p, "=?UTF-8?B?")) != NULL && p < end) {
		unsigned acc = 0;
		int bits = 0;

		for (p += 10; *p != '?' && *p != '='; p++) {
			acc = (acc << 6) | (unsigned)(strchr(tab, *p) - tab);
			bits += 6;
			if (bits >= 8 && n + 1 < size) {
				bits -= 8;
				out[n++] = (char)((acc >> bits) & 0xff);
			}
		}
		p = strstr(p, "?=");
	}
	out[n] = '\0';
}

static void
test_utf8_subject(const struct sink *plain)
{
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;
	char path[512], *msg, *p, subj[512];

	event(&ev, UPMON_ALERT_RECOVERY, "caf\xc3\xa9 \xe2\x98\x95 shop");
	ev.outage_seconds = 252;
	channel(&ch, "ops@example.org", NULL);
	config(&c, plain, MAILER_SMTP_TLS_NONE);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	sink_count(plain, path, sizeof(path));
	msg = slurp(path);
	p = strstr(msg, "\r\nSubject: =?UTF-8?B?");
	CHECK(p != NULL);
	subject_decode(msg, subj, sizeof(subj));
	CHECK_STR(subj, "[RECOVERY] caf\xc3\xa9 \xe2\x98\x95 shop is up again after 4m 12s");
	CHECK_CONTAINS(msg, "Outage:      4m 12s");
	free(msg);
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
}

static void
test_starttls_auth(const struct sink *tls, const struct sink *plain, const char *ca,
    const char *other_ca)
{
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;
	char path[512], *msg;
	int before;

	event(&ev, UPMON_ALERT_DOWN, "api");
	channel(&ch, "ops@example.org", NULL);
	config(&c, tls, MAILER_SMTP_TLS_STARTTLS);
	c.ca_file = ca;
	c.user = "alice";
	c.password = "s3cret";
	before = sink_count(tls, NULL, 0);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	CHECK_EQ(sink_count(tls, path, sizeof(path)), before + 1);
	msg = slurp(path);
	CHECK_CONTAINS(msg, "X-Upmon-TLS: yes\r\n");
	CHECK_CONTAINS(msg, "X-Upmon-Auth: alice\r\n");
	free(msg);

	c.password = "wrong";
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_EQ(out.code, 535);
	CHECK_CONTAINS(out.error, "authentication failed");
	CHECK_EQ(sink_count(tls, NULL, 0), before + 1);

	/* a certificate from another CA */
	c.password = "s3cret";
	c.ca_file = other_ca;
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_CONTAINS(out.error, "tls");
	CHECK_EQ(sink_count(tls, NULL, 0), before + 1);
	c.verify_tls = false;
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	CHECK_EQ(sink_count(tls, NULL, 0), before + 2);

	/* STARTTLS required, server without it */
	config(&c, plain, MAILER_SMTP_TLS_STARTTLS);
	c.ca_file = ca;
	before = sink_count(plain, NULL, 0);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_CONTAINS(out.error, "starttls");
	CHECK_EQ(sink_count(plain, NULL, 0), before);
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
}

/* A certificate from the right CA, but for wrong.example: PERMFAIL; SENT unverified. */
static void
test_wrong_host(const struct sink *wrong, const char *ca)
{
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;

	event(&ev, UPMON_ALERT_DOWN, "api");
	channel(&ch, "ops@example.org", NULL);
	config(&c, wrong, MAILER_SMTP_TLS_STARTTLS);
	c.ca_file = ca;
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_CONTAINS(out.error, "does not match host 127.0.0.1");
	CHECK_EQ(sink_count(wrong, NULL, 0), 0);
	c.verify_tls = false;
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	CHECK_EQ(sink_count(wrong, NULL, 0), 1);
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
}

static void
test_implicit_tls(const struct sink *tls, const char *ca, const char *other_ca)
{
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;
	char path[512], *msg;
	int before = sink_count(tls, NULL, 0);

	event(&ev, UPMON_ALERT_TLS_EXPIRY, "api");
	ev.cert_days_left = 9;
	channel(&ch, "ops@example.org", NULL);
	config(&c, tls, MAILER_SMTP_TLS_IMPLICIT);
	c.ca_file = ca;
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	CHECK_EQ(out.code, 250);
	CHECK_EQ(sink_count(tls, path, sizeof(path)), before + 1);
	msg = slurp(path);
	CHECK_CONTAINS(msg, "X-Upmon-TLS: yes\r\n");
	CHECK_CONTAINS(msg, "Subject: [TLS] api: certificate expires in 9 days\r\n");
	free(msg);

	c.ca_file = other_ca;
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_CONTAINS(out.error, "tls");
	CHECK_EQ(sink_count(tls, NULL, 0), before + 1);
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
}

static void
test_faults(const struct sink *plain)
{
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;
	struct timespec t0, t1;
	double secs;
	int before;

	event(&ev, UPMON_ALERT_DOWN, "api");
	config(&c, plain, MAILER_SMTP_TLS_NONE);
	before = sink_count(plain, NULL, 0);

	channel(&ch, "tempfail@example.org", NULL);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_TEMPFAIL);
	CHECK_EQ(out.code, 451);
	mailer_channel_release(&ch);

	channel(&ch, "permfail@example.org", NULL);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_PERMFAIL);
	CHECK_EQ(out.code, 550);
	mailer_channel_release(&ch);
	CHECK_EQ(sink_count(plain, NULL, 0), before);

	channel(&ch, "permfail@example.org", "ok@example.org");
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_SENT);
	CHECK_CONTAINS(out.error, "permfail@example.org (550)");
	CHECK_EQ(sink_count(plain, NULL, 0), before + 1);
	mailer_channel_release(&ch);

	/* connection refused */
	c.port = test_free_port();
	channel(&ch, "ops@example.org", NULL);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_TEMPFAIL);
	CHECK_CONTAINS(out.error, "refused");

	/* slower than the timeout: TEMPFAIL within about the timeout, yet stored */
	mailer_channel_release(&ch);
	config(&c, plain, MAILER_SMTP_TLS_NONE);
	c.timeout_ms = 1000;
	channel(&ch, "slow4000@example.org", NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(send1(&c, &ch, &ev, &out), MAILER_TEMPFAIL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "   slow server: gave up after %.2f s\n", secs);
	CHECK(secs < 3.0);
	CHECK_EQ(sink_count(plain, NULL, 0), before + 2);
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
}

struct thread_arg {
	const struct sink *sink;
	const char *ca;
	int sent;
};

static void *
thread_send(void *p)
{
	struct thread_arg *a = p;
	struct upmon_alert_event ev;
	struct mailer_channel ch;
	struct mailer_smtp_config c;
	struct mailer_outcome out;
	int i;

	event(&ev, UPMON_ALERT_DOWN, "api");
	channel(&ch, "ops@example.org", NULL);
	config(&c, a->sink, MAILER_SMTP_TLS_STARTTLS);
	c.ca_file = a->ca;
	c.user = "alice";
	c.password = "s3cret";
	for (i = 0; i < 3; i++)
		if (mailer_email_send(&c, &links, &ch, &ev, DELIVERY, &out) == 0 &&
		    out.result == MAILER_SENT)
			a->sent++;
	mailer_channel_release(&ch);
	upmon_alert_event_release(&ev);
	return NULL;
}

/* Four worker threads sending at once (STARTTLS + AUTH): every message arrives. */
static void
test_threads(const struct sink *tls, const char *ca)
{
	struct thread_arg args[4];
	pthread_t th[4];
	int i, before = sink_count(tls, NULL, 0), sent = 0;

	for (i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ tls, ca, 0 };
		REQUIRE(pthread_create(&th[i], NULL, thread_send, &args[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		sent += args[i].sent;
	}
	CHECK_EQ(sent, 12);
	CHECK_EQ(sink_count(tls, NULL, 0), before + 12);
}

int
main(void)
{
	struct sink plain = { 0 }, stls = { 0 }, itls = { 0 }, wrong = { 0 };
	char ca[128], other_ca[128], cert[128], key[128], wcert[128], wkey[128];

	/* as upmon-mailer does: a server closing on us is an error, not a signal */
	signal(SIGPIPE, SIG_IGN);
	bindir = test_env("UPMON_BIN_DIR");
	snprintf(tmp, sizeof(tmp), "/tmp/upmon-mail-XXXXXX");
	REQUIRE(mkdtemp(tmp) != NULL);
	REQUIRE(test_sh("cd %s && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
	    "-subj /CN=upmon-test-ca >/dev/null 2>&1 && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 "
	    "-subj /CN=upmon-other-ca >/dev/null 2>&1 && "
	    "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
	    "-subj /CN=127.0.0.1 >/dev/null 2>&1 && "
	    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1 && "
	    "openssl req -newkey rsa:2048 -nodes -keyout wrong.key -out wrong.csr "
	    "-subj /CN=wrong.example >/dev/null 2>&1 && "
	    "printf 'subjectAltName=DNS:wrong.example\\n' > wrong.cnf && "
	    "openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	    "-out wrong.pem -days 2 -extfile wrong.cnf >/dev/null 2>&1", tmp) == 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmp);
	snprintf(other_ca, sizeof(other_ca), "%s/other.pem", tmp);
	snprintf(cert, sizeof(cert), "%s/server.pem", tmp);
	snprintf(key, sizeof(key), "%s/server.key", tmp);
	snprintf(wcert, sizeof(wcert), "%s/wrong.pem", tmp);
	snprintf(wkey, sizeof(wkey), "%s/wrong.key", tmp);

	{
		const char *const o_plain[] = { NULL };
		const char *const o_stls[] = { "-t", cert, "-k", key, "-a", "alice:s3cret", NULL };
		const char *const o_itls[] = { "-t", cert, "-k", key, "-T", NULL };
		const char *const o_wrong[] = { "-t", wcert, "-k", wkey, NULL };

		sink_start(&plain, "plain", o_plain);
		sink_start(&stls, "starttls", o_stls);
		sink_start(&itls, "implicit", o_itls);
		sink_start(&wrong, "wrong", o_wrong);
	}

	fprintf(stderr, "-- plain and injection\n");
	test_plain_and_injection(&plain);
	fprintf(stderr, "-- utf-8 subject\n");
	test_utf8_subject(&plain);
	fprintf(stderr, "-- starttls and auth\n");
	test_starttls_auth(&stls, &plain, ca, other_ca);
	fprintf(stderr, "-- certificate for another host\n");
	test_wrong_host(&wrong, ca);
	fprintf(stderr, "-- implicit tls\n");
	test_implicit_tls(&itls, ca, other_ca);
	fprintf(stderr, "-- threads\n");
	test_threads(&stls, ca);
	fprintf(stderr, "-- faults\n");
	test_faults(&plain);

	sink_stop(&plain);
	sink_stop(&stls);
	sink_stop(&itls);
	sink_stop(&wrong);
	test_sh("rm -rf %s", tmp);
	return test_finish();
}
