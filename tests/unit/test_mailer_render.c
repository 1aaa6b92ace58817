/*
 * mailer render: the exact summary line of every alert kind, durations, the text and HTML
 * bodies (fields, dashboard link, HTML escaping), and control characters in user values that
 * must never break the one-line subject.
 */
#include "test.h"

#include <stdint.h>

#include "mailer.h"
#include "upmon/msg.h"

#define AT 1700000000000LL	/* 2023-11-14T22:13:20Z */

static void
event(struct upmon_alert_event *ev, enum upmon_alert_kind kind, const char *name,
    const char *error)
{
	upmon_alert_event_init(ev);
	ev->kind = kind;
	snprintf(ev->alert_id, sizeof(ev->alert_id), "a-1");
	snprintf(ev->monitor_id, sizeof(ev->monitor_id), "0b6c1c7e-1111-4222-8333-444455556666");
	snprintf(ev->owner_id, sizeof(ev->owner_id), "o-1");
	ev->monitor_name = name ? strdup(name) : NULL;
	ev->target = strdup("https://api.example.org/health");
	ev->error = error ? strdup(error) : NULL;
	ev->at = AT;
}

static void
check_summary(const struct upmon_alert_event *ev, const char *want)
{
	char *s = NULL;

	CHECK_EQ(mailer_render_summary(ev, &s), 0);
	CHECK_STR(s, want);
	free(s);
}

static void
test_durations(void)
{
	static const struct { int64_t s; const char *want; } cases[] = {
		{ 0, "0s" }, { -5, "0s" }, { 1, "1s" }, { 59, "59s" }, { 60, "1m" },
		{ 252, "4m 12s" }, { 3600, "1h" }, { 3900, "1h 5m" }, { 3959, "1h 5m" },
		{ 86400, "1d" }, { 183600, "2d 3h" }, { 315360000, "3650d" },
	};
	char buf[64], small[4];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mailer_format_duration(cases[i].s, buf, sizeof(buf));
		CHECK_STR(buf, cases[i].want);
	}
	mailer_format_duration(183600, small, sizeof(small));
	CHECK_STR(small, "2d ");
}

static void
test_summaries(void)
{
	struct upmon_alert_event ev;

	event(&ev, UPMON_ALERT_DOWN, "api.example.org", "connection refused");
	check_summary(&ev, "[DOWN] api.example.org is down: connection refused");
	free(ev.error);
	ev.error = NULL;
	check_summary(&ev, "[DOWN] api.example.org is down");
	ev.reminder = true;
	ev.outage_seconds = 3900;
	check_summary(&ev, "[REMINDER] api.example.org is still down (for 1h 5m)");
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_RECOVERY, "api.example.org", NULL);
	ev.outage_seconds = 252;
	check_summary(&ev, "[RECOVERY] api.example.org is up again after 4m 12s");
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_SYSTEM_ERROR, "api.example.org", "probe crashed");
	ev.attempts = 5;
	check_summary(&ev, "[SYSTEM ERROR] api.example.org: check not processed after 5 "
	    "attempts: probe crashed");
	ev.attempts = 1;
	check_summary(&ev, "[SYSTEM ERROR] api.example.org: check not processed after 1 "
	    "attempt: probe crashed");
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_TLS_EXPIRY, "api.example.org", NULL);
	ev.cert_days_left = 9;
	check_summary(&ev, "[TLS] api.example.org: certificate expires in 9 days");
	ev.cert_days_left = 1;
	check_summary(&ev, "[TLS] api.example.org: certificate expires in 1 day");
	ev.cert_days_left = 0;
	check_summary(&ev, "[TLS] api.example.org: certificate expires today");
	ev.cert_days_left = -3;
	check_summary(&ev, "[TLS] api.example.org: certificate expired 3 days ago");
	upmon_alert_event_release(&ev);

	upmon_alert_event_init(&ev);
	ev.kind = UPMON_ALERT_TEST;
	snprintf(ev.channel_id, sizeof(ev.channel_id), "c-1");
	check_summary(&ev, "[TEST] test notification from upmon");
	upmon_alert_event_release(&ev);

	/* no name: the target stands in */
	event(&ev, UPMON_ALERT_DOWN, NULL, "timeout");
	check_summary(&ev, "[DOWN] https://api.example.org/health is down: timeout");
	upmon_alert_event_release(&ev);
}

static void
test_control_chars(void)
{
	struct upmon_alert_event ev;
	struct mailer_rendered r;
	char *s = NULL;

	event(&ev, UPMON_ALERT_DOWN, "x\r\nBcc: evil@x\x01\t\x7f", "line1\nline2\r\0");
	CHECK_EQ(mailer_render_summary(&ev, &s), 0);
	CHECK_STR(s, "[DOWN] x  Bcc: evil@x    is down: line1 line2 ");
	CHECK(strpbrk(s, "\r\n") == NULL);
	free(s);
	CHECK_EQ(mailer_render_email(&ev, NULL, &r), 0);
	CHECK(strpbrk(r.subject, "\r\n\t") == NULL);
	CHECK_CONTAINS(r.text, "Monitor:     x  Bcc: evil@x   \n");
	CHECK(strstr(r.text, "\nBcc:") == NULL);
	CHECK(strstr(r.html, "\nBcc:") == NULL);
	CHECK(r.link == NULL);
	mailer_rendered_release(&r);
	CHECK(r.subject == NULL && r.text == NULL && r.html == NULL);
	upmon_alert_event_release(&ev);
}

static void
test_email_bodies(void)
{
	struct upmon_alert_event ev;
	struct mailer_links links = { "http://dash.example:8080/" };
	struct mailer_rendered r;

	event(&ev, UPMON_ALERT_DOWN, "<b>shop</b> & \"co\" 'x'", "HTTP 503 <html>");
	CHECK_EQ(mailer_render_email(&ev, &links, &r), 0);
	CHECK_STR(r.subject, "[DOWN] <b>shop</b> & \"co\" 'x' is down: HTTP 503 <html>");
	CHECK_STR(r.link,
	    "http://dash.example:8080/monitors/0b6c1c7e-1111-4222-8333-444455556666");
	CHECK_CONTAINS(r.text, "[DOWN] <b>shop</b> & \"co\" 'x' is down: HTTP 503 <html>\n\n");
	CHECK_CONTAINS(r.text, "Monitor:     <b>shop</b> & \"co\" 'x'\n");
	CHECK_CONTAINS(r.text, "Target:      https://api.example.org/health\n");
	CHECK_CONTAINS(r.text, "State:       DOWN\n");
	CHECK_CONTAINS(r.text, "Error:       HTTP 503 <html>\n");
	CHECK_CONTAINS(r.text, "Time:        2023-11-14T22:13:20Z (Tue, 14 Nov 2023 22:13:20 UTC)\n");
	CHECK_CONTAINS(r.text, "Dashboard:   http://dash.example:8080/monitors/0b6c1c7e-");
	CHECK(strstr(r.text, "Outage:") == NULL);
	CHECK_CONTAINS(r.html, "&lt;b&gt;shop&lt;/b&gt; &amp; &quot;co&quot; &#39;x&#39;");
	CHECK_CONTAINS(r.html, "HTTP 503 &lt;html&gt;");
	CHECK(strstr(r.html, "<b>shop") == NULL);
	CHECK(strstr(r.html, "503 <html>") == NULL);
	CHECK_CONTAINS(r.html, "<a href=\"http://dash.example:8080/monitors/0b6c1c7e-");
	CHECK_CONTAINS(r.html, "2023-11-14T22:13:20Z");
	CHECK_CONTAINS(r.html, ">DOWN<");
	mailer_rendered_release(&r);
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_RECOVERY, "api", NULL);
	ev.outage_seconds = 252;
	CHECK_EQ(mailer_render_email(&ev, &links, &r), 0);
	CHECK_CONTAINS(r.text, "State:       UP (recovered)\n");
	CHECK_CONTAINS(r.text, "Outage:      4m 12s\n");
	CHECK_CONTAINS(r.html, "4m 12s");
	CHECK(strstr(r.text, "Error:") == NULL);
	mailer_rendered_release(&r);
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_DOWN, "api", "timeout");
	ev.reminder = true;
	ev.outage_seconds = 7200;
	CHECK_EQ(mailer_render_email(&ev, &links, &r), 0);
	CHECK_CONTAINS(r.text, "State:       STILL DOWN (reminder)\n");
	CHECK_CONTAINS(r.text, "Down for:    2h\n");
	mailer_rendered_release(&r);
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_TLS_EXPIRY, "api", NULL);
	ev.cert_days_left = 9;
	CHECK_EQ(mailer_render_email(&ev, &links, &r), 0);
	CHECK_CONTAINS(r.text, "State:       TLS CERTIFICATE EXPIRING\n");
	CHECK_CONTAINS(r.text, "Certificate: expires in 9 days\n");
	CHECK_CONTAINS(r.text, "Days left:   9\n");
	mailer_rendered_release(&r);
	upmon_alert_event_release(&ev);

	event(&ev, UPMON_ALERT_SYSTEM_ERROR, "api", "no result");
	ev.attempts = 5;
	snprintf(ev.task_id, sizeof(ev.task_id), "m:1:1");
	CHECK_EQ(mailer_render_email(&ev, &links, &r), 0);
	CHECK_CONTAINS(r.text, "State:       SYSTEM ERROR\n");
	CHECK_CONTAINS(r.text, "Attempts:    5\n");
	CHECK_CONTAINS(r.text, "Task:        m:1:1\n");
	mailer_rendered_release(&r);
	upmon_alert_event_release(&ev);

	/* a channel test: no monitor, no link */
	upmon_alert_event_init(&ev);
	ev.kind = UPMON_ALERT_TEST;
	ev.at = AT;
	snprintf(ev.channel_id, sizeof(ev.channel_id), "c-1");
	CHECK_EQ(mailer_render_email(&ev, &links, &r), 0);
	CHECK_STR(r.subject, "[TEST] test notification from upmon");
	CHECK(r.link == NULL);
	CHECK_CONTAINS(r.text, "State:       TEST\n");
	CHECK(strstr(r.text, "Dashboard:") == NULL);
	CHECK(strstr(r.html, "<a href") == NULL);
	mailer_rendered_release(&r);
	upmon_alert_event_release(&ev);
}

int
main(void)
{
	RUN(test_durations);
	RUN(test_summaries);
	RUN(test_control_chars);
	RUN(test_email_bodies);
	return test_finish();
}
