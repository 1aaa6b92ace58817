/*
 * libFuzzer target: what the gateway does with a request body. The bytes are parsed as
 * server.c parses them (json_tokener, depth 32, STRICT | VALIDATE_UTF8, only white space after
 * the value, an object required); an object then goes through upmon_monitor_from_json() in
 * CREATE, REPLACE and PATCH modes (PATCH onto a valid base monitor), every accepted monitor
 * through upmon_monitor_to_json() and upmon_monitor_params() (what the SQL gets), and the
 * object through the jsonv getters the other handlers use.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "upmon/jsonv.h"
#include "upmon/monitor.h"

#define JSON_DEPTH	32	/* server.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_json[] =
    "{\"name\":\"base\",\"type\":\"http\",\"url\":\"https://example.com/health\","
    "\"method\":\"POST\",\"headers\":{\"X-A\":\"1\",\"X-B\":\"2\"},\"body\":\"{}\","
    "\"expected_status\":\"200-299,301\",\"keyword\":\"ok\",\"interval_seconds\":60,"
    "\"timeout_ms\":5000,\"retries\":2,\"tags\":[\"a\",\"b\"]}";

/* The body as server.c reads it; NULL when the server answers 400. */
static struct json_object *
parse_body(const char *buf, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj = NULL;
	size_t end;

	if (len > 1024 * 1024)
		return NULL;
	end = 0;
	while (end < len && strchr(" \t\r\n", buf[end]) != NULL && buf[end] != '\0')
		end++;
	if (end == len)
		return NULL;
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto bad;
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (strchr(" \t\r\n", buf[end]) == NULL || buf[end] == '\0')
			goto bad;
	if (!json_object_is_type(obj, json_type_object))
		goto bad;
	json_tokener_free(tok);
	return obj;
bad:
	json_object_put(obj);
	json_tokener_free(tok);
	return NULL;
}

/* An accepted monitor must serialise, and its serialisation must read back. */
static void
use_monitor(const struct upmon_monitor *m)
{
	struct upmon_monitor back;
	struct upmon_monitor_params p;
	struct json_object *out = NULL, *fields = NULL;

	if (upmon_monitor_to_json(m, 0, &out) != 0 || out == NULL)
		abort();
	(void)json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
	json_object_put(out);
	out = NULL;
	if (upmon_monitor_to_json(m, UPMON_MONITOR_JSON_DEFINITION, &out) != 0 || out == NULL)
		abort();
	memset(&back, 0, sizeof(back));	/* from_json overwrites, it does not release */
	if (upmon_monitor_from_json(out, UPMON_MONITOR_CREATE, NULL, &back, &fields) != 0)
		abort();		/* an export must import */
	upmon_monitor_release(&back);
	json_object_put(out);
	memset(&p, 0, sizeof(p));
	if (upmon_monitor_params(m, &p) != 0)
		abort();
	upmon_monitor_params_release(&p);
}

static void
monitor_modes(struct json_object *obj, const struct upmon_monitor *base)
{
	static const enum upmon_monitor_mode modes[] = {
		UPMON_MONITOR_CREATE, UPMON_MONITOR_REPLACE, UPMON_MONITOR_PATCH,
	};
	struct upmon_monitor m;
	struct json_object *fields;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		fields = NULL;
		memset(&m, 0, sizeof(m));
		rc = upmon_monitor_from_json(obj, modes[i],
		    modes[i] == UPMON_MONITOR_PATCH ? base : NULL, &m, &fields);
		if (rc == 0)
			use_monitor(&m);
		else if (rc == -EINVAL)
			json_object_put(fields);
		else
			abort();
		upmon_monitor_release(&m);
	}
}

/* The getters the other handlers (auth, channels, alerts) call on a body. */
static void
getters(struct json_object *obj)
{
	static const char *const allowed[] = { "email", "password", "name", "type", NULL };
	static const char *const kinds[] = { "email", "webhook", "slack", NULL };
	struct upmon_jv v;
	struct json_object *o, *f;
	const char *s;
	long l;
	bool b, isnull;
	int e;

	upmon_jv_init(&v, obj);
	upmon_jv_allow(&v, allowed);
	(void)upmon_jv_string(&v, "email", 3, 254, UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL, &s);
	(void)upmon_jv_string(&v, "name", 1, 200, UPMON_JV_NULLABLE | UPMON_JV_NO_CRLF, &s);
	(void)upmon_jv_string(&v, "password", 0, 1024, 0, &s);
	(void)upmon_jv_int(&v, "limit", -5, 1000, UPMON_JV_NULLABLE, &l, &isnull);
	(void)upmon_jv_int(&v, "port", 1, 65535, 0, &l, &isnull);
	(void)upmon_jv_bool(&v, "enabled", UPMON_JV_NULLABLE, &b);
	(void)upmon_jv_enum(&v, "type", kinds, UPMON_JV_REQUIRED, &e);
	(void)upmon_jv_string_array(&v, "tags", 8, 1, 64, UPMON_JV_NO_CTRL, &o);
	(void)upmon_jv_object(&v, "config", UPMON_JV_NULLABLE, &o);
	(void)upmon_jv_has(&v, "x");
	(void)upmon_jv_ok(&v);
	f = upmon_jv_take_fields(&v);
	if (f == NULL)
		abort();
	(void)json_object_to_json_string(f);
	json_object_put(f);
	upmon_jv_release(&v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upmon_monitor base;
	struct json_object *obj, *bobj, *fields = NULL;

	if ((obj = parse_body((const char *)data, size)) == NULL)
		return 0;
	memset(&base, 0, sizeof(base));
	if ((bobj = json_tokener_parse(base_json)) == NULL ||
	    upmon_monitor_from_json(bobj, UPMON_MONITOR_CREATE, NULL, &base, &fields) != 0)
		abort();		/* the base monitor is valid */
	json_object_put(bobj);
	monitor_modes(obj, &base);
	upmon_monitor_release(&base);
	getters(obj);
	json_object_put(obj);
	return 0;
}
