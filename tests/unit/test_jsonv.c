#include "test.h"

#include <errno.h>
#include <string.h>

#include "upmon/jsonv.h"

static struct json_object *
parse(const char *s)
{
	struct json_object *o = json_tokener_parse(s);

	REQUIRE(o != NULL);
	return o;
}

static const char *
field_msg(struct json_object *fields, const char *name)
{
	struct json_object *m;

	if (!json_object_object_get_ex(fields, name, &m))
		return NULL;
	return json_object_get_string(m);
}

/* Every getter: present, absent, required, null, wrong type; each error names its field. */
static void
test_getters(void)
{
	struct json_object *o = parse("{\"s\": \"h\\u00e9llo\", \"n\": 42, \"b\": true, "
	    "\"z\": null, \"big\": 99999999999999999999, \"f\": 1.5, \"e\": \"tcp\", "
	    "\"a\": [\"x\", \"y\"], \"o\": {}, \"bad\": 7}");
	struct json_object *fields, *arr, *obj;
	struct upmon_jv v;
	const char *s;
	bool b = false, isnull = false;
	long n = 0;
	int e = -1;
	static const char *const kinds[] = { "http", "tcp", NULL };

	upmon_jv_init(&v, o);
	CHECK_EQ(upmon_jv_string(&v, "s", 1, 5, UPMON_JV_NO_CTRL, &s), 0);
	CHECK_STR(s, "h\xc3\xa9llo");		/* five characters, six bytes */
	CHECK_EQ(upmon_jv_string(&v, "missing", 1, 5, 0, &s), UPMON_JV_ABSENT);
	CHECK_EQ(upmon_jv_int(&v, "n", 0, 100, 0, &n, NULL), 0);
	CHECK_EQ(n, 42);
	CHECK_EQ(upmon_jv_bool(&v, "b", 0, &b), 0);
	CHECK(b);
	CHECK_EQ(upmon_jv_int(&v, "z", 0, 100, UPMON_JV_NULLABLE, &n, &isnull), 0);
	CHECK(isnull);
	CHECK_EQ(upmon_jv_enum(&v, "e", kinds, 0, &e), 0);
	CHECK_EQ(e, 1);
	CHECK_EQ(upmon_jv_string_array(&v, "a", 4, 1, 8, 0, &arr), 0);
	CHECK_EQ(json_object_array_length(arr), 2);
	CHECK_EQ(upmon_jv_object(&v, "o", 0, &obj), 0);
	CHECK(upmon_jv_ok(&v));

	CHECK_EQ(upmon_jv_string(&v, "req", 1, 5, UPMON_JV_REQUIRED, &s), UPMON_JV_ABSENT);
	CHECK_EQ(upmon_jv_string(&v, "n", 1, 5, 0, &s), -EINVAL);
	CHECK_EQ(upmon_jv_int(&v, "z", 0, 100, 0, &n, NULL), -EINVAL);
	CHECK_EQ(upmon_jv_int(&v, "big", 0, 100, 0, &n, NULL), -EINVAL);
	CHECK_EQ(upmon_jv_int(&v, "f", 0, 100, 0, &n, NULL), -EINVAL);
	CHECK_EQ(upmon_jv_int(&v, "bad", 10, 20, 0, &n, NULL), -EINVAL);
	CHECK_EQ(upmon_jv_bool(&v, "s", 0, &b), -EINVAL);
	CHECK_EQ(upmon_jv_enum(&v, "s", kinds, 0, &e), -EINVAL);
	CHECK_EQ(upmon_jv_object(&v, "a", 0, &obj), -EINVAL);
	CHECK(!upmon_jv_ok(&v));
	fields = upmon_jv_take_fields(&v);
	CHECK_STR(field_msg(fields, "req"), "is required");
	CHECK_STR(field_msg(fields, "n"), "must be a string");
	CHECK_STR(field_msg(fields, "z"), "must not be null");
	CHECK_STR(field_msg(fields, "big"), "must be between 0 and 100");
	CHECK_STR(field_msg(fields, "f"), "must be an integer");
	CHECK_STR(field_msg(fields, "bad"), "must be between 10 and 20");
	CHECK_STR(field_msg(fields, "s"), "must be true or false");	/* first error wins */
	CHECK_STR(field_msg(fields, "a"), "must be an object");
	json_object_put(fields);
	upmon_jv_release(&v);
	json_object_put(o);
}

/* Text rules: UTF-8, NUL, CR/LF, control characters, lengths in characters. */
static void
test_text(void)
{
	struct json_object *o = parse("{\"nul\": \"a\\u0000b\", \"crlf\": \"a\\r\\nb\", "
	    "\"tab\": \"a\\tb\", \"long\": \"\\u00e9\\u00e9\\u00e9\", \"empty\": \"\", "
	    "\"arr\": [\"ok\", \"x\\ny\"]}");
	struct json_object *fields, *arr;
	struct upmon_jv v;
	const char *s, *why;

	upmon_jv_init(&v, o);
	CHECK_EQ(upmon_jv_string(&v, "nul", 0, 10, 0, &s), -EINVAL);
	CHECK_EQ(upmon_jv_string(&v, "crlf", 0, 10, UPMON_JV_NO_CRLF, &s), -EINVAL);
	CHECK_EQ(upmon_jv_string(&v, "tab", 0, 10, UPMON_JV_NO_CRLF, &s), 0);
	CHECK_EQ(upmon_jv_string(&v, "tab", 0, 10, UPMON_JV_NO_CTRL, &s), -EINVAL);
	CHECK_EQ(upmon_jv_string(&v, "long", 0, 3, 0, &s), 0);
	CHECK_EQ(upmon_jv_string(&v, "long", 0, 2, 0, &s), -EINVAL);
	CHECK_EQ(upmon_jv_string(&v, "empty", 1, 2, 0, &s), -EINVAL);
	CHECK_EQ(upmon_jv_string_array(&v, "arr", 5, 1, 10, UPMON_JV_NO_CRLF, &arr), -EINVAL);
	fields = upmon_jv_take_fields(&v);
	CHECK_STR(field_msg(fields, "nul"), "must not contain NUL characters");
	CHECK_STR(field_msg(fields, "crlf"), "must not contain CR or LF");
	CHECK_STR(field_msg(fields, "tab"), "must not contain control characters");
	CHECK_STR(field_msg(fields, "long"), "is too long (at most 2 characters)");
	CHECK_STR(field_msg(fields, "empty"), "must not be empty");
	CHECK_STR(field_msg(fields, "arr[1]"), "must not contain CR or LF");
	CHECK(field_msg(fields, "arr[0]") == NULL);
	json_object_put(fields);
	upmon_jv_release(&v);
	json_object_put(o);

	CHECK_EQ(upmon_jv_check_text("\xc3\x28", 2, 0, 10, 0, &why), -EINVAL);	/* bad tail */
	CHECK_STR(why, "must be valid UTF-8");
	CHECK_EQ(upmon_jv_check_text("\xc0\xaf", 2, 0, 10, 0, &why), -EINVAL);	/* overlong */
	CHECK_EQ(upmon_jv_check_text("\xed\xa0\x80", 3, 0, 10, 0, &why), -EINVAL); /* surrogate */
	CHECK_EQ(upmon_jv_check_text("\xe2\x82", 2, 0, 10, 0, &why), -EINVAL);	/* truncated */
	CHECK_EQ(upmon_jv_check_text("\xf0\x9f\x9a\x80", 4, 1, 1, 0, &why), 0);	/* one emoji */
	CHECK_EQ(upmon_jv_check_text("a\x7f", 2, 0, 10, UPMON_JV_NO_CTRL, &why), -EINVAL);
}

/* Unknown fields are named; a body that is not an object is a "body" error. */
static void
test_allow(void)
{
	static const char *const allowed[] = { "name", "type", NULL };
	struct json_object *o = parse("{\"name\": \"x\", \"nmae\": 1, \"extra\": {}}");
	struct json_object *arr = parse("[1, 2]");
	struct json_object *fields;
	struct upmon_jv v;
	const char *s;

	upmon_jv_init(&v, o);
	upmon_jv_allow(&v, allowed);
	CHECK(upmon_jv_has(&v, "name"));
	CHECK(!upmon_jv_has(&v, "type"));
	fields = upmon_jv_take_fields(&v);
	CHECK_STR(field_msg(fields, "nmae"), "unknown field");
	CHECK_STR(field_msg(fields, "extra"), "unknown field");
	CHECK(field_msg(fields, "name") == NULL);
	json_object_put(fields);
	upmon_jv_release(&v);

	upmon_jv_init(&v, arr);
	upmon_jv_allow(&v, allowed);
	CHECK_EQ(upmon_jv_string(&v, "name", 1, 5, UPMON_JV_REQUIRED, &s), -EINVAL);
	fields = upmon_jv_take_fields(&v);
	CHECK_STR(field_msg(fields, "body"), "must be a JSON object");
	CHECK_EQ(json_object_object_length(fields), 1);
	json_object_put(fields);
	upmon_jv_release(&v);
	json_object_put(o);
	json_object_put(arr);
}

static void
test_time(void)
{
	char buf[40];
	int64_t ms = 0;

	CHECK_EQ(upmon_time_format(1795278000123LL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "2026-11-21T16:20:00.123Z");
	CHECK_EQ(upmon_time_format(0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
	CHECK_EQ(upmon_time_format(1, buf, 10), -ENOSPC);

	CHECK_EQ(upmon_time_parse("2026-11-21T16:20:00.123Z", &ms), 0);
	CHECK_EQ(ms, 1795278000123LL);
	CHECK_EQ(upmon_time_parse("2026-11-21t17:20:00.1234+01:00", &ms), 0);
	CHECK_EQ(ms, 1795278000123LL);
	CHECK_EQ(upmon_time_parse("2026-11-21T11:50:00-04:30", &ms), 0);
	CHECK_EQ(ms, 1795278000000LL);
	CHECK_EQ(upmon_time_parse("1795278000123", &ms), 0);
	CHECK_EQ(ms, 1795278000123LL);
	CHECK_EQ(upmon_time_parse("2024-02-29T00:00:00Z", &ms), 0);
	CHECK_EQ(upmon_time_parse("2026-02-29T00:00:00Z", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("2026-11-21 16:20:00Z", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("2026-11-21T16:20:00", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("2026-11-21T24:00:00Z", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("2026-11-21T16:20:00.Z", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("2026-11-21T16:20:00Zjunk", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("-5", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("1234567890123456", &ms), -EINVAL);
	/* only times upmon_time_format() writes back: 1970 .. 9999-12-31T23:59:59.999Z */
	CHECK_EQ(upmon_time_parse("999999999999999", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("253402300799999", &ms), 0);
	CHECK_EQ(upmon_time_parse("1970-01-01T00:30:00+01:00", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("9999-12-31T23:59:59.999-00:01", &ms), -EINVAL);
	CHECK_EQ(upmon_time_parse("9999-12-31T23:59:59.999Z", &ms), 0);
	CHECK_EQ(ms, 253402300799999LL);
}

int
main(void)
{
	RUN(test_getters);
	RUN(test_text);
	RUN(test_allow);
	RUN(test_time);
	return test_finish();
}
