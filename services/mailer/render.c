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
#include "upmon/strbuf.h"

/* Appends s with every control character (C0, DEL) replaced by a space: one line. */
static void
sb_oneline(struct upmon_sb *b, const char *s)
{
	size_t i, n = strlen(s);

	upmon_sb_grow(b, n);
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
sb_html(struct upmon_sb *b, const char *s)
{
	for (; *s != '\0' && b->err == 0; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&': upmon_sb_str(b, "&amp;"); break;
		case '<': upmon_sb_str(b, "&lt;"); break;
		case '>': upmon_sb_str(b, "&gt;"); break;
		case '"': upmon_sb_str(b, "&quot;"); break;
		case '\'': upmon_sb_str(b, "&#39;"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				c = ' ';
			upmon_sb_add(b, (const char *)&c, 1);
		}
	}
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
summary(struct upmon_sb *b, const struct upmon_alert_event *ev)
{
	char dur[64], cert[64];

	switch (ev->kind) {
	case UPMON_ALERT_DOWN:
		if (ev->reminder) {
			mailer_format_duration(ev->outage_seconds, dur, sizeof(dur));
			upmon_sb_str(b, "[REMINDER] ");
			sb_oneline(b, display_name(ev));
			upmon_sb_printf(b, " is still down (for %s)", dur);
			break;
		}
		upmon_sb_str(b, "[DOWN] ");
		sb_oneline(b, display_name(ev));
		upmon_sb_str(b, " is down");
		if (ev->error != NULL && ev->error[0] != '\0') {
			upmon_sb_str(b, ": ");
			sb_oneline(b, ev->error);
		}
		break;
	case UPMON_ALERT_RECOVERY:
		mailer_format_duration(ev->outage_seconds, dur, sizeof(dur));
		upmon_sb_str(b, "[RECOVERY] ");
		sb_oneline(b, display_name(ev));
		upmon_sb_printf(b, " is up again after %s", dur);
		break;
	case UPMON_ALERT_SYSTEM_ERROR:
		upmon_sb_str(b, "[SYSTEM ERROR] ");
		sb_oneline(b, display_name(ev));
		upmon_sb_printf(b, ": check not processed after %d attempt%s", ev->attempts,
		    ev->attempts == 1 ? "" : "s");
		if (ev->error != NULL && ev->error[0] != '\0') {
			upmon_sb_str(b, ": ");
			sb_oneline(b, ev->error);
		}
		break;
	case UPMON_ALERT_TLS_EXPIRY:
		cert_phrase(ev->cert_days_left, cert, sizeof(cert));
		upmon_sb_str(b, "[TLS] ");
		sb_oneline(b, display_name(ev));
		upmon_sb_printf(b, ": certificate %s", cert);
		break;
	case UPMON_ALERT_TEST:
	default:
		upmon_sb_str(b, "[TEST] test notification from upmon");
		break;
	}
}

int
mailer_render_summary(const struct upmon_alert_event *ev, char **out)
{
	struct upmon_sb b = UPMON_SB_INIT;

	*out = NULL;
	summary(&b, ev);
	if (b.err != 0) {
		upmon_sb_release(&b);
		return -ENOMEM;
	}
	*out = upmon_sb_take(&b);
	return *out != NULL ? 0 : -ENOMEM;
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
row(struct upmon_sb *text, struct upmon_sb *html, const char *label, const char *value)
{
	upmon_sb_printf(text, "%-12s ", label);
	sb_oneline(text, value);
	upmon_sb_str(text, "\n");
	upmon_sb_str(html, "<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">");
	sb_html(html, label);
	upmon_sb_str(html, "</th><td>");
	sb_html(html, value);
	upmon_sb_str(html, "</td></tr>\n");
}

static char *
make_link(const struct upmon_alert_event *ev, const struct mailer_links *links)
{
	struct upmon_sb b = UPMON_SB_INIT;
	size_t n;

	if (links == NULL || links->dashboard_url == NULL || links->dashboard_url[0] == '\0' ||
	    ev->monitor_id[0] == '\0')
		return NULL;
	n = strlen(links->dashboard_url);
	while (n > 0 && links->dashboard_url[n - 1] == '/')
		n--;
	upmon_sb_add(&b, links->dashboard_url, n);
	upmon_sb_str(&b, "/monitors/");
	upmon_sb_str(&b, ev->monitor_id);
	return upmon_sb_take(&b);
}

int
mailer_render_email(const struct upmon_alert_event *ev, const struct mailer_links *links,
    struct mailer_rendered *out)
{
	struct upmon_sb text = UPMON_SB_INIT, html = UPMON_SB_INIT;
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

	sb_oneline(&text, out->subject);
	upmon_sb_str(&text, "\n\n");
	upmon_sb_str(&html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	sb_html(&html, out->subject);
	upmon_sb_str(&html, "</title></head>\n<body style=\"font-family:sans-serif\">\n<h2>");
	sb_html(&html, out->subject);
	upmon_sb_str(&html, "</h2>\n<table>\n");

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
	upmon_sb_str(&html, "</table>\n");
	if (out->link != NULL) {
		upmon_sb_str(&html, "<p><a href=\"");
		sb_html(&html, out->link);
		upmon_sb_str(&html, "\">Open the monitor in the dashboard</a></p>\n");
	}
	upmon_sb_str(&text, "\n-- \nupmon\n");
	upmon_sb_str(&html, "<p style=\"color:#888\">upmon</p>\n</body></html>\n");
	if (text.err != 0 || html.err != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	out->text = upmon_sb_take(&text);
	out->html = upmon_sb_take(&html);
	return 0;
fail:
	upmon_sb_release(&text);
	upmon_sb_release(&html);
	mailer_rendered_release(out);
	return rc;
}
