/*
 * upmon-gateway's option table (settings.h).
 */
#include "settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upmon/log.h"

#define GS(f) offsetof(struct gw_settings, f)
#define GW_SECRET_MIN	32

static int
check_ipv4(const char *value, char *err, size_t errlen)
{
	struct in_addr ia;

	if (inet_pton(AF_INET, value, &ia) == 1)
		return 0;
	snprintf(err, errlen, "not an IPv4 address");
	return -1;
}

static const struct upmon_config_opt gw_opts[] = {
	{ "UPMON_GATEWAY_ADDR", UPMON_CFG_STRING, 0, 15, "127.0.0.1", NULL, NULL,
	  "IPv4 address the API listens on.", GS(addr), 0, check_ipv4 },
	{ "UPMON_GATEWAY_PORT", UPMON_CFG_INT, 1, 65535, "8080", NULL, NULL,
	  "TCP port of the API.", GS(port), 0, NULL },
	{ "UPMON_GATEWAY_THREADS", UPMON_CFG_INT, 2, 1024, "64", NULL, NULL,
	  "HTTP worker threads; civetweb keeps one per keep-alive connection, so this is also "
	  "the number of clients served at once.", GS(threads), 0, NULL },
	{ "UPMON_GATEWAY_DB_POOL", UPMON_CFG_INT, 1, 256, "8", NULL, NULL,
	  "PostgreSQL connections shared by the worker threads (a request waits up to 2 s for "
	  "one, then answers 503).", GS(db_pool), 0, NULL },
	{ "UPMON_GATEWAY_JWT_SECRET", UPMON_CFG_STRING, 0, 4096, NULL, NULL, NULL,
	  "HS256 key of the API tokens, at least 32 bytes; required unless "
	  "UPMON_GATEWAY_DEV_MODE is on.", GS(jwt_secret), UPMON_CFG_SECRET, NULL },
	{ "UPMON_GATEWAY_DEV_MODE", UPMON_CFG_BOOL, 0, 0, "false", NULL, NULL,
	  "Development mode: without a JWT secret, generate one at start (tokens die with the "
	  "process).", GS(dev_mode), 0, NULL },
	{ "UPMON_GATEWAY_JWT_TTL_S", UPMON_CFG_INT, 60, 2592000, "3600", NULL, "s",
	  "Lifetime of the tokens issued at login.", GS(jwt_ttl_s), 0, NULL },
	{ "UPMON_GATEWAY_CORS_ORIGINS", UPMON_CFG_STRING, 0, 4096, NULL, NULL, NULL,
	  "Comma-separated origins (exact match, e.g. https://app.example.com) allowed to call "
	  "the API from a browser; empty = none.", GS(cors_origins), 0, NULL },
	{ "UPMON_GATEWAY_MAX_BODY_BYTES", UPMON_CFG_INT, 1024, 10485760, "65536", NULL, "bytes",
	  "Largest request body accepted (413 above).", GS(max_body_bytes), 0, NULL },
	{ "UPMON_GATEWAY_RATE_IP_PER_MIN", UPMON_CFG_INT, 0, 100000000, "6000", NULL, NULL,
	  "Requests per minute per client IP address (429 above); 0 = no limit.",
	  GS(rate_ip_per_min), 0, NULL },
	{ "UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN", UPMON_CFG_INT, 0, 100000000, "30", NULL, NULL,
	  "Register and login requests per minute per client IP address; 0 = no limit.",
	  GS(rate_auth_ip_per_min), 0, NULL },
	{ "UPMON_GATEWAY_RATE_LOGIN_ACCOUNT", UPMON_CFG_INT, 0, 100000, "10", NULL, NULL,
	  "Failed logins per account per UPMON_GATEWAY_RATE_LOGIN_WINDOW_S before further "
	  "attempts are refused; 0 = no limit.", GS(rate_login_account), 0, NULL },
	{ "UPMON_GATEWAY_RATE_LOGIN_WINDOW_S", UPMON_CFG_INT, 1, 86400, "300", NULL, "s",
	  "Window of the per-account login limit.", GS(rate_login_window_s), 0, NULL },
	{ "UPMON_GATEWAY_LIST_CACHE_TTL_MS", UPMON_CFG_INT, 0, 3600000, "5000", NULL, "ms",
	  "Lifetime of cached monitor lists in Redis; 0 = no list cache.",
	  GS(list_cache_ttl_ms), 0, NULL },
	{ "UPMON_GATEWAY_PUBLIC_URL", UPMON_CFG_STRING, 0, 2048, NULL, NULL, NULL,
	  "Base URL of links to the gateway (dashboard links in notifications); empty = "
	  "http://<addr>:<port>.", GS(public_url), 0, NULL },
};

static int
gw_settings_validate(const void *base, FILE *diag)
{
	const struct gw_settings *s = base;
	size_t len = s->jwt_secret != NULL ? strlen(s->jwt_secret) : 0;

	if (len >= GW_SECRET_MIN || (len == 0 && s->dev_mode))
		return 0;
	if (len == 0)
		fprintf(diag, "config: UPMON_GATEWAY_JWT_SECRET: required (at least %d bytes) "
		    "unless UPMON_GATEWAY_DEV_MODE=true\n", GW_SECRET_MIN);
	else
		fprintf(diag, "config: UPMON_GATEWAY_JWT_SECRET: %zu bytes is below the minimum "
		    "%d\n", len, GW_SECRET_MIN);
	return 1;
}

struct upmon_config_table
gw_settings_table(struct gw_settings *s)
{
	struct upmon_config_table t = { gw_opts, sizeof(gw_opts) / sizeof(gw_opts[0]), s,
	    gw_settings_validate };

	return t;
}

static int
random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];
	size_t i, got = 0;
	ssize_t n;
	int fd;

	if (nbytes > sizeof(buf))
		return -EINVAL;
	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
		return -EIO;
	while (got < nbytes) {
		n = read(fd, buf + got, nbytes - got);
		if (n <= 0) {
			close(fd);
			return -EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hex[buf[i] >> 4];
		out[2 * i + 1] = hex[buf[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

int
gw_settings_finish(struct gw_settings *s)
{
	char *p;
	size_t size;
	int rc;

	if (s->jwt_secret == NULL || s->jwt_secret[0] == '\0') {
		if ((p = malloc(2 * GW_SECRET_MIN + 1)) == NULL)
			return -ENOMEM;
		if ((rc = random_hex(p, GW_SECRET_MIN)) != 0) {
			free(p);
			return rc;
		}
		free(s->jwt_secret);
		s->jwt_secret = p;
		log_warnx("dev mode: generated a random JWT secret; tokens stop working when "
		    "this process exits");
	}
	if (s->public_url == NULL || s->public_url[0] == '\0') {
		size = strlen(s->addr) + 32;
		if ((p = malloc(size)) == NULL)
			return -ENOMEM;
		snprintf(p, size, "http://%s:%ld", s->addr, s->port);
		free(s->public_url);
		s->public_url = p;
	}
	return 0;
}
