#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#include "upmon/strbuf.h"

/* Appends of every kind land in order, past several doublings, NUL-terminated. */
static void
test_strbuf_appends(void)
{
	struct upmon_sb b = UPMON_SB_INIT;
	char *s;
	int i;

	upmon_sb_str(&b, "a");
	upmon_sb_add(&b, "bcX", 2);
	upmon_sb_printf(&b, "-%d-%s", 42, "x");
	CHECK_STR(b.s, "abc-42-x");
	CHECK_EQ(b.len, (size_t)8);
	for (i = 0; i < 1000; i++)
		upmon_sb_str(&b, "0123456789");
	CHECK_EQ(b.len, (size_t)10008);
	CHECK_EQ(strlen(b.s), (size_t)10008);
	CHECK_EQ(b.err, 0);
	s = upmon_sb_take(&b);
	REQUIRE(s != NULL);
	CHECK(strncmp(s, "abc-42-x0123", 12) == 0);
	CHECK(b.s == NULL && b.len == 0 && b.cap == 0);
	free(s);
}

/* Nothing appended: take gives "" (a string the caller can free), not NULL. */
static void
test_strbuf_empty(void)
{
	struct upmon_sb b = UPMON_SB_INIT;
	char *s = upmon_sb_take(&b);

	REQUIRE(s != NULL);
	CHECK_STR(s, "");
	free(s);
	upmon_sb_release(&b);
}

/* A latched error makes appends no-ops and take NULL; release clears it. */
static void
test_strbuf_error_latches(void)
{
	struct upmon_sb b = UPMON_SB_INIT;

	upmon_sb_str(&b, "abc");
	b.err = -ENOMEM;
	upmon_sb_str(&b, "def");
	upmon_sb_printf(&b, "%d", 1);
	CHECK_EQ(b.len, (size_t)3);
	CHECK_EQ(upmon_sb_grow(&b, 1), -ENOMEM);
	CHECK(upmon_sb_take(&b) == NULL);
	CHECK(b.s == NULL && b.err == 0);
	upmon_sb_str(&b, "ok");
	CHECK_STR(b.s, "ok");
	upmon_sb_release(&b);
	CHECK(b.s == NULL);
}

int
main(void)
{
	RUN(test_strbuf_appends);
	RUN(test_strbuf_empty);
	RUN(test_strbuf_error_latches);
	return test_finish();
}
