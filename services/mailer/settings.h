/*
 * upmon-mailer's own settings (UPMON_SMTP_*, UPMON_MAILER_*), besides the common ones
 * (config.h). One table row per option in settings.c; README.md lists them.
 */
#ifndef UPMON_MAILER_SETTINGS_H
#define UPMON_MAILER_SETTINGS_H

#include <stdbool.h>

#include "upmon/config.h"

struct mailer_settings {
	char *smtp_host;		/* UPMON_SMTP_HOST */
	long smtp_port;			/* UPMON_SMTP_PORT */
	int smtp_tls;			/* UPMON_SMTP_TLS: enum mailer_smtp_tls */
	bool smtp_tls_verify;		/* UPMON_SMTP_TLS_VERIFY */
	char *smtp_ca_file;		/* UPMON_SMTP_CA_FILE: "" = system store */
	char *smtp_user;		/* UPMON_SMTP_USER: "" = no AUTH */
	char *smtp_password;		/* UPMON_SMTP_PASSWORD (secret) */
	char *smtp_from;		/* UPMON_SMTP_FROM */
	long smtp_timeout_ms;		/* UPMON_SMTP_TIMEOUT_MS */
	char *smtp_helo;		/* UPMON_SMTP_HELO: "" = the host name */
	long workers;			/* UPMON_MAILER_WORKERS */
	char *dashboard_url;		/* UPMON_MAILER_DASHBOARD_URL */
	long webhook_timeout_ms;	/* UPMON_MAILER_WEBHOOK_TIMEOUT_MS */
	long webhook_connect_timeout_ms; /* UPMON_MAILER_WEBHOOK_CONNECT_TIMEOUT_MS */
	bool ssrf_guard;		/* UPMON_MAILER_SSRF_GUARD */
	char *ssrf_allow;		/* UPMON_MAILER_SSRF_ALLOW: CIDR list */
	long max_attempts;		/* UPMON_MAILER_MAX_ATTEMPTS: 0 = retry levels + 1 */
};

/* Returns the table describing s (which must start zeroed; strings are freed by
 * upmon_config_release). Its validate hook checks the cross-field rules (webhook connect
 * timeout <= whole timeout, a user needs a password). */
struct upmon_config_table mailer_settings_table(struct mailer_settings *s);

#endif
