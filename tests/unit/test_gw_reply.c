/*
 * The gateway's pure pieces: route matching, the Allow header, pagination cursors, query
 * string decoding and the error JSON shape (replies captured without a connection).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"
#include "test.h"

#define UUID_LO	"0b5e0c5e-1a2b-4c3d-8e9f-00000000abcd"
#define UUID_UP	"0B5E0C5E-1A2B-4C3D-8E9F-00000000ABCD"

struct fake {
	struct gw_req r;
	struct gw_req_priv p;
};

static void
fake_init(struct fake *f, const char *query)
{
	gw_req_detached_init(&f->r, &f->p, query, "test");
}

static void
fake_reset(struct fake *f)
{
	gw_req_detached_reset(&f->r);
}

static void
test_route_match(void)
{
	char params[GW_MAX_PARAMS][GW_UUID_LEN + 1];
	const struct gw_route *rt;
	char allow[128];
	bool mm;

	CHECK_EQ(gw_route_match("GET", "/monitors", &rt, params, &mm), 0);
	REQUIRE(rt != NULL);
	CHECK_STR(rt->pattern, "/monitors");
	CHECK(rt->handler == gw_monitors_list);

	CHECK_EQ(gw_route_match("GET", "/monitors/" UUID_UP "/checks", &rt, params, &mm), 0);
	REQUIRE(rt != NULL);
	CHECK_STR(rt->pattern, "/monitors/{id}/checks");
	CHECK_STR(params[0], UUID_LO);

	CHECK_EQ(gw_route_match("POST", "/channels/" UUID_LO "/test", &rt, params, &mm), 0);
	REQUIRE(rt != NULL);
	CHECK(rt->handler == gw_channels_test);

	CHECK_EQ(gw_route_match("POST", "/auth/login", &rt, params, &mm), 0);
	REQUIRE(rt != NULL);
	CHECK(rt->flags & GW_R_PUBLIC);

	/* path known, method not: 405 */
	CHECK_EQ(gw_route_match("DELETE", "/monitors", &rt, params, &mm), -ENOENT);
	CHECK(rt == NULL);
	CHECK(mm);
	gw_route_allow("/monitors", allow, sizeof(allow));
	CHECK_STR(allow, "GET, POST, OPTIONS");
	gw_route_allow("/monitors/" UUID_LO, allow, sizeof(allow));
	CHECK_STR(allow, "GET, PUT, PATCH, DELETE, OPTIONS");

	/* nothing matches: 404 */
	static const char *const nomatch[] = {
		"/monitors/not-a-uuid", "/monitors/", "/monitors//status", "", "/",
		"/monitors/" UUID_LO "/", "/monitors/" UUID_LO "/checks/x", "/Monitors",
		"/monitors/0b5e0c5e-1a2b-4c3d-8e9f-00000000abcg",
		"/monitors/0b5e0c5e1a2b-4c3d-8e9f-00000000abcde",
		"/monitors/" UUID_LO "0", "/monitorsx", "/auth", "/admin/dlq/replay/x",
	};
	for (size_t i = 0; i < sizeof(nomatch) / sizeof(nomatch[0]); i++) {
		CHECK_EQ(gw_route_match("GET", nomatch[i], &rt, params, &mm), -ENOENT);
		CHECK(!mm);
	}
}

static void
test_cursor(void)
{
	char buf[128], id[GW_UUID_LEN + 1];
	struct fake f;
	int64_t ms;

	fake_init(&f, NULL);
	CHECK_EQ(gw_cursor_encode(1763742000123LL, UUID_LO, buf, sizeof(buf)), 0);
	CHECK(strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	    strlen(buf));
	CHECK_EQ(gw_cursor_decode(&f.r, buf, &ms, id, sizeof(id)), 0);
	CHECK_EQ(ms, 1763742000123LL);
	CHECK_STR(id, UUID_LO);
	CHECK_EQ(f.r.status, 0);

	CHECK_EQ(gw_cursor_encode(0, UUID_LO, buf, sizeof(buf)), 0);
	CHECK_EQ(gw_cursor_decode(&f.r, buf, &ms, id, sizeof(id)), 0);
	CHECK_EQ(ms, 0);
	CHECK_EQ(gw_cursor_encode(-1, UUID_LO, buf, sizeof(buf)), 0);
	CHECK_EQ(gw_cursor_decode(&f.r, buf, &ms, id, sizeof(id)), -EINVAL);
	fake_reset(&f);
	CHECK_EQ(gw_cursor_encode(1, UUID_UP, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(gw_cursor_encode(1, UUID_LO, buf, 8), -ENOSPC);

	CHECK_EQ(gw_cursor_decode(&f.r, NULL, &ms, id, sizeof(id)), -ENOENT);
	CHECK_EQ(gw_cursor_decode(&f.r, "", &ms, id, sizeof(id)), -ENOENT);
	CHECK_EQ(f.r.status, 0);

	static const char *const bad[] = {
		"!!!!", "YWJj",			/* "abc" */
		"MTIzLDBiNWUwYzVlLTFhMmItNGMzZC04ZTlmLTAwMDAwMDAwYWJjZA==",	/* padded */
		"LTUsMGI1ZTBjNWUtMWEyYi00YzNkLThlOWYtMDAwMDAwMDBhYmNk",		/* -5,... */
		"MDEyLDBiNWUwYzVlLTFhMmItNGMzZC04ZTlmLTAwMDAwMDAwYWJjZA",	/* 012,... */
		"MTIsMEI1RTBDNUUtMUEyQi00QzNELThFOUYtMDAwMDAwMDBBQkNE",		/* upper id */
		"MTIsMGI1ZTBjNWUtMWEyYi00YzNkLThlOWYtMDAwMDAwMDBhYmM",		/* short id */
		"MTIzLDBiNWUwYzVlLTFhMmItNGMzZC04ZTlmLTAwMDAwMDAwYWJjZB",	/* bits */
		"A",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fake_reset(&f);
		CHECK_EQ(gw_cursor_decode(&f.r, bad[i], &ms, id, sizeof(id)), -EINVAL);
		CHECK_EQ(f.r.status, 400);
		REQUIRE(f.p.captured != NULL);
		CHECK_STR(f.p.captured, "{\"error\":{\"code\":\"validation_failed\",\"message\":"
		    "\"the request has invalid fields\",\"fields\":{\"cursor\":"
		    "\"is not a valid cursor\"}}}");
	}
	/* the canonical spelling of "123,<uuid>" decodes */
	fake_reset(&f);
	CHECK_EQ(gw_cursor_decode(&f.r, "MTIzLDBiNWUwYzVlLTFhMmItNGMzZC04ZTlmLTAwMDAwMDAwYWJjZA",
	    &ms, id, sizeof(id)), 0);
	CHECK_EQ(ms, 123);
	fake_reset(&f);
}

static void
test_url_decode(void)
{
	char buf[16];

	CHECK_EQ(gw_url_decode("a%20b+c", 7, buf, sizeof(buf)), 5);
	CHECK_STR(buf, "a b c");
	CHECK_EQ(gw_url_decode("%e2%82%AC", 9, buf, sizeof(buf)), 3);
	CHECK_STR(buf, "\xe2\x82\xac");
	CHECK_EQ(gw_url_decode("%zz", 3, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(gw_url_decode("%2", 2, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(gw_url_decode("a%", 2, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(gw_url_decode("%00", 3, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(gw_url_decode("0123456789abcdef", 16, buf, sizeof(buf)), -ENOSPC);
	CHECK_EQ(gw_url_decode("", 0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "");
}

static void
test_query(void)
{
	static const char *const allowed[] = { "limit", "q", "x", "rep", "empty", "flag",
	    "ctl", "from", "utf", "long", NULL };
	static const char *const few[] = { "limit", NULL };
	char buf[16];
	struct fake f;
	int64_t t;
	long v;

	fake_init(&f, "limit=20&q=a%20b+c&x=%zz&rep=1&rep=2&&empty=&flag&ctl=%01&"
	    "from=2026-11-21T16:20:00.5Z&utf=%ff&long=0123456789abcdef");
	CHECK_EQ(gw_query_allow(&f.r, allowed), -EINVAL);	/* rep=1&rep=2 */
	CHECK_EQ(f.r.status, 400);
	CHECK_CONTAINS(f.p.captured, "\"fields\":{\"rep\":\"must not be repeated\"}");
	fake_reset(&f);
	CHECK_EQ(gw_query_str(&f.r, "q", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "a b c");
	CHECK_EQ(gw_query_str(&f.r, "empty", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "");
	CHECK_EQ(gw_query_str(&f.r, "flag", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "");
	CHECK_EQ(gw_query_str(&f.r, "absent", buf, sizeof(buf)), -ENOENT);
	CHECK_EQ(f.r.status, 0);
	CHECK_EQ(gw_query_long(&f.r, "limit", 1, 200, 50, &v), 0);
	CHECK_EQ(v, 20);
	CHECK_EQ(gw_query_long(&f.r, "absent", 1, 200, 50, &v), 0);
	CHECK_EQ(v, 50);
	CHECK_EQ(gw_query_time(&f.r, "from", 7, &t), 0);
	CHECK_EQ(t, 1795278000500LL);
	CHECK_EQ(gw_query_time(&f.r, "absent", 7, &t), 0);
	CHECK_EQ(t, 7);
	CHECK_EQ(f.r.status, 0);

	CHECK_EQ(gw_query_long(&f.r, "limit", 1, 10, 5, &v), -EINVAL);
	CHECK_EQ(v, 5);
	CHECK_EQ(f.r.status, 400);
	CHECK_CONTAINS(f.p.captured, "\"limit\":\"must be an integer between 1 and 10\"");
	fake_reset(&f);
	CHECK_EQ(gw_query_long(&f.r, "q", 1, 10, 5, &v), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"q\":\"must be an integer");
	fake_reset(&f);
	CHECK_EQ(gw_query_str(&f.r, "x", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(f.r.status, 400);
	fake_reset(&f);
	CHECK_EQ(gw_query_str(&f.r, "rep", buf, sizeof(buf)), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"rep\":\"must not be repeated\"");
	fake_reset(&f);
	CHECK_EQ(gw_query_str(&f.r, "ctl", buf, sizeof(buf)), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"ctl\":");
	fake_reset(&f);
	CHECK_EQ(gw_query_str(&f.r, "utf", buf, sizeof(buf)), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"utf\":");
	fake_reset(&f);
	CHECK_EQ(gw_query_str(&f.r, "long", buf, sizeof(buf)), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"long\":\"is too long\"");
	fake_reset(&f);
	CHECK_EQ(gw_query_time(&f.r, "q", 0, &t), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"q\":\"must be an RFC 3339 time or Unix milliseconds\"");
	fake_reset(&f);

	CHECK_EQ(gw_query_allow(&f.r, few), -EINVAL);
	CHECK_EQ(f.r.status, 400);
	CHECK_CONTAINS(f.p.captured, "\"code\":\"validation_failed\"");
	CHECK_CONTAINS(f.p.captured, "\"q\":\"unknown field\"");
	CHECK_CONTAINS(f.p.captured, "\"flag\":\"unknown field\"");
	CHECK(strstr(f.p.captured, "\"limit\"") == NULL);
	fake_reset(&f);

	f.r.query = "a%zz=1";
	CHECK_EQ(gw_query_allow(&f.r, few), -EINVAL);
	CHECK_CONTAINS(f.p.captured, "\"code\":\"bad_request\"");
	fake_reset(&f);
	f.r.query = NULL;
	CHECK_EQ(gw_query_allow(&f.r, few), 0);
	CHECK_EQ(gw_query_str(&f.r, "limit", buf, sizeof(buf)), -ENOENT);
	CHECK_EQ(f.r.status, 0);
}

static void
test_replies(void)
{
	struct json_object *fields, *o;
	struct fake f;

	fake_init(&f, NULL);
	gw_reply_not_found(&f.r, "monitor");
	CHECK_EQ(f.r.status, 404);
	CHECK_STR(f.p.captured,
	    "{\"error\":{\"code\":\"not_found\",\"message\":\"monitor not found\"}}");
	/* a second reply is dropped */
	gw_reply_error(&f.r, 500, "internal", "internal error");
	CHECK_EQ(f.r.status, 404);
	CHECK_CONTAINS(f.p.captured, "not_found");
	fake_reset(&f);

	gw_reply_error(&f.r, 409, "conflict", "name %s is taken", "a/b");
	CHECK_EQ(f.r.status, 409);
	CHECK_STR(f.p.captured,
	    "{\"error\":{\"code\":\"conflict\",\"message\":\"name a/b is taken\"}}");
	fake_reset(&f);

	fields = json_object_new_object();
	json_object_object_add(fields, "name", json_object_new_string("is required"));
	gw_reply_fields(&f.r, fields);
	CHECK_EQ(f.r.status, 400);
	CHECK_STR(f.p.captured, "{\"error\":{\"code\":\"validation_failed\",\"message\":"
	    "\"the request has invalid fields\",\"fields\":{\"name\":\"is required\"}}}");
	fake_reset(&f);

	gw_reply_page(&f.r, json_object_new_array(), NULL);
	CHECK_STR(f.p.captured, "{\"items\":[],\"next_cursor\":null}");
	fake_reset(&f);
	o = json_object_new_array();
	json_object_array_add(o, json_object_new_int(1));
	gw_reply_page(&f.r, o, "abc");
	CHECK_EQ(f.r.status, 200);
	CHECK_STR(f.p.captured, "{\"items\":[1],\"next_cursor\":\"abc\"}");
	fake_reset(&f);

	gw_reply_json(&f.r, 201, NULL);
	CHECK_EQ(f.r.status, 201);
	CHECK_STR(f.p.captured, "{}");
	fake_reset(&f);
	gw_reply_no_content(&f.r);
	CHECK_EQ(f.r.status, 204);
	CHECK_STR(f.p.captured, "");
	fake_reset(&f);

	gw_add_header(&f.r, "Location", "/api/v1/monitors/" UUID_LO);
	gw_add_header(&f.r, "X-Bad", "a\r\nSet-Cookie: x=1");
	gw_add_header(&f.r, "X-Bad\n", "a");
	CHECK_EQ(f.p.nhdr, 1);
	CHECK_STR(f.p.hname[0], "Location");
	CHECK_STR(f.p.hval[0], "/api/v1/monitors/" UUID_LO);
	fake_reset(&f);
}

int
main(void)
{
	RUN(test_route_match);
	RUN(test_cursor);
	RUN(test_url_decode);
	RUN(test_query);
	RUN(test_replies);
	return test_finish();
}
