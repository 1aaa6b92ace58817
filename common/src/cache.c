/*
 * Redis handle: bounded commands, mark-down with backoff, scripts by SHA. Contract in
 * upmon/cache.h.
 */
#include "upmon/cache.h"
#include "upmon/backoff.h"
#include "upmon/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAX_SCRIPTS 16
#define CACHE_MAX_EVAL_ARGS 384
#define CACHE_STATUS_CHUNK 128	/* statuses per EVAL: 3 arguments each */
#define CACHE_STATUS_PREFIX "upmon:status:"

struct cache_script {
	char *src;
	char sha[41];
};

struct upmon_cache {
	struct upmon_cache_url url;
	int connect_timeout_ms;
	int op_timeout_ms;
	int backoff_min_ms;
	int backoff_max_ms;

	redisContext *ctx;
	uint64_t generation;
	unsigned failures;	/* consecutive failures since the last good connect */
	int64_t down_until_ms;	/* monotonic; no connect attempt before */
	uint32_t rng;
	char err[160];

	struct cache_script scripts[CACHE_MAX_SCRIPTS];
	size_t nscripts;
};

/* Newest wins: write each status only when its stored ts is older. KEYS[i] status keys,
 * ARGV[2i-1] ts and ARGV[2i] json of KEYS[i]. Returns a bit per key: 1 = written. */
static const char status_put_lua[] =
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local cur = redis.call('HGET', KEYS[i], 'ts')\n"
    "  if cur and tonumber(cur) >= tonumber(ARGV[2 * i - 1]) then\n"
    "    out[i] = 0\n"
    "  else\n"
    "    redis.call('HSET', KEYS[i], 'ts', ARGV[2 * i - 1], 'json', ARGV[2 * i])\n"
    "    out[i] = 1\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Fixed window counter. KEYS[1] counter, ARGV[1] window ms. Returns {count, ms left}. */
static const char incr_expire_lua[] =
    "local n = redis.call('INCR', KEYS[1])\n"
    "local t = redis.call('PTTL', KEYS[1])\n"
    "if n == 1 or t < 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
    "  t = tonumber(ARGV[1])\n"
    "end\n"
    "return {n, t}\n";

static void cache_seterr(struct upmon_cache *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cache_seterr(struct upmon_cache *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Copies [s, s+n) percent-decoded into dst (size bytes with the NUL). */
static int
url_decode(char *dst, size_t size, const char *s, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (j + 1 >= size)
			return -1;
		dst[j++] = (char)ch;
	}
	dst[j] = '\0';
	return 0;
}

/* Parses a decimal in [lo, hi] from exactly [s, s+n). */
static int
parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 9)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

int
upmon_cache_url_parse(const char *url, struct upmon_cache_url *out)
{
	const char *p, *at, *end, *hostend, *colon, *slash;
	static const char scheme[] = "redis://";

	memset(out, 0, sizeof(*out));
	out->port = 6379;
	if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return UPMON_CACHE_E_INVALID;
	p = url + sizeof(scheme) - 1;
	end = p + strlen(p);
	if ((slash = strchr(p, '/')) == NULL)
		slash = end;
	if (strpbrk(p, "?#") != NULL)
		return UPMON_CACHE_E_INVALID;
	/* userinfo: the last '@' before the path */
	at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		const char *sep = memchr(p, ':', (size_t)(at - p));

		if (sep == NULL) {
			/* "redis://secret@host": a lone userinfo is the password */
			if (url_decode(out->password, sizeof(out->password), p, (size_t)(at - p)))
				return UPMON_CACHE_E_INVALID;
		} else if (url_decode(out->user, sizeof(out->user), p, (size_t)(sep - p)) ||
		    url_decode(out->password, sizeof(out->password), sep + 1,
		    (size_t)(at - sep - 1))) {
			return UPMON_CACHE_E_INVALID;
		}
		p = at + 1;
	}
	/* host, [v6] or name, then optional :port */
	if (*p == '[') {
		if ((hostend = memchr(p, ']', (size_t)(slash - p))) == NULL)
			return UPMON_CACHE_E_INVALID;
		if (hostend - p - 1 <= 0 || (size_t)(hostend - p - 1) >= sizeof(out->host))
			return UPMON_CACHE_E_INVALID;
		memcpy(out->host, p + 1, (size_t)(hostend - p - 1));
		colon = hostend + 1 < slash ? hostend + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return UPMON_CACHE_E_INVALID;
	} else {
		colon = memchr(p, ':', (size_t)(slash - p));
		hostend = colon != NULL ? colon : slash;
		if (hostend == p || (size_t)(hostend - p) >= sizeof(out->host))
			return UPMON_CACHE_E_INVALID;
		memcpy(out->host, p, (size_t)(hostend - p));
		for (const char *q = out->host; *q != '\0'; q++)
			if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_')
				return UPMON_CACHE_E_INVALID;
	}
	if (colon != NULL &&
	    parse_int(colon + 1, (size_t)(slash - colon - 1), 1, 65535, &out->port) != 0)
		return UPMON_CACHE_E_INVALID;
	if (slash < end && slash + 1 < end &&
	    parse_int(slash + 1, (size_t)(end - slash - 1), 0, 65535, &out->db) != 0)
		return UPMON_CACHE_E_INVALID;
	return 0;
}

void
upmon_cache_config_init(struct upmon_cache_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout_ms = 200;
	cfg->op_timeout_ms = 100;
	cfg->backoff_min_ms = 100;
	cfg->backoff_max_ms = 2000;
}

int
upmon_cache_new(const struct upmon_cache_config *cfg, struct upmon_cache **out)
{
	struct upmon_cache *c;

	*out = NULL;
	if (cfg == NULL || cfg->connect_timeout_ms < 1 || cfg->connect_timeout_ms > 60000 ||
	    cfg->op_timeout_ms < 1 || cfg->op_timeout_ms > 60000 ||
	    cfg->backoff_min_ms < 1 || cfg->backoff_max_ms < cfg->backoff_min_ms ||
	    cfg->backoff_max_ms > 600000)
		return UPMON_CACHE_E_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return UPMON_CACHE_E_NOMEM;
	if (upmon_cache_url_parse(cfg->url, &c->url) != 0) {
		free(c);
		return UPMON_CACHE_E_INVALID;
	}
	c->connect_timeout_ms = cfg->connect_timeout_ms;
	c->op_timeout_ms = cfg->op_timeout_ms;
	c->backoff_min_ms = cfg->backoff_min_ms;
	c->backoff_max_ms = cfg->backoff_max_ms;
	c->rng = upmon_jitter_seed(c);
	*out = c;
	return 0;
}

void
upmon_cache_free(struct upmon_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->ctx != NULL)
		redisFree(c->ctx);
	for (i = 0; i < c->nscripts; i++)
		free(c->scripts[i].src);
	explicit_bzero(c->url.password, sizeof(c->url.password));
	free(c);
}


/* Drops the connection and starts (or lengthens) the backoff. */
static void
cache_mark_down(struct upmon_cache *c)
{
	int64_t d;

	if (c->ctx != NULL) {
		redisFree(c->ctx);
		c->ctx = NULL;
	}
	d = upmon_backoff_ms(c->backoff_min_ms, c->backoff_max_ms, c->failures,
	    upmon_jitter_next(&c->rng));
	c->down_until_ms = upmon_mono_ms() + d;
	if (c->failures == 0)
		log_warnx("redis unavailable, retrying in %lld ms: %s", (long long)d, c->err);
	c->failures++;
}

static struct timeval
ms_to_tv(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Sends a command on the live connection; NULL when the connection failed (c->err set). */
static redisReply *
cache_send(struct upmon_cache *c, int argc, const char **argv, const size_t *argvlen)
{
	redisReply *r = redisCommandArgv(c->ctx, argc, argv, argvlen);

	if (r == NULL && c->ctx->err == REDIS_ERR_IO &&
	    (errno == EAGAIN || errno == EWOULDBLOCK))
		cache_seterr(c, "redis: no answer within %d ms", c->op_timeout_ms);
	else if (r == NULL)
		cache_seterr(c, "redis: %s", c->ctx->errstr[0] != '\0' ? c->ctx->errstr :
		    "connection failed");
	return r;
}

static int
cache_handshake(struct upmon_cache *c)
{
	const char *argv[3];
	char dbs[16];
	redisReply *r;
	int argc;

	if (c->url.password[0] != '\0') {
		argv[0] = "AUTH";
		argc = 1;
		if (c->url.user[0] != '\0')
			argv[argc++] = c->url.user;
		argv[argc++] = c->url.password;
		if ((r = cache_send(c, argc, argv, NULL)) == NULL)
			return UPMON_CACHE_E_UNAVAILABLE;
		if (r->type == REDIS_REPLY_ERROR) {
			cache_seterr(c, "redis AUTH: %s", r->str);
			freeReplyObject(r);
			return UPMON_CACHE_E_UNAVAILABLE;
		}
		freeReplyObject(r);
	}
	if (c->url.db != 0) {
		snprintf(dbs, sizeof(dbs), "%d", c->url.db);
		argv[0] = "SELECT";
		argv[1] = dbs;
		if ((r = cache_send(c, 2, argv, NULL)) == NULL)
			return UPMON_CACHE_E_UNAVAILABLE;
		if (r->type == REDIS_REPLY_ERROR) {
			cache_seterr(c, "redis SELECT: %s", r->str);
			freeReplyObject(r);
			return UPMON_CACHE_E_UNAVAILABLE;
		}
		freeReplyObject(r);
	}
	return 0;
}

static int
cache_connect_once(struct upmon_cache *c)
{
	c->ctx = redisConnectWithTimeout(c->url.host, c->url.port,
	    ms_to_tv(c->connect_timeout_ms));
	if (c->ctx == NULL) {
		cache_seterr(c, "redis: out of memory");
		goto fail;
	}
	if (c->ctx->err != 0) {
		cache_seterr(c, "redis connect %s:%d: %s", c->url.host, c->url.port,
		    c->ctx->errstr);
		goto fail;
	}
	if (redisSetTimeout(c->ctx, ms_to_tv(c->op_timeout_ms)) != REDIS_OK ||
	    redisEnableKeepAlive(c->ctx) != REDIS_OK) {
		cache_seterr(c, "redis: cannot set socket options: %s", c->ctx->errstr);
		goto fail;
	}
	if (cache_handshake(c) != 0)
		goto fail;
	c->generation++;
	if (c->failures > 0)
		log_info("redis connected again after %u failed attempts", c->failures);
	c->failures = 0;
	c->err[0] = '\0';
	return 0;
fail:
	cache_mark_down(c);
	return UPMON_CACHE_E_UNAVAILABLE;
}

static int
cache_ensure(struct upmon_cache *c, int force)
{
	int64_t now;

	if (c->ctx != NULL)
		return 0;
	now = upmon_mono_ms();
	if (!force && now < c->down_until_ms) {
		cache_seterr(c, "redis unavailable (backing off for %lld ms)",
		    (long long)(c->down_until_ms - now));
		return UPMON_CACHE_E_UNAVAILABLE;
	}
	return cache_connect_once(c);
}

int
upmon_cache_connect(struct upmon_cache *c)
{
	return cache_ensure(c, 1);
}

int
upmon_cache_available(const struct upmon_cache *c)
{
	return c->ctx != NULL || upmon_mono_ms() >= c->down_until_ms;
}

const char *
upmon_cache_errstr(const struct upmon_cache *c)
{
	return c->err;
}

uint64_t
upmon_cache_generation(const struct upmon_cache *c)
{
	return c->generation;
}

/* Error replies that mean "Redis cannot serve right now" rather than "bad command". */
static int
transient_reply(const char *s)
{
	return strncmp(s, "LOADING", 7) == 0 || strncmp(s, "BUSY", 4) == 0 ||
	    strncmp(s, "MASTERDOWN", 10) == 0 || strncmp(s, "TRYAGAIN", 8) == 0;
}

/* Runs one command; keeps an error reply in *reply (type ERROR) for the caller to inspect. */
static int
cache_raw(struct upmon_cache *c, int argc, const char **argv, const size_t *argvlen,
    redisReply **reply)
{
	int rc;

	*reply = NULL;
	if (argc < 1 || argv == NULL)
		return UPMON_CACHE_E_INVALID;
	if ((rc = cache_ensure(c, 0)) != 0)
		return rc;
	if ((*reply = cache_send(c, argc, argv, argvlen)) == NULL) {
		cache_mark_down(c);
		return UPMON_CACHE_E_UNAVAILABLE;
	}
	return 0;
}

/* Turns an error reply into a code (freeing it); 0 for any other reply. */
static int
cache_check(struct upmon_cache *c, redisReply **reply)
{
	int rc;

	if ((*reply)->type != REDIS_REPLY_ERROR)
		return 0;
	cache_seterr(c, "redis: %s", (*reply)->str);
	rc = transient_reply((*reply)->str) ? UPMON_CACHE_E_UNAVAILABLE : UPMON_CACHE_E_REPLY;
	freeReplyObject(*reply);
	*reply = NULL;
	return rc;
}

int
upmon_cache_command_argv(struct upmon_cache *c, int argc, const char **argv,
    const size_t *argvlen, redisReply **reply)
{
	int rc;

	if ((rc = cache_raw(c, argc, argv, argvlen, reply)) != 0)
		return rc;
	return cache_check(c, reply);
}

int
upmon_cache_set(struct upmon_cache *c, const char *key, const void *val, size_t len,
    long long ttl_ms)
{
	const char *argv[5] = { "SET", key, val, "PX", NULL };
	size_t argvlen[5];
	char ttl[24];
	redisReply *r = NULL;
	int rc, argc = 3;

	if (key == NULL || val == NULL || ttl_ms < 0)
		return UPMON_CACHE_E_INVALID;
	argvlen[0] = 3;
	argvlen[1] = strlen(key);
	argvlen[2] = len;
	if (ttl_ms > 0) {
		snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
		argv[4] = ttl;
		argvlen[3] = 2;
		argvlen[4] = strlen(ttl);
		argc = 5;
	}
	rc = upmon_cache_command_argv(c, argc, argv, argvlen, &r);
	freeReplyObject(r);
	return rc;
}

int
upmon_cache_get(struct upmon_cache *c, const char *key, char **val, size_t *len)
{
	const char *argv[2] = { "GET", key };
	redisReply *r = NULL;
	int rc;

	*val = NULL;
	if (len != NULL)
		*len = 0;
	if (key == NULL)
		return UPMON_CACHE_E_INVALID;
	if ((rc = upmon_cache_command_argv(c, 2, argv, NULL, &r)) != 0)
		return rc;
	if (r->type == REDIS_REPLY_STRING) {
		if ((*val = malloc(r->len + 1)) == NULL) {
			rc = UPMON_CACHE_E_NOMEM;
			goto out;
		}
		memcpy(*val, r->str, r->len);
		(*val)[r->len] = '\0';
		if (len != NULL)
			*len = r->len;
	} else if (r->type != REDIS_REPLY_NIL) {
		cache_seterr(c, "redis GET: unexpected reply type %d", r->type);
		rc = UPMON_CACHE_E_REPLY;
	}
out:
	freeReplyObject(r);
	return rc;
}

int
upmon_cache_del(struct upmon_cache *c, const char *key)
{
	const char *argv[2] = { "DEL", key };
	redisReply *r = NULL;
	int rc;

	if (key == NULL)
		return UPMON_CACHE_E_INVALID;
	rc = upmon_cache_command_argv(c, 2, argv, NULL, &r);
	freeReplyObject(r);
	return rc;
}

static struct cache_script *
cache_script(struct upmon_cache *c, const char *src)
{
	struct cache_script *s;
	size_t i;

	for (i = 0; i < c->nscripts; i++)
		if (strcmp(c->scripts[i].src, src) == 0)
			return &c->scripts[i];
	if (c->nscripts == CACHE_MAX_SCRIPTS)
		return NULL;
	s = &c->scripts[c->nscripts];
	if ((s->src = strdup(src)) == NULL)
		return NULL;
	s->sha[0] = '\0';
	c->nscripts++;
	return s;
}

/* Learns the SHA1 of a script with SCRIPT LOAD. */
static int
cache_script_load(struct upmon_cache *c, struct cache_script *s)
{
	const char *argv[3] = { "SCRIPT", "LOAD", s->src };
	redisReply *r = NULL;
	int rc;

	if ((rc = upmon_cache_command_argv(c, 3, argv, NULL, &r)) != 0)
		return rc;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		cache_seterr(c, "redis SCRIPT LOAD: unexpected reply");
		rc = UPMON_CACHE_E_REPLY;
	} else {
		memcpy(s->sha, r->str, 40);
		s->sha[40] = '\0';
	}
	freeReplyObject(r);
	return rc;
}

int
upmon_cache_eval(struct upmon_cache *c, const char *script, int nkeys, const char **keys,
    int nargs, const char **args, redisReply **reply)
{
	const char *argv[3 + CACHE_MAX_EVAL_ARGS];
	struct cache_script *s;
	char nk[16];
	int i, rc, argc = 0;

	*reply = NULL;
	if (script == NULL || nkeys < 0 || nargs < 0 || nkeys + nargs > CACHE_MAX_EVAL_ARGS ||
	    (nkeys > 0 && keys == NULL) || (nargs > 0 && args == NULL))
		return UPMON_CACHE_E_INVALID;
	if ((rc = cache_ensure(c, 0)) != 0)
		return rc;
	s = cache_script(c, script);
	if (s != NULL && s->sha[0] == '\0' && (rc = cache_script_load(c, s)) != 0)
		return rc;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = s != NULL ? "EVALSHA" : "EVAL";
	argv[argc++] = s != NULL ? s->sha : script;
	argv[argc++] = nk;
	for (i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	if ((rc = cache_raw(c, argc, argv, NULL, reply)) != 0)
		return rc;
	if (s != NULL && (*reply)->type == REDIS_REPLY_ERROR &&
	    strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
		/* the server forgot it (restart, SCRIPT FLUSH): EVAL caches it again */
		freeReplyObject(*reply);
		argv[0] = "EVAL";
		argv[1] = script;
		if ((rc = cache_raw(c, argc, argv, NULL, reply)) != 0)
			return rc;
	}
	return cache_check(c, reply);
}

int
upmon_cache_incr_expire(struct upmon_cache *c, const char *key, long long window_ms,
    long long *count, long long *ttl_ms)
{
	char win[24];
	const char *args[1] = { win };
	redisReply *r = NULL;
	int rc;

	if (key == NULL || window_ms < 1)
		return UPMON_CACHE_E_INVALID;
	snprintf(win, sizeof(win), "%lld", window_ms);
	if ((rc = upmon_cache_eval(c, incr_expire_lua, 1, &key, 1, args, &r)) != 0)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER) {
		cache_seterr(c, "redis incr_expire: unexpected reply");
		rc = UPMON_CACHE_E_REPLY;
		goto out;
	}
	*count = r->element[0]->integer;
	if (ttl_ms != NULL)
		*ttl_ms = r->element[1]->integer;
out:
	freeReplyObject(r);
	return rc;
}

int
upmon_cache_status_key(char *buf, size_t size, const char *monitor_id)
{
	int n;

	if (monitor_id == NULL || monitor_id[0] == '\0')
		return -1;
	n = snprintf(buf, size, "%s%s", CACHE_STATUS_PREFIX, monitor_id);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
upmon_cache_status_put_many(struct upmon_cache *c, size_t n, const char *const *monitor_ids,
    const int64_t *ts_ms, const char *const *json, int *applied)
{
	char keys[CACHE_STATUS_CHUNK][128], ts[CACHE_STATUS_CHUNK][24];
	const char *kp[CACHE_STATUS_CHUNK], *args[2 * CACHE_STATUS_CHUNK];
	redisReply *r = NULL;
	size_t done, i, m;
	int rc;

	for (i = 0; applied != NULL && i < n; i++)
		applied[i] = 0;
	for (i = 0; i < n; i++)
		if (json[i] == NULL || ts_ms[i] < 0 ||
		    upmon_cache_status_key(keys[0], sizeof(keys[0]), monitor_ids[i]) != 0)
			return UPMON_CACHE_E_INVALID;
	for (done = 0; done < n; done += m) {
		m = n - done < CACHE_STATUS_CHUNK ? n - done : CACHE_STATUS_CHUNK;
		for (i = 0; i < m; i++) {
			(void)upmon_cache_status_key(keys[i], sizeof(keys[i]), monitor_ids[done + i]);
			snprintf(ts[i], sizeof(ts[i]), "%lld", (long long)ts_ms[done + i]);
			kp[i] = keys[i];
			args[2 * i] = ts[i];
			args[2 * i + 1] = json[done + i];
		}
		if ((rc = upmon_cache_eval(c, status_put_lua, (int)m, kp, (int)(2 * m), args,
		    &r)) != 0)
			return rc;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != m) {
			cache_seterr(c, "redis status_put: unexpected reply");
			freeReplyObject(r);
			return UPMON_CACHE_E_REPLY;
		}
		for (i = 0; applied != NULL && i < m; i++)
			applied[done + i] = r->element[i]->type == REDIS_REPLY_INTEGER &&
			    r->element[i]->integer == 1;
		freeReplyObject(r);
	}
	return 0;
}

int
upmon_cache_status_put(struct upmon_cache *c, const char *monitor_id, int64_t ts_ms,
    const char *json, int *applied)
{
	return upmon_cache_status_put_many(c, 1, &monitor_id, &ts_ms, &json, applied);
}

int
upmon_cache_status_get(struct upmon_cache *c, const char *monitor_id, char **json,
    int64_t *ts_ms)
{
	char key[128];
	const char *argv[4] = { "HMGET", key, "ts", "json" };
	redisReply *r = NULL, *t, *j;
	char *end;
	long long v;
	int rc;

	*json = NULL;
	if (upmon_cache_status_key(key, sizeof(key), monitor_id))
		return UPMON_CACHE_E_INVALID;
	if ((rc = upmon_cache_command_argv(c, 4, argv, NULL, &r)) != 0)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		rc = UPMON_CACHE_E_REPLY;
		goto out;
	}
	t = r->element[0];
	j = r->element[1];
	if (t->type == REDIS_REPLY_NIL || j->type == REDIS_REPLY_NIL)
		goto out;
	if (t->type != REDIS_REPLY_STRING || j->type != REDIS_REPLY_STRING) {
		rc = UPMON_CACHE_E_REPLY;
		goto out;
	}
	errno = 0;
	v = strtoll(t->str, &end, 10);
	if (errno != 0 || *end != '\0' || end == t->str) {
		rc = UPMON_CACHE_E_REPLY;
		goto out;
	}
	if ((*json = malloc(j->len + 1)) == NULL) {
		rc = UPMON_CACHE_E_NOMEM;
		goto out;
	}
	memcpy(*json, j->str, j->len);
	(*json)[j->len] = '\0';
	if (ts_ms != NULL)
		*ts_ms = v;
out:
	if (rc == UPMON_CACHE_E_REPLY)
		cache_seterr(c, "redis status_get: unexpected reply");
	freeReplyObject(r);
	return rc;
}

int
upmon_cache_monitors_gen_key(char *buf, size_t size, const char *owner_id)
{
	int n;

	if (buf == NULL || owner_id == NULL)
		return -1;
	n = snprintf(buf, size, "upmon:gw:mongen:%s", owner_id);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
upmon_cache_monitors_changed(struct upmon_cache *c, const char *owner_id)
{
	char key[128];
	const char *argv[2] = { "INCR", key };
	redisReply *reply = NULL;
	int rc;

	if (upmon_cache_monitors_gen_key(key, sizeof(key), owner_id) != 0)
		return UPMON_CACHE_E_INVALID;
	rc = upmon_cache_command_argv(c, 2, argv, NULL, &reply);
	if (reply != NULL)
		freeReplyObject(reply);
	return rc;
}
