/* cache module logic that needs no server: redis:// URL parsing, configuration, keys. */
#include "test.h"
#include "upmon/cache.h"

static void
test_url_ok(void)
{
	struct upmon_cache_url u;

	REQUIRE(upmon_cache_url_parse("redis://127.0.0.1", &u) == 0);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_EQ(u.port, 6379);
	CHECK_EQ(u.db, 0);
	CHECK_STR(u.password, "");
	REQUIRE(upmon_cache_url_parse("redis://localhost:6380/3", &u) == 0);
	CHECK_STR(u.host, "localhost");
	CHECK_EQ(u.port, 6380);
	CHECK_EQ(u.db, 3);
	REQUIRE(upmon_cache_url_parse("redis://:s3cr%40t@cache.internal:7000/", &u) == 0);
	CHECK_STR(u.host, "cache.internal");
	CHECK_STR(u.user, "");
	CHECK_STR(u.password, "s3cr@t");
	CHECK_EQ(u.port, 7000);
	CHECK_EQ(u.db, 0);
	REQUIRE(upmon_cache_url_parse("redis://upmon:pw:x@h/15", &u) == 0);
	CHECK_STR(u.user, "upmon");
	CHECK_STR(u.password, "pw:x");
	CHECK_EQ(u.db, 15);
	REQUIRE(upmon_cache_url_parse("redis://onlypass@h", &u) == 0);
	CHECK_STR(u.password, "onlypass");
	REQUIRE(upmon_cache_url_parse("redis://[::1]:6390/1", &u) == 0);
	CHECK_STR(u.host, "::1");
	CHECK_EQ(u.port, 6390);
	CHECK_EQ(u.db, 1);
}

static void
test_url_bad(void)
{
	static const char *bad[] = {
		NULL, "", "http://h", "rediss://h", "redis://", "redis://:6379",
		"redis://h:0", "redis://h:65536", "redis://h:12x", "redis://h/abc",
		"redis://h/1/2", "redis://h?db=1", "redis://h#x", "redis://[::1",
		"redis://[::1]x", "redis://h h", "redis://:%zz@h", "redis://:%00@h",
		"redis://h:-1", "redis://h/99999999999",
	};
	struct upmon_cache_url u;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (upmon_cache_url_parse(bad[i], &u) != UPMON_CACHE_E_INVALID)
			test_fail(__FILE__, __LINE__, "accepted %s", bad[i] ? bad[i] : "(null)");
		test_checks++;
	}
}

static void
test_new_and_keys(void)
{
	struct upmon_cache_config cfg;
	struct upmon_cache *c = NULL;
	char key[32];

	upmon_cache_config_init(&cfg);
	CHECK_EQ(cfg.op_timeout_ms, 100);
	CHECK_EQ(upmon_cache_new(&cfg, &c), UPMON_CACHE_E_INVALID);
	cfg.url = "redis://127.0.0.1:1/0";
	cfg.op_timeout_ms = 0;
	CHECK_EQ(upmon_cache_new(&cfg, &c), UPMON_CACHE_E_INVALID);
	cfg.op_timeout_ms = 100;
	REQUIRE(upmon_cache_new(&cfg, &c) == 0);
	CHECK(upmon_cache_available(c));
	CHECK_STR(upmon_cache_errstr(c), "");
	CHECK_EQ(upmon_cache_set(c, NULL, "v", 1, 0), UPMON_CACHE_E_INVALID);
	CHECK_EQ(upmon_cache_status_put(c, "", 1, "{}", NULL), UPMON_CACHE_E_INVALID);
	upmon_cache_free(c);
	upmon_cache_free(NULL);
	CHECK_EQ(upmon_cache_status_key(key, sizeof(key), "abc"), 0);
	CHECK_STR(key, "upmon:status:abc");
	CHECK_EQ(upmon_cache_status_key(key, sizeof(key), "0123456789abcdef0123"), -1);
	CHECK_EQ(upmon_cache_status_key(key, sizeof(key), ""), -1);
}

int
main(void)
{
	RUN(test_url_ok);
	RUN(test_url_bad);
	RUN(test_new_and_keys);
	return test_finish();
}
