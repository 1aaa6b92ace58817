#include "test.h"

#include <json-c/json.h>

#include "upmon/backoff.h"
#include "upmon/log.h"

static int evaluated;

static int
side_effect(void)
{
	evaluated++;
	return 1;
}

static void
test_logfmt_line(void)
{
	char line[512];

	log_init("probe", UPMON_LOG_INFO, UPMON_LOG_LOGFMT);
	log_ctx_set("m-42", "m-42:1700000000000:1");
	log_format_line(line, sizeof(line), UPMON_LOG_WARN, "queue=monitor_tasks attempt=3",
	    "check failed: \"boom\"\nnext");
	CHECK_CONTAINS(line, " level=warn ");
	CHECK_CONTAINS(line, " service=probe ");
	CHECK_CONTAINS(line, " host=");
	CHECK_CONTAINS(line, " monitor=m-42 ");
	CHECK_CONTAINS(line, " task=m-42:1700000000000:1 ");
	CHECK_CONTAINS(line, " msg=\"check failed: \\\"boom\\\"\\nnext\"");
	CHECK_CONTAINS(line, " queue=monitor_tasks attempt=3");
	CHECK(strchr(line, '\n') == NULL);
	CHECK(strncmp(line, "ts=", 3) == 0);
	/* ts=YYYY-MM-DDTHH:MM:SS.mmmZ, then the next field */
	CHECK(line[3 + 4] == '-' && line[3 + 10] == 'T' && line[3 + 19] == '.');
	CHECK(strncmp(line + 3 + 23, "Z ", 2) == 0);
	log_ctx_clear();
	log_format_line(line, sizeof(line), UPMON_LOG_INFO, NULL, "plain");
	CHECK(strstr(line, "monitor=") == NULL);
	CHECK(strstr(line, "task=") == NULL);
	CHECK_CONTAINS(line, "msg=plain");
}

static void
test_json_line(void)
{
	char line[512];
	struct json_object *obj, *v;

	log_init("gateway", UPMON_LOG_DEBUG, UPMON_LOG_JSON);
	log_ctx_set("m-1", NULL);
	log_format_line(line, sizeof(line), UPMON_LOG_ERROR, "error=\"a b\" code=7",
	    "tab\there \x01 end");
	obj = json_tokener_parse(line);
	REQUIRE(obj != NULL);
	CHECK(json_object_object_get_ex(obj, "level", &v));
	CHECK_STR(json_object_get_string(v), "error");
	CHECK(json_object_object_get_ex(obj, "service", &v));
	CHECK_STR(json_object_get_string(v), "gateway");
	CHECK(json_object_object_get_ex(obj, "monitor", &v));
	CHECK_STR(json_object_get_string(v), "m-1");
	CHECK(!json_object_object_get_ex(obj, "task", &v));
	CHECK(json_object_object_get_ex(obj, "msg", &v));
	CHECK_STR(json_object_get_string(v), "tab\there \x01 end");
	CHECK(json_object_object_get_ex(obj, "error", &v));
	CHECK_STR(json_object_get_string(v), "a b");
	CHECK(json_object_object_get_ex(obj, "code", &v));
	CHECK_STR(json_object_get_string(v), "7");
	json_object_put(obj);
	log_ctx_clear();
}

static void
test_truncation(void)
{
	char msg[3000], line[256];
	size_t n;

	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	log_init("probe", UPMON_LOG_INFO, UPMON_LOG_LOGFMT);
	n = log_format_line(line, sizeof(line), UPMON_LOG_INFO, NULL, msg);
	CHECK_EQ(n, sizeof(line) - 1);
	CHECK_EQ(strlen(line), sizeof(line) - 1);
	CHECK(strcmp(line + n - 3, "...") == 0);
}

static void
test_levels(void)
{
	int level = -1, format = -1;

	CHECK_EQ(log_level_parse("debug", &level), 0);
	CHECK_EQ(level, UPMON_LOG_DEBUG);
	CHECK_EQ(log_level_parse("warn", &level), 0);
	CHECK_EQ(level, UPMON_LOG_WARN);
	CHECK_EQ(log_level_parse("loud", &level), -1);
	CHECK_EQ(log_format_parse("json", &format), 0);
	CHECK_EQ(format, UPMON_LOG_JSON);
	CHECK_EQ(log_format_parse("xml", &format), -1);

	/* Below the active level the arguments are not evaluated. */
	log_init("probe", UPMON_LOG_WARN, UPMON_LOG_LOGFMT);
	evaluated = 0;
	log_debug("not shown %d", side_effect());
	log_info("not shown %d", side_effect());
	CHECK_EQ(evaluated, 0);
	log_set_level(UPMON_LOG_ERROR);
	log_warnx("not shown %d", side_effect());
	CHECK_EQ(evaluated, 0);
	log_set_level(99);
	CHECK_EQ(upmon_log_level, UPMON_LOG_DEBUG);
}

static void
test_ratelimit(void)
{
	struct log_ratelimit rl = { 0 };
	unsigned skipped = 99;
	int i, allowed = 0;

	CHECK_EQ(log_ratelimit(&rl, 200, &skipped), 1);	/* the first line goes out */
	CHECK_EQ(skipped, 0);
	for (i = 0; i < 50; i++)
		allowed += log_ratelimit(&rl, 200, &skipped);
	CHECK_EQ(allowed, 0);					/* within the interval: none */
	upmon_sleep_ms(250);
	CHECK_EQ(log_ratelimit(&rl, 200, &skipped), 1);	/* the next one says how many */
	CHECK_EQ(skipped, 50);
	CHECK_EQ(log_ratelimit(&rl, 200, &skipped), 0);
}

int
main(void)
{
	RUN(test_logfmt_line);
	RUN(test_json_line);
	RUN(test_truncation);
	RUN(test_levels);
	RUN(test_ratelimit);
	return test_finish();
}
