/* The header table and the retry / dead-letter header builders (no broker involved). */
#include "test.h"

#include <errno.h>
#include "upmon/backoff.h"

#include <stdint.h>

#include "upmon/amqp.h"

/* 2024-02-29T23:59:58.123Z */
#define T0 1709251198123LL

static void
test_set_get(void)
{
	struct upmon_amqp_headers h;
	int64_t v = 0;

	upmon_amqp_headers_init(&h);
	CHECK_EQ(upmon_amqp_headers_set_str(&h, "a", "one", 0), 0);
	CHECK_EQ(upmon_amqp_headers_set_int(&h, "n", -42), 0);
	CHECK_EQ(upmon_amqp_headers_set_str(&h, "s", "17", 0), 0);
	CHECK_STR(upmon_amqp_headers_get_str(&h, "a"), "one");
	CHECK(upmon_amqp_headers_get_str(&h, "n") == NULL);
	CHECK(upmon_amqp_headers_get_str(&h, "missing") == NULL);
	CHECK_EQ(upmon_amqp_headers_get_int(&h, "n", &v), 0);
	CHECK_EQ(v, -42);
	CHECK_EQ(upmon_amqp_headers_get_int(&h, "s", &v), 0);     /* decimal string accepted */
	CHECK_EQ(v, 17);
	CHECK_EQ(upmon_amqp_headers_get_int(&h, "a", &v), UPMON_AMQP_EINVAL);
	CHECK_EQ(upmon_amqp_headers_get_int(&h, "missing", &v), UPMON_AMQP_EINVAL);
	/* Replacing keeps one entry and may change the type. */
	CHECK_EQ(upmon_amqp_headers_set_int(&h, "a", 5), 0);
	CHECK_EQ(h.count, 3);
	CHECK_EQ(upmon_amqp_headers_get_int(&h, "a", &v), 0);
	CHECK_EQ(v, 5);
	CHECK_STR(upmon_amqp_headers_key(&h, 1), "n");
	CHECK(upmon_amqp_headers_key(&h, 3) == NULL);
	CHECK_EQ(upmon_amqp_headers_set_str(&h, "", "x", 0), UPMON_AMQP_EINVAL);
	CHECK_EQ(upmon_amqp_headers_set_str(&h, NULL, "x", 0), UPMON_AMQP_EINVAL);
}

static void
test_limits(void)
{
	struct upmon_amqp_headers h;
	char big[UPMON_AMQP_HEADERS_ARENA], key[16];
	int i, rc = 0;

	upmon_amqp_headers_init(&h);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(upmon_amqp_headers_set_str(&h, "big", big, 0), UPMON_AMQP_ETOOBIG);
	upmon_amqp_headers_init(&h);
	for (i = 0; i < UPMON_AMQP_HEADERS_MAX + 1 && rc == 0; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		rc = upmon_amqp_headers_set_int(&h, key, i);
	}
	CHECK_EQ(rc, UPMON_AMQP_ETOOBIG);
	CHECK_EQ(h.count, UPMON_AMQP_HEADERS_MAX);

	/* Truncation never splits a UTF-8 sequence: "é" is 2 bytes. */
	upmon_amqp_headers_init(&h);
	CHECK_EQ(upmon_amqp_headers_set_str(&h, "e", "ab\xc3\xa9", 3), 0);
	CHECK_STR(upmon_amqp_headers_get_str(&h, "e"), "ab");
	CHECK_EQ(upmon_amqp_headers_set_str(&h, "f", "ab\xc3\xa9", 4), 0);
	CHECK_STR(upmon_amqp_headers_get_str(&h, "f"), "ab\xc3\xa9");
}

static void
test_rfc3339(void)
{
	char buf[32];

	CHECK_EQ(upmon_rfc3339_ms(T0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "2024-02-29T23:59:58.123Z");
	CHECK_EQ(upmon_rfc3339_ms(0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
	CHECK_EQ(upmon_rfc3339_ms(T0, buf, 10), -EINVAL);
	CHECK_EQ(upmon_rfc3339_ms(-1, buf, sizeof(buf)), -EINVAL);
	CHECK(upmon_amqp_is_rfc3339("2024-02-29T23:59:58.123Z"));
	CHECK(upmon_amqp_is_rfc3339("2024-02-29T23:59:58Z"));
	CHECK(upmon_amqp_is_rfc3339("2024-02-29T23:59:58+02:00"));
	CHECK(!upmon_amqp_is_rfc3339("2024-02-29 23:59:58Z"));
	CHECK(!upmon_amqp_is_rfc3339("yesterday"));
	CHECK(!upmon_amqp_is_rfc3339("2024-02-29T23:59:58.Z"));
	CHECK(!upmon_amqp_is_rfc3339("2024-02-29T23:59:58Zjunk"));
	CHECK(!upmon_amqp_is_rfc3339(""));
	CHECK(!upmon_amqp_is_rfc3339(NULL));
}

static void
test_retry_headers(void)
{
	struct upmon_amqp_headers in, out;
	int64_t v = -1;

	upmon_amqp_headers_init(&in);
	upmon_amqp_headers_set_str(&in, "x-trace", "abc", 0);
	upmon_amqp_headers_set_int(&in, UPMON_AMQP_H_ATTEMPT, 1);
	upmon_amqp_headers_set_str(&in, "x-death", "broker stuff", 0);
	upmon_amqp_headers_set_str(&in, "x-first-death-queue", "q", 0);
	upmon_amqp_headers_set_int(&in, "x-delivery-count", 3);
	upmon_amqp_headers_set_str(&in, UPMON_AMQP_H_FIRST_FAILURE, "2024-01-01T00:00:00.000Z", 0);

	CHECK_EQ(upmon_amqp_retry_headers(&in, 2, "timeout", T0, &out), 0);
	CHECK_EQ(upmon_amqp_headers_get_int(&out, UPMON_AMQP_H_ATTEMPT, &v), 0);
	CHECK_EQ(v, 2);
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_ERROR), "timeout");
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_FIRST_FAILURE),
	    "2024-01-01T00:00:00.000Z");
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_LAST_FAILURE),
	    "2024-02-29T23:59:58.123Z");
	CHECK_STR(upmon_amqp_headers_get_str(&out, "x-trace"), "abc");
	CHECK(upmon_amqp_headers_get_str(&out, "x-death") == NULL);
	CHECK(upmon_amqp_headers_get_str(&out, "x-first-death-queue") == NULL);
	CHECK_EQ(upmon_amqp_headers_get_int(&out, "x-delivery-count", &v), UPMON_AMQP_EINVAL);
	CHECK(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_SERVICE) == NULL);

	/* Without an incoming first-failure (or with garbage) it is now. */
	upmon_amqp_headers_set_str(&in, UPMON_AMQP_H_FIRST_FAILURE, "garbage", 0);
	CHECK_EQ(upmon_amqp_retry_headers(&in, 1, NULL, T0, &out), 0);
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_FIRST_FAILURE),
	    "2024-02-29T23:59:58.123Z");
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_ERROR), "");
	CHECK_EQ(upmon_amqp_retry_headers(NULL, 1, "e", T0, &out), 0);
	CHECK_EQ(out.count, 4);
}

static void
test_dead_headers(void)
{
	struct upmon_amqp_headers in, out;
	char err[3000];
	const char *e;
	int64_t v = -1;

	upmon_amqp_headers_init(&in);
	upmon_amqp_headers_set_int(&in, UPMON_AMQP_H_ATTEMPT, 4);
	upmon_amqp_headers_set_str(&in, UPMON_AMQP_H_SERVICE, "old", 0);
	memset(err, 'e', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	CHECK_EQ(upmon_amqp_dead_headers(&in, 4, err, "upmon-probe", "node1", T0, &out), 0);
	e = upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_ERROR);
	REQUIRE(e != NULL);
	CHECK_EQ(strlen(e), UPMON_AMQP_ERROR_MAX - 1);           /* truncated to the cap */
	CHECK_EQ(upmon_amqp_headers_get_int(&out, UPMON_AMQP_H_ATTEMPT, &v), 0);
	CHECK_EQ(v, 4);
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_SERVICE), "upmon-probe");
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_HOST), "node1");
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_FIRST_FAILURE),
	    "2024-02-29T23:59:58.123Z");
	CHECK_STR(upmon_amqp_headers_get_str(&out, UPMON_AMQP_H_LAST_FAILURE),
	    "2024-02-29T23:59:58.123Z");
}

int
main(void)
{
	RUN(test_set_get);
	RUN(test_limits);
	RUN(test_rfc3339);
	RUN(test_retry_headers);
	RUN(test_dead_headers);
	return test_finish();
}
