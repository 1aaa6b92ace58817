/*
 * upmon-mailer's option table (settings.h).
 */
#include "settings.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define MS(f) offsetof(struct mailer_settings, f)

/* No CR, LF or other control characters: the value goes into a mail header or the HELO. */
static int
check_header_value(const char *value, char *err, size_t errlen)
{
	const unsigned char *p;

	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "control characters are not allowed");
			return -1;
		}
	}
	return 0;
}

/* "http://..." or "https://..." with something after the scheme, no control characters. */
static int
check_dashboard_url(const char *value, char *err, size_t errlen)
{
	const char *rest;

	if (check_header_value(value, err, errlen) != 0)
		return -1;
	if (strncmp(value, "http://", 7) == 0)
		rest = value + 7;
	else if (strncmp(value, "https://", 8) == 0)
		rest = value + 8;
	else {
		snprintf(err, errlen, "must start with http:// or https://");
		return -1;
	}
	if (*rest == '\0' || *rest == '/') {
		snprintf(err, errlen, "has no host");
		return -1;
	}
	return 0;
}

static const struct upmon_config_opt mailer_opts[] = {
	{ "UPMON_SMTP_HOST", UPMON_CFG_STRING, 0, 253, "127.0.0.1", NULL, NULL,
	  "SMTP server (relay) every email goes through.", MS(smtp_host),
	  UPMON_CFG_REQUIRED, check_header_value },
	{ "UPMON_SMTP_PORT", UPMON_CFG_INT, 1, 65535, "25", NULL, NULL,
	  "SMTP server port (587 for STARTTLS submission, 465 for implicit TLS).",
	  MS(smtp_port), 0, NULL },
	{ "UPMON_SMTP_TLS", UPMON_CFG_ENUM, 0, 0, "starttls", "none|starttls|tls", NULL,
	  "none: plain SMTP; starttls: STARTTLS required; tls: TLS from the first byte.",
	  MS(smtp_tls), 0, NULL },
	{ "UPMON_SMTP_TLS_VERIFY", UPMON_CFG_BOOL, 0, 0, "true", NULL, NULL,
	  "Verify the SMTP server's certificate and host name.", MS(smtp_tls_verify), 0,
	  NULL },
	{ "UPMON_SMTP_CA_FILE", UPMON_CFG_STRING, 0, 4096, NULL, NULL, NULL,
	  "PEM file of CA certificates for the SMTP server; empty = the system store.",
	  MS(smtp_ca_file), 0, NULL },
	{ "UPMON_SMTP_USER", UPMON_CFG_STRING, 0, 256, NULL, NULL, NULL,
	  "SMTP AUTH user; empty = no AUTH.", MS(smtp_user), 0, check_header_value },
	{ "UPMON_SMTP_PASSWORD", UPMON_CFG_STRING, 0, 1024, NULL, NULL, NULL,
	  "SMTP AUTH password.", MS(smtp_password), UPMON_CFG_SECRET, NULL },
	{ "UPMON_SMTP_FROM", UPMON_CFG_STRING, 0, 512, "upmon <upmon@localhost>", NULL, NULL,
	  "From header and envelope sender of every email.", MS(smtp_from),
	  UPMON_CFG_REQUIRED, check_header_value },
	{ "UPMON_SMTP_TIMEOUT_MS", UPMON_CFG_INT, 100, 600000, "10000", NULL, "ms",
	  "Timeout of each SMTP step (connect, greeting, each command, the data).",
	  MS(smtp_timeout_ms), 0, NULL },
	{ "UPMON_SMTP_HELO", UPMON_CFG_STRING, 0, 253, NULL, NULL, NULL,
	  "Name sent in EHLO/HELO; empty = the host name.", MS(smtp_helo), 0,
	  check_header_value },
	{ "UPMON_MAILER_WORKERS", UPMON_CFG_INT, 1, 64, "4", NULL, NULL,
	  "Worker threads; each consumes notifications with prefetch 1 on its own RabbitMQ "
	  "and PostgreSQL connections, so this is the number of sends in flight.",
	  MS(workers), 0, NULL },
	{ "UPMON_MAILER_DASHBOARD_URL", UPMON_CFG_STRING, 0, 1024, "http://127.0.0.1:8080",
	  NULL, NULL, "Base of the links to a monitor (<url>/monitors/<id>) in alerts.",
	  MS(dashboard_url), UPMON_CFG_REQUIRED, check_dashboard_url },
	{ "UPMON_MAILER_WEBHOOK_TIMEOUT_MS", UPMON_CFG_INT, 100, 600000, "10000", NULL, "ms",
	  "Timeout of one whole webhook request.", MS(webhook_timeout_ms), 0, NULL },
	{ "UPMON_MAILER_WEBHOOK_CONNECT_TIMEOUT_MS", UPMON_CFG_INT, 100, 600000, "5000", NULL,
	  "ms", "Connect timeout of a webhook request.", MS(webhook_connect_timeout_ms), 0,
	  NULL },
	{ "UPMON_MAILER_SSRF_GUARD", UPMON_CFG_BOOL, 0, 0, "true", NULL, NULL,
	  "Refuse webhooks to loopback, private, link-local and other internal addresses.",
	  MS(ssrf_guard), 0, NULL },
	{ "UPMON_MAILER_SSRF_ALLOW", UPMON_CFG_STRING, 0, 4096, NULL, NULL, NULL,
	  "Comma-separated addresses and CIDR ranges webhooks may reach despite the guard.",
	  MS(ssrf_allow), 0, NULL },
	{ "UPMON_MAILER_MAX_ATTEMPTS", UPMON_CFG_INT, 0, 100, "30", NULL, NULL,
	  "Attempts of one notification (temporary failures) before it is dead-lettered to "
	  "notifications_dead; past the last retry queue (5 s, 10 s, 20 s, 40 s, 80 s) every "
	  "retry waits 80 s, so 30 attempts ride out about 35 minutes of SMTP or webhook "
	  "outage; 0 = the notification retry levels + 1.", MS(max_attempts), 0, NULL },
};

static int
mailer_validate(const void *base, FILE *diag)
{
	const struct mailer_settings *s = base;
	int bad = 0;

	if (s->webhook_connect_timeout_ms > s->webhook_timeout_ms) {
		fprintf(diag, "config: UPMON_MAILER_WEBHOOK_CONNECT_TIMEOUT_MS: %ld is above "
		    "UPMON_MAILER_WEBHOOK_TIMEOUT_MS %ld\n", s->webhook_connect_timeout_ms,
		    s->webhook_timeout_ms);
		bad++;
	}
	if (s->smtp_user != NULL && s->smtp_user[0] != '\0' &&
	    (s->smtp_password == NULL || s->smtp_password[0] == '\0')) {
		fprintf(diag, "config: UPMON_SMTP_PASSWORD: required when UPMON_SMTP_USER is "
		    "set\n");
		bad++;
	}
	return bad;
}

struct upmon_config_table
mailer_settings_table(struct mailer_settings *s)
{
	struct upmon_config_table t = { mailer_opts,
	    sizeof(mailer_opts) / sizeof(mailer_opts[0]), s, mailer_validate };

	return t;
}
