/*
 * YAML <-> JSON values for `upmonctl monitors` (monitors_yaml.h), on libyaml's event API.
 */
#include "monitors_yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define YAML_MAX_DEPTH 32

struct yp {
	yaml_parser_t parser;
	char *err;
	size_t errlen;
};

static int
yp_next(struct yp *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev)) {
		snprintf(y->err, y->errlen, "line %zu: %s", y->parser.problem_mark.line + 1,
		    y->parser.problem != NULL ? y->parser.problem : "invalid YAML");
		return -EINVAL;
	}
	return 0;
}

static int
yp_fail(struct yp *y, const yaml_event_t *ev, const char *what)
{
	snprintf(y->err, y->errlen, "line %zu: %s", ev->start_mark.line + 1, what);
	return -EINVAL;
}

static bool
is_word(const char *s, const char *const *words)
{
	size_t i;

	for (i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

static const char *const null_words[] = { "", "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = {
	"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL,
};
static const char *const false_words[] = {
	"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL,
};

/* A plain scalar as YAML 1.1 reads it: null, boolean, decimal integer, float, or string. */
static struct json_object *
plain_scalar(const char *s)
{
	const char *p = s;
	char *end;
	long long n;
	double d;

	if (is_word(s, null_words))
		return NULL;
	if (is_word(s, true_words))
		return json_object_new_boolean(1);
	if (is_word(s, false_words))
		return json_object_new_boolean(0);
	if (*p == '-' || *p == '+')
		p++;
	if (*p >= '0' && *p <= '9' && (p[0] != '0' || p[1] == '\0') &&
	    strspn(p, "0123456789") == strlen(p)) {
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_object_new_int64(n);
	}
	if ((*p >= '0' && *p <= '9') || *p == '.') {
		if (strspn(p, "0123456789.eE+-") == strlen(p) && strchr(p, '.') != NULL) {
			errno = 0;
			d = strtod(s, &end);
			if (errno == 0 && *end == '\0')
				return json_object_new_double(d);
		}
	}
	return json_object_new_string(s);
}

static int yp_node(struct yp *y, yaml_event_t *ev, int depth, struct json_object **out);

static int
yp_mapping(struct yp *y, int depth, struct json_object **out)
{
	struct json_object *obj = json_object_new_object(), *val;
	yaml_event_t k, v;
	char *key;
	int rc;

	if (obj == NULL)
		return -ENOMEM;
	for (;;) {
		if ((rc = yp_next(y, &k)) != 0)
			goto fail;
		if (k.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&k);
			break;
		}
		if (k.type != YAML_SCALAR_EVENT) {
			rc = yp_fail(y, &k, "mapping keys must be plain strings");
			yaml_event_delete(&k);
			goto fail;
		}
		key = strdup((const char *)k.data.scalar.value);
		if (key == NULL || json_object_object_get_ex(obj, key, NULL)) {
			rc = key == NULL ? -ENOMEM : yp_fail(y, &k, "duplicate mapping key");
			free(key);
			yaml_event_delete(&k);
			goto fail;
		}
		yaml_event_delete(&k);
		if ((rc = yp_next(y, &v)) != 0 || (rc = yp_node(y, &v, depth + 1, &val)) != 0) {
			free(key);
			goto fail;
		}
		json_object_object_add(obj, key, val);
		free(key);
	}
	*out = obj;
	return 0;
fail:
	json_object_put(obj);
	return rc;
}

static int
yp_sequence(struct yp *y, int depth, struct json_object **out)
{
	struct json_object *arr = json_object_new_array(), *val;
	yaml_event_t ev;
	int rc;

	if (arr == NULL)
		return -ENOMEM;
	for (;;) {
		if ((rc = yp_next(y, &ev)) != 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if ((rc = yp_node(y, &ev, depth + 1, &val)) != 0)
			goto fail;
		json_object_array_add(arr, val);
	}
	*out = arr;
	return 0;
fail:
	json_object_put(arr);
	return rc;
}

/* Reads the node that starts with ev (consumed). */
static int
yp_node(struct yp *y, yaml_event_t *ev, int depth, struct json_object **out)
{
	const char *tag;
	int rc = 0;

	*out = NULL;
	if (depth > YAML_MAX_DEPTH) {
		rc = yp_fail(y, ev, "nested too deeply");
		goto done;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		rc = yp_fail(y, ev, "aliases are not supported");
		break;
	case YAML_SCALAR_EVENT:
		tag = (const char *)ev->data.scalar.tag;
		if (!ev->data.scalar.plain_implicit || (tag != NULL &&
		    strcmp(tag, YAML_STR_TAG) == 0))
			*out = json_object_new_string((const char *)ev->data.scalar.value);
		else
			*out = plain_scalar((const char *)ev->data.scalar.value);
		if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length)
			rc = yp_fail(y, ev, "strings must not contain NUL characters");
		break;
	case YAML_MAPPING_START_EVENT:
		if (ev->data.mapping_start.anchor != NULL)
			rc = yp_fail(y, ev, "anchors are not supported");
		else
			rc = yp_mapping(y, depth, out);
		break;
	case YAML_SEQUENCE_START_EVENT:
		if (ev->data.sequence_start.anchor != NULL)
			rc = yp_fail(y, ev, "anchors are not supported");
		else
			rc = yp_sequence(y, depth, out);
		break;
	default:
		rc = yp_fail(y, ev, "unexpected YAML event");
		break;
	}
done:
	if (rc != 0) {
		json_object_put(*out);
		*out = NULL;
	}
	yaml_event_delete(ev);
	return rc;
}

int
ctl_yaml_parse(const char *buf, size_t len, struct json_object **out, char *err,
    size_t errlen)
{
	struct yp y = { .err = err, .errlen = errlen };
	struct json_object *value = NULL;
	yaml_event_t ev;
	int rc, docs = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&y.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
	for (;;) {
		if ((rc = yp_next(&y, &ev)) != 0)
			goto out;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			if (++docs > 1) {
				rc = yp_fail(&y, &ev, "only one YAML document is allowed");
				yaml_event_delete(&ev);
				goto out;
			}
			yaml_event_delete(&ev);
			continue;
		}
		if ((rc = yp_node(&y, &ev, 0, &value)) != 0)
			goto out;
	}
	*out = value;
	value = NULL;
out:
	json_object_put(value);
	yaml_parser_delete(&y.parser);
	return rc;
}

/* ---- emitting ----------------------------------------------------------------------------- */

struct ybuf {
	char *p;
	size_t len, cap;
};

static int
ybuf_write(void *data, unsigned char *bytes, size_t size)
{
	struct ybuf *b = data;
	char *np;
	size_t cap;

	if (b->len + size + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + size + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, bytes, size);
	b->len += size;
	b->p[b->len] = '\0';
	return 1;
}

/* True when s may be written without quotes and reads back as the same string. */
static bool
plain_safe(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) ||
	    is_word(s, true_words) || is_word(s, false_words) || is_word(s, null_words) ||
	    s[len - 1] == ' ')
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static int
emit_scalar(yaml_emitter_t *e, const char *text, bool string)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;

	if (string && !plain_safe(text))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	else if (string)
		style = YAML_ANY_SCALAR_STYLE;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text,
	    (int)strlen(text), 1, 1, style))
		return -ENOMEM;
	return yaml_emitter_emit(e, &ev) ? 0 : -ENOMEM;
}

static int
emit_value(yaml_emitter_t *e, struct json_object *v)
{
	yaml_event_t ev;
	char num[32];
	size_t i, n;
	int rc;

	switch (json_object_get_type(v)) {
	case json_type_null:
		return emit_scalar(e, "null", false);
	case json_type_boolean:
		return emit_scalar(e, json_object_get_boolean(v) ? "true" : "false", false);
	case json_type_int:
		snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(v));
		return emit_scalar(e, num, false);
	case json_type_double:
		snprintf(num, sizeof(num), "%.17g", json_object_get_double(v));
		return emit_scalar(e, num, false);
	case json_type_string:
		return emit_scalar(e, json_object_get_string(v), true);
	case json_type_array:
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		    YAML_BLOCK_SEQUENCE_STYLE) || !yaml_emitter_emit(e, &ev))
			return -ENOMEM;
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if ((rc = emit_value(e, json_object_array_get_idx(v, i))) != 0)
				return rc;
		if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev))
			return -ENOMEM;
		return 0;
	case json_type_object:
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		    YAML_BLOCK_MAPPING_STYLE) || !yaml_emitter_emit(e, &ev))
			return -ENOMEM;
		json_object_object_foreach(v, key, val) {
			if ((rc = emit_scalar(e, key, true)) != 0 || (rc = emit_value(e, val)) != 0)
				return rc;
		}
		if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev))
			return -ENOMEM;
		return 0;
	}
	return -EINVAL;
}

int
ctl_yaml_emit(struct json_object *value, char **out, size_t *len)
{
	struct ybuf b = { NULL, 0, 0 };
	yaml_emitter_t e;
	yaml_event_t ev;
	int rc = -ENOMEM;

	*out = NULL;
	*len = 0;
	if (!yaml_emitter_initialize(&e))
		return -ENOMEM;
	yaml_emitter_set_output(&e, ybuf_write, &b);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_emitter_set_indent(&e, 2);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(&e, &ev) ||
	    !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(&e, &ev))
		goto out;
	if ((rc = emit_value(&e, value)) != 0)
		goto out;
	rc = -ENOMEM;
	if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev) ||
	    !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev) ||
	    !yaml_emitter_flush(&e))
		goto out;
	*out = b.p;
	*len = b.len;
	b.p = NULL;
	rc = 0;
out:
	yaml_emitter_delete(&e);
	free(b.p);
	return rc;
}
