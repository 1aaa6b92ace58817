/*
 * Webhooks: one POST of an alert to one channel with libcurl. The JSON body is
 * proto/webhook.schema.json (with the Slack-compatible "text" of mailer_render_summary),
 * signed with HMAC-SHA256 over "<timestamp>.<body>" when the channel has a secret. Every
 * address curl is about to connect to goes through the SSRF guard; redirects are never
 * followed; the response is read up to 64 KiB and dropped (its first bytes go into the error
 * line of a failure).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mailer.h"
#include "upmon/jsonv.h"
#include "upmon/ssrf.h"

#define RESPONSE_MAX	(64 * 1024)	/* response bytes read, then the transfer stops */
#define SNIPPET_MAX	120		/* response bytes quoted in an error line */
#define SIG_MIN		72		/* "sha256=" + 64 hex + NUL */

/* What the transfer reads back. */
struct wh_resp {
	size_t seen;			/* bytes received, capped at RESPONSE_MAX */
	bool capped;			/* the cap stopped the transfer */
	char snippet[SNIPPET_MAX + 1];	/* first bytes, for the error line */
	size_t nsnippet;
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct wh_resp *r = arg;
	size_t n = size * nmemb, take;

	if (r->nsnippet < SNIPPET_MAX) {
		take = SNIPPET_MAX - r->nsnippet;
		if (take > n)
			take = n;
		memcpy(r->snippet + r->nsnippet, ptr, take);
		r->nsnippet += take;
		r->snippet[r->nsnippet] = '\0';
	}
	if (r->seen + n > RESPONSE_MAX) {
		r->seen = RESPONSE_MAX;
		r->capped = true;
		return 0;	/* CURLE_WRITE_ERROR: enough was read, the status is known */
	}
	r->seen += n;
	return n;
}

/* Lower-cases the first letter of a sentence ("Connection refused"), not of an acronym
 * ("URL using bad/illegal format"). */
static void
lower_first(char *s)
{
	if (s[0] != '\0' && islower((unsigned char)s[1]))
		s[0] = (char)tolower((unsigned char)s[0]);
}

/* Copies src into dst as one printable line (control bytes become spaces, trimmed). */
static void
one_line(char *dst, size_t size, const char *src)
{
	size_t i, n = 0;

	for (i = 0; src[i] != '\0' && n + 1 < size; i++)
		dst[n++] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? ' ' : src[i];
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

static int
add_str(struct json_object *o, const char *key, const char *s)
{
	struct json_object *v = NULL;

	if (s != NULL && (v = json_object_new_string(s)) == NULL)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int
add_obj(struct json_object *o, const char *key, struct json_object *v)
{
	if (v == NULL)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* The "monitor" member: {"id", "name", "target", "url"}, or JSON null without a monitor. */
static int
add_monitor(struct json_object *o, const struct upmon_alert_event *ev,
    const struct mailer_links *links)
{
	struct json_object *m;
	char *url = NULL;
	size_t n;
	int rc = -ENOMEM;

	if (ev->monitor_id[0] == '\0')
		return json_object_object_add(o, "monitor", NULL) == 0 ? 0 : -ENOMEM;
	if ((m = json_object_new_object()) == NULL)
		return -ENOMEM;
	if (links != NULL && links->dashboard_url != NULL && links->dashboard_url[0] != '\0') {
		n = strlen(links->dashboard_url) + sizeof("/monitors/") + strlen(ev->monitor_id);
		if ((url = malloc(n)) == NULL)
			goto fail;
		snprintf(url, n, "%s/monitors/%s", links->dashboard_url, ev->monitor_id);
	}
	if (add_str(m, "id", ev->monitor_id) < 0 || add_str(m, "name", ev->monitor_name) < 0 ||
	    add_str(m, "target", ev->target) < 0 || add_str(m, "url", url) < 0)
		goto fail;
	free(url);
	return add_obj(o, "monitor", m);
fail:
	free(url);
	json_object_put(m);
	return rc;
}

/* The channel id of a delivery id "<alert_id>.<channel_id>" (alert ids have no '.'), else
 * the event's channel_id. */
static const char *
channel_of(const struct upmon_alert_event *ev, const char *delivery_id)
{
	const char *dot = delivery_id != NULL ? strrchr(delivery_id, '.') : NULL;

	return dot != NULL && dot[1] != '\0' ? dot + 1 : ev->channel_id;
}

int
mailer_webhook_body(const struct upmon_alert_event *ev, const struct mailer_links *links,
    const char *delivery_id, char **out, size_t *len)
{
	struct json_object *o = NULL, *ch = NULL;
	const char *kind = upmon_alert_kind_name(ev->kind), *s;
	char *text = NULL;
	size_t n;
	int rc;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (kind == NULL || delivery_id == NULL)
		return -EINVAL;
	if ((rc = mailer_render_summary(ev, &text)) < 0)
		return rc;
	rc = -ENOMEM;
	if ((o = json_object_new_object()) == NULL)
		goto done;
	if (add_obj(o, "v", json_object_new_int(1)) < 0 ||
	    add_str(o, "delivery_id", delivery_id) < 0 ||
	    add_str(o, "alert_id", ev->alert_id) < 0 ||
	    add_str(o, "kind", kind) < 0 ||
	    add_obj(o, "reminder", json_object_new_boolean(ev->reminder)) < 0 ||
	    add_str(o, "text", text) < 0 ||
	    add_monitor(o, ev, links) < 0 ||
	    add_obj(o, "at", upmon_json_time(ev->at)) < 0 ||
	    add_str(o, "error", ev->error) < 0)
		goto done;
	if ((ev->kind == UPMON_ALERT_RECOVERY ||
	    (ev->kind == UPMON_ALERT_DOWN && ev->reminder)) &&
	    add_obj(o, "outage_seconds", json_object_new_int64(ev->outage_seconds)) < 0)
		goto done;
	if (ev->kind == UPMON_ALERT_TLS_EXPIRY &&
	    add_obj(o, "cert_days_left", json_object_new_int(ev->cert_days_left)) < 0)
		goto done;
	if (ev->kind == UPMON_ALERT_SYSTEM_ERROR &&
	    (add_obj(o, "attempts", json_object_new_int(ev->attempts)) < 0 ||
	    add_str(o, "task_id", ev->task_id[0] != '\0' ? ev->task_id : NULL) < 0))
		goto done;
	if ((ch = json_object_new_object()) == NULL)
		goto done;
	if (add_str(ch, "id", channel_of(ev, delivery_id)) < 0) {
		json_object_put(ch);
		goto done;
	}
	if (add_obj(o, "channel", ch) < 0)
		goto done;
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s == NULL || (*out = malloc(n + 1)) == NULL)
		goto done;
	memcpy(*out, s, n + 1);
	if (len != NULL)
		*len = n;
	rc = 0;
done:
	json_object_put(o);
	free(text);
	return rc;
}

int
mailer_webhook_sign(const char *key, int64_t timestamp, const char *body, size_t len,
    char *buf, size_t size)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char prefix[32];
	unsigned char *msg;
	size_t np, i;
	int n;

	if (size < SIG_MIN)
		return -ENOSPC;
	if (key == NULL || (body == NULL && len > 0))
		return -EINVAL;
	n = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", timestamp);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return -EINVAL;
	np = (size_t)n;
	if ((msg = malloc(np + len + 1)) == NULL)
		return -ENOMEM;
	memcpy(msg, prefix, np);
	if (len > 0)
		memcpy(msg + np, body, len);
	if (HMAC(EVP_sha256(), key, (int)strlen(key), msg, np + len, mac, &maclen) == NULL ||
	    maclen != 32) {
		free(msg);
		return -EINVAL;
	}
	free(msg);
	memcpy(buf, "sha256=", 7);
	for (i = 0; i < maclen; i++)
		snprintf(buf + 7 + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

/* Appends the header line "name: value" to *l. */
static int
header(struct curl_slist **l, const char *name, const char *value)
{
	char line[MAILER_DELIVERY_ID_MAX + 64];
	struct curl_slist *n;

	if (strpbrk(value, "\r\n") != NULL)
		return -EINVAL;
	snprintf(line, sizeof(line), "%s: %s", name, value);
	if ((n = curl_slist_append(*l, line)) == NULL)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* Builds the request headers into *l. */
static int
make_headers(struct curl_slist **l, const struct mailer_channel *ch,
    const struct upmon_alert_event *ev, const char *delivery_id, const char *body, size_t len)
{
	char ts[24], sig[SIG_MIN + 8];
	int64_t now = (int64_t)time(NULL);
	int rc;

	snprintf(ts, sizeof(ts), "%" PRId64, now);
	if ((rc = header(l, "Content-Type", "application/json")) < 0 ||
	    (rc = header(l, "X-Upmon-Event", upmon_alert_kind_name(ev->kind))) < 0 ||
	    (rc = header(l, "X-Upmon-Delivery", delivery_id)) < 0 ||
	    (rc = header(l, "X-Upmon-Timestamp", ts)) < 0)
		return rc;
	if (ch->secret != NULL && ch->secret[0] != '\0') {
		if ((rc = mailer_webhook_sign(ch->secret, now, body, len, sig, sizeof(sig))) < 0 ||
		    (rc = header(l, "X-Upmon-Signature", sig)) < 0)
			return rc;
	}
	/* no "Expect: 100-continue" round trip for bodies over 1 KiB */
	if ((*l = curl_slist_append(*l, "Expect:")) == NULL)
		return -ENOMEM;
	return 0;
}

/* The response status: 2xx sent, 408/425/429/5xx again later, 3xx and other 4xx never. */
static void
classify_status(long status, const struct wh_resp *r, struct mailer_outcome *out)
{
	char snip[SNIPPET_MAX + 1];
	const char *sep;

	one_line(snip, sizeof(snip), r->snippet);
	sep = snip[0] != '\0' ? ": " : "";
	if (status >= 200 && status <= 299) {
		out->result = MAILER_SENT;
		out->code = (int)status;
		out->error[0] = '\0';
	} else if (status >= 300 && status <= 399)
		mailer_outcome_set(out, MAILER_PERMFAIL, (int)status,
		    "http %ld: redirects are not followed", status);
	else if (status == 408 || status == 425 || status == 429 || status >= 500)
		mailer_outcome_set(out, MAILER_TEMPFAIL, (int)status, "http %ld%s%s", status, sep,
		    snip);
	else if (status >= 400 && status <= 499)
		mailer_outcome_set(out, MAILER_PERMFAIL, (int)status, "http %ld%s%s", status, sep,
		    snip);
	else
		mailer_outcome_set(out, MAILER_TEMPFAIL, (int)status,
		    "unexpected http status %ld", status);
}

/* A transfer that failed before a status: what it means for a retry. Returns -ENOMEM for
 * curl's out-of-memory, else 0. */
static int
classify_error(CURL *h, CURLcode code, const struct upmon_ssrf_curl *st, const char *errbuf,
    struct mailer_outcome *out)
{
	char text[CURL_ERROR_SIZE + 1];
	long err = 0;

	one_line(text, sizeof(text), errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
	lower_first(text);	/* curl's lines start upper case */
	if (st->blocked) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "%s", st->why);
		return 0;
	}
	if (st->sock_errno != 0) {
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "mailer: socket: %s",
		    strerror(st->sock_errno));
		return 0;
	}
	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "timeout: %s", text);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "dns: %s", text);
		break;
	case CURLE_COULDNT_CONNECT:
		if (curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &err) == CURLE_OK && err != 0) {
			one_line(text, sizeof(text), strerror((int)err));
			lower_first(text);
		}
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "connect: %s", text);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "tls: certificate verify failed: %s",
		    text);
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "bad url: %s", text);
		break;
	case CURLE_OUT_OF_MEMORY:
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "mailer: out of memory");
		return -ENOMEM;
	default:
		/* send/recv errors, empty replies, TLS handshakes: the receiver's trouble */
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "%s", text);
		break;
	}
	return 0;
}

/* Sets the options of one POST on h. */
static int
setup(CURL *h, const struct mailer_webhook_config *cfg, const struct mailer_channel *ch,
    struct curl_slist *hdrs, const char *body, size_t len, struct wh_resp *resp,
    char *errbuf, struct upmon_ssrf_curl *st)
{
	CURLcode rc = CURLE_OK;

	if (curl_easy_setopt(h, CURLOPT_URL, ch->url) != CURLE_OK)
		return -EINVAL;
	rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	rc |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	rc |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(cfg->timeout_ms > 0 ?
	    cfg->timeout_ms : 10000));
	rc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(cfg->connect_timeout_ms > 0 ?
	    cfg->connect_timeout_ms : 5000));
	rc |= curl_easy_setopt(h, CURLOPT_USERAGENT, cfg->user_agent != NULL ?
	    cfg->user_agent : "upmon-mailer");
	rc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	rc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	rc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (rc != CURLE_OK)
		return -ENOMEM;
	st->guard = cfg->ssrf;
	upmon_ssrf_curl_reset(st);
	return upmon_ssrf_curl_attach(st, h) < 0 ? -ENOMEM : 0;
}

int
mailer_webhook_send(const struct mailer_webhook_config *cfg,
    const struct mailer_links *links, const struct mailer_channel *ch,
    const struct upmon_alert_event *ev, const char *delivery_id, struct mailer_outcome *out)
{
	struct upmon_ssrf_curl st;
	struct curl_slist *hdrs = NULL;
	struct wh_resp resp;
	char errbuf[CURL_ERROR_SIZE];
	char *body = NULL;
	CURL *h = NULL;
	CURLcode code;
	long status = 0;
	size_t len;
	int rc;

	mailer_outcome_init(out);
	memset(&st, 0, sizeof(st));
	memset(&resp, 0, sizeof(resp));
	errbuf[0] = '\0';
	if (ch->url == NULL || (strncasecmp(ch->url, "http://", 7) != 0 &&
	    strncasecmp(ch->url, "https://", 8) != 0)) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "bad url: not http or https");
		return 0;
	}
	if ((rc = mailer_webhook_body(ev, links, delivery_id, &body, &len)) < 0) {
		mailer_outcome_set(out, rc == -ENOMEM ? MAILER_TEMPFAIL : MAILER_PERMFAIL, 0,
		    "mailer: cannot build the webhook body: %s", strerror(-rc));
		return rc == -ENOMEM ? rc : 0;
	}
	if ((rc = make_headers(&hdrs, ch, ev, delivery_id, body, len)) < 0) {
		mailer_outcome_set(out, rc == -ENOMEM ? MAILER_TEMPFAIL : MAILER_PERMFAIL, 0,
		    "mailer: cannot build the webhook headers: %s", strerror(-rc));
		rc = rc == -ENOMEM ? rc : 0;
		goto free_all;
	}
	if ((h = curl_easy_init()) == NULL) {
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "mailer: out of memory");
		rc = -ENOMEM;
		goto free_all;
	}
	if ((rc = setup(h, cfg, ch, hdrs, body, len, &resp, errbuf, &st)) < 0) {
		if (rc == -EINVAL)
			mailer_outcome_set(out, MAILER_PERMFAIL, 0, "bad url");
		else
			mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "mailer: out of memory");
		rc = rc == -ENOMEM ? rc : 0;
		goto free_all;
	}
	code = curl_easy_perform(h);
	if (code == CURLE_WRITE_ERROR && resp.capped)
		code = CURLE_OK;	/* 64 KiB read: the status line is what counts */
	if (code == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		classify_status(status, &resp, out);
		rc = 0;
	} else {
		rc = classify_error(h, code, &st, errbuf, out);
	}
free_all:
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(body);
	return rc;
}
