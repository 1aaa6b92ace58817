/*
 * The admin endpoint: /healthz, /readyz and /metrics over civetweb, bound to one IPv4
 * address (Debian's civetweb is built without IPv6) with a couple of worker threads.
 */
#include "upmon/admin.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/log.h"
#include "upmon/metrics.h"

#define MAX_CHECKS 16
#define CHECK_NAME_MAX 32
#define REASON_MAX 160

struct ready_check {
	char name[CHECK_NAME_MAX + 1];
	bool ready;			/* flags */
	upmon_ready_fn fn;		/* callbacks */
	void *arg;
};

struct upmon_admin {
	struct mg_context *ctx;
	struct upmon_metrics *metrics;
	int port;
	char service[64];
	pthread_mutex_t mu;		/* guards checks */
	struct ready_check checks[MAX_CHECKS];
	size_t nchecks;
};

static pthread_once_t mg_once = PTHREAD_ONCE_INIT;

static void
mg_library_init(void)
{
	mg_init_library(0);
}

/* Sends a complete response; body is not sent for HEAD. Returns status for civetweb. */
static int
reply(struct mg_connection *conn, int status, const char *ctype, const char *body,
    size_t len, const char *allow)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char clen[32];

	snprintf(clen, sizeof(clen), "%zu", len);
	mg_response_header_start(conn, status);
	mg_response_header_add(conn, "Content-Type", ctype, -1);
	mg_response_header_add(conn, "Content-Length", clen, -1);
	mg_response_header_add(conn, "Cache-Control", "no-store", -1);
	if (allow != NULL)
		mg_response_header_add(conn, "Allow", allow, -1);
	mg_response_header_send(conn);
	if (strcmp(ri->request_method, "HEAD") != 0 && len > 0)
		mg_write(conn, body, len);
	return status;
}

static int
reply_json_error(struct mg_connection *conn, int status, const char *what, const char *allow)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", what);

	return reply(conn, status, "application/json", body, (size_t)n, allow);
}

/* Runs every readiness check; adds "name": "ok" or the reason to checks and the names of
 * failing ones to failing (either may be NULL). Returns true if all passed. */
static bool
evaluate(struct upmon_admin *a, json_object *checks, json_object *failing)
{
	struct ready_check copy[MAX_CHECKS];
	char reason[REASON_MAX];
	size_t i, n;
	bool all = true, ok;

	pthread_mutex_lock(&a->mu);
	n = a->nchecks;
	memcpy(copy, a->checks, n * sizeof(copy[0]));
	pthread_mutex_unlock(&a->mu);
	for (i = 0; i < n; i++) {
		reason[0] = '\0';
		ok = copy[i].fn != NULL ? copy[i].fn(copy[i].arg, reason, sizeof(reason)) == 0 :
		    copy[i].ready;
		reason[sizeof(reason) - 1] = '\0';
		if (!ok && reason[0] == '\0')
			snprintf(reason, sizeof(reason), "not ready");
		all = all && ok;
		if (checks != NULL)
			json_object_object_add(checks, copy[i].name,
			    json_object_new_string(ok ? "ok" : reason));
		if (failing != NULL && !ok)
			json_object_array_add(failing, json_object_new_string(copy[i].name));
	}
	return all;
}

static int
serve_readyz(struct mg_connection *conn, struct upmon_admin *a)
{
	json_object *root = json_object_new_object();
	json_object *checks = json_object_new_object(), *failing = json_object_new_array();
	const char *body;
	size_t len;
	bool ready;
	int rc;

	if (root == NULL || checks == NULL || failing == NULL) {
		json_object_put(root);
		json_object_put(checks);
		json_object_put(failing);
		return reply_json_error(conn, 500, "out of memory", NULL);
	}
	ready = evaluate(a, checks, failing);
	json_object_object_add(root, "ready", json_object_new_boolean(ready));
	if (!ready)
		json_object_object_add(root, "not_ready", failing);
	else
		json_object_put(failing);
	json_object_object_add(root, "checks", checks);
	body = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	rc = body != NULL ? reply(conn, ready ? 200 : 503, "application/json", body, len, NULL) :
	    reply_json_error(conn, 500, "out of memory", NULL);
	json_object_put(root);
	return rc;
}

static int
serve_metrics(struct mg_connection *conn, struct upmon_admin *a)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (upmon_metrics_render(a->metrics, &text, &len) < 0)
		return reply_json_error(conn, 500, "out of memory", NULL);
	rc = reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
	free(text);
	return rc;
}

static int
handle(struct mg_connection *conn, void *cbdata)
{
	struct upmon_admin *a = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *uri = ri->local_uri != NULL ? ri->local_uri : "";

	if (strcmp(ri->request_method, "GET") != 0 && strcmp(ri->request_method, "HEAD") != 0)
		return reply_json_error(conn, 405, "method not allowed", "GET, HEAD");
	if (strcmp(uri, "/healthz") == 0)
		return reply(conn, 200, "text/plain; charset=utf-8", "ok\n", 3, NULL);
	if (strcmp(uri, "/readyz") == 0)
		return serve_readyz(conn, a);
	if (strcmp(uri, "/metrics") == 0)
		return serve_metrics(conn, a);
	return reply_json_error(conn, 404, "not found", NULL);
}

static int
log_civetweb(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warnx("admin: %s", message);
	return 1;
}

int
upmon_admin_start(const struct upmon_admin_config *cfg, struct upmon_metrics *metrics,
    struct upmon_admin **out)
{
	const char *addr = cfg->addr != NULL && *cfg->addr != '\0' ? cfg->addr : "127.0.0.1";
	struct mg_callbacks cb;
	struct mg_server_port ports[4];
	struct mg_init_data init;
	struct mg_error_data error;
	struct upmon_admin *a = NULL;
	struct in_addr ia;
	char lport[64], threads[16], etext[256] = "";
	const char *options[] = {
		"listening_ports", lport, "num_threads", threads, "request_timeout_ms", "5000",
		"enable_keep_alive", "no", NULL,
	};
	size_t i;
	int n;

	*out = NULL;
	if (inet_pton(AF_INET, addr, &ia) != 1 || cfg->port < 0 || cfg->port > 65535)
		return -EINVAL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&a->mu, NULL);
	a->metrics = metrics;
	snprintf(a->service, sizeof(a->service), "%s", cfg->service ? cfg->service : "upmon");
	for (i = 0; cfg->not_ready != NULL && cfg->not_ready[i] != NULL; i++) {
		if (upmon_admin_set_ready(a, cfg->not_ready[i], false) < 0) {
			upmon_admin_stop(a);
			return -EINVAL;
		}
	}
	snprintf(lport, sizeof(lport), "%s:%d", addr, cfg->port);
	n = cfg->threads <= 0 ? 2 : cfg->threads > 8 ? 8 : cfg->threads;
	snprintf(threads, sizeof(threads), "%d", n);
	pthread_once(&mg_once, mg_library_init);
	memset(&cb, 0, sizeof(cb));
	cb.log_message = log_civetweb;
	init.callbacks = &cb;
	init.user_data = a;
	init.configuration_options = options;
	memset(&error, 0, sizeof(error));
	error.text = etext;
	error.text_buffer_size = sizeof(etext);
	if ((a->ctx = mg_start2(&init, &error)) == NULL) {
		log_warnx("admin: cannot listen on %s: %s", lport, etext);
		upmon_admin_stop(a);
		return -EIO;
	}
	mg_set_request_handler(a->ctx, "/", handle, a);
	n = mg_get_server_ports(a->ctx, 4, ports);
	a->port = n > 0 ? ports[0].port : cfg->port;
	log_info("admin: %s listening on http://%s:%d/ (healthz, readyz, metrics)", a->service,
	    addr, a->port);
	*out = a;
	return 0;
}

int
upmon_admin_port(const struct upmon_admin *a)
{
	return a != NULL ? a->port : -1;
}

/* Finds or adds the check called name. Called with a->mu held. */
static struct ready_check *
find_check(struct upmon_admin *a, const char *name, int *rc)
{
	size_t i;

	*rc = 0;
	if (name == NULL || name[0] == '\0' || strlen(name) > CHECK_NAME_MAX) {
		*rc = -EINVAL;
		return NULL;
	}
	for (i = 0; i < a->nchecks; i++)
		if (strcmp(a->checks[i].name, name) == 0)
			return &a->checks[i];
	if (a->nchecks == MAX_CHECKS) {
		*rc = -ENOSPC;
		return NULL;
	}
	snprintf(a->checks[a->nchecks].name, sizeof(a->checks[0].name), "%s", name);
	return &a->checks[a->nchecks++];
}

int
upmon_admin_set_ready(struct upmon_admin *a, const char *name, bool ready)
{
	struct ready_check *c;
	int rc;

	pthread_mutex_lock(&a->mu);
	if ((c = find_check(a, name, &rc)) != NULL) {
		if (c->fn != NULL)
			rc = -EINVAL;	/* the name belongs to a callback */
		else
			c->ready = ready;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int
upmon_admin_add_check(struct upmon_admin *a, const char *name, upmon_ready_fn fn, void *arg)
{
	struct ready_check *c;
	int rc;

	if (fn == NULL)
		return -EINVAL;
	pthread_mutex_lock(&a->mu);
	if ((c = find_check(a, name, &rc)) != NULL) {
		c->fn = fn;
		c->arg = arg;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

bool
upmon_admin_is_ready(struct upmon_admin *a)
{
	return evaluate(a, NULL, NULL);
}

void
upmon_admin_stop(struct upmon_admin *a)
{
	if (a == NULL)
		return;
	if (a->ctx != NULL)
		mg_stop(a->ctx);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
