/*
 * The TCP check: resolve host, connect to port, close. Done with curl's CONNECT_ONLY on an
 * http:// URL so that DNS, the SSRF guard, the timeouts and the timings are the HTTP check's.
 */
#include "checks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int
tcp_setup(struct probe_xfer *x, const struct upmon_task *task)
{
	const struct upmon_check *c = &task->check;
	char url[UPMON_HOST_MAX + 32];
	struct in6_addr a6;
	size_t i;

	if (c->host == NULL || c->host[0] == '\0' || strlen(c->host) > UPMON_HOST_MAX ||
	    c->port < 1 || c->port > 65535) {
		snprintf(x->result.error, sizeof(x->result.error), "bad host or port");
		return -EINVAL;
	}
	/* a name or an IPv4 literal: [A-Za-z0-9._-]; an IPv6 literal goes in brackets */
	for (i = 0; c->host[i] != '\0'; i++) {
		char ch = c->host[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_' || ch == ':'))
			break;
	}
	if (c->host[i] != '\0' || (strchr(c->host, ':') != NULL &&
	    inet_pton(AF_INET6, c->host, &a6) != 1)) {
		snprintf(x->result.error, sizeof(x->result.error), "bad host");
		return -EINVAL;
	}
	if (strchr(c->host, ':') != NULL)
		snprintf(url, sizeof(url), "http://[%s]:%d/", c->host, c->port);
	else
		snprintf(url, sizeof(url), "http://%s:%d/", c->host, c->port);
	if (curl_easy_setopt(x->easy, CURLOPT_URL, url) != CURLE_OK)
		return -ENOMEM;
	curl_easy_setopt(x->easy, CURLOPT_CONNECT_ONLY, 1L);
	return 0;
}

static void
tcp_finish(struct probe_xfer *x, CURLcode code, struct probe_result *r)
{
	r->status_code = 0;
	r->timings.tls_ms = -1;
	r->timings.first_byte_ms = -1;
	if (code != CURLE_OK) {
		probe_error_from_curl(x, code, r);
		return;
	}
	r->ok = true;
}

const struct probe_check_type probe_check_tcp = {
	.type = UPMON_CHECK_TCP,
	.name = "tcp",
	.setup = tcp_setup,
	.finish = tcp_finish,
};
