/*
 * Wire messages: the one place that turns tasks, status events and alert events into JSON
 * and back. Nothing else touches raw JSON from the broker.
 *
 * Every message is a JSON object with "v": 1 (UPMON_MSG_VERSION). Decoders are strict: they
 * refuse a body over the size cap (before parsing), malformed, truncated or trailing JSON,
 * NUL bytes, missing required fields, wrong types (no floats for integers, no "true" for
 * true), out-of-range numbers, unknown enum values, over-long strings and unknown fields.
 * Encoders validate with the same rules, so what is encoded always decodes. The JSON Schemas
 * in proto/ describe the same contract; proto/README.md has the field-by-field reference.
 *
 * Conventions: ids are strings of 1..64 characters [A-Za-z0-9_-] (a bigint in decimal or a
 * UUID both fit, and ids can be routing-key words); times are integers, Unix milliseconds UTC;
 * string limits are in bytes.
 *
 * Errors are negative errno values: -EMSGSIZE (over the cap), -EBADMSG (not one complete
 * JSON document), -EINVAL (a field is missing or wrong; the reason names it, e.g.
 * `task: field "interval_seconds": expected integer 10..86400, got 5`), -EPROTONOSUPPORT
 * (unknown "v"), -ENOMEM.
 */
#ifndef UPMON_MSG_H
#define UPMON_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UPMON_MSG_VERSION	1
#define UPMON_MSG_MAX_BYTES	65536	/* default size cap of every message */

#define UPMON_ID_MAX		64	/* monitor_id, owner_id */
#define UPMON_TASK_ID_MAX	96	/* "<monitor_id>:<scheduled_at>:<attempt>" */
#define UPMON_ALERT_ID_MAX	96
#define UPMON_URL_MAX		2048
#define UPMON_HOST_MAX		253
#define UPMON_HEADERS_MAX	32	/* request headers per check */
#define UPMON_HEADER_NAME_MAX	128
#define UPMON_HEADER_VALUE_MAX	2048
#define UPMON_HEADERS_BYTES_MAX	8192	/* sum of all names and values */
#define UPMON_BODY_MAX		16384	/* request body of an HTTP check */
#define UPMON_KEYWORD_MAX	1024
#define UPMON_EXPECTED_MAX	16	/* expected status codes or ranges */
#define UPMON_ERROR_MAX		1024
#define UPMON_NAME_MAX		256	/* monitor name */
#define UPMON_TARGET_MAX	2048

enum upmon_check_type {
	UPMON_CHECK_HTTP = 0,
	UPMON_CHECK_TCP = 1,
};

enum upmon_http_method {
	UPMON_HTTP_GET = 0, UPMON_HTTP_HEAD, UPMON_HTTP_POST, UPMON_HTTP_PUT,
	UPMON_HTTP_PATCH, UPMON_HTTP_DELETE, UPMON_HTTP_OPTIONS,
};

enum upmon_monitor_status {
	UPMON_STATUS_PENDING = 0,
	UPMON_STATUS_UP = 1,
	UPMON_STATUS_DOWN = 2,
	UPMON_STATUS_PAUSED = 3,
};

enum upmon_alert_kind {
	UPMON_ALERT_DOWN = 0,
	UPMON_ALERT_RECOVERY = 1,
	UPMON_ALERT_SYSTEM_ERROR = 2,
	UPMON_ALERT_TLS_EXPIRY = 3,
	UPMON_ALERT_TEST = 4,		/* a test notification for one channel (no alerts row) */
};

struct upmon_http_header {
	char *name;			/* token characters, 1..128 bytes */
	char *value;			/* no control characters, 0..2048 bytes */
};

/* An expected status: a single code (lo == hi) or an inclusive range, 100..599. */
struct upmon_status_range {
	int lo, hi;
};

/* What to check. Fields of the other type are ignored when encoding and refused when
 * decoding. Strings are heap copies owned by the struct (NULL = absent). */
struct upmon_check {
	enum upmon_check_type type;
	int timeout_ms;			/* 100..60000 */
	/* http */
	char *url;			/* http:// or https://, 1..2048 bytes */
	enum upmon_http_method method;	/* default GET */
	struct upmon_http_header *headers;
	size_t nheaders;		/* 0..32 */
	char *body;			/* 0..16384 bytes, NULL = no body */
	struct upmon_status_range expected[UPMON_EXPECTED_MAX];
	size_t nexpected;		/* 1..16; default one range 200-299 */
	char *keyword;			/* 1..1024 bytes, NULL = no keyword check */
	bool keyword_absent;		/* the keyword must NOT appear (needs keyword) */
	int max_latency_ms;		/* 0 = no limit, else 1..60000 */
	bool follow_redirects;		/* default true */
	int max_redirects;		/* 0..10, default 5 */
	bool verify_tls;		/* default true */
	int cert_expiry_days;		/* 0 = no certificate check, else 1..365 */
	/* tcp */
	char *host;			/* name or IP literal, 1..253 bytes */
	int port;			/* 1..65535 */
};

/* A task on upmon.tasks / monitor_tasks: one check of one monitor for one slot. */
struct upmon_task {
	char task_id[UPMON_TASK_ID_MAX + 1];	/* "<monitor_id>:<scheduled_at>:<attempt>" */
	char monitor_id[UPMON_ID_MAX + 1];
	char owner_id[UPMON_ID_MAX + 1];
	int64_t scheduled_at;		/* the slot, Unix ms */
	int attempt;			/* 1 = first probe, 2.. = confirmation re-probes; 1..32 */
	int interval_seconds;		/* 10..86400 */
	int retries;			/* confirmation re-probes allowed, 0..10 */
	struct upmon_check check;
};

/* A short summary of the check result that caused a status change. */
struct upmon_result_summary {
	bool ok;
	int latency_ms;			/* 0..3600000 */
	int status_code;		/* HTTP status 100..599, 0 = none (TCP, no response) */
	char *error;			/* 1..1024 bytes, NULL = none */
};

/* A status event on upmon.events, routing key status.<owner_id>.<monitor_id>. */
struct upmon_status_event {
	char monitor_id[UPMON_ID_MAX + 1];
	char owner_id[UPMON_ID_MAX + 1];
	enum upmon_monitor_status status;
	enum upmon_monitor_status previous;
	int64_t at;			/* time of the change, Unix ms */
	char task_id[UPMON_TASK_ID_MAX + 1];	/* task whose result caused it, "" = none */
	bool has_result;		/* false for changes without a check (pause) */
	struct upmon_result_summary result;
};

/*
 * An alert event on upmon.events, routing key alert.<kind>. Kind test is a test notification
 * sent from the API (POST /channels/{id}/test): it names its channel_id, may lack
 * monitor_id, monitor_name and target, and has no alerts row behind it.
 */
struct upmon_alert_event {
	char alert_id[UPMON_ALERT_ID_MAX + 1];	/* unique key: [A-Za-z0-9_:-] */
	enum upmon_alert_kind kind;
	char monitor_id[UPMON_ID_MAX + 1];	/* required except for kind test ("" = none) */
	char owner_id[UPMON_ID_MAX + 1];
	char channel_id[UPMON_ID_MAX + 1];	/* deliver to this channel only; "" = every
						 * channel of the monitor; required for test */
	char *monitor_name;		/* 1..256 bytes, any characters but NUL */
	char *target;			/* URL or host:port, 1..2048 bytes */
	int64_t at;			/* Unix ms */
	char *error;			/* 1..1024 bytes, NULL = none */
	int64_t outage_seconds;		/* recovery: the outage; down with reminder: down
					 * for so long so far; 0..315360000 */
	bool reminder;			/* down only: a reminder that the monitor is still
					 * down (wire field "reminder", omitted when false) */
	int cert_days_left;		/* tls_expiry only: -36500..36500 */
	char task_id[UPMON_TASK_ID_MAX + 1];	/* system_error only */
	int attempts;			/* system_error only: 1..100 */
};

/* ---- tasks ---------------------------------------------------------------------------- */

/* Fills t with an empty task and the check defaults (http, GET, expected 200-299,
 * follow_redirects, max_redirects 5, verify_tls, timeout 10000 ms). */
void upmon_task_init(struct upmon_task *t);
/* Frees the strings and headers of t and re-initialises it. */
void upmon_task_release(struct upmon_task *t);

/* Writes "<monitor_id>:<scheduled_at>:<attempt>" into buf. Returns 0 or -ENOSPC. */
int upmon_task_id_format(char *buf, size_t size, const char *monitor_id, int64_t scheduled_at,
    int attempt);

/* Checks t against the wire rules; on -EINVAL writes the reason to err. An empty task_id is
 * accepted (the encoder fills it in); a non-empty one must match the fields. */
int upmon_task_validate(const struct upmon_task *t, char *err, size_t errlen);

/* Encodes t as JSON into a new NUL-terminated heap buffer (*out, caller frees; *len its
 * length without the NUL). Returns 0, -EINVAL if t is invalid (upmon_task_validate says
 * why), -EMSGSIZE if the result would exceed the cap, or -ENOMEM. */
int upmon_msg_task_encode(const struct upmon_task *t, char **out, size_t *len);

/* Decodes len bytes of buf (need not be NUL-terminated) into *out, which is initialised
 * first; on success the caller releases it with upmon_task_release(). On failure *out holds
 * nothing to free and err (errlen > 0) has a short reason naming the field. */
int upmon_msg_task_decode(const char *buf, size_t len, struct upmon_task *out, char *err,
    size_t errlen);

/* ---- status events ------------------------------------------------------------------- */

void upmon_status_event_init(struct upmon_status_event *ev);
void upmon_status_event_release(struct upmon_status_event *ev);
int upmon_status_event_validate(const struct upmon_status_event *ev, char *err, size_t errlen);
/* As upmon_msg_task_encode / _decode, for status events. */
int upmon_msg_status_encode(const struct upmon_status_event *ev, char **out, size_t *len);
int upmon_msg_status_decode(const char *buf, size_t len, struct upmon_status_event *out,
    char *err, size_t errlen);
/* Writes "status.<owner_id>.<monitor_id>". Returns 0 or -ENOSPC. */
int upmon_msg_status_routing_key(const struct upmon_status_event *ev, char *buf, size_t size);

/* ---- alert events -------------------------------------------------------------------- */

void upmon_alert_event_init(struct upmon_alert_event *ev);
void upmon_alert_event_release(struct upmon_alert_event *ev);
int upmon_alert_event_validate(const struct upmon_alert_event *ev, char *err, size_t errlen);
/* As upmon_msg_task_encode / _decode, for alert events. */
int upmon_msg_alert_encode(const struct upmon_alert_event *ev, char **out, size_t *len);
int upmon_msg_alert_decode(const char *buf, size_t len, struct upmon_alert_event *out,
    char *err, size_t errlen);
/* Writes "alert.<kind>" (alert.down, alert.recovery, ..., alert.test). Returns 0,
 * -EINVAL (bad kind) or -ENOSPC. */
int upmon_msg_alert_routing_key(const struct upmon_alert_event *ev, char *buf, size_t size);

/* ---- latest status (Redis upmon:status:<monitor_id>) ---------------------------------- */

/* Phase durations of a check in ms from its start; -1 = not reached / not applicable. */
struct upmon_timings {
	int dns_ms;			/* -1 or 0..3600000, likewise the others */
	int connect_ms;
	int tls_ms;
	int first_byte_ms;
	int total_ms;
};

/* A monitor's latest checked status, written by the probe after its commit (newest wins) and
 * read by the gateway. Not a broker message, but encoded with the same strict rules. */
struct upmon_latest_status {
	char monitor_id[UPMON_ID_MAX + 1];
	char owner_id[UPMON_ID_MAX + 1];
	enum upmon_monitor_status status;	/* after this result */
	int64_t since;			/* last status change, Unix ms */
	int64_t checked_at;		/* when the result was stored, Unix ms */
	int64_t scheduled_at;		/* the slot of the task */
	int attempt;			/* the task's attempt, 1..32 */
	struct upmon_result_summary result;	/* result.error owned by the struct */
	struct upmon_timings timings;
	bool has_cert;			/* cert_days_left is meaningful */
	int cert_days_left;		/* -36500..36500 */
};

/* Fills st with an empty status: timings all -1, no certificate, no error. */
void upmon_latest_status_init(struct upmon_latest_status *st);
/* Frees result.error and re-initialises st. */
void upmon_latest_status_release(struct upmon_latest_status *st);
int upmon_latest_status_validate(const struct upmon_latest_status *st, char *err,
    size_t errlen);
/* As upmon_msg_task_encode / _decode, for the latest status (proto/latest_status.schema.json). */
int upmon_msg_latest_encode(const struct upmon_latest_status *st, char **out, size_t *len);
int upmon_msg_latest_decode(const char *buf, size_t len, struct upmon_latest_status *out,
    char *err, size_t errlen);

/* ---- shared -------------------------------------------------------------------------- */

/* Sets the size cap of encoders and decoders (UPMON_MAX_MESSAGE_BYTES); 0 restores the
 * default, values over 256 MiB are clamped. Call once at start-up. */
void upmon_msg_set_max_bytes(size_t max);
size_t upmon_msg_max_bytes(void);

/* Wire names of the enums ("http", "GET", "up", "recovery"); NULL for a bad value. */
const char *upmon_check_type_name(enum upmon_check_type t);
const char *upmon_http_method_name(enum upmon_http_method m);
const char *upmon_monitor_status_name(enum upmon_monitor_status s);
const char *upmon_alert_kind_name(enum upmon_alert_kind k);
/* Parses a wire name into *out; returns 0 or -EINVAL. */
int upmon_monitor_status_parse(const char *name, enum upmon_monitor_status *out);
int upmon_alert_kind_parse(const char *name, enum upmon_alert_kind *out);

/* Parses "200" or "200-299" (100..599, lo <= hi). Returns 0 or -EINVAL. */
int upmon_status_range_parse(const char *text, struct upmon_status_range *out);

#endif
