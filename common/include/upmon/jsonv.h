/*
 * Reading and checking JSON objects that come from outside (API bodies, imported monitor
 * files), and the API's time format.
 *
 * A validator walks one object and records at most one message per bad field, so that an
 * API can answer every bad field at once: {"url": "is required", "port": "must be between 1
 * and 65535"}. Getters never fail hard: a missing field is reported as absent, a wrong type
 * or an out-of-range value is recorded and reported as invalid, and the caller goes on to the
 * next field. Strings handed out point into the object (valid while it lives).
 *
 *	struct upmon_jv v;
 *	upmon_jv_init(&v, body);
 *	upmon_jv_allow(&v, allowed_keys);
 *	rc = upmon_jv_string(&v, "name", 1, 200, UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL, &name);
 *	...
 *	if (!upmon_jv_ok(&v))
 *		reply_fields(upmon_jv_take_fields(&v));
 *	upmon_jv_release(&v);
 */
#ifndef UPMON_JSONV_H
#define UPMON_JSONV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Getter results besides 0 (present and valid) and -EINVAL (invalid, recorded). */
#define UPMON_JV_ABSENT 1	/* the key is not in the object */

enum upmon_jv_flags {
	UPMON_JV_REQUIRED = 1 << 0,	/* absent is an error ("is required") */
	UPMON_JV_NULLABLE = 1 << 1,	/* JSON null is accepted: returns 0 with *out NULL /
					 * *is_null true; without it null is "must not be null" */
	UPMON_JV_NO_CTRL = 1 << 2,	/* strings: no control characters (U+0000-U+001F,
					 * U+007F) at all */
	UPMON_JV_NO_CRLF = 1 << 3,	/* strings: no CR, LF (header values, email fields) */
};

struct upmon_jv {
	struct json_object *obj;	/* the object being read (not owned) */
	struct json_object *fields;	/* field -> message, created on the first error */
	int nerr;
	int bad_object;			/* obj was not a JSON object */
};

/* Starts reading obj (a JSON object; anything else is recorded as a "body" error). */
void upmon_jv_init(struct upmon_jv *v, struct json_object *obj);

/* Frees the recorded errors unless taken. */
void upmon_jv_release(struct upmon_jv *v);

/* Records message for field (printf format) unless field already has one. Returns -EINVAL. */
int upmon_jv_fail(struct upmon_jv *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "unknown field" for every key of the object not in allowed (NULL-terminated). */
void upmon_jv_allow(struct upmon_jv *v, const char *const *allowed);

/* True while no error was recorded. */
bool upmon_jv_ok(const struct upmon_jv *v);

/* Hands the recorded errors to the caller ({"field": "message", ...}, never NULL: an empty
 * object when there were none). */
struct json_object *upmon_jv_take_fields(struct upmon_jv *v);

/* True when key is present in the object (even as null). */
bool upmon_jv_has(const struct upmon_jv *v, const char *key);

/*
 * A string of minlen..maxlen characters (Unicode code points; the bytes must be valid UTF-8
 * with no NUL). *out points into the object; NULL for an accepted null.
 * Returns 0, UPMON_JV_ABSENT, or -EINVAL (recorded).
 */
int upmon_jv_string(struct upmon_jv *v, const char *key, size_t minlen, size_t maxlen,
    unsigned flags, const char **out);

/* An integer (a JSON number without fraction) in [min, max]; *is_null for an accepted null
 * (is_null may be NULL when the flags do not allow null). Returns 0, UPMON_JV_ABSENT,
 * -EINVAL. */
int upmon_jv_int(struct upmon_jv *v, const char *key, long min, long max, unsigned flags,
    long *out, bool *is_null);

/* A boolean. Returns 0, UPMON_JV_ABSENT, -EINVAL. */
int upmon_jv_bool(struct upmon_jv *v, const char *key, unsigned flags, bool *out);

/* One of the NULL-terminated values (case-sensitive); *out = its index. */
int upmon_jv_enum(struct upmon_jv *v, const char *key, const char *const *values,
    unsigned flags, int *out);

/* An array of at most max_items strings, each checked as upmon_jv_string() would (flags'
 * string rules apply to the items; an error names the field as "key[i]"). *out is the array
 * object inside v->obj (borrowed), or NULL for an accepted null. */
int upmon_jv_string_array(struct upmon_jv *v, const char *key, size_t max_items,
    size_t minlen, size_t maxlen, unsigned flags, struct json_object **out);

/* An object (borrowed), with no checks on its members. */
int upmon_jv_object(struct upmon_jv *v, const char *key, unsigned flags,
    struct json_object **out);

/* Checks one string as upmon_jv_string() does, without a validator: 0 or -EINVAL with a
 * short reason ("must not contain control characters") in why. */
int upmon_jv_check_text(const char *s, size_t len, size_t minlen, size_t maxlen,
    unsigned flags, const char **why);

/* ---- time --------------------------------------------------------------------------------- */

/* Writes ms (Unix milliseconds) as RFC 3339 UTC with milliseconds:
 * "2026-11-21T16:20:00.123Z". Returns 0, or -ENOSPC (buf needs 25 bytes). */
int upmon_time_format(int64_t ms, char *buf, size_t size);

/* A JSON string of upmon_time_format(ms) (new reference). */
struct json_object *upmon_json_time(int64_t ms);

/* Parses an RFC 3339 date-time ("2026-11-21T16:20:00Z", optional fraction, "Z" or +hh:mm,
 * 't'/'z' accepted) or a whole number of Unix milliseconds. Returns 0 or -EINVAL. */
int upmon_time_parse(const char *s, int64_t *ms);

#endif
