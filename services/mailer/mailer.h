/*
 * upmon-mailer: the contract between its parts (README.md has the whole picture).
 *
 *   consume.c   worker threads: one AMQP connection, one PostgreSQL connection each; a
 *               prefetch-1 consumer on `notifications`; decode (msg.h), resolve the channels,
 *               claim a deliveries row per (alert, channel), send, record, then ack; retries
 *               through notifications.retry.<n>, gives up into notifications_dead
 *   deliveries.c the SQL of the above (channels of an alert, claim, record)
 *   render.c    what a human reads: subject, plain-text and HTML bodies, the one-line summary
 *               (also the webhook's Slack-compatible "text")
 *   email.c     one message to one channel over SMTP with libesmtp (STARTTLS or implicit TLS,
 *               AUTH), its outcome classified
 *   webhook.c   one POST to one channel with libcurl (JSON body of proto/webhook.schema.json,
 *               optional HMAC-SHA256 signature, the SSRF guard), its outcome classified
 *   settings.c  the option table (UPMON_SMTP_*, UPMON_MAILER_*)
 *   main.c      wiring only
 *
 * Symbols of this folder start with mailer_ (every test binary links every service core).
 */
#ifndef UPMON_MAILER_H
#define UPMON_MAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upmon/msg.h"

struct upmon_ssrf;

#define MAILER_DELIVERY_ID_MAX	(UPMON_ALERT_ID_MAX + 1 + UPMON_ID_MAX)	/* "<alert>.<channel>" */
#define MAILER_TO_MAX		10	/* recipients of an email channel (the API's limit) */
#define MAILER_ADDR_MAX		320	/* one email address */

enum mailer_channel_kind {
	MAILER_CHANNEL_EMAIL = 0,
	MAILER_CHANNEL_WEBHOOK = 1,
};

/* One notification channel as read from notification_channels. Strings are owned by the
 * struct (mailer_channel_release frees them). */
struct mailer_channel {
	char id[UPMON_ID_MAX + 1];
	char owner_id[UPMON_ID_MAX + 1];
	char *name;
	enum mailer_channel_kind kind;
	char *to[MAILER_TO_MAX];		/* email: config.to, nto of them */
	size_t nto;
	char *url;				/* webhook: config.url */
	char *secret;				/* webhook: HMAC key, NULL = unsigned */
};

/* Frees the strings of ch and zeroes it. */
void mailer_channel_release(struct mailer_channel *ch);

/* What one delivery attempt came to. */
enum mailer_result {
	MAILER_SENT = 0,	/* accepted by the SMTP server / the webhook answered 2xx */
	MAILER_TEMPFAIL,	/* try again later: connection refused or reset, timeout, DNS
				 * failure, SMTP 4xx, HTTP 5xx, 408 and 429 */
	MAILER_PERMFAIL,	/* never retried: SMTP 5xx, HTTP 4xx, a refused header value,
				 * a blocked address (SSRF), a bad URL, TLS verification failure */
};

struct mailer_outcome {
	enum mailer_result result;
	int code;			/* SMTP or HTTP status, 0 when none */
	char error[UPMON_ERROR_MAX + 1];	/* one lowercase line for deliveries.last_error
					 * and the logs ("" when sent) */
};

/* Fills out (error "", code 0, SENT). */
void mailer_outcome_init(struct mailer_outcome *out);
/* Sets out to result with a formatted error line (truncated to fit). */
void mailer_outcome_set(struct mailer_outcome *out, enum mailer_result result, int code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Formats the delivery id "<alert_id>.<channel_id>" into buf (>= MAILER_DELIVERY_ID_MAX + 1).
 * It is the email's Message-ID local part and the webhook's X-Upmon-Delivery header, so a
 * receiver can drop the duplicate an at-least-once redelivery may cause. */
void mailer_delivery_id(char *buf, size_t size, const char *alert_id, const char *channel_id);

/* ---- render.c ------------------------------------------------------------------------ */

/* Where links point: "<dashboard_url>/monitors/<monitor_id>" (no link for events without a
 * monitor, e.g. a channel test). */
struct mailer_links {
	const char *dashboard_url;	/* UPMON_MAILER_DASHBOARD_URL, no trailing slash */
};

/* A rendered email. All heap strings, owned by the struct. */
struct mailer_rendered {
	char *subject;			/* one line: no CR, LF or NUL (refused before this) */
	char *text;			/* text/plain body, lines ending in \n */
	char *html;			/* text/html body, every user value HTML-escaped */
	char *link;			/* the monitor's dashboard link, or NULL */
};

/*
 * One line a human reads first, e.g.
 *   "[DOWN] api.example.org is down: connection refused"
 *   "[RECOVERY] api.example.org is up again after 4m 12s"
 *   "[REMINDER] api.example.org is still down (for 1h 5m)"
 *   "[SYSTEM ERROR] api.example.org: check not processed after 5 attempts: ..."
 *   "[TLS] api.example.org: certificate expires in 9 days"
 *   "[TEST] test notification from upmon"
 * Used as the email subject and as the webhook's Slack-compatible "text". Control
 * characters of user values (CR, LF, NUL, tabs...) are replaced by spaces here, so the line
 * is always one line. New heap string in *out (caller frees). 0 or -ENOMEM.
 */
int mailer_render_summary(const struct upmon_alert_event *ev, char **out);

/* Renders ev for an email: subject (= the summary), text and HTML parts carrying the
 * monitor's name and target, the new state, the error, the time (UTC, RFC 3339), the outage
 * duration on recovery, and the dashboard link. 0 or -ENOMEM. */
int mailer_render_email(const struct upmon_alert_event *ev, const struct mailer_links *links,
    struct mailer_rendered *out);
/* Frees the strings of r and zeroes it. */
void mailer_rendered_release(struct mailer_rendered *r);

/* Writes "4m 12s", "1h 5m", "2d 3h", "0s" for seconds into buf. */
void mailer_format_duration(int64_t seconds, char *buf, size_t size);

/* ---- email.c -------------------------------------------------------------------------- */

enum mailer_smtp_tls {
	MAILER_SMTP_TLS_NONE = 0,	/* plain SMTP */
	MAILER_SMTP_TLS_STARTTLS,	/* STARTTLS required */
	MAILER_SMTP_TLS_IMPLICIT,	/* TLS from the first byte (port 465) */
};

struct mailer_smtp_config {
	const char *host;		/* UPMON_SMTP_HOST */
	int port;			/* UPMON_SMTP_PORT */
	enum mailer_smtp_tls tls;	/* UPMON_SMTP_TLS: none|starttls|tls */
	bool verify_tls;		/* UPMON_SMTP_TLS_VERIFY (default true) */
	const char *ca_file;		/* UPMON_SMTP_CA_FILE, NULL = system store */
	const char *user;		/* UPMON_SMTP_USER, NULL = no AUTH */
	const char *password;		/* UPMON_SMTP_PASSWORD */
	const char *from;		/* UPMON_SMTP_FROM, e.g. "upmon <upmon@localhost>" */
	int timeout_ms;			/* UPMON_SMTP_TIMEOUT_MS, per SMTP step */
	const char *helo;		/* UPMON_SMTP_HELO, NULL = the host name */
};

/*
 * Sends the alert ev as one email (multipart/alternative: text and HTML) to every address
 * of channel ch. Message-ID is "<delivery_id@upmon>" (stable across redeliveries). Header
 * values built from user data (subject, recipients) that contain CR, LF or NUL are refused
 * (PERMFAIL, nothing sent). Blocks for at most a few timeouts. Always fills out; returns 0,
 * or a negative errno for a local failure (-ENOMEM: the caller treats it as TEMPFAIL).
 */
int mailer_email_send(const struct mailer_smtp_config *cfg, const struct mailer_links *links,
    const struct mailer_channel *ch, const struct upmon_alert_event *ev,
    const char *delivery_id, struct mailer_outcome *out);

/* ---- webhook.c ------------------------------------------------------------------------ */

struct mailer_webhook_config {
	int timeout_ms;			/* UPMON_MAILER_WEBHOOK_TIMEOUT_MS: whole request */
	int connect_timeout_ms;		/* UPMON_MAILER_WEBHOOK_CONNECT_TIMEOUT_MS */
	const struct upmon_ssrf *ssrf;	/* the SSRF guard (UPMON_MAILER_SSRF_*), shared */
	const char *user_agent;		/* "upmon-mailer/<version>" */
};

/*
 * POSTs the alert ev to ch->url as the JSON body of proto/webhook.schema.json (with a
 * Slack-compatible "text"), headers Content-Type: application/json, X-Upmon-Event: <kind>,
 * X-Upmon-Delivery: <delivery_id>, X-Upmon-Timestamp: <unix seconds>, and when ch->secret
 * is set X-Upmon-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the
 * secret>. No redirects are followed. The response body is read up to 64 KiB and dropped.
 * Always fills out; returns 0 or a negative errno for a local failure (-ENOMEM).
 */
int mailer_webhook_send(const struct mailer_webhook_config *cfg,
    const struct mailer_links *links, const struct mailer_channel *ch,
    const struct upmon_alert_event *ev, const char *delivery_id, struct mailer_outcome *out);

/* Builds the webhook body for ev into a new heap string (*out, caller frees). 0 or -ENOMEM. */
int mailer_webhook_body(const struct upmon_alert_event *ev, const struct mailer_links *links,
    const char *delivery_id, char **out, size_t *len);

/* Writes "sha256=<64 hex>" of HMAC-SHA256(key, "<timestamp>.<body>") into buf (>= 72). */
int mailer_webhook_sign(const char *key, int64_t timestamp, const char *body, size_t len,
    char *buf, size_t size);

#endif /* UPMON_MAILER_H */
