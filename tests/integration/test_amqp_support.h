/*
 * Helpers shared by the amqp integration tests: configuration from the environment that
 * tests/support/with-stack provides, the RabbitMQ management HTTP API (libcurl + json-c),
 * and a few waits. Header-only (static inline) so each test stays one file.
 */
#ifndef TEST_AMQP_SUPPORT_H
#define TEST_AMQP_SUPPORT_H

#include "test.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <time.h>

#include "upmon/amqp.h"
#include "upmon/backoff.h"
#include "upmon/log.h"

#define MGMT_BODY_MAX (8u << 20)



/* Defaults plus the url of this test's vhost; small TTLs so tests run quickly. */
static inline void
t_config(struct upmon_amqp_config *cfg)
{
	upmon_amqp_config_init(cfg);
	cfg->url = test_env("UPMON_AMQP_URL");
	cfg->service = "upmon-test";
	cfg->connect_timeout_ms = 3000;
	cfg->reconnect_base_ms = 100;
	cfg->reconnect_max_ms = 2000;
}

static inline struct upmon_amqp *
t_open(const struct upmon_amqp_config *cfg)
{
	struct upmon_amqp *c = NULL;
	int rc;

	rc = upmon_amqp_new(cfg, &c);
	if (rc != 0) {
		fprintf(stderr, "upmon_amqp_new: %s\n", upmon_amqp_strerror(rc));
		REQUIRE(rc == 0);
	}
	rc = upmon_amqp_connect(c, 20000);
	if (rc != 0)
		fprintf(stderr, "upmon_amqp_connect: %s\n", upmon_amqp_strerror(rc));
	REQUIRE(rc == 0);
	return c;
}

/* The vhost part of UPMON_AMQP_URL, still percent-encoded (as the management API wants). */
static inline const char *
t_vhost_enc(void)
{
	const char *url = test_env("UPMON_AMQP_URL"), *slash;

	slash = strrchr(url + strlen("amqp://"), '/');
	return (slash == NULL || slash[1] == '\0') ? "%2F" : slash + 1;
}

struct t_buf {
	char *p;
	size_t len;
};

static inline size_t
t_curl_write(char *ptr, size_t size, size_t n, void *arg)
{
	struct t_buf *b = arg;
	size_t add = size * n;
	char *np;

	if (b->len + add + 1 > MGMT_BODY_MAX)
		return 0;
	np = realloc(b->p, b->len + add + 1);
	if (np == NULL)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, ptr, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* GET (post == NULL) or POST a JSON body to the management API; returns the parsed JSON
 * (caller puts it) or NULL, printing what went wrong. */
static inline struct json_object *
t_mgmt(const char *path, const char *post)
{
	struct curl_slist *hdr = NULL;
	struct t_buf b = { NULL, 0 };
	struct json_object *j = NULL;
	char url[2048];
	long status = 0;
	CURL *h;
	CURLcode cc;

	snprintf(url, sizeof(url), "%s%s", test_env("UPMON_RABBITMQ_MGMT_URL"), path);
	h = curl_easy_init();
	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, t_curl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	if (post != NULL) {
		hdr = curl_slist_append(hdr, "content-type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK || status != 200)
		fprintf(stderr, "management %s: curl %s, http %ld, body %.300s\n", path,
		    curl_easy_strerror(cc), status, b.p ? b.p : "");
	else
		j = json_tokener_parse(b.p ? b.p : "null");
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(b.p);
	return j;
}

static inline const char *
t_jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	return json_object_get_string(v);
}

static inline struct json_object *
t_jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* A message with the default test fields; body is a C string. */
static inline struct upmon_amqp_message
t_msg(const char *exchange, const char *key, const char *id, const char *body,
    const struct upmon_amqp_headers *h)
{
	struct upmon_amqp_message m;

	memset(&m, 0, sizeof(m));
	m.exchange = exchange;
	m.routing_key = key;
	m.message_id = id;
	m.body = body;
	m.body_len = strlen(body);
	m.headers = h;
	return m;
}

/* Waits for a delivery, printing the error when none comes. */
static inline int
t_next(struct upmon_amqp *c, int timeout_ms, struct upmon_amqp_delivery *d)
{
	int rc = upmon_amqp_next(c, timeout_ms, d);

	if (rc != 0)
		fprintf(stderr, "upmon_amqp_next(%d ms): %s\n", timeout_ms, upmon_amqp_strerror(rc));
	return rc;
}

static inline void
t_log_init(void)
{
	log_init("test", UPMON_LOG_DEBUG, UPMON_LOG_LOGFMT);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

#endif
