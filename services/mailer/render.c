/*
 * What a human reads: the one-line summary (email subject, webhook "text"), the plain-text
 * and the HTML bodies of an alert email. User values (monitor name, target, error) are
 * untrusted: control characters become spaces in one-line places, and every one of them is
 * HTML-escaped in the HTML part.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailer.h"

/* A growing heap string; err latches the first allocation failure. */
struct rbuf {
	char *s;
	size_t len;
	size_t cap;
	int err;
};

static void
rbuf_grow(struct rbuf *b, size_t more)
{
	size_t ncap;
	char *p;

	if (b->err != 0)
		return;
	if (b->len + more + 1 <= b->cap)
		return;
	ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + more + 1)
		ncap *= 2;
	if ((p = realloc(b->s, ncap)) == NULL) {
		b->err = -ENOMEM;
		return;
	}
	b->s = p;
	b->cap = ncap;
}

static void
rbuf_add(struct rbuf *b, const char *s, size_t n)
{
	rbuf_grow(b, n);
	if (b->err != 0)
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
rbuf_str(struct rbuf *b, const char *s)
{
	rbuf_add(b, s, strlen(s));
}

static void rbuf_printf(struct rbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rbuf_printf(struct rbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	rbuf_grow(b, (size_t)n);
	if (b->err != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Appends s with every control character (C0, DEL) replaced by a space: one line. */
static void
rbuf_oneline(struct rbuf *b, const char *s)
{
	size_t i, n = strlen(s);

	rbuf_grow(b, n);
	if (b->err != 0)
		return;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		b->s[b->len++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	b->s[b->len] = '\0';
}

/* Appends s HTML-escaped (& < > " '), control characters as spaces. */
static void
rbuf_html(struct rbuf *b, const char *s)
{
	for (; *s != '\0' && b->err == 0; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': rbuf_str(b, "&amp;"); break;
		case '<': rbuf_str(b, "&lt;"); break;
		case '>': rbuf_str(b, "&gt;"); break;
		case '"': rbuf_str(b, "&quot;"); break;
		case '\'': rbuf_str(b, "&#39;"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				c = ' ';
			rbuf_add(b, (const char *)&c, 1);
		}
	}
}

static char *
rbuf_take(struct rbuf *b)
{
	char *s = b->s;

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void
mailer_format_duration(int64_t seconds, char *buf, size_t size)
{
	int64_t d, h, m, s;

	if (size == 0)
		return;
	if (seconds < 0)
		seconds = 0;
	d = seconds / 86400;
	h = seconds % 86400 / 3600;
	m = seconds % 3600 / 60;
	s = seconds % 60;
	if (d > 0) {
		if (h > 0)
			snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", d, h);
		else
			snprintf(buf, size, "%" PRId64 "d", d);
	} else if (h > 0) {
		if (m > 0)
			snprintf(buf, size, "%" PRId64 "h %" PRId64 "m", h, m);
		else
			snprintf(buf, size, "%" PRId64 "h", h);
	} else if (m > 0) {
		if (s > 0)
			snprintf(buf, size, "%" PRId64 "m %" PRId64 "s", m, s);
		else
			snprintf(buf, size, "%" PRId64 "m", m);
	} else
		snprintf(buf, size, "%" PRId64 "s", s);
}

/* The name a human knows the monitor by: its name, else its target, else its id. */
static const char *
display_name(const struct upmon_alert_event *ev)
{
	if (ev->monitor_name != NULL && ev->monitor_name[0] != '\0')
		return ev->monitor_name;
	if (ev->target != NULL && ev->target[0] != '\0')
		return ev->target;
	if (ev->monitor_id[0] != '\0')
		return ev->monitor_id;
	return "monitor";
}

/* "expires in 9 days", "expires in 1 day", "expires today", "expired 3 days ago". */
static void
cert_phrase(int days, char *buf, size_t size)
{
	if (days > 0)
		snprintf(buf, size, "expires in %d day%s", days, days == 1 ? "" : "s");
	else if (days == 0)
		snprintf(buf, size, "expires today");
	else
		snprintf(buf, size, "expired %d day%s ago", -days, days == -1 ? "" : "s");
}

static void
summary(struct rbuf *b, const struct upmon_alert_event *ev)
{
	char dur[64], cert[64];

	switch (ev->kind) {
	case UPMON_ALERT_DOWN:
		if (ev->reminder) {
			mailer_format_duration(ev->outage_seconds, dur, sizeof(dur));
			rbuf_str(b, "[REMINDER] ");
			rbuf_oneline(b, display_name(ev));
			rbuf_printf(b, " is still down (for %s)", dur);
			break;
		}
		rbuf_str(b, "[DOWN] ");
		rbuf_oneline(b, display_name(ev));
		rbuf_str(b, " is down");
		if (ev->error != NULL && ev->error[0] != '\0') {
			rbuf_str(b, ": ");
			rbuf_oneline(b, ev->error);
		}
		break;
	case UPMON_ALERT_RECOVERY:
		mailer_format_duration(ev->outage_seconds, dur, sizeof(dur));
		rbuf_str(b, "[RECOVERY] ");
		rbuf_oneline(b, display_name(ev));
		rbuf_printf(b, " is up again after %s", dur);
		break;
	case UPMON_ALERT_SYSTEM_ERROR:
		rbuf_str(b, "[SYSTEM ERROR] ");
		rbuf_oneline(b, display_name(ev));
		rbuf_printf(b, ": check not processed after %d attempt%s", ev->attempts,
		    ev->attempts == 1 ? "" : "s");
		if (ev->error != NULL && ev->error[0] != '\0') {
			rbuf_str(b, ": ");
			rbuf_oneline(b, ev->error);
		}
		break;
	case UPMON_ALERT_TLS_EXPIRY:
		cert_phrase(ev->cert_days_left, cert, sizeof(cert));
		rbuf_str(b, "[TLS] ");
		rbuf_oneline(b, display_name(ev));
		rbuf_printf(b, ": certificate %s", cert);
		break;
	case UPMON_ALERT_TEST:
	default:
		rbuf_str(b, "[TEST] test notification from upmon");
		break;
	}
}

int
mailer_render_summary(const struct upmon_alert_event *ev, char **out)
{
	struct rbuf b = { 0 };

	*out = NULL;
	summary(&b, ev);
	if (b.err == 0 && b.s == NULL)
		rbuf_str(&b, "");
	if (b.err != 0) {
		free(b.s);
		return b.err;
	}
	*out = rbuf_take(&b);
	return 0;
}

void
mailer_rendered_release(struct mailer_rendered *r)
{
	free(r->subject);
	free(r->text);
	free(r->html);
	free(r->link);
	memset(r, 0, sizeof(*r));
}

static const char *
state_name(const struct upmon_alert_event *ev)
{
	switch (ev->kind) {
	case UPMON_ALERT_DOWN:
		return ev->reminder ? "STILL DOWN (reminder)" : "DOWN";
	case UPMON_ALERT_RECOVERY:
		return "UP (recovered)";
	case UPMON_ALERT_SYSTEM_ERROR:
		return "SYSTEM ERROR";
	case UPMON_ALERT_TLS_EXPIRY:
		return "TLS CERTIFICATE EXPIRING";
	case UPMON_ALERT_TEST:
	default:
		return "TEST";
	}
}

/* "2026-11-21T19:23:21Z" and "Sat, 21 Nov 2026 19:23:21 UTC" for Unix ms (C locale names). */
static void
format_times(int64_t at_ms, char *rfc, size_t rfcsize, char *human, size_t humansize)
{
	static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(at_ms / 1000);
	struct tm tm;

	if (at_ms < 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(rfc, rfcsize, "unknown");
		snprintf(human, humansize, "unknown");
		return;
	}
	snprintf(rfc, rfcsize, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	snprintf(human, humansize, "%s, %d %s %04d %02d:%02d:%02d UTC", wday[tm.tm_wday % 7],
	    tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* One "Label: value" row of both bodies; value is user data unless plain is set. */
static void
row(struct rbuf *text, struct rbuf *html, const char *label, const char *value)
{
	rbuf_printf(text, "%-12s ", label);
	rbuf_oneline(text, value);
	rbuf_str(text, "\n");
	rbuf_str(html, "<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">");
	rbuf_html(html, label);
	rbuf_str(html, "</th><td>");
	rbuf_html(html, value);
	rbuf_str(html, "</td></tr>\n");
}

static char *
make_link(const struct upmon_alert_event *ev, const struct mailer_links *links)
{
	struct rbuf b = { 0 };
	size_t n;

	if (links == NULL || links->dashboard_url == NULL || links->dashboard_url[0] == '\0' ||
	    ev->monitor_id[0] == '\0')
		return NULL;
	n = strlen(links->dashboard_url);
	while (n > 0 && links->dashboard_url[n - 1] == '/')
		n--;
	rbuf_add(&b, links->dashboard_url, n);
	rbuf_str(&b, "/monitors/");
	rbuf_str(&b, ev->monitor_id);
	if (b.err != 0) {
		free(b.s);
		return NULL;
	}
	return rbuf_take(&b);
}

int
mailer_render_email(const struct upmon_alert_event *ev, const struct mailer_links *links,
    struct mailer_rendered *out)
{
	struct rbuf text = { 0 }, html = { 0 };
	char rfc[64], human[64], when[160], dur[64], cert[64], num[32];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = mailer_render_summary(ev, &out->subject)) != 0)
		goto fail;
	out->link = make_link(ev, links);
	if (out->link == NULL && links != NULL && links->dashboard_url != NULL &&
	    links->dashboard_url[0] != '\0' && ev->monitor_id[0] != '\0') {
		rc = -ENOMEM;
		goto fail;
	}
	format_times(ev->at, rfc, sizeof(rfc), human, sizeof(human));
	snprintf(when, sizeof(when), "%s (%s)", rfc, human);

	rbuf_oneline(&text, out->subject);
	rbuf_str(&text, "\n\n");
	rbuf_str(&html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	rbuf_html(&html, out->subject);
	rbuf_str(&html, "</title></head>\n<body style=\"font-family:sans-serif\">\n<h2>");
	rbuf_html(&html, out->subject);
	rbuf_str(&html, "</h2>\n<table>\n");

	if (ev->kind != UPMON_ALERT_TEST || ev->monitor_name != NULL)
		row(&text, &html, "Monitor:", display_name(ev));
	if (ev->target != NULL && ev->target[0] != '\0')
		row(&text, &html, "Target:", ev->target);
	row(&text, &html, "State:", state_name(ev));
	if (ev->error != NULL && ev->error[0] != '\0')
		row(&text, &html, "Error:", ev->error);
	row(&text, &html, "Time:", when);
	switch (ev->kind) {
	case UPMON_ALERT_RECOVERY:
		mailer_format_duration(ev->outage_seconds, dur, sizeof(dur));
		row(&text, &html, "Outage:", dur);
		break;
	case UPMON_ALERT_DOWN:
		if (ev->reminder) {
			mailer_format_duration(ev->outage_seconds, dur, sizeof(dur));
			row(&text, &html, "Down for:", dur);
		}
		break;
	case UPMON_ALERT_TLS_EXPIRY:
		cert_phrase(ev->cert_days_left, cert, sizeof(cert));
		snprintf(num, sizeof(num), "%d", ev->cert_days_left);
		row(&text, &html, "Certificate:", cert);
		row(&text, &html, "Days left:", num);
		break;
	case UPMON_ALERT_SYSTEM_ERROR:
		snprintf(num, sizeof(num), "%d", ev->attempts);
		row(&text, &html, "Attempts:", num);
		if (ev->task_id[0] != '\0')
			row(&text, &html, "Task:", ev->task_id);
		break;
	default:
		break;
	}
	if (out->link != NULL)
		row(&text, &html, "Dashboard:", out->link);
	rbuf_str(&html, "</table>\n");
	if (out->link != NULL) {
		rbuf_str(&html, "<p><a href=\"");
		rbuf_html(&html, out->link);
		rbuf_str(&html, "\">Open the monitor in the dashboard</a></p>\n");
	}
	rbuf_str(&text, "\n-- \nupmon\n");
	rbuf_str(&html, "<p style=\"color:#888\">upmon</p>\n</body></html>\n");
	if (text.err != 0 || html.err != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	out->text = rbuf_take(&text);
	out->html = rbuf_take(&html);
	return 0;
fail:
	free(text.s);
	free(html.s);
	mailer_rendered_release(out);
	return rc;
}
