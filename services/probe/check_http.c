/*
 * The HTTP(S) check: method, headers, body, expected status set, keyword present or absent,
 * maximum response time, bounded redirects, TLS verification and the leaf certificate's
 * expiry (CURLOPT_CERTINFO).
 */
#include "checks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "upmon/backoff.h"

#define KEYWORD_SHOWN	64	/* keyword bytes quoted in an error */

/* Appends "Name: value" (or "Name;" for an empty value, curl's way) to x->headers. */
static int
add_header(struct probe_xfer *x, const char *name, const char *value)
{
	char line[UPMON_HEADER_NAME_MAX + UPMON_HEADER_VALUE_MAX + 4];
	struct curl_slist *l;

	/* the decoder refuses these already; the engine is also fed by other callers */
	if (name[0] == '\0' || strpbrk(name, "\r\n:; ") != NULL || strpbrk(value, "\r\n") != NULL ||
	    strlen(name) > UPMON_HEADER_NAME_MAX || strlen(value) > UPMON_HEADER_VALUE_MAX) {
		snprintf(x->result.error, sizeof(x->result.error), "bad request header");
		return -EINVAL;
	}
	if (value[0] == '\0')
		snprintf(line, sizeof(line), "%s;", name);
	else
		snprintf(line, sizeof(line), "%s: %s", name, value);
	if ((l = curl_slist_append(x->headers, line)) == NULL)
		return -ENOMEM;
	x->headers = l;
	return 0;
}

static int
set_method(struct probe_xfer *x, const struct upmon_check *c)
{
	const char *name = upmon_http_method_name(c->method);
	CURLcode rc = CURLE_OK;
	bool body = c->body != NULL && c->method != UPMON_HTTP_HEAD;

	if (name == NULL) {
		snprintf(x->result.error, sizeof(x->result.error), "bad http method");
		return -EINVAL;
	}
	if (c->method == UPMON_HTTP_HEAD)
		rc = curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
	else if (c->method == UPMON_HTTP_POST)
		rc = curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
	else if (c->method != UPMON_HTTP_GET || body)
		rc = curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, name);
	if (rc == CURLE_OK && (body || c->method == UPMON_HTTP_POST)) {
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(body ? strlen(c->body) : 0));
		rc = curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, body ? c->body : "");
		/* no "Expect: 100-continue" round trip ("Expect:" removes the header) */
		if (rc == CURLE_OK) {
			struct curl_slist *l = curl_slist_append(x->headers, "Expect:");

			if (l == NULL)
				return -ENOMEM;
			x->headers = l;
		}
	}
	return rc == CURLE_OK ? 0 : rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

static int
http_setup(struct probe_xfer *x, const struct upmon_task *task)
{
	const struct upmon_check *c = &task->check;
	CURL *h = x->easy;
	size_t i;
	int rc;

	if (c->url == NULL || (strncasecmp(c->url, "http://", 7) != 0 &&
	    strncasecmp(c->url, "https://", 8) != 0)) {
		snprintf(x->result.error, sizeof(x->result.error), "bad url: not http or https");
		return -EINVAL;
	}
	x->nexpected = c->nexpected;
	if (x->nexpected > UPMON_EXPECTED_MAX)
		x->nexpected = UPMON_EXPECTED_MAX;
	memcpy(x->expected, c->expected, x->nexpected * sizeof(x->expected[0]));
	if (x->nexpected == 0) {
		x->expected[0].lo = 200;
		x->expected[0].hi = 299;
		x->nexpected = 1;
	}
	if (c->keyword != NULL && c->keyword[0] != '\0') {
		x->keyword_len = strlen(c->keyword);
		if (x->keyword_len > UPMON_KEYWORD_MAX)
			x->keyword_len = UPMON_KEYWORD_MAX;
		memcpy(x->keyword, c->keyword, x->keyword_len);
		x->keyword[x->keyword_len] = '\0';
		x->keyword_absent = c->keyword_absent;
		x->keep_body = c->method != UPMON_HTTP_HEAD;
	}
	x->max_latency_ms = c->max_latency_ms;

	if (curl_easy_setopt(h, CURLOPT_URL, c->url) != CURLE_OK)
		return -ENOMEM;
	if ((rc = set_method(x, c)) < 0)
		return rc;
	for (i = 0; i < c->nheaders && i < UPMON_HEADERS_MAX; i++)
		if ((rc = add_header(x, c->headers[i].name, c->headers[i].value)) < 0)
			return rc;
	if (x->headers != NULL)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, c->follow_redirects ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)c->max_redirects);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
	/* also when http:// redirects to https:// (no cost without TLS) */
	curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
	x->tls_possible = true;
	return 0;
}

/* Writes the expected set as "200-299,301". */
static void
format_expected(const struct probe_xfer *x, char *buf, size_t size)
{
	size_t i, n = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < x->nexpected && n < size; i++) {
		if (x->expected[i].lo == x->expected[i].hi)
			w = snprintf(buf + n, size - n, "%s%d", i ? "," : "", x->expected[i].lo);
		else
			w = snprintf(buf + n, size - n, "%s%d-%d", i ? "," : "",
			    x->expected[i].lo, x->expected[i].hi);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static bool
status_expected(const struct probe_xfer *x, int status)
{
	size_t i;

	for (i = 0; i < x->nexpected; i++)
		if (status >= x->expected[i].lo && status <= x->expected[i].hi)
			return true;
	return false;
}

/* The keyword as shown in an error: at most KEYWORD_SHOWN bytes, control characters and
 * quotes replaced so the error stays one line. */
static void
shown_keyword(const struct probe_xfer *x, char *buf, size_t size)
{
	size_t i, n = x->keyword_len < KEYWORD_SHOWN ? x->keyword_len : KEYWORD_SHOWN;

	if (n + 4 > size)
		n = size - 4;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)x->keyword[i];

		buf[i] = ch < 0x20 || ch == 0x7f || ch == '"' ? '?' : (char)ch;
	}
	if (n < x->keyword_len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

/* True if needle (n > 0 bytes) occurs in hay (len bytes); the body may hold NUL bytes. */
static bool
contains(const char *hay, size_t len, const char *needle, size_t n)
{
	const char *p = hay, *end = hay + len;

	while ((size_t)(end - p) >= n && (p = memchr(p, needle[0], (size_t)(end - p) - n + 1))
	    != NULL) {
		if (memcmp(p, needle, n) == 0)
			return true;
		p++;
	}
	return false;
}

static void
check_keyword(struct probe_xfer *x, struct probe_result *r)
{
	char kw[KEYWORD_SHOWN + 4];
	bool found;

	found = x->body != NULL && contains(x->body, x->body_len, x->keyword, x->keyword_len);
	shown_keyword(x, kw, sizeof(kw));
	if (!x->keyword_absent && !found) {
		r->ok = false;
		if (x->body_truncated)
			snprintf(r->error, sizeof(r->error), "keyword \"%s\" not found in the "
			    "first %zu bytes (response larger)", kw, x->body_len);
		else
			snprintf(r->error, sizeof(r->error), "keyword \"%s\" not found", kw);
	} else if (x->keyword_absent && found) {
		r->ok = false;
		snprintf(r->error, sizeof(r->error), "keyword \"%s\" found", kw);
	}
}

/* Reads notAfter of the leaf certificate from curl's certinfo. */
static void
read_cert(struct probe_xfer *x, struct probe_result *r)
{
	struct curl_certinfo *ci = NULL;
	struct curl_slist *l;
	time_t t;
	int64_t now;

	if (curl_easy_getinfo(x->easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
	    ci->num_of_certs < 1)
		return;
	for (l = ci->certinfo[0]; l != NULL; l = l->next) {
		if (strncmp(l->data, "Expire date:", 12) != 0)
			continue;
		if ((t = curl_getdate(l->data + 12, NULL)) == -1)
			return;
		now = upmon_wall_ms();
		r->has_cert = true;
		r->cert_not_after_ms = (int64_t)t * 1000;
		/* whole days, rounded down (an expired certificate gives a negative number) */
		r->cert_days_left = (int)((r->cert_not_after_ms - now) / 86400000);
		if (r->cert_not_after_ms < now && (now - r->cert_not_after_ms) % 86400000 != 0)
			r->cert_days_left--;
		return;
	}
}

static void
http_finish(struct probe_xfer *x, CURLcode code, struct probe_result *r)
{
	char set[UPMON_EXPECTED_MAX * 8 + 1];
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	r->status_code = status >= 100 && status <= 599 ? (int)status : 0;
	if (r->timings.tls_ms >= 0)
		read_cert(x, r);
	if (code == CURLE_WRITE_ERROR && x->body_stopped)
		code = CURLE_OK;	/* the body cap was reached: the response is judged on it */
	if (code != CURLE_OK) {
		probe_error_from_curl(x, code, r);
		return;
	}
	r->ok = true;
	if (!status_expected(x, r->status_code)) {
		format_expected(x, set, sizeof(set));
		r->ok = false;
		snprintf(r->error, sizeof(r->error), "status %d not in %s", r->status_code, set);
		return;
	}
	if (x->keyword_len > 0 && x->keep_body) {
		check_keyword(x, r);
		if (!r->ok)
			return;
	}
	if (x->max_latency_ms > 0 && r->latency_ms > x->max_latency_ms) {
		r->ok = false;
		snprintf(r->error, sizeof(r->error), "response time %d ms exceeds %d ms",
		    r->latency_ms, x->max_latency_ms);
	}
}

const struct probe_check_type probe_check_http = {
	.type = UPMON_CHECK_HTTP,
	.name = "http",
	.setup = http_setup,
	.finish = http_finish,
};
