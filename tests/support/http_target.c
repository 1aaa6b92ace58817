/*
 * upmon-test-target: the HTTP/TCP target of the probe tests and benchmarks (civetweb, IPv4).
 *
 * Usage: upmon-test-target --listen ADDR:PORT [--listen ADDR:PORT ...] --port-file FILE
 *                          [--threads N]
 *
 * PORT 0 picks a free port. FILE gets one line "ADDR PORT" per listener, in --listen order,
 * written to a temporary name and renamed into place once every listener is up, so a reader
 * that sees the file can connect. Runs in the foreground until SIGTERM or SIGINT (exit 0).
 *
 * Endpoints (any method):
 *   /ok               200 "upmon ok\n"
 *   /status/<code>    <code> (100..599) with body "status <code>\n"
 *   /slow/<ms>        sleeps ms (0..60000), then 200 "slow ok\n"
 *   /redirect?to=URL  302 to URL
 *   /bytes/<n>        200 with n (0..67108864) bytes of 'x'
 *   /echo             200 with the method, the request headers and the body (capped)
 *   /stats            {"requests":N,"connections":M}: requests answered and TCP connections
 *                     accepted, counted from start-up (a connection counts even when it sends
 *                     no request)
 *   anything else     404
 */
#include <civetweb.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "upmon/config.h"

#define MAX_LISTEN	8
#define MAX_ECHO	65536	/* request body bytes echoed */
#define MAX_SLOW_MS	60000
#define MAX_BYTES	(64L * 1024 * 1024)

static atomic_ulong nrequests;
static atomic_ulong nconnections;

static void
usage(void)
{
	fprintf(stderr, "usage: upmon-test-target --listen ADDR:PORT [--listen ADDR:PORT ...] "
	    "--port-file FILE [--threads N]\n");
	exit(2);
}

/* Sends a complete response with a text body (none for HEAD and bodiless statuses). */
static int
reply(struct mg_connection *conn, int status, const char *body, size_t len,
    const char *location)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	bool bodiless = status < 200 || status == 204 || status == 304;
	char clen[32];

	if (bodiless)
		len = 0;
	snprintf(clen, sizeof(clen), "%zu", len);
	mg_response_header_start(conn, status);
	mg_response_header_add(conn, "Content-Type", "text/plain; charset=utf-8", -1);
	if (!bodiless)
		mg_response_header_add(conn, "Content-Length", clen, -1);
	if (location != NULL)
		mg_response_header_add(conn, "Location", location, -1);
	mg_response_header_send(conn);
	if (len > 0 && strcmp(ri->request_method, "HEAD") != 0)
		mg_write(conn, body, len);
	return status;
}

static int
reply_str(struct mg_connection *conn, int status, const char *body)
{
	return reply(conn, status, body, strlen(body), NULL);
}

/* Reads and discards (or keeps up to cap bytes of) the request body; returns bytes kept. */
static size_t
read_body(struct mg_connection *conn, char *buf, size_t cap)
{
	char sink[4096];
	size_t kept = 0;
	int n;

	for (;;) {
		if (kept < cap)
			n = mg_read(conn, buf + kept, cap - kept);
		else
			n = mg_read(conn, sink, sizeof(sink));
		if (n <= 0)
			break;
		if (kept < cap)
			kept += (size_t)n;
	}
	return kept;
}

static int
serve_echo(struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char *out;
	size_t cap = MAX_ECHO + 16384, len, blen;
	int i, n, rc;

	if ((out = malloc(cap)) == NULL)
		return reply_str(conn, 500, "out of memory\n");
	n = snprintf(out, cap, "method %s\n", ri->request_method);
	len = (size_t)n;
	for (i = 0; i < ri->num_headers && len < cap; i++) {
		n = snprintf(out + len, cap - len, "header %s: %s\n", ri->http_headers[i].name,
		    ri->http_headers[i].value);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
	}
	if (len + 6 < cap) {
		memcpy(out + len, "body\n", 5);
		len += 5;
		blen = read_body(conn, out + len, cap - len > MAX_ECHO ? MAX_ECHO : cap - len);
		len += blen;
	}
	rc = reply(conn, 200, out, len, NULL);
	free(out);
	return rc;
}

static int
serve_bytes(struct mg_connection *conn, long n)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char chunk[16384], clen[32];
	long left;
	int w;

	memset(chunk, 'x', sizeof(chunk));
	snprintf(clen, sizeof(clen), "%ld", n);
	mg_response_header_start(conn, 200);
	mg_response_header_add(conn, "Content-Type", "text/plain", -1);
	mg_response_header_add(conn, "Content-Length", clen, -1);
	mg_response_header_send(conn);
	if (strcmp(ri->request_method, "HEAD") == 0)
		return 200;
	for (left = n; left > 0; left -= w) {
		w = left > (long)sizeof(chunk) ? (int)sizeof(chunk) : (int)left;
		if (mg_write(conn, chunk, (size_t)w) <= 0)
			break;	/* the client stopped reading */
	}
	return 200;
}

static int
serve_redirect(struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char to[4096];
	const char *qs = ri->query_string;

	if (qs == NULL || mg_get_var(qs, strlen(qs), "to", to, sizeof(to)) <= 0)
		return reply_str(conn, 400, "missing to\n");
	return reply(conn, 302, "redirect\n", 9, to);
}

static int
handle(struct mg_connection *conn, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *uri = ri->local_uri != NULL ? ri->local_uri : "";
	char body[128];
	long v;
	struct timespec ts;

	(void)cbdata;
	if (strcmp(uri, "/echo") == 0)
		return serve_echo(conn);
	read_body(conn, body, 0);
	if (strcmp(uri, "/ok") == 0)
		return reply_str(conn, 200, "upmon ok\n");
	if (strncmp(uri, "/status/", 8) == 0 && upmon_parse_long(uri + 8, 100, 599, &v) == 0) {
		snprintf(body, sizeof(body), "status %ld\n", v);
		return reply_str(conn, (int)v, body);
	}
	if (strncmp(uri, "/slow/", 6) == 0 && upmon_parse_long(uri + 6, 0, MAX_SLOW_MS, &v) == 0) {
		ts.tv_sec = v / 1000;
		ts.tv_nsec = (v % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		return reply_str(conn, 200, "slow ok\n");
	}
	if (strncmp(uri, "/bytes/", 7) == 0 && upmon_parse_long(uri + 7, 0, MAX_BYTES, &v) == 0)
		return serve_bytes(conn, v);
	if (strcmp(uri, "/redirect") == 0)
		return serve_redirect(conn);
	if (strcmp(uri, "/stats") == 0) {
		/* this request counts itself (begin_request ran before) */
		snprintf(body, sizeof(body), "{\"requests\":%lu,\"connections\":%lu}\n",
		    atomic_load(&nrequests), atomic_load(&nconnections));
		return reply_str(conn, 200, body);
	}
	return reply_str(conn, 404, "not found\n");
}

static int
on_begin_request(struct mg_connection *conn)
{
	(void)conn;
	atomic_fetch_add(&nrequests, 1);
	return 0;	/* civetweb goes on to the handler */
}

static int
on_init_connection(const struct mg_connection *conn, void **conn_data)
{
	(void)conn;
	(void)conn_data;
	atomic_fetch_add(&nconnections, 1);
	return 0;
}

static int
on_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	fprintf(stderr, "upmon-test-target: %s\n", message);
	return 1;
}

/* Writes one "ADDR PORT" line per listener to path (via path.tmp and rename). */
static int
write_port_file(const char *path, struct mg_context *ctx, char **addrs, int naddrs)
{
	struct mg_server_port ports[MAX_LISTEN];
	char tmp[4096];
	FILE *f;
	int i, n;

	n = mg_get_server_ports(ctx, MAX_LISTEN, ports);
	if (n != naddrs) {
		fprintf(stderr, "upmon-test-target: %d listeners, expected %d\n", n, naddrs);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL) {
		fprintf(stderr, "upmon-test-target: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		char *colon = strrchr(addrs[i], ':');

		fprintf(f, "%.*s %d\n", (int)(colon - addrs[i]), addrs[i], ports[i].port);
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "upmon-test-target: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char *addrs[MAX_LISTEN];
	char lports[MAX_LISTEN * 64] = "", threads[16] = "64";
	const char *port_file = NULL;
	const char *options[] = {
		"listening_ports", lports, "num_threads", threads,
		"listen_backlog", "1024", "connection_queue", "1024",
		"request_timeout_ms", "30000", "enable_keep_alive", "no", NULL,
	};
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data error;
	struct mg_context *ctx;
	char etext[256] = "";
	sigset_t set;
	int i, naddrs = 0, sig;
	long v;
	size_t off = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc && naddrs < MAX_LISTEN) {
			addrs[naddrs] = argv[++i];
			if (strchr(addrs[naddrs], ':') == NULL || strlen(addrs[naddrs]) > 60)
				usage();
			naddrs++;
		} else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
			port_file = argv[++i];
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			if (upmon_parse_long(argv[++i], 1, 1024, &v) < 0)
				usage();
			snprintf(threads, sizeof(threads), "%ld", v);
		} else {
			usage();
		}
	}
	if (naddrs == 0 || port_file == NULL)
		usage();
	for (i = 0; i < naddrs; i++)
		off += (size_t)snprintf(lports + off, sizeof(lports) - off, "%s%s", i ? "," : "",
		    addrs[i]);

	/* block the signals before civetweb starts its threads, then wait for them here */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	mg_init_library(0);
	memset(&cb, 0, sizeof(cb));
	cb.begin_request = on_begin_request;
	cb.init_connection = on_init_connection;
	cb.log_message = on_log_message;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.configuration_options = options;
	memset(&error, 0, sizeof(error));
	error.text = etext;
	error.text_buffer_size = sizeof(etext);
	if ((ctx = mg_start2(&init, &error)) == NULL) {
		fprintf(stderr, "upmon-test-target: cannot listen on %s: %s\n", lports, etext);
		return 1;
	}
	mg_set_request_handler(ctx, "/", handle, NULL);
	if (write_port_file(port_file, ctx, addrs, naddrs) < 0) {
		mg_stop(ctx);
		return 1;
	}
	while (sigwait(&set, &sig) != 0)
		;
	mg_stop(ctx);
	mg_exit_library();
	return 0;
}
