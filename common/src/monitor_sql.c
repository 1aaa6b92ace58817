/*
 * A monitor definition and SQL (monitor.h): the parameters of INSERT/UPDATE/upsert in one
 * column order, the statement fragments built from that order, and reading a row back.
 */
#include "upmon/monitor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/db.h"

static const char *const columns[UPMON_MONITOR_NCOLS] = {
	"name", "type", "url", "host", "port", "method", "headers", "body", "expected_status",
	"keyword", "keyword_absent", "max_latency_ms", "follow_redirects", "max_redirects",
	"verify_tls", "cert_expiry_days", "timeout_ms", "interval_seconds", "retries",
	"failure_threshold", "recovery_threshold", "reminder_minutes", "paused", "tags",
};

enum {
	C_NAME, C_TYPE, C_URL, C_HOST, C_PORT, C_METHOD, C_HEADERS, C_BODY, C_EXPECTED,
	C_KEYWORD, C_KEYWORD_ABSENT, C_MAX_LATENCY, C_FOLLOW, C_MAX_REDIRECTS, C_VERIFY_TLS,
	C_CERT_DAYS, C_TIMEOUT, C_INTERVAL, C_RETRIES, C_FAIL_THRESHOLD, C_RECOVERY_THRESHOLD,
	C_REMINDER, C_PAUSED, C_TAGS,
};

_Static_assert(C_TAGS + 1 == UPMON_MONITOR_NCOLS, "one enum entry per column");

/* A PostgreSQL text[] literal of the array's strings: {"a","b \"c\""} */
static char *
tags_literal(struct json_object *tags)
{
	size_t i, n = json_object_array_length(tags), cap = 3, len = 0;
	const char *s;
	char *buf;

	for (i = 0; i < n; i++)
		cap += 3 + 2 * strlen(json_object_get_string(json_object_array_get_idx(tags, i)));
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	buf[len++] = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf[len++] = ',';
		buf[len++] = '"';
		for (s = json_object_get_string(json_object_array_get_idx(tags, i)); *s; s++) {
			if (*s == '"' || *s == '\\')
				buf[len++] = '\\';
			buf[len++] = *s;
		}
		buf[len++] = '"';
	}
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
}

static const char *
num(struct upmon_monitor_params *p, int col, int v)
{
	snprintf(p->num[col], sizeof(p->num[col]), "%d", v);
	return p->num[col];
}

static const char *
num_or_null(struct upmon_monitor_params *p, int col, int v)
{
	return v != 0 ? num(p, col, v) : NULL;
}

static const char *
boolean(bool b)
{
	return b ? "true" : "false";
}

int
upmon_monitor_params(const struct upmon_monitor *m, struct upmon_monitor_params *p)
{
	const char *h;

	memset(p, 0, sizeof(*p));
	h = json_object_to_json_string_ext(m->headers, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (h == NULL || (p->headers = strdup(h)) == NULL ||
	    (p->tags = tags_literal(m->tags)) == NULL)
		return -ENOMEM;
	p->v[C_NAME] = m->name;
	p->v[C_TYPE] = m->type == UPMON_CHECK_TCP ? "tcp" : "http";
	p->v[C_URL] = m->url;
	p->v[C_HOST] = m->host;
	p->v[C_PORT] = num_or_null(p, C_PORT, m->port);
	p->v[C_METHOD] = upmon_http_method_name(m->method);
	p->v[C_HEADERS] = p->headers;
	p->v[C_BODY] = m->body;
	p->v[C_EXPECTED] = m->expected_status;
	p->v[C_KEYWORD] = m->keyword;
	p->v[C_KEYWORD_ABSENT] = boolean(m->keyword_absent);
	p->v[C_MAX_LATENCY] = num_or_null(p, C_MAX_LATENCY, m->max_latency_ms);
	p->v[C_FOLLOW] = boolean(m->follow_redirects);
	p->v[C_MAX_REDIRECTS] = num(p, C_MAX_REDIRECTS, m->max_redirects);
	p->v[C_VERIFY_TLS] = boolean(m->verify_tls);
	p->v[C_CERT_DAYS] = num(p, C_CERT_DAYS, m->cert_expiry_days);
	p->v[C_TIMEOUT] = num(p, C_TIMEOUT, m->timeout_ms);
	p->v[C_INTERVAL] = num(p, C_INTERVAL, m->interval_seconds);
	p->v[C_RETRIES] = num(p, C_RETRIES, m->retries);
	p->v[C_FAIL_THRESHOLD] = num(p, C_FAIL_THRESHOLD, m->failure_threshold);
	p->v[C_RECOVERY_THRESHOLD] = num(p, C_RECOVERY_THRESHOLD, m->recovery_threshold);
	p->v[C_REMINDER] = num_or_null(p, C_REMINDER, m->reminder_minutes);
	p->v[C_PAUSED] = boolean(m->paused);
	p->v[C_TAGS] = p->tags;
	return 0;
}

void
upmon_monitor_params_release(struct upmon_monitor_params *p)
{
	free(p->headers);
	free(p->tags);
	memset(p, 0, sizeof(*p));
}

int
upmon_monitor_sql_list(enum upmon_monitor_sql form, int first, char *buf, size_t size)
{
	size_t used = 0;
	int i, n = 0;

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (i = 0; i < UPMON_MONITOR_NCOLS; i++) {
		const char *sep = i > 0 ? ", " : "";
		const char *col = columns[i];

		switch (form) {
		case UPMON_MONITOR_SQL_VALUES:
			n = snprintf(buf + used, size - used, "%s$%d", sep, first + i);
			break;
		case UPMON_MONITOR_SQL_SET:
			n = snprintf(buf + used, size - used, "%s%s = $%d", sep, col, first + i);
			break;
		case UPMON_MONITOR_SQL_SET_EXCLUDED:
			n = snprintf(buf + used, size - used, "%s%s = EXCLUDED.%s", sep, col, col);
			break;
		case UPMON_MONITOR_SQL_DIFFERS:
			n = snprintf(buf + used, size - used, "%s%sm.%s", sep, i == 0 ? "(" : "",
			    col);
			break;
		}
		if (n < 0 || (size_t)n >= size - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	if (form != UPMON_MONITOR_SQL_DIFFERS)
		return 0;
	for (i = 0; i < UPMON_MONITOR_NCOLS; i++) {
		n = snprintf(buf + used, size - used, "%s%s", i == 0 ?
		    ") IS DISTINCT FROM (EXCLUDED." : ", EXCLUDED.", columns[i]);
		if (n < 0 || (size_t)n >= size - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	n = snprintf(buf + used, size - used, ")");
	return n < 0 || (size_t)n >= size - used ? -ENOSPC : 0;
}

/* ---- reading a row ------------------------------------------------------------------------ */

static int
row_str(const PGresult *res, int row, int col, char **dst)
{
	const char *s = upmon_db_value(res, row, col);

	*dst = NULL;
	if (s != NULL && (*dst = strdup(s)) == NULL)
		return -ENOMEM;
	return 0;
}

/* An integer column; NULL gives 0. */
static int
row_int(const PGresult *res, int row, int col, int *dst)
{
	int64_t v;

	*dst = 0;
	if (PQgetisnull(res, row, col))
		return 0;
	if (upmon_db_int64(res, row, col, &v) != 0 || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*dst = (int)v;
	return 0;
}

static bool
row_bool(const PGresult *res, int row, int col)
{
	const char *s = upmon_db_value(res, row, col);

	return s != NULL && s[0] == 't';
}

static struct json_object *
row_json(const PGresult *res, int row, int col, enum json_type want)
{
	const char *s = upmon_db_value(res, row, col);
	struct json_object *o;

	if (s == NULL || (o = json_tokener_parse(s)) == NULL)
		return NULL;
	if (!json_object_is_type(o, want)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int
upmon_monitor_from_row(const PGresult *res, int row, int col0, struct upmon_monitor *out)
{
	struct upmon_monitor *m = out;
	const char *s;
	int c = col0, rc = 0, i;

	memset(m, 0, sizeof(*m));
	if (row >= PQntuples(res) || col0 + UPMON_MONITOR_SELECT_NCOLS > PQnfields(res))
		return -EINVAL;
	s = upmon_db_value(res, row, c++);
	if (s == NULL || strlen(s) >= sizeof(m->id))
		return -EINVAL;
	memcpy(m->id, s, strlen(s) + 1);
	rc |= row_str(res, row, c++, &m->name);
	s = upmon_db_value(res, row, c++);
	m->type = s != NULL && strcmp(s, "tcp") == 0 ? UPMON_CHECK_TCP : UPMON_CHECK_HTTP;
	rc |= row_str(res, row, c++, &m->url);
	rc |= row_str(res, row, c++, &m->host);
	rc |= row_int(res, row, c++, &m->port);
	s = upmon_db_value(res, row, c++);
	m->method = UPMON_HTTP_GET;
	for (i = 0; s != NULL && upmon_http_method_name((enum upmon_http_method)i) != NULL; i++)
		if (strcmp(s, upmon_http_method_name((enum upmon_http_method)i)) == 0)
			m->method = (enum upmon_http_method)i;
	m->headers = row_json(res, row, c++, json_type_object);
	rc |= row_str(res, row, c++, &m->body);
	rc |= row_str(res, row, c++, &m->expected_status);
	rc |= row_str(res, row, c++, &m->keyword);
	m->keyword_absent = row_bool(res, row, c++);
	rc |= row_int(res, row, c++, &m->max_latency_ms);
	m->follow_redirects = row_bool(res, row, c++);
	rc |= row_int(res, row, c++, &m->max_redirects);
	m->verify_tls = row_bool(res, row, c++);
	rc |= row_int(res, row, c++, &m->cert_expiry_days);
	rc |= row_int(res, row, c++, &m->timeout_ms);
	rc |= row_int(res, row, c++, &m->interval_seconds);
	rc |= row_int(res, row, c++, &m->retries);
	rc |= row_int(res, row, c++, &m->failure_threshold);
	rc |= row_int(res, row, c++, &m->recovery_threshold);
	rc |= row_int(res, row, c++, &m->reminder_minutes);
	m->paused = row_bool(res, row, c++);
	m->tags = row_json(res, row, c++, json_type_array);
	if (upmon_db_int64(res, row, c++, &m->created_ms) != 0 ||
	    upmon_db_int64(res, row, c++, &m->updated_ms) != 0)
		rc = -EINVAL;
	if (m->headers == NULL || m->tags == NULL || m->name == NULL ||
	    m->expected_status == NULL)
		rc = rc ? rc : -EINVAL;
	if (rc != 0) {
		upmon_monitor_release(m);
		return rc == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	return 0;
}
