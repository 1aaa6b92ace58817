/*
 * Replies (JSON bodies, errors), query-string access and pagination cursors: everything a
 * handler uses to read its input beyond the body and to answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"
#include "upmon/config.h"
#include "upmon/jsonv.h"

#define QNAME_MAX	64
#define CURSOR_TEXT_MAX	(20 + 1 + GW_UUID_LEN)

/* ---- replies ------------------------------------------------------------------------------ */

static bool
has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

void
gw_add_header(struct gw_req *r, const char *name, const char *value)
{
	struct gw_req_priv *p = r->priv;
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;

	if (has_crlf(name) || has_crlf(value) || nl == 1) {
		log_warnx("dropped a response header with CR or LF (request %s)", p->reqid);
		return;
	}
	if (p->nhdr >= GW_HDR_MAX || p->hlen + nl + vl > sizeof(p->hbuf)) {
		log_warnx("dropped response header %s: no room (request %s)", name, p->reqid);
		return;
	}
	memcpy(p->hbuf + p->hlen, name, nl);
	p->hname[p->nhdr] = p->hbuf + p->hlen;
	p->hlen += nl;
	memcpy(p->hbuf + p->hlen, value, vl);
	p->hval[p->nhdr] = p->hbuf + p->hlen;
	p->hlen += vl;
	p->nhdr++;
}

void
gw_reply_json(struct gw_req *r, int status, struct json_object *obj)
{
	const char *text;
	size_t len = 0;

	if (obj == NULL) {
		gw_send(r, status, "application/json", "{}", 2);
		return;
	}
	text = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (text == NULL) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		gw_send(r, 500, "application/json", oom, sizeof(oom) - 1);
	} else {
		gw_send(r, status, "application/json", text, len);
	}
	json_object_put(obj);
}

void
gw_reply_page(struct gw_req *r, struct json_object *items, const char *next_cursor)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		json_object_put(items);
		gw_reply_json(r, 500, NULL);
		return;
	}
	json_object_object_add(o, "items", items != NULL ? items : json_object_new_array());
	json_object_object_add(o, "next_cursor", next_cursor != NULL && *next_cursor != '\0' ?
	    json_object_new_string(next_cursor) : NULL);
	gw_reply_json(r, 200, o);
}

void
gw_reply_no_content(struct gw_req *r)
{
	gw_send(r, 204, NULL, NULL, 0);
}

struct json_object *
gw_error_object(const char *code, const char *message, struct json_object *fields)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	if (o == NULL || e == NULL) {
		json_object_put(o);
		json_object_put(e);
		json_object_put(fields);
		return NULL;
	}
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	if (fields != NULL)
		json_object_object_add(e, "fields", fields);
	json_object_object_add(o, "error", e);
	return o;
}

static void
reply_error_fields(struct gw_req *r, int status, const char *code, const char *message,
    struct json_object *fields)
{
	struct json_object *o = gw_error_object(code, message, fields);

	if (o == NULL) {
		gw_reply_json(r, 500, NULL);
		return;
	}
	gw_reply_json(r, status, o);
}

void
gw_reply_error(struct gw_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_error_fields(r, status, code, msg, NULL);
}

void
gw_reply_not_found(struct gw_req *r, const char *what)
{
	gw_reply_error(r, 404, "not_found", "%s not found", what);
}

void
gw_reply_fields(struct gw_req *r, struct json_object *fields)
{
	if (fields == NULL)
		fields = json_object_new_object();
	reply_error_fields(r, 400, "validation_failed", "the request has invalid fields",
	    fields);
}

/* 400 validation_failed with one field. */
static void
reply_field(struct gw_req *r, const char *name, const char *what)
{
	struct json_object *f = json_object_new_object();

	if (f != NULL)
		json_object_object_add(f, name, json_object_new_string(what));
	gw_reply_fields(r, f);
}

/* ---- query strings ------------------------------------------------------------------------ */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
gw_url_decode(const char *s, size_t len, char *buf, size_t size)
{
	size_t i, o = 0;
	int hi, lo;
	char c;

	if (size == 0)
		return -ENOSPC;
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= len)
				return -EINVAL;
			if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return -EINVAL;
		if (o + 1 >= size)
			return -ENOSPC;
		buf[o++] = c;
	}
	buf[o] = '\0';
	return (int)o;
}

/* Iterates the parameters of query: *pos is the cursor (start at 0). Returns 1 with the raw
 * name and value (value NULL when there is no '='), 0 at the end. */
static int
next_param(const char *query, size_t *pos, const char **name, size_t *nlen,
    const char **value, size_t *vlen)
{
	const char *p, *end, *eq;

	if (query == NULL)
		return 0;
	for (;;) {
		p = query + *pos;
		if (*p == '\0')
			return 0;
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		*pos = (size_t)(end - query) + (*end == '&');
		if (end == p)
			continue;
		eq = memchr(p, '=', (size_t)(end - p));
		*name = p;
		*nlen = (size_t)((eq != NULL ? eq : end) - p);
		*value = eq != NULL ? eq + 1 : NULL;
		*vlen = eq != NULL ? (size_t)(end - eq - 1) : 0;
		return 1;
	}
}

/* Decodes a parameter name; false when it is malformed, too long or not printable ASCII. */
static bool
decode_name(const char *s, size_t len, char *buf, size_t size)
{
	int n = gw_url_decode(s, len, buf, size);
	int i;

	if (n <= 0)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e)
			return false;
	return true;
}

/* How many times the parameter named (decoded) name occurs in query. */
static int
count_param(const char *query, const char *name)
{
	const char *pn, *pv;
	size_t pos = 0, nlen, vlen;
	char dn[QNAME_MAX + 1];
	int n = 0;

	while (next_param(query, &pos, &pn, &nlen, &pv, &vlen))
		if (decode_name(pn, nlen, dn, sizeof(dn)) && strcmp(dn, name) == 0)
			n++;
	return n;
}

int
gw_query_allow(struct gw_req *r, const char *const *allowed)
{
	struct json_object *fields = NULL;
	const char *name, *value, *what;
	size_t pos = 0, nlen, vlen, i;
	char dn[QNAME_MAX + 1];
	bool ok;

	while (next_param(r->query, &pos, &name, &nlen, &value, &vlen)) {
		if (!decode_name(name, nlen, dn, sizeof(dn))) {
			json_object_put(fields);
			gw_reply_error(r, 400, "bad_request", "malformed query string");
			return -EINVAL;
		}
		ok = false;
		for (i = 0; allowed != NULL && allowed[i] != NULL; i++)
			if (strcmp(allowed[i], dn) == 0)
				ok = true;
		if (!ok)
			what = "unknown field";
		else if (count_param(r->query, dn) > 1)
			what = "must not be repeated";
		else
			continue;
		if (fields == NULL && (fields = json_object_new_object()) == NULL)
			break;
		json_object_object_add(fields, dn, json_object_new_string(what));
	}
	if (fields == NULL)
		return 0;
	gw_reply_fields(r, fields);
	return -EINVAL;
}

/* Finds parameter name: 1 with its raw value, 0 when absent, -EINVAL after replying when it
 * is repeated or the query is malformed. */
static int
find_param(struct gw_req *r, const char *want, const char **val, size_t *vallen)
{
	const char *name, *value;
	size_t pos = 0, nlen, vlen;
	char dn[QNAME_MAX + 1];
	int found = 0;

	while (next_param(r->query, &pos, &name, &nlen, &value, &vlen)) {
		if (!decode_name(name, nlen, dn, sizeof(dn)) || strcmp(dn, want) != 0)
			continue;
		if (found) {
			reply_field(r, want, "must not be repeated");
			return -EINVAL;
		}
		found = 1;
		*val = value != NULL ? value : "";
		*vallen = vlen;
	}
	return found;
}

int
gw_query_str(struct gw_req *r, const char *name, char *buf, size_t size)
{
	const char *raw, *why = NULL;
	size_t rawlen = 0;
	int rc, n;

	if ((rc = find_param(r, name, &raw, &rawlen)) < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	n = gw_url_decode(raw, rawlen, buf, size);
	if (n == -ENOSPC) {
		buf[0] = '\0';
		reply_field(r, name, "is too long");
		return -EINVAL;
	}
	if (n < 0 || upmon_jv_check_text(buf, (size_t)n, 0, size, UPMON_JV_NO_CTRL, &why) != 0) {
		buf[0] = '\0';
		reply_field(r, name, why != NULL ? why : "is not valid text");
		return -EINVAL;
	}
	return 0;
}

int
gw_query_long(struct gw_req *r, const char *name, long min, long max, long def, long *out)
{
	char buf[32], msg[96];
	int rc;

	*out = def;
	rc = gw_query_str(r, name, buf, sizeof(buf));
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && upmon_parse_long(buf, min, max, out) == 0)
		return 0;
	if (rc == 0 || r->status == 0) {
		*out = def;
		snprintf(msg, sizeof(msg), "must be an integer between %ld and %ld", min, max);
		if (r->status == 0)
			reply_field(r, name, msg);
	}
	return -EINVAL;
}

int
gw_query_time(struct gw_req *r, const char *name, int64_t def, int64_t *out_ms)
{
	char buf[64];
	int rc;

	*out_ms = def;
	rc = gw_query_str(r, name, buf, sizeof(buf));
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && upmon_time_parse(buf, out_ms) == 0)
		return 0;
	*out_ms = def;
	if (r->status == 0)
		reply_field(r, name, "must be an RFC 3339 time or Unix milliseconds");
	return -EINVAL;
}

/* ---- cursors ------------------------------------------------------------------------------ */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned)in[i] << 16;
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int
b64_val(char c)
{
	const char *p = c != '\0' ? strchr(b64url, c) : NULL;

	return p != NULL ? (int)(p - b64url) : -1;
}

/* Strict decoding (no padding, canonical trailing bits); returns the length or -1. */
static int
b64_decode(const char *in, size_t n, unsigned char *out, size_t size)
{
	size_t i, o = 0;
	unsigned v = 0;
	int bits = 0, d;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((d = b64_val(in[i])) < 0)
			return -1;
		v = (v << 6 | (unsigned)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= size)
				return -1;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	if ((v & ((1u << bits) - 1)) != 0)
		return -1;
	return (int)o;
}

static bool
is_lower_uuid(const char *s)
{
	size_t i;

	for (i = 0; i < GW_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[GW_UUID_LEN] == '\0';
}

int
gw_cursor_encode(int64_t ms, const char *id, char *buf, size_t size)
{
	char text[CURSOR_TEXT_MAX + 1];
	int n;

	n = snprintf(text, sizeof(text), "%lld,%s", (long long)ms, id);
	if (n < 0 || (size_t)n >= sizeof(text) || !is_lower_uuid(id))
		return -EINVAL;
	if (size < ((size_t)n + 2) / 3 * 4 + 1)
		return -ENOSPC;
	b64_encode((const unsigned char *)text, (size_t)n, buf);
	return 0;
}

int
gw_cursor_decode(struct gw_req *r, const char *cursor, int64_t *ms, char *id,
    size_t idsize)
{
	unsigned char text[CURSOR_TEXT_MAX + 1];
	const char *comma;
	size_t len;
	long v;
	int n;

	if (cursor == NULL || *cursor == '\0')
		return -ENOENT;
	len = strlen(cursor);
	if (len > (CURSOR_TEXT_MAX + 2) / 3 * 4 || idsize < GW_UUID_LEN + 1)
		goto bad;
	n = b64_decode(cursor, len, text, sizeof(text) - 1);
	if (n <= 0)
		goto bad;
	text[n] = '\0';
	if (memchr(text, '\0', (size_t)n) != NULL)
		goto bad;
	comma = strchr((const char *)text, ',');
	if (comma == NULL || (size_t)((const char *)text + n - comma - 1) != GW_UUID_LEN)
		goto bad;
	if (!is_lower_uuid(comma + 1))
		goto bad;
	text[comma - (const char *)text] = '\0';
	/* digits only, no leading zero: one text per cursor */
	if (text[0] < '0' || text[0] > '9' || (text[0] == '0' && text[1] != '\0') ||
	    upmon_parse_long((const char *)text, 0, INT64_MAX, &v) != 0)
		goto bad;
	*ms = v;
	memcpy(id, comma + 1, GW_UUID_LEN + 1);
	return 0;
bad:
	if (r != NULL)
		reply_field(r, "cursor", "is not a valid cursor");
	return -EINVAL;
}

/* ---- pages ------------------------------------------------------------------------------ */

int
gw_page_parse(struct gw_req *r, long def, long max, struct gw_page *p)
{
	char cursor[256];
	int rc;

	memset(p, 0, sizeof(*p));
	if (gw_query_long(r, "limit", 1, max, def, &p->limit) != 0)
		return -EINVAL;
	rc = gw_query_str(r, "cursor", cursor, sizeof(cursor));
	if (rc == -EINVAL)
		return rc;
	if (rc == 0) {
		rc = gw_cursor_decode(r, cursor, &p->after_ms, p->after_id,
		    sizeof(p->after_id));
		if (rc == -EINVAL)
			return rc;
		p->after = rc == 0;
	}
	snprintf(p->s_ms, sizeof(p->s_ms), "%lld", (long long)p->after_ms);
	snprintf(p->s_fetch, sizeof(p->s_fetch), "%ld", p->limit + 1);
	return 0;
}

void
gw_page_reply(struct gw_req *r, const struct gw_page *p, PGresult *res, int nrows, int ms_col,
    int id_col, struct json_object *items)
{
	char next[256];
	int last = (int)p->limit - 1;

	next[0] = '\0';
	if (nrows > p->limit && gw_cursor_encode(strtoll(PQgetvalue(res, last, ms_col), NULL, 10),
	    PQgetvalue(res, last, id_col), next, sizeof(next)) != 0)
		next[0] = '\0';
	gw_reply_page(r, items, next);
}

/* ---- result columns as JSON ----------------------------------------------------------- */

int64_t
gw_col_i64(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

struct json_object *
gw_col_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_int64(gw_col_i64(res, row, col));
}

struct json_object *
gw_col_num(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_double(strtod(PQgetvalue(res, row, col), NULL));
}

struct json_object *
gw_col_str(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_string_len(PQgetvalue(res, row, col),
	    PQgetlength(res, row, col));
}

struct json_object *
gw_col_bool(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_object_new_boolean(PQgetvalue(res, row, col)[0] == 't');
}

struct json_object *
gw_col_time(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return upmon_json_time(gw_col_i64(res, row, col));
}
