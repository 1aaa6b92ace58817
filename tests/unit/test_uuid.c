#include "test.h"

#include "upmon/uuid.h"

/* Either case in, lowercase out; every other shape refused. */
static void
test_uuid_parse(void)
{
	char out[UPMON_UUID_LEN + 1];
	const char *up = "0B6C1C7E-2222-4333-8444-555566667777";

	CHECK(upmon_uuid_parse(up, strlen(up), out));
	CHECK_STR(out, "0b6c1c7e-2222-4333-8444-555566667777");
	CHECK(upmon_uuid_parse(up, UPMON_UUID_LEN, out));	/* a prefix of a longer string */
	CHECK(!upmon_uuid_parse(up, UPMON_UUID_LEN - 1, out));
	CHECK(upmon_uuid_valid("0b6c1c7e-2222-4333-8444-555566667777"));
	CHECK(!upmon_uuid_valid("0b6c1c7e-2222-4333-8444-5555666677770"));
	CHECK(!upmon_uuid_valid("0b6c1c7e22224333844455556666777700000"));
	CHECK(!upmon_uuid_valid("0b6c1c7g-2222-4333-8444-555566667777"));
	CHECK(!upmon_uuid_valid("0b6c1c7e-2222-4333-8444-55556666777"));
	CHECK(!upmon_uuid_valid(""));
	CHECK(!upmon_uuid_valid(NULL));
}

int
main(void)
{
	RUN(test_uuid_parse);
	return test_finish();
}
