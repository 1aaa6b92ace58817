/* The webhook body and signature of upmon-mailer: HMAC-SHA256 with the "<ts>.<body>" framing
 * (RFC 4231 keys), the body of every alert kind parsed back field by field and validated
 * against proto/webhook.schema.json (and bad bodies refused by it), user text with CR/LF and
 * quotes kept inside JSON strings, and URLs that are refused before any traffic. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include "mailer.h"
#include "test.h"

#define AT_MS	INT64_C(1795000000123)	/* 2026-11-18T11:06:40.123Z */

static void
test_sign_rfc4231(void)
{
	static const char rfc_key[] = "Jefe", rfc_data[] = "what do ya want for nothing?";
	static const struct {
		const char *key;
		int64_t ts;
		const char *body;
		const char *want;	/* from Python's hmac module */
	} v[] = {
		{ "Jefe", 1700000000, "what do ya want for nothing?",
		  "sha256=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e" },
		{ "Jefe", 0, "",
		  "sha256=813f643c8863ba9754215e64cdab172f2e96c1a413d772978aba7398cc864e55" },
		{ "Jefe", 4102444800, "{\"v\":1}",
		  "sha256=42b290975e14a51ca46979d65155df75f049b0b2ba13d136af9bed08714fe9d5" },
		{ "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b"
		  "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b",	/* RFC 4231 case 1 */
		  1700000000, "Hi There",
		  "sha256=931b0eed568d243adecea23bdfaea1fa89ca9581f28abf24320ee9d0944d98bb" },
	};
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char buf[80], hex[65], want[80], key131[132], msg[64];
	size_t i;

	/* the primitive against RFC 4231 test case 2 */
	REQUIRE(HMAC(EVP_sha256(), rfc_key, 4, (const unsigned char *)rfc_data,
	    strlen(rfc_data), mac, &maclen) != NULL);
	CHECK_EQ(maclen, 32);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	/* mailer_webhook_sign = that HMAC over "<ts>.<body>" */
	snprintf(msg, sizeof(msg), "1700000000.%s", rfc_data);
	REQUIRE(HMAC(EVP_sha256(), rfc_key, 4, (const unsigned char *)msg, strlen(msg), mac,
	    &maclen) != NULL);
	memcpy(want, "sha256=", 7);
	for (i = 0; i < 32; i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
	CHECK_EQ(mailer_webhook_sign(rfc_key, 1700000000, rfc_data, strlen(rfc_data), buf,
	    sizeof(buf)), 0);
	CHECK_STR(buf, want);
	CHECK_EQ(strlen(buf), 71);

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CHECK_EQ(mailer_webhook_sign(v[i].key, v[i].ts, v[i].body, strlen(v[i].body), buf,
		    sizeof(buf)), 0);
		CHECK_STR(buf, v[i].want);
	}
	/* RFC 4231 case 6's 131-byte key (longer than the block: hashed first) */
	memset(key131, 0xaa, 131);
	key131[131] = '\0';
	CHECK_EQ(mailer_webhook_sign(key131, 1700000000, "Hi There", 8, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "sha256=aefc780ebf5dcfc367be6755f825a155d14e546e47f03855987b1d4c90b4c746");
	/* len counts, not the NUL: "Hi There!!" cut to 8 bytes signs as "Hi There" */
	CHECK_EQ(mailer_webhook_sign(key131, 1700000000, "Hi There!!", 8, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "sha256=aefc780ebf5dcfc367be6755f825a155d14e546e47f03855987b1d4c90b4c746");
	/* another timestamp, another signature (the timestamp is signed) */
	CHECK_EQ(mailer_webhook_sign(key131, 1700000001, "Hi There", 8, buf, sizeof(buf)), 0);
	CHECK(strcmp(buf, "sha256=aefc780ebf5dcfc367be6755f825a155d14e546e47f03855987b1d4c90b4c746")
	    != 0);
	CHECK_EQ(mailer_webhook_sign("k", 1, "x", 1, buf, 71), -ENOSPC);
	CHECK_EQ(mailer_webhook_sign("k", 1, "x", 1, buf, 72), 0);
}

/* Fills ev as an alert of kind k for monitor "mon-1" (strings are heap copies). */
static void
make_event(struct upmon_alert_event *ev, enum upmon_alert_kind k)
{
	upmon_alert_event_init(ev);
	ev->kind = k;
	snprintf(ev->alert_id, sizeof(ev->alert_id), "alert-%d", (int)k);
	snprintf(ev->owner_id, sizeof(ev->owner_id), "owner-1");
	ev->at = AT_MS;
	if (k == UPMON_ALERT_TEST) {
		snprintf(ev->alert_id, sizeof(ev->alert_id), "test:ch-9:abc");
		snprintf(ev->channel_id, sizeof(ev->channel_id), "ch-9");
		return;
	}
	snprintf(ev->monitor_id, sizeof(ev->monitor_id), "mon-1");
	ev->monitor_name = strdup("API \"prod\"\r\nBcc: evil@example.org");
	ev->target = strdup("https://api.example.org/health");
	switch (k) {
	case UPMON_ALERT_DOWN:
		ev->error = strdup("connection refused");
		break;
	case UPMON_ALERT_RECOVERY:
		ev->outage_seconds = 252;
		break;
	case UPMON_ALERT_SYSTEM_ERROR:
		ev->error = strdup("database unavailable");
		snprintf(ev->task_id, sizeof(ev->task_id), "mon-1:1795000000000:1");
		ev->attempts = 5;
		break;
	case UPMON_ALERT_TLS_EXPIRY:
		ev->cert_days_left = 9;
		break;
	default:
		break;
	}
}

static struct json_object *
member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v)) {
		test_fail(__FILE__, __LINE__, "member \"%s\" missing", key);
		return NULL;
	}
	return v;
}

static const char *
str_member(struct json_object *o, const char *key)
{
	struct json_object *v = member(o, key);

	return v != NULL && json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : "(not a string)";
}

/* Builds the body of ev, checks it field by field, and writes it to path. */
static void
check_body(const struct upmon_alert_event *ev, const char *path, bool with_monitor)
{
	const struct mailer_links links = { "https://dash.example.org" };
	char did[MAILER_DELIVERY_ID_MAX + 1];
	struct json_object *o, *m, *ch;
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	mailer_delivery_id(did, sizeof(did), ev->alert_id, "ch-9");
	REQUIRE(mailer_webhook_body(ev, &links, did, &body, &len) == 0);
	CHECK_EQ(len, strlen(body));
	/* one line: CR/LF of user text stays escaped inside strings */
	CHECK(strchr(body, '\n') == NULL && strchr(body, '\r') == NULL);
	REQUIRE((o = json_tokener_parse(body)) != NULL);
	CHECK_EQ(json_object_get_int(member(o, "v")), 1);
	CHECK_STR(str_member(o, "delivery_id"), did);
	CHECK_STR(str_member(o, "alert_id"), ev->alert_id);
	CHECK_STR(str_member(o, "kind"), upmon_alert_kind_name(ev->kind));
	CHECK_EQ(json_object_get_boolean(member(o, "reminder")), ev->reminder);
	CHECK_STR(str_member(o, "at"), "2026-11-18T11:06:40.123Z");
	CHECK(strpbrk(str_member(o, "text"), "\r\n") == NULL);
	if (ev->error != NULL)
		CHECK_STR(str_member(o, "error"), ev->error);
	else
		CHECK(member(o, "error") == NULL);
	m = member(o, "monitor");
	if (with_monitor) {
		REQUIRE(m != NULL);
		CHECK_STR(str_member(m, "id"), "mon-1");
		CHECK_STR(str_member(m, "name"), ev->monitor_name);
		CHECK_STR(str_member(m, "target"), ev->target);
		CHECK_STR(str_member(m, "url"), "https://dash.example.org/monitors/mon-1");
		CHECK_CONTAINS(str_member(o, "text"), "API \"prod\"");
	} else {
		CHECK(m == NULL);
	}
	ch = member(o, "channel");
	REQUIRE(ch != NULL);
	CHECK_STR(str_member(ch, "id"), "ch-9");
	switch (ev->kind) {
	case UPMON_ALERT_RECOVERY:
		CHECK_EQ(json_object_get_int64(member(o, "outage_seconds")), 252);
		break;
	case UPMON_ALERT_DOWN:
		if (ev->reminder)
			CHECK_EQ(json_object_get_int64(member(o, "outage_seconds")),
			    ev->outage_seconds);
		else
			CHECK(!json_object_object_get_ex(o, "outage_seconds", NULL));
		break;
	case UPMON_ALERT_TLS_EXPIRY:
		CHECK_EQ(json_object_get_int(member(o, "cert_days_left")), 9);
		break;
	case UPMON_ALERT_SYSTEM_ERROR:
		CHECK_EQ(json_object_get_int(member(o, "attempts")), 5);
		CHECK_STR(str_member(o, "task_id"), "mon-1:1795000000000:1");
		break;
	default:
		CHECK(!json_object_object_get_ex(o, "outage_seconds", NULL));
		break;
	}
	json_object_put(o);
	REQUIRE((f = fopen(path, "w")) != NULL);
	fwrite(body, 1, len, f);
	fclose(f);
	free(body);
}

static void
write_doc(const char *path, const char *doc)
{
	FILE *f = fopen(path, "w");

	REQUIRE(f != NULL);
	fputs(doc, f);
	fclose(f);
}

static void
test_body_schema(void)
{
	const char *src = test_env("UPMON_SOURCE_DIR");
	char dir[] = "/tmp/test_mailer_webhook.XXXXXX";
	char path[256], valid[2048] = "", invalid[2048] = "";
	struct upmon_alert_event ev;
	int k, i;
	static const char *const bad[] = {
		/* a down alert without its monitor */
		"{\"v\":1,\"delivery_id\":\"a.c\",\"alert_id\":\"a\",\"kind\":\"down\","
		"\"reminder\":false,\"text\":\"x\",\"monitor\":null,"
		"\"at\":\"2026-11-18T08:26:40.123Z\",\"error\":null,\"channel\":{\"id\":\"c\"}}",
		/* a recovery without outage_seconds */
		"{\"v\":1,\"delivery_id\":\"a.c\",\"alert_id\":\"a\",\"kind\":\"recovery\","
		"\"reminder\":false,\"text\":\"x\",\"monitor\":{\"id\":\"m\",\"name\":\"n\","
		"\"target\":\"t\",\"url\":null},\"at\":\"2026-11-18T08:26:40.123Z\","
		"\"error\":null,\"channel\":{\"id\":\"c\"}}",
		/* a reminder on a recovery */
		"{\"v\":1,\"delivery_id\":\"a.c\",\"alert_id\":\"a\",\"kind\":\"recovery\","
		"\"reminder\":true,\"text\":\"x\",\"monitor\":{\"id\":\"m\",\"name\":\"n\","
		"\"target\":\"t\",\"url\":null},\"at\":\"2026-11-18T08:26:40.123Z\","
		"\"error\":null,\"outage_seconds\":1,\"channel\":{\"id\":\"c\"}}",
		/* a text of two lines */
		"{\"v\":1,\"delivery_id\":\"a.c\",\"alert_id\":\"a\",\"kind\":\"test\","
		"\"reminder\":false,\"text\":\"x\\ny\",\"monitor\":null,"
		"\"at\":\"2026-11-18T08:26:40.123Z\",\"error\":null,\"channel\":{\"id\":\"c\"}}",
		/* Unix ms instead of RFC 3339 */
		"{\"v\":1,\"delivery_id\":\"a.c\",\"alert_id\":\"a\",\"kind\":\"test\","
		"\"reminder\":false,\"text\":\"x\",\"monitor\":null,"
		"\"at\":1795000000123,\"error\":null,\"channel\":{\"id\":\"c\"}}",
	};

	REQUIRE(mkdtemp(dir) != NULL);
	for (k = UPMON_ALERT_DOWN; k <= UPMON_ALERT_TEST; k++) {
		make_event(&ev, (enum upmon_alert_kind)k);
		snprintf(path, sizeof(path), "%s/kind%d.json", dir, k);
		check_body(&ev, path, k != UPMON_ALERT_TEST);
		snprintf(valid + strlen(valid), sizeof(valid) - strlen(valid), " %s", path);
		upmon_alert_event_release(&ev);
	}
	/* a reminder: down with outage_seconds so far */
	make_event(&ev, UPMON_ALERT_DOWN);
	ev.reminder = true;
	ev.outage_seconds = 3900;
	snprintf(path, sizeof(path), "%s/reminder.json", dir);
	check_body(&ev, path, true);
	snprintf(valid + strlen(valid), sizeof(valid) - strlen(valid), " %s", path);
	upmon_alert_event_release(&ev);

	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		snprintf(path, sizeof(path), "%s/bad%d.json", dir, i);
		write_doc(path, bad[i]);
		snprintf(invalid + strlen(invalid), sizeof(invalid) - strlen(invalid), " %s", path);
	}
	CHECK_EQ(test_sh("/usr/bin/python3 %s/tests/support/validate_schema.py "
	    "%s/proto/webhook.schema.json --valid%s --invalid%s", src, src, valid, invalid), 0);
	test_sh("rm -rf %s", dir);
}

/* URLs refused before any connection (scheme, malformed, CR/LF): PERMFAIL, no retry. */
static void
test_bad_urls(void)
{
	static const char *const urls[] = { "ftp://127.0.0.1/x", "file:///etc/passwd",
	    "gopher://127.0.0.1/", "127.0.0.1/ok", "", "http://127.0.0.1:1/a b",
	    "http://127.0.0.1:1/\r\nX-Injected: 1", "http://[::1/", "http://127.0.0.1:99999/" };
	const struct mailer_webhook_config cfg = { 1000, 1000, NULL, "upmon-mailer/test" };
	const struct mailer_links links = { "http://127.0.0.1:8080" };
	struct mailer_channel ch;
	struct mailer_outcome out;
	struct upmon_alert_event ev;
	size_t i;

	make_event(&ev, UPMON_ALERT_DOWN);
	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		memset(&ch, 0, sizeof(ch));
		snprintf(ch.id, sizeof(ch.id), "ch-9");
		ch.kind = MAILER_CHANNEL_WEBHOOK;
		ch.url = strdup(urls[i]);
		CHECK_EQ(mailer_webhook_send(&cfg, &links, &ch, &ev, "alert-0.ch-9", &out), 0);
		CHECK_EQ(out.result, MAILER_PERMFAIL);
		CHECK_CONTAINS(out.error, "bad url");
		mailer_channel_release(&ch);
	}
	memset(&ch, 0, sizeof(ch));
	CHECK_EQ(mailer_webhook_send(&cfg, &links, &ch, &ev, "alert-0.ch-9", &out), 0);
	CHECK_EQ(out.result, MAILER_PERMFAIL);
	upmon_alert_event_release(&ev);
}

int
main(void)
{
	RUN(test_sign_rfc4231);
	RUN(test_body_schema);
	RUN(test_bad_urls);
	return test_finish();
}
