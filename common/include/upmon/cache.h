/*
 * Redis access (hiredis 0.14): a cache that may vanish at any moment without slowing anyone.
 *
 * A handle holds one blocking connection, used by one thread at a time. Every command is bounded
 * by op_timeout_ms (socket send/receive timeouts) and a connect by connect_timeout_ms. After any
 * I/O failure or timeout the connection is dropped and the handle is "down" for a backoff
 * (exponential from backoff_min_ms to backoff_max_ms, jittered): while down, every call returns
 * UPMON_CACHE_E_UNAVAILABLE at once without touching the network. The first call after the
 * backoff tries one connect. So a dead Redis costs callers nothing but one connect attempt per
 * backoff period, and a call never blocks longer than connect_timeout_ms + op_timeout_ms
 * (plus the host name lookup of a connect; use an IP address or a name in /etc/hosts).
 *
 * UPMON_CACHE_E_UNAVAILABLE means "no answer from Redis": fall back to Postgres, which stays the
 * source of truth. A reply that Redis sent as an error is UPMON_CACHE_E_REPLY (a bug or a
 * wrong key type), except LOADING/BUSY/MASTERDOWN/TRYAGAIN which are UNAVAILABLE.
 */
#ifndef UPMON_CACHE_H
#define UPMON_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

enum {
	UPMON_CACHE_OK = 0,
	UPMON_CACHE_E_UNAVAILABLE = -1,	/* Redis down, unreachable, slow, or backing off */
	UPMON_CACHE_E_REPLY = -2,	/* Redis answered with an error or an unexpected type */
	UPMON_CACHE_E_INVALID = -3,	/* bad arguments */
	UPMON_CACHE_E_NOMEM = -4,
};

struct upmon_cache_config {
	const char *url;	/* redis://[[user]:password@]host[:port][/db]; required */
	int connect_timeout_ms;	/* default 200 */
	int op_timeout_ms;	/* default 100 */
	int backoff_min_ms;	/* default 100 */
	int backoff_max_ms;	/* default 2000 */
};

/* A parsed redis:// URL (see upmon_cache_url_parse()). */
struct upmon_cache_url {
	char host[256];
	int port;		/* default 6379 */
	int db;			/* default 0 */
	char user[128];		/* "" = none (AUTH password only) */
	char password[256];	/* "" = no AUTH */
};

struct upmon_cache;

/* Fills cfg with the defaults above (url NULL). */
void upmon_cache_config_init(struct upmon_cache_config *cfg);

/*
 * Parses redis://[[user]:password@]host[:port][/db] (host may be [IPv6]; user and password
 * may be percent-encoded). rediss:// (TLS) is refused: hiredis 0.14 has no TLS. Returns 0 or
 * UPMON_CACHE_E_INVALID.
 */
int upmon_cache_url_parse(const char *url, struct upmon_cache_url *out);

/*
 * Creates a handle (cfg is copied). No I/O: the first command connects. Returns 0,
 * UPMON_CACHE_E_INVALID (bad URL or setting) or UPMON_CACHE_E_NOMEM. Free with
 * upmon_cache_free().
 */
int upmon_cache_new(const struct upmon_cache_config *cfg, struct upmon_cache **out);

/* Closes the connection and frees the handle; NULL is a no-op. */
void upmon_cache_free(struct upmon_cache *c);

/* Connects now unless connected, ignoring the backoff. Returns 0 or UNAVAILABLE. */
int upmon_cache_connect(struct upmon_cache *c);

/* 1 when connected or allowed to try (not inside a backoff), else 0. No I/O. */
int upmon_cache_available(const struct upmon_cache *c);

/* Message of the last failure on this handle ("" if none); valid until the next call. */
const char *upmon_cache_errstr(const struct upmon_cache *c);

/* Number of successful connects so far (changes on every reconnect). */
uint64_t upmon_cache_generation(const struct upmon_cache *c);

/*
 * Sends one command (argv strings with lengths; argvlen NULL = strlen of each). On success
 * stores the reply in *reply (caller frees it with freeReplyObject()) and returns 0; an error
 * reply is not returned: it is freed, the code is UPMON_CACHE_E_REPLY (or UNAVAILABLE, see
 * above) and upmon_cache_errstr() holds its text.
 */
int upmon_cache_command_argv(struct upmon_cache *c, int argc, const char **argv,
    const size_t *argvlen, redisReply **reply);

/* SET key value [PX ttl_ms]; ttl_ms 0 = no expiry. Returns 0 or a negative code. */
int upmon_cache_set(struct upmon_cache *c, const char *key, const void *val, size_t len,
    long long ttl_ms);

/*
 * GET key. On 0, *val is a malloc'd NUL-terminated copy (caller frees) and *len its length, or
 * *val is NULL when the key does not exist. len may be NULL.
 */
int upmon_cache_get(struct upmon_cache *c, const char *key, char **val, size_t *len);

/* DEL key (a missing key is not an error). Returns 0 or a negative code. */
int upmon_cache_del(struct upmon_cache *c, const char *key);

/*
 * Fixed-window counter for rate limits: INCR key, setting its expiry to window_ms when the
 * window starts; atomic (one script). Stores the new count and the milliseconds left in the
 * window (for Retry-After); ttl_ms may be NULL.
 */
int upmon_cache_incr_expire(struct upmon_cache *c, const char *key, long long window_ms,
    long long *count, long long *ttl_ms);

/*
 * Runs a Lua script: EVALSHA with the script's SHA1 (learnt once per handle with SCRIPT LOAD),
 * falling back to EVAL when Redis answers NOSCRIPT (its script cache was flushed by a restart).
 * The handle remembers up to 16 scripts by content. Reply ownership as in
 * upmon_cache_command_argv(). nkeys + nargs <= 384.
 */
int upmon_cache_eval(struct upmon_cache *c, const char *script, int nkeys, const char **keys,
    int nargs, const char **args, redisReply **reply);

/*
 * Writes the latest status of a monitor to upmon:status:<monitor_id> (a hash with fields ts and
 * json) only if the stored ts is older than ts_ms ("newest wins"; an equal ts is kept). Sets
 * *applied (may be NULL) to 1 when written, 0 when a newer or equal status was already there.
 */
int upmon_cache_status_put(struct upmon_cache *c, const char *monitor_id, int64_t ts_ms,
    const char *json, int *applied);

/*
 * The same for n statuses in one round trip per 128 (one script call): monitor_ids[i],
 * ts_ms[i], json[i]; applied (may be NULL) gets one flag per status. A bad argument anywhere
 * writes nothing and returns UPMON_CACHE_E_INVALID.
 */
int upmon_cache_status_put_many(struct upmon_cache *c, size_t n, const char *const *monitor_ids,
    const int64_t *ts_ms, const char *const *json, int *applied);

/*
 * Reads upmon:status:<monitor_id>. On 0, *json is a malloc'd copy (caller frees) and *ts_ms
 * its timestamp, or *json is NULL when there is none. ts_ms may be NULL.
 */
int upmon_cache_status_get(struct upmon_cache *c, const char *monitor_id, char **json,
    int64_t *ts_ms);

/* Formats the status key of monitor_id into buf; returns 0, or -1 when it does not fit. */
int upmon_cache_status_key(char *buf, size_t size, const char *monitor_id);

/*
 * The generation of an owner's monitor lists, upmon:gw:mongen:<owner_id>: the gateway keys its
 * cached list pages by it, and whoever commits a change to the owner's monitors (the gateway,
 * `upmonctl monitors import`) bumps it afterwards so no cached page is served again.
 * upmon_cache_monitors_gen_key() formats the key (0, or -1 when it does not fit);
 * upmon_cache_monitors_changed() INCRs it (0 or a negative UPMON_CACHE_E_*; Redis down is
 * harmless: the pages expire within their short TTL).
 */
int upmon_cache_monitors_gen_key(char *buf, size_t size, const char *owner_id);
int upmon_cache_monitors_changed(struct upmon_cache *c, const char *owner_id);

#endif
