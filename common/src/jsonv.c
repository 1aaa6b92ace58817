/*
 * JSON field validation and the API's time format (jsonv.h).
 */
#include "upmon/jsonv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void
upmon_jv_init(struct upmon_jv *v, struct json_object *obj)
{
	memset(v, 0, sizeof(*v));
	v->obj = obj;
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		v->bad_object = 1;
		upmon_jv_fail(v, "body", "must be a JSON object");
	}
}

void
upmon_jv_release(struct upmon_jv *v)
{
	json_object_put(v->fields);
	v->fields = NULL;
}

int
upmon_jv_fail(struct upmon_jv *v, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	v->nerr++;
	if (v->fields == NULL)
		v->fields = json_object_new_object();
	if (v->fields == NULL || json_object_object_get_ex(v->fields, field, NULL))
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(v->fields, field, json_object_new_string(msg));
	return -EINVAL;
}

void
upmon_jv_allow(struct upmon_jv *v, const char *const *allowed)
{
	size_t i;

	if (v->bad_object)
		return;
	json_object_object_foreach(v->obj, key, val) {
		(void)val;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (allowed[i] == NULL)
			upmon_jv_fail(v, key, "unknown field");
	}
}

bool
upmon_jv_ok(const struct upmon_jv *v)
{
	return v->nerr == 0;
}

struct json_object *
upmon_jv_take_fields(struct upmon_jv *v)
{
	struct json_object *f = v->fields;

	v->fields = NULL;
	return f != NULL ? f : json_object_new_object();
}

bool
upmon_jv_has(const struct upmon_jv *v, const char *key)
{
	return !v->bad_object && json_object_object_get_ex(v->obj, key, NULL);
}

/* Decodes one UTF-8 sequence at s (n bytes left): its length, or 0 if malformed (overlong,
 * surrogate, above U+10FFFF, truncated). */
static size_t
utf8_next(const unsigned char *s, size_t n, unsigned long *cp)
{
	size_t len, i;
	unsigned long c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

int
upmon_jv_check_text(const char *s, size_t len, size_t minlen, size_t maxlen, unsigned flags,
    const char **why)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, chars = 0, n;
	unsigned long cp;

	while (i < len) {
		n = utf8_next(p + i, len - i, &cp);
		if (n == 0) {
			*why = "must be valid UTF-8";
			return -EINVAL;
		}
		if (cp == 0) {
			*why = "must not contain NUL characters";
			return -EINVAL;
		}
		if ((flags & UPMON_JV_NO_CRLF) && (cp == '\r' || cp == '\n')) {
			*why = "must not contain CR or LF";
			return -EINVAL;
		}
		if ((flags & UPMON_JV_NO_CTRL) && (cp < 0x20 || cp == 0x7f)) {
			*why = "must not contain control characters";
			return -EINVAL;
		}
		i += n;
		chars++;
	}
	if (chars < minlen) {
		*why = minlen == 1 ? "must not be empty" : "is too short";
		return -EINVAL;
	}
	if (chars > maxlen) {
		*why = "is too long";
		return -EINVAL;
	}
	return 0;
}

/* Looks key up: UPMON_JV_ABSENT (recorded if required), 0 with *val (NULL for an accepted
 * null), or -EINVAL for a refused null. */
static int
lookup(struct upmon_jv *v, const char *key, unsigned flags, struct json_object **val)
{
	*val = NULL;
	if (v->bad_object)
		return -EINVAL;
	if (!json_object_object_get_ex(v->obj, key, val)) {
		if (flags & UPMON_JV_REQUIRED)
			upmon_jv_fail(v, key, "is required");
		return UPMON_JV_ABSENT;
	}
	if (*val == NULL) {
		if (flags & UPMON_JV_NULLABLE)
			return 0;
		return upmon_jv_fail(v, key, (flags & UPMON_JV_REQUIRED) ? "is required" :
		    "must not be null");
	}
	return 0;
}

static int
check_string(struct upmon_jv *v, const char *field, struct json_object *val, size_t minlen,
    size_t maxlen, unsigned flags, const char **out)
{
	const char *why;
	size_t max_bytes = maxlen > ((size_t)-1) / 4 ? (size_t)-1 : maxlen * 4;

	if (!json_object_is_type(val, json_type_string))
		return upmon_jv_fail(v, field, "must be a string");
	if ((size_t)json_object_get_string_len(val) > max_bytes)
		return upmon_jv_fail(v, field, "is too long (at most %zu characters)", maxlen);
	if (upmon_jv_check_text(json_object_get_string(val),
	    (size_t)json_object_get_string_len(val), minlen, maxlen, flags, &why) != 0) {
		if (strcmp(why, "is too long") == 0)
			return upmon_jv_fail(v, field, "is too long (at most %zu characters)",
			    maxlen);
		if (strcmp(why, "is too short") == 0)
			return upmon_jv_fail(v, field, "is too short (at least %zu characters)",
			    minlen);
		return upmon_jv_fail(v, field, "%s", why);
	}
	*out = json_object_get_string(val);
	return 0;
}

int
upmon_jv_string(struct upmon_jv *v, const char *key, size_t minlen, size_t maxlen,
    unsigned flags, const char **out)
{
	struct json_object *val;
	int rc;

	*out = NULL;
	if ((rc = lookup(v, key, flags, &val)) != 0 || val == NULL)
		return rc;
	return check_string(v, key, val, minlen, maxlen, flags, out);
}

int
upmon_jv_int(struct upmon_jv *v, const char *key, long min, long max, unsigned flags,
    long *out, bool *is_null)
{
	struct json_object *val;
	int64_t n;
	int rc;

	if (is_null != NULL)
		*is_null = false;
	if ((rc = lookup(v, key, flags, &val)) != 0)
		return rc;
	if (val == NULL) {
		if (is_null != NULL)
			*is_null = true;
		return 0;
	}
	if (!json_object_is_type(val, json_type_int))
		return upmon_jv_fail(v, key, "must be an integer");
	errno = 0;
	n = json_object_get_int64(val);
	if (errno != 0 || n < min || n > max)
		return upmon_jv_fail(v, key, "must be between %ld and %ld", min, max);
	*out = (long)n;
	return 0;
}

int
upmon_jv_bool(struct upmon_jv *v, const char *key, unsigned flags, bool *out)
{
	struct json_object *val;
	int rc;

	if ((rc = lookup(v, key, flags & ~(unsigned)UPMON_JV_NULLABLE, &val)) != 0)
		return rc;
	if (!json_object_is_type(val, json_type_boolean))
		return upmon_jv_fail(v, key, "must be true or false");
	*out = json_object_get_boolean(val);
	return 0;
}

int
upmon_jv_enum(struct upmon_jv *v, const char *key, const char *const *values, unsigned flags,
    int *out)
{
	char list[256];
	size_t used = 0;
	const char *s;
	int rc, i, n;

	if ((rc = upmon_jv_string(v, key, 0, 256, flags, &s)) != 0 || s == NULL)
		return rc;
	for (i = 0; values[i] != NULL; i++) {
		if (strcmp(values[i], s) == 0) {
			*out = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (i = 0; values[i] != NULL; i++) {
		n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", values[i]);
		if (n < 0 || (size_t)n >= sizeof(list) - used)
			break;
		used += (size_t)n;
	}
	return upmon_jv_fail(v, key, "must be one of %s", list);
}

int
upmon_jv_string_array(struct upmon_jv *v, const char *key, size_t max_items, size_t minlen,
    size_t maxlen, unsigned flags, struct json_object **out)
{
	struct json_object *val;
	char field[160];
	const char *s;
	size_t i, n;
	int rc;

	*out = NULL;
	if ((rc = lookup(v, key, flags, &val)) != 0 || val == NULL)
		return rc;
	if (!json_object_is_type(val, json_type_array))
		return upmon_jv_fail(v, key, "must be an array of strings");
	n = json_object_array_length(val);
	if (n > max_items)
		return upmon_jv_fail(v, key, "has too many items (at most %zu)", max_items);
	rc = 0;
	for (i = 0; i < n; i++) {
		snprintf(field, sizeof(field), "%s[%zu]", key, i);
		if (check_string(v, field, json_object_array_get_idx(val, i), minlen, maxlen,
		    flags, &s) != 0)
			rc = -EINVAL;
	}
	if (rc == 0)
		*out = val;
	return rc;
}

int
upmon_jv_object(struct upmon_jv *v, const char *key, unsigned flags, struct json_object **out)
{
	struct json_object *val;
	int rc;

	*out = NULL;
	if ((rc = lookup(v, key, flags, &val)) != 0 || val == NULL)
		return rc;
	if (!json_object_is_type(val, json_type_object))
		return upmon_jv_fail(v, key, "must be an object");
	*out = val;
	return 0;
}

/* ---- time ----------------------------------------------------------------------------- */

int
upmon_time_format(int64_t ms, char *buf, size_t size)
{
	int64_t secs = ms / 1000, frac = ms % 1000;
	struct tm tm;
	time_t t;
	int n;

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	t = (time_t)secs;
	if (gmtime_r(&t, &tm) == NULL)
		return -EINVAL;
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return 0;
}

struct json_object *
upmon_json_time(int64_t ms)
{
	char buf[40];

	if (upmon_time_format(ms, buf, sizeof(buf)) != 0)
		return NULL;
	return json_object_new_string(buf);
}

/* Reads exactly n digits at *p into *out and advances; -1 if they are not all digits. */
static int
digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* The last time upmon_time_format() writes with a four-digit year (9999-12-31T23:59:59.999Z):
 * upmon_time_parse() accepts 0..this only, so every time it accepts formats and parses back. */
#define TIME_MAX_MS	INT64_C(253402300799999)

int
upmon_time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, fms = 0, scale = 100;
	const char *p = s;
	struct tm tm;
	int64_t v = 0;
	time_t t;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	if (strspn(s, "0123456789") == strlen(s)) {
		if (strlen(s) > 15)
			return -EINVAL;
		for (; *p != '\0'; p++)
			v = v * 10 + (*p - '0');
		if (v > TIME_MAX_MS)
			return -EINVAL;
		*ms = v;
		return 0;
	}
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || (*p != 'T' && *p != 't') || !*p++ || digits(&p, 2, &h) ||
	    *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			fms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	/* an offset can move a time out of range: 1970-01-01T00:30:00+01:00 */
	v = ((int64_t)t - (int64_t)sign * (oh * 3600 + om * 60)) * 1000 + fms;
	if (v < 0 || v > TIME_MAX_MS)
		return -EINVAL;
	*ms = v;
	return 0;
}
