/*
 * A monitor definition: the one place that knows its fields, their defaults and their rules
 * (the API's Monitor of docs/openapi.yaml, the monitors table of sql/0001 + 0004, and the
 * wire limits of msg.h, whichever is tightest), how it reads from JSON (API bodies, imported
 * files), how it is written as JSON (API answers, exports) and how it goes to and from SQL.
 *
 *	struct upmon_monitor m;		(from_json fills it whole: no init before)
 *	struct json_object *fields;
 *	if (upmon_monitor_from_json(body, UPMON_MONITOR_CREATE, NULL, &m, &fields) == -EINVAL)
 *		reply_400(fields);		(every bad field named)
 *	upmon_monitor_params(&m, &p); INSERT ... (UPMON_MONITOR_COLUMNS) VALUES (...)
 *	upmon_monitor_release(&m);
 *
 * Strings and json objects in the struct are owned by it (heap copies, freed by release).
 */
#ifndef UPMON_MONITOR_H
#define UPMON_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "upmon/msg.h"

#define UPMON_MONITOR_NAME_MAX		200	/* characters */
#define UPMON_MONITOR_TAGS_MAX		32
#define UPMON_MONITOR_TAG_MAX		64	/* characters */
#define UPMON_MONITOR_EXPECTED_MAX	128	/* bytes of "200-299,301" */

/* How upmon_monitor_from_json() reads an object. */
enum upmon_monitor_mode {
	UPMON_MONITOR_CREATE,	/* required fields must be present; the rest default */
	UPMON_MONITOR_REPLACE,	/* the same (PUT: omitted optional fields go back to default) */
	UPMON_MONITOR_PATCH,	/* merge patch (RFC 7396) onto base: only given fields
				 * change; null clears a nullable field and resets a
				 * defaulted one; a headers object is merged into base's
				 * (a null value removes that header) */
};

struct upmon_monitor {
	/* stored row only ("" / 0 for a definition that is not a row) */
	char id[37];
	char status[16];		/* pending|up|down|paused (monitor_state) */
	int64_t created_ms, updated_ms;

	/* the definition; NULL / 0 = JSON null where the field is nullable */
	char *name;
	enum upmon_check_type type;
	char *url;			/* http */
	char *host;			/* tcp */
	int port;			/* tcp, 0 = null */
	enum upmon_http_method method;
	struct json_object *headers;	/* object of string values, never NULL after init */
	char *body;
	char *expected_status;		/* "200-299,301" */
	char *keyword;
	bool keyword_absent;
	int max_latency_ms;		/* 0 = null */
	bool follow_redirects;
	int max_redirects;
	bool verify_tls;
	int cert_expiry_days;
	int timeout_ms;
	int interval_seconds;
	int retries;
	int failure_threshold;
	int recovery_threshold;
	int reminder_minutes;		/* 0 = null */
	bool paused;
	struct json_object *tags;	/* array of strings, never NULL after init */
};

/* Fills m with the defaults (no name, type http, no target). Returns 0 or -ENOMEM (m is
 * then still safe to release). */
int upmon_monitor_init(struct upmon_monitor *m);

/* Frees what m owns and leaves it zeroed; safe on a zeroed struct and twice. */
void upmon_monitor_release(struct upmon_monitor *m);

/* Deep copy of src into dst (dst is overwritten, not released). 0 or -ENOMEM. */
int upmon_monitor_copy(struct upmon_monitor *dst, const struct upmon_monitor *src);

/*
 * Reads a monitor definition from obj. mode CREATE and REPLACE start from the defaults;
 * PATCH starts from a copy of base (required then) and applies the given fields. Unknown
 * keys are refused, every bad field is named, and the cross-field rules are checked on the
 * result as a whole (http needs url and no host/port; tcp needs host and port and no url;
 * keyword_absent needs keyword; timeout_ms <= interval_seconds * 1000). In a PATCH that
 * changes type, the old type's target fields are dropped unless given.
 * On 0, out (initialised by the caller or not; it is overwritten) holds the result and the
 * caller releases it. On -EINVAL, *fields (when fields is not NULL) is a new object
 * {"field": "what is wrong"} the caller owns, and out is released. -ENOMEM otherwise.
 */
int upmon_monitor_from_json(struct json_object *obj, enum upmon_monitor_mode mode,
    const struct upmon_monitor *base, struct upmon_monitor *out, struct json_object **fields);

/* Flags of upmon_monitor_to_json(). */
#define UPMON_MONITOR_JSON_DEFINITION 0x1	/* only the input fields (no id, status, times):
						 * what export writes and import reads */

/*
 * Writes m as the API's Monitor object (field order of docs/openapi.yaml; nullable fields as
 * null). *out is a new object the caller puts. Returns 0 or -ENOMEM.
 */
int upmon_monitor_to_json(const struct upmon_monitor *m, unsigned flags,
    struct json_object **out);

/* ---- SQL ---------------------------------------------------------------------------------- */

/* The definition's columns of the monitors table, in the order of upmon_monitor_params(). */
#define UPMON_MONITOR_NCOLS 24
#define UPMON_MONITOR_COLUMNS "name, type, url, host, port, method, headers, body, " \
	"expected_status, keyword, keyword_absent, max_latency_ms, follow_redirects, " \
	"max_redirects, verify_tls, cert_expiry_days, timeout_ms, interval_seconds, retries, " \
	"failure_threshold, recovery_threshold, reminder_minutes, paused, tags"

/* What upmon_monitor_from_row() reads, for "FROM monitors m": id, the definition (headers
 * and tags as JSON text), created_at and updated_at as Unix ms. */
#define UPMON_MONITOR_SELECT_NCOLS 27
#define UPMON_MONITOR_SELECT "m.id, m.name, m.type, m.url, m.host, m.port, m.method, " \
	"m.headers::text, m.body, m.expected_status, m.keyword, m.keyword_absent, " \
	"m.max_latency_ms, m.follow_redirects, m.max_redirects, m.verify_tls, " \
	"m.cert_expiry_days, m.timeout_ms, m.interval_seconds, m.retries, " \
	"m.failure_threshold, m.recovery_threshold, m.reminder_minutes, m.paused, " \
	"array_to_json(m.tags)::text, upmon_ts_to_ms(m.created_at), upmon_ts_to_ms(m.updated_at)"

/* Text parameters of one monitor in UPMON_MONITOR_COLUMNS order (NULL = SQL NULL). The
 * pointers are valid while both the struct and the monitor live. */
struct upmon_monitor_params {
	const char *v[UPMON_MONITOR_NCOLS];
	char num[UPMON_MONITOR_NCOLS][24];
	char *headers;		/* owned */
	char *tags;		/* owned: a PostgreSQL array literal */
};

/* Fills p from m. Returns 0 or -ENOMEM; release p with upmon_monitor_params_release()
 * either way. */
int upmon_monitor_params(const struct upmon_monitor *m, struct upmon_monitor_params *p);
void upmon_monitor_params_release(struct upmon_monitor_params *p);

/* Forms of upmon_monitor_sql_list(). */
enum upmon_monitor_sql {
	UPMON_MONITOR_SQL_VALUES,	/* "$k, $k+1, ..." */
	UPMON_MONITOR_SQL_SET,		/* "name = $k, type = $k+1, ..." */
	UPMON_MONITOR_SQL_SET_EXCLUDED,	/* "name = EXCLUDED.name, ..." */
	UPMON_MONITOR_SQL_DIFFERS,	/* "(m.name, ...) IS DISTINCT FROM (EXCLUDED.name, ...)" */
};

/* Writes one of the forms above into buf, with parameters numbered from first. Returns 0,
 * or -ENOSPC (2048 bytes are always enough). */
int upmon_monitor_sql_list(enum upmon_monitor_sql form, int first, char *buf, size_t size);

/* Reads UPMON_MONITOR_SELECT's columns from row of res starting at column col0 into out
 * (overwritten; the caller releases it). status is left empty. Returns 0, -EINVAL for a
 * malformed row, -ENOMEM. */
int upmon_monitor_from_row(const PGresult *res, int row, int col0, struct upmon_monitor *out);

#endif
