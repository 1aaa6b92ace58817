/*
 * Internal to the check engine: one running check (struct probe_xfer) and the table of check
 * types. engine.c owns the transfers and the curl multi; each check type (check_http.c,
 * check_tcp.c) sets up its curl options from a task and turns the finished transfer into a
 * probe_result. Adding a type is one file and one row in checks.c.
 */
#ifndef UPMON_PROBE_CHECKS_H
#define UPMON_PROBE_CHECKS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "upmon/msg.h"
#include "upmon/ssrf.h"

/* One check on its way through the engine. Reused from a free list: engine.c clears the
 * per-check fields and resets the easy handle before each check. */
struct probe_xfer {
	CURL *easy;			/* owned, reused (curl_easy_reset) */
	struct probe_xfer *next;	/* free list or done queue */
	struct probe_xfer *all_next;	/* every transfer of the engine */
	bool running;			/* added to the multi */
	void *ctx;			/* the caller's, handed back with the result */
	const struct probe_check_type *type;
	struct upmon_ssrf_curl ssrf;	/* the guard's per-transfer state */
	struct curl_slist *headers;	/* request headers, freed after the check */
	char errbuf[CURL_ERROR_SIZE];

	/* what finish() needs, copied from the task */
	int timeout_ms;
	bool tls_possible;		/* a TLS phase may happen (http checks, via redirects) */
	struct upmon_status_range expected[UPMON_EXPECTED_MAX];
	size_t nexpected;
	char keyword[UPMON_KEYWORD_MAX + 1];	/* "" = none */
	size_t keyword_len;
	bool keyword_absent;
	int max_latency_ms;

	/* response body, kept only when keep_body (a keyword is set) */
	bool keep_body;
	char *body;			/* owned, grown up to body_max */
	size_t body_len, body_cap, body_max;
	bool body_truncated;		/* the response was longer than body_max */
	bool body_stopped;		/* ... so the write callback stopped the transfer */
	unsigned long long body_seen;	/* response body bytes received */

	struct probe_result result;
};

/* One row of the table of check types. setup() sets the type's curl options on x->easy
 * (the engine has set the common ones) and returns 0, -ENOMEM, or -EINVAL with
 * x->result.error saying why the task cannot run (the check then completes as failed).
 * finish() fills r from the finished transfer (code = its CURLcode); r->timings are set. */
struct probe_check_type {
	enum upmon_check_type type;
	const char *name;
	int (*setup)(struct probe_xfer *x, const struct upmon_task *task);
	void (*finish)(struct probe_xfer *x, CURLcode code, struct probe_result *r);
};

/* The row for type t, or NULL. */
const struct probe_check_type *probe_check_type_find(enum upmon_check_type t);

/* The check types (check_http.c, check_tcp.c). */
extern const struct probe_check_type probe_check_http;
extern const struct probe_check_type probe_check_tcp;

/* Sets r->error (and r->blocked) for a transfer that failed with code: the guard's reason
 * when it refused an address, else a short lowercase description ("connection refused",
 * "timeout after 2000 ms", "dns: could not resolve host x", "tls: ..."). */
void probe_error_from_curl(struct probe_xfer *x, CURLcode code, struct probe_result *r);

/* Reads the phase times of the finished transfer into r->timings (-1 = not reached) and
 * r->latency_ms. */
void probe_timings_read(struct probe_xfer *x, struct probe_result *r);

#endif
