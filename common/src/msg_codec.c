/*
 * The generic half of the msg module: strict parsing of a message body, and decode /
 * validate / encode of flat fields described by struct mf tables. Decode and validate share
 * the value checks below, so the decoder and the encoder enforce exactly the same rules.
 */
#include "upmon/msg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"

#define MSG_MAX_DEPTH 8		/* task -> check -> headers -> header is 4 */
#define MSG_MAX_CAP (256 * 1024 * 1024)	/* json-c takes an int length */

static _Atomic size_t msg_max_bytes = UPMON_MSG_MAX_BYTES;

void
upmon_msg_set_max_bytes(size_t max)
{
	if (max == 0)
		max = UPMON_MSG_MAX_BYTES;
	if (max > MSG_MAX_CAP)
		max = MSG_MAX_CAP;
	atomic_store_explicit(&msg_max_bytes, max, memory_order_relaxed);
}

size_t
upmon_msg_max_bytes(void)
{
	return atomic_load_explicit(&msg_max_bytes, memory_order_relaxed);
}

/* Copies untrusted text for an error message: printable ASCII only, at most 40 bytes. */
static void
shown(const char *s, size_t len, char *buf, size_t size)
{
	size_t i, lim = len < 40 ? len : 40;

	if (lim + 4 > size)
		lim = size > 4 ? size - 4 : 0;
	for (i = 0; i < lim; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (lim < len)
		memcpy(buf + i, "...", 4);
	else
		buf[i] = '\0';
}

int
mfail(struct mctx *c, const char *field, const char *fmt, ...)
{
	char reason[256], name[48];
	va_list ap;

	if (c->err == NULL || c->errlen == 0)
		return -EINVAL;
	shown(field, strlen(field), name, sizeof(name));
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: field \"%s%s\": %s", c->msg, c->prefix, name, reason);
	return -EINVAL;
}

const char *
mf_json_type(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_double: return "number with a fraction or exponent";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "unknown";
}

int
mf_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p++;
		size_t need;
		unsigned cp, min;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if ((size_t)(end - p) < need)
			return 0;
		for (; need > 0; need--, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

static int
is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

const char *
mf_text_problem(enum mf_text cls, const char *s, size_t len)
{
	size_t i;

	if (!mf_utf8_valid(s, len))
		return "is not valid UTF-8";
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		switch (cls) {
		case TX_ANY:
			break;
		case TX_NOCTL:
			if (ch < 0x20 || ch == 0x7f)
				return "contains control characters";
			break;
		case TX_TOKEN:
			if (!is_tchar(ch))
				return "expected token characters [A-Za-z0-9!#$%&'*+.^_`|~-]";
			break;
		case TX_URL:
			if (ch <= 0x20 || ch == 0x7f)
				return "contains spaces or control characters";
			break;
		case TX_HOST:
			if (!isalnum(ch) && ch != '.' && ch != '-' && ch != ':' && ch != '_')
				return "expected a host name or IP address [A-Za-z0-9._:-]";
			break;
		}
	}
	if (cls == TX_URL && !((len > 7 && strncmp(s, "http://", 7) == 0) ||
	    (len > 8 && strncmp(s, "https://", 8) == 0)))
		return "expected an http:// or https:// URL";
	return NULL;
}

int
msg_task_id_wellformed(const char *s, size_t len)
{
	size_t i = 0, n;
	int part;

	for (part = 0; part < 3; part++) {
		for (n = 0; i < len && s[i] != ':'; i++, n++) {
			unsigned char ch = (unsigned char)s[i];

			if (part == 0 ? !(isalnum(ch) || ch == '_' || ch == '-') : !isdigit(ch))
				return 0;
		}
		if (n == 0 || (part == 0 && n > UPMON_ID_MAX) || (part == 1 && n > 16) ||
		    (part == 2 && n > 2))
			return 0;
		if (part < 2) {
			if (i >= len)
				return 0;
			i++;
		}
	}
	return i == len;
}

/* Checks a text value of any text-like field type; returns 0 or -EINVAL (reported). */
static int
check_text(struct mctx *c, const struct mf *f, const char *s, size_t len)
{
	const char *why = NULL;
	size_t i;

	if (memchr(s, '\0', len) != NULL)
		return mfail(c, f->name, "contains a NUL character");
	if ((int64_t)len > f->max)
		return mfail(c, f->name, "longer than %lld bytes", (long long)f->max);
	if ((int64_t)len < f->min && f->min == 1)
		return mfail(c, f->name, "must not be empty");
	if ((int64_t)len < f->min)
		return mfail(c, f->name, "shorter than %lld bytes", (long long)f->min);
	switch (f->type) {
	case MF_ID:
	case MF_KEY:
		for (i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)s[i];

			if (!isalnum(ch) && ch != '_' && ch != '-' && !(f->type == MF_KEY &&
			    ch == ':'))
				return mfail(c, f->name, "expected characters %s",
				    f->type == MF_ID ? "[A-Za-z0-9_-]" : "[A-Za-z0-9_:-]");
		}
		break;
	case MF_TASKID:
		if (!msg_task_id_wellformed(s, len))
			return mfail(c, f->name,
			    "expected \"<monitor_id>:<scheduled_at>:<attempt>\"");
		break;
	case MF_STR:
		why = mf_text_problem(f->text, s, len);
		break;
	default:
		break;
	}
	return why != NULL ? mfail(c, f->name, "%s", why) : 0;
}

static int
check_int(struct mctx *c, const struct mf *f, int64_t v)
{
	if (v < f->min || v > f->max)
		return mfail(c, f->name, "expected integer %lld..%lld, got %lld",
		    (long long)f->min, (long long)f->max, (long long)v);
	return 0;
}

static size_t
enum_count(const char *const *names)
{
	size_t n = 0;

	while (names[n] != NULL)
		n++;
	return n;
}

/* Writes "a|b|c" into buf. */
static void
enum_list(const char *const *names, char *buf, size_t size)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; names[i] != NULL && off < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s", i ? "|" : "", names[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static int
decode_enum(struct mctx *c, const struct mf *f, json_object *v, int *out)
{
	char list[128], got[48];
	const char *s;
	size_t i, len;

	enum_list(f->names, list, sizeof(list));
	if (!json_object_is_type(v, json_type_string))
		return mfail(c, f->name, "expected one of %s, got %s", list, mf_json_type(v));
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	for (i = 0; f->names[i] != NULL; i++) {
		if (strlen(f->names[i]) == len && memcmp(f->names[i], s, len) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	shown(s, len, got, sizeof(got));
	return mfail(c, f->name, "expected one of %s, got \"%s\"", list, got);
}

/* Stores the default of an absent optional field. */
static void
store_default(const struct mf *f, void *base)
{
	char *p = (char *)base + f->offset;

	switch (f->type) {
	case MF_ID: case MF_KEY: case MF_TASKID: p[0] = '\0'; break;
	case MF_STR: *(char **)p = NULL; break;
	case MF_INT: case MF_ENUM: *(int *)p = (int)f->def; break;
	case MF_I64: *(int64_t *)p = f->def; break;
	case MF_BOOL: *(bool *)p = f->def != 0; break;
	}
}

static int
decode_text(struct mctx *c, const struct mf *f, json_object *v, void *base)
{
	char *p = (char *)base + f->offset, *copy;
	const char *s;
	size_t len;
	int rc;

	if (!json_object_is_type(v, json_type_string))
		return mfail(c, f->name, "expected string, got %s", mf_json_type(v));
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if ((rc = check_text(c, f, s, len)) < 0)
		return rc;
	if (f->type != MF_STR) {
		memcpy(p, s, len);	/* len <= max, the array holds max + 1 */
		p[len] = '\0';
		return 0;
	}
	if ((copy = strndup(s, len)) == NULL)
		return -ENOMEM;
	*(char **)p = copy;
	return 0;
}

static int
decode_one(struct mctx *c, const struct mf *f, json_object *v, void *base)
{
	char *p = (char *)base + f->offset;
	int64_t i;
	int rc;

	switch (f->type) {
	case MF_INT:
	case MF_I64:
		if (!json_object_is_type(v, json_type_int))
			return mfail(c, f->name, "expected integer %lld..%lld, got %s",
			    (long long)f->min, (long long)f->max, mf_json_type(v));
		i = json_object_get_int64(v);
		if ((rc = check_int(c, f, i)) < 0)
			return rc;
		if (f->type == MF_INT)
			*(int *)p = (int)i;
		else
			*(int64_t *)p = i;
		return 0;
	case MF_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return mfail(c, f->name, "expected boolean, got %s", mf_json_type(v));
		*(bool *)p = json_object_get_boolean(v);
		return 0;
	case MF_ENUM:
		return decode_enum(c, f, v, (int *)p);
	default:
		return decode_text(c, f, v, base);
	}
}

int
mf_decode(struct mctx *c, json_object *obj, const struct mf *f, size_t n, void *base)
{
	json_object *v;
	size_t k;
	int rc;

	for (k = 0; k < n; k++) {
		if (!json_object_object_get_ex(obj, f[k].name, &v)) {
			if (f[k].flags & MF_REQ)
				return mfail(c, f[k].name, "missing");
			store_default(&f[k], base);
			continue;
		}
		if ((rc = decode_one(c, &f[k], v, base)) < 0)
			return rc;
	}
	return 0;
}

/* Returns 1 if the field holds its "absent" value: "" / NULL, or def when MF_OMIT. */
static int
field_absent(const struct mf *f, const void *base)
{
	const char *p = (const char *)base + f->offset;

	switch (f->type) {
	case MF_ID: case MF_KEY: case MF_TASKID: return p[0] == '\0';
	case MF_STR: return *(char *const *)p == NULL;
	case MF_INT: case MF_ENUM: return (f->flags & MF_OMIT) && *(const int *)p == f->def;
	case MF_I64: return (f->flags & MF_OMIT) && *(const int64_t *)p == f->def;
	case MF_BOOL: return (f->flags & MF_OMIT) && *(const bool *)p == (f->def != 0);
	}
	return 0;
}

int
mf_validate(struct mctx *c, const struct mf *f, size_t n, const void *base)
{
	char list[128];
	size_t k;
	int rc = 0;

	for (k = 0; k < n && rc == 0; k++) {
		const char *p = (const char *)base + f[k].offset;

		if (field_absent(&f[k], base)) {
			if (f[k].flags & MF_REQ)
				rc = mfail(c, f[k].name, "missing");
			continue;
		}
		switch (f[k].type) {
		case MF_ID: case MF_KEY: case MF_TASKID:
			rc = check_text(c, &f[k], p, strnlen(p, (size_t)f[k].max + 1));
			break;
		case MF_STR:
			rc = check_text(c, &f[k], *(char *const *)p, strlen(*(char *const *)p));
			break;
		case MF_INT:
			rc = check_int(c, &f[k], *(const int *)p);
			break;
		case MF_I64:
			rc = check_int(c, &f[k], *(const int64_t *)p);
			break;
		case MF_ENUM:
			if (*(const int *)p < 0 || (size_t)*(const int *)p >= enum_count(f[k].names)) {
				enum_list(f[k].names, list, sizeof(list));
				rc = mfail(c, f[k].name, "expected one of %s, got %d", list,
				    *(const int *)p);
			}
			break;
		case MF_BOOL:
			break;
		}
	}
	return rc;
}

/* Adds v to obj under key, taking v's reference. Returns 0 or -ENOMEM. */
static int
add(json_object *obj, const char *key, json_object *v)
{
	if (v == NULL)
		return -ENOMEM;
	if (json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int
msg_add_str(json_object *obj, const char *key, const char *s, size_t len)
{
	return add(obj, key, json_object_new_string_len(s, (int)len));
}

int
mf_encode(json_object *obj, const struct mf *f, size_t n, const void *base)
{
	size_t k;
	int rc = 0;

	for (k = 0; k < n && rc == 0; k++) {
		const char *p = (const char *)base + f[k].offset;

		if (field_absent(&f[k], base))
			continue;
		switch (f[k].type) {
		case MF_ID: case MF_KEY: case MF_TASKID:
			rc = msg_add_str(obj, f[k].name, p, strlen(p));
			break;
		case MF_STR:
			rc = msg_add_str(obj, f[k].name, *(char *const *)p,
			    strlen(*(char *const *)p));
			break;
		case MF_INT:
			rc = add(obj, f[k].name, json_object_new_int64(*(const int *)p));
			break;
		case MF_I64:
			rc = add(obj, f[k].name, json_object_new_int64(*(const int64_t *)p));
			break;
		case MF_BOOL:
			rc = add(obj, f[k].name, json_object_new_boolean(*(const bool *)p));
			break;
		case MF_ENUM:
			rc = add(obj, f[k].name, json_object_new_string(
			    f[k].names[*(const int *)p]));
			break;
		}
	}
	return rc;
}

void
mf_release(const struct mf *f, size_t n, void *base)
{
	size_t k;

	for (k = 0; k < n; k++) {
		if (f[k].type == MF_STR) {
			char **p = (char **)((char *)base + f[k].offset);

			free(*p);
			*p = NULL;
		}
	}
}

int
mf_has(const struct mf *f, size_t n, const char *key)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (strcmp(f[k].name, key) == 0)
			return 1;
	return 0;
}

int
mf_check_keys(struct mctx *c, json_object *obj, mf_key_fn fn, const void *arg)
{
	const char *why;

	json_object_object_foreach(obj, key, val) {
		(void)val;
		if ((why = fn(key, arg)) != NULL)
			return mfail(c, key, "%s", why);
	}
	return 0;
}

/* Refuses NUL bytes, and outside strings the single quotes and comments json-c tolerates. */
static int
scan_raw(const char *msg, const char *buf, size_t len, char *err, size_t errlen)
{
	size_t i;
	int in_str = 0;

	for (i = 0; i < len; i++) {
		char ch = buf[i];

		if (ch == '\0') {
			snprintf(err, errlen, "%s: message contains a NUL byte at offset %zu",
			    msg, i);
			return -EBADMSG;
		}
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0;
		} else if (ch == '"') {
			in_str = 1;
		} else if (ch == '\'' || ch == '/') {
			snprintf(err, errlen, "%s: malformed JSON: unexpected '%c' at offset %zu",
			    msg, ch, i);
			return -EBADMSG;
		}
	}
	return 0;
}

/* Returns 1 if the n bytes at s are all JSON whitespace. */
static int
only_space(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

/* Checks the "v" member of root. */
static int
check_version(const char *msg, json_object *root, char *err, size_t errlen)
{
	struct mctx c = { msg, "", err, errlen };
	json_object *v;
	int64_t ver;

	if (!json_object_object_get_ex(root, "v", &v))
		return mfail(&c, "v", "missing");
	if (!json_object_is_type(v, json_type_int))
		return mfail(&c, "v", "expected integer %d, got %s", UPMON_MSG_VERSION,
		    mf_json_type(v));
	ver = json_object_get_int64(v);
	if (ver != UPMON_MSG_VERSION) {
		mfail(&c, "v", "unsupported version %lld (this build reads %d)",
		    (long long)ver, UPMON_MSG_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int
msg_parse(const char *msg, const char *buf, size_t len, json_object **root, char *err,
    size_t errlen)
{
	static char dummy[1];
	struct json_tokener *tok = NULL;
	json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t cap = upmon_msg_max_bytes();
	int rc = -EBADMSG;

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	*root = NULL;
	if (len > cap) {
		snprintf(err, errlen, "%s: message is %zu bytes, over the limit of %zu bytes",
		    msg, len, cap);
		return -EMSGSIZE;
	}
	if (len == 0 || buf == NULL) {
		snprintf(err, errlen, "%s: empty message", msg);
		return -EBADMSG;
	}
	if ((rc = scan_raw(msg, buf, len, err, errlen)) < 0)
		return rc;
	if ((tok = json_tokener_new_ex(MSG_MAX_DEPTH)) == NULL)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
	    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	rc = -EBADMSG;
	if (obj == NULL && jerr == json_tokener_continue) {
		snprintf(err, errlen, "%s: truncated JSON (%zu bytes)", msg, len);
	} else if (obj == NULL) {
		snprintf(err, errlen, "%s: malformed JSON at offset %zu: %s", msg,
		    json_tokener_get_parse_end(tok), json_tokener_error_desc(jerr));
	} else if (!only_space(buf + json_tokener_get_parse_end(tok),
	    len - json_tokener_get_parse_end(tok))) {
		snprintf(err, errlen, "%s: trailing data after the JSON document at offset %zu",
		    msg, json_tokener_get_parse_end(tok));
	} else if (!json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "%s: expected a JSON object, got %s", msg,
		    mf_json_type(obj));
	} else {
		rc = check_version(msg, obj, err, errlen);
	}
	json_tokener_free(tok);
	if (rc < 0) {
		json_object_put(obj);
		return rc;
	}
	*root = obj;
	return 0;
}

json_object *
msg_new_root(void)
{
	json_object *root = json_object_new_object();

	if (root != NULL && add(root, "v", json_object_new_int(UPMON_MSG_VERSION)) < 0) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

int
msg_serialize(json_object *root, char **out, size_t *len)
{
	const char *s;
	size_t n;

	*out = NULL;
	s = json_object_to_json_string_length(root,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s == NULL)
		return -ENOMEM;
	if (n > upmon_msg_max_bytes())
		return -EMSGSIZE;
	if ((*out = malloc(n + 1)) == NULL)
		return -ENOMEM;
	memcpy(*out, s, n + 1);
	if (len != NULL)
		*len = n;
	return 0;
}
