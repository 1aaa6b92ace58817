/*
 * The check engine: one curl multi handle, a free list of reusable transfers (each with its
 * easy handle), a queue of completed results, and a DNS cache shared by the engine's
 * transfers. Every check uses a fresh connection. See engine.h.
 */
#include "checks.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/config.h"
#include "upmon/log.h"

#define DEFAULT_MAX_BODY	(1024 * 1024)
#define DEFAULT_MAX_INFLIGHT	1024
#define DNS_CACHE_SECONDS	30L
#define BODY_KEEP_CAP		(64 * 1024)	/* bigger body buffers are freed after use */

struct probe_engine {
	CURLM *multi;
	CURLSH *share;
	const struct upmon_ssrf *guard;
	size_t max_body;
	size_t max_inflight;
	char *user_agent;
	struct probe_xfer *all;		/* every transfer, for probe_engine_free */
	struct probe_xfer *free_list;
	struct probe_xfer *done_head, *done_tail;
	size_t inflight;		/* submitted, not yet taken by probe_engine_next */
	size_t ndone;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_global(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
probe_engine_config_init(struct probe_engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_body_bytes = DEFAULT_MAX_BODY;
	cfg->max_inflight = DEFAULT_MAX_INFLIGHT;
	cfg->user_agent = NULL;	/* "upmon-probe/<version>" */
}

int
probe_engine_new(const struct probe_engine_config *cfg, struct probe_engine **out)
{
	struct probe_engine *e;
	char ua[128];

	*out = NULL;
	if (cfg == NULL || cfg->max_inflight == 0 || cfg->max_body_bytes == 0)
		return -EINVAL;
	pthread_once(&curl_once, curl_global);
	if (curl_init_rc != CURLE_OK)
		return -ENOMEM;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -ENOMEM;
	if (cfg->user_agent != NULL)
		snprintf(ua, sizeof(ua), "%s", cfg->user_agent);
	else
		snprintf(ua, sizeof(ua), "upmon-probe/%s", upmon_version());
	e->guard = cfg->guard;
	e->max_body = cfg->max_body_bytes;
	e->max_inflight = cfg->max_inflight;
	if ((e->user_agent = strdup(ua)) == NULL || (e->multi = curl_multi_init()) == NULL ||
	    (e->share = curl_share_init()) == NULL) {
		probe_engine_free(e);
		return -ENOMEM;
	}
	/* one thread per engine: the share needs no lock callbacks */
	curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	*out = e;
	return 0;
}

static void
xfer_destroy(struct probe_xfer *x)
{
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x);
}

void
probe_engine_free(struct probe_engine *e)
{
	struct probe_xfer *x, *next;

	if (e == NULL)
		return;
	for (x = e->all; x != NULL; x = next) {
		next = x->all_next;
		if (x->running)
			curl_multi_remove_handle(e->multi, x->easy);
		xfer_destroy(x);
	}
	if (e->multi != NULL)
		curl_multi_cleanup(e->multi);
	if (e->share != NULL)
		curl_share_cleanup(e->share);
	free(e->user_agent);
	free(e);
}

/* Appends up to len bytes to the kept body, never beyond body_max. */
static void
keep_bytes(struct probe_xfer *x, const char *data, size_t len)
{
	size_t take = x->body_max - x->body_len, cap;
	char *p;

	if (take > len)
		take = len;
	if (take == 0)
		return;
	if (x->body_len + take > x->body_cap) {
		cap = x->body_cap ? x->body_cap : 16384;
		while (cap < x->body_len + take)
			cap *= 2;
		if (cap > x->body_max)
			cap = x->body_max;
		if ((p = realloc(x->body, cap)) == NULL) {
			x->body_truncated = true;	/* search what we have */
			return;
		}
		x->body = p;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, data, take);
	x->body_len += take;
}

/* The write callback: keeps the body (up to body_max bytes) when a keyword is set, else
 * discards it; once more than body_max bytes arrived it stops the transfer (curl then
 * reports CURLE_WRITE_ERROR, which the HTTP check takes as a complete, truncated response). */
static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct probe_xfer *x = arg;
	size_t len = size * nmemb;

	x->body_seen += len;
	if (x->body_seen > x->body_max) {
		x->body_truncated = true;
		x->body_stopped = true;
		len -= (size_t)(x->body_seen - x->body_max);
	}
	if (x->keep_body && len > 0)
		keep_bytes(x, data, len);
	return x->body_stopped ? 0 : size * nmemb;
}

static struct probe_xfer *
xfer_get(struct probe_engine *e)
{
	struct probe_xfer *x = e->free_list;

	if (x != NULL) {
		e->free_list = x->next;
		curl_easy_reset(x->easy);
	} else {
		if ((x = calloc(1, sizeof(*x))) == NULL)
			return NULL;
		if ((x->easy = curl_easy_init()) == NULL) {
			free(x);
			return NULL;
		}
		x->all_next = e->all;
		e->all = x;
	}
	x->next = NULL;
	return x;
}

/* Clears what one check left in x and puts it back on the free list. */
static void
xfer_put(struct probe_engine *e, struct probe_xfer *x)
{
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	if (x->body_cap > BODY_KEEP_CAP) {
		free(x->body);
		x->body = NULL;
		x->body_cap = 0;
	}
	x->ctx = NULL;
	x->next = e->free_list;
	e->free_list = x;
}

/* Resets the per-check fields of x and sets the options every check type shares. */
static int
xfer_prepare(struct probe_engine *e, struct probe_xfer *x, const struct upmon_task *task)
{
	CURL *h = x->easy;
	CURLcode rc = CURLE_OK;
	long timeout = task->check.timeout_ms > 0 ? task->check.timeout_ms : 10000;

	x->running = false;
	x->errbuf[0] = '\0';
	x->timeout_ms = (int)timeout;
	x->tls_possible = false;
	x->nexpected = 0;
	x->keyword[0] = '\0';
	x->keyword_len = 0;
	x->keyword_absent = false;
	x->max_latency_ms = 0;
	x->keep_body = false;
	x->body_len = 0;
	x->body_max = e->max_body;
	x->body_truncated = false;
	x->body_stopped = false;
	x->body_seen = 0;
	memset(&x->result, 0, sizeof(x->result));
	x->result.timings.dns_ms = x->result.timings.connect_ms = -1;
	x->result.timings.tls_ms = x->result.timings.first_byte_ms = -1;
	x->ssrf.guard = e->guard;
	upmon_ssrf_curl_reset(&x->ssrf);

	rc |= curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	rc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	rc |= curl_easy_setopt(h, CURLOPT_SHARE, e->share);
	rc |= curl_easy_setopt(h, CURLOPT_DNS_CACHE_TIMEOUT, DNS_CACHE_SECONDS);
	rc |= curl_easy_setopt(h, CURLOPT_USERAGENT, e->user_agent);
	rc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (rc != CURLE_OK || upmon_ssrf_curl_attach(&x->ssrf, h) < 0)
		return -ENOMEM;
	return 0;
}

static void
done_push(struct probe_engine *e, struct probe_xfer *x)
{
	x->next = NULL;
	if (e->done_tail != NULL)
		e->done_tail->next = x;
	else
		e->done_head = x;
	e->done_tail = x;
	e->ndone++;
}

int
probe_engine_submit(struct probe_engine *e, const struct upmon_task *task, void *ctx)
{
	const struct probe_check_type *type;
	struct probe_xfer *x;
	int rc;

	if (e == NULL || task == NULL)
		return -EINVAL;
	if ((type = probe_check_type_find(task->check.type)) == NULL)
		return -EINVAL;
	if (e->inflight >= e->max_inflight)
		return -EAGAIN;
	if ((x = xfer_get(e)) == NULL)
		return -ENOMEM;
	x->type = type;
	if ((rc = xfer_prepare(e, x, task)) < 0)
		goto fail;
	x->ctx = ctx;
	if ((rc = type->setup(x, task)) == -EINVAL) {
		/* a task this type cannot run completes at once as a failed check */
		x->result.ok = false;
		if (x->result.error[0] == '\0')
			snprintf(x->result.error, sizeof(x->result.error), "bad %s check",
			    type->name);
		e->inflight++;
		done_push(e, x);
		return 0;
	}
	if (rc < 0)
		goto fail;
	if (curl_multi_add_handle(e->multi, x->easy) != CURLM_OK) {
		rc = -ENOMEM;
		goto fail;
	}
	x->running = true;
	e->inflight++;
	return 0;
fail:
	xfer_put(e, x);
	return rc;
}

/* Moves every finished transfer from the multi to the done queue. */
static void
collect(struct probe_engine *e)
{
	struct probe_xfer *x;
	CURLMsg *msg;
	CURLcode code;
	int left;

	while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		code = msg->data.result;
		x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x == NULL)
			continue;
		probe_timings_read(x, &x->result);
		x->type->finish(x, code, &x->result);
		curl_multi_remove_handle(e->multi, x->easy);
		x->running = false;
		done_push(e, x);
	}
}

int
probe_engine_run(struct probe_engine *e, int timeout_ms, int extra_fd)
{
	struct curl_waitfd wfd;
	int running = 0;
	CURLMcode mc;

	mc = curl_multi_perform(e->multi, &running);
	if (mc != CURLM_OK)
		goto fail;
	collect(e);
	if (e->ndone > 0 || timeout_ms <= 0)
		return (int)e->ndone;
	wfd.fd = extra_fd;
	wfd.events = CURL_WAIT_POLLIN;
	wfd.revents = 0;
	mc = curl_multi_poll(e->multi, extra_fd >= 0 ? &wfd : NULL, extra_fd >= 0 ? 1 : 0,
	    timeout_ms, NULL);
	if (mc != CURLM_OK)
		goto fail;
	if ((mc = curl_multi_perform(e->multi, &running)) != CURLM_OK)
		goto fail;
	collect(e);
	return (int)e->ndone;
fail:
	log_warnx("probe engine: %s", curl_multi_strerror(mc));
	return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

int
probe_engine_next(struct probe_engine *e, void **ctx, struct probe_result *out)
{
	struct probe_xfer *x = e->done_head;

	if (x == NULL)
		return -EAGAIN;
	e->done_head = x->next;
	if (e->done_head == NULL)
		e->done_tail = NULL;
	e->ndone--;
	e->inflight--;
	*ctx = x->ctx;
	*out = x->result;
	xfer_put(e, x);
	return 0;
}

size_t
probe_engine_inflight(const struct probe_engine *e)
{
	return e != NULL ? e->inflight : 0;
}

int
probe_check_run(const struct probe_engine_config *cfg, const struct upmon_task *task,
    struct probe_result *out)
{
	struct probe_engine *e = NULL;
	void *ctx;
	int rc;

	if ((rc = probe_engine_new(cfg, &e)) < 0)
		return rc;
	if ((rc = probe_engine_submit(e, task, NULL)) < 0)
		goto out;
	while ((rc = probe_engine_next(e, &ctx, out)) == -EAGAIN)
		if ((rc = probe_engine_run(e, 1000, -1)) < 0)
			goto out;
	rc = 0;
out:
	probe_engine_free(e);
	return rc;
}
