/*
 * AMQP 0-9-1 client for upmon on top of rabbitmq-c 0.11: one connection with heartbeats,
 * automatic reconnect with backoff, the whole messaging topology of architecture.md, publisher
 * confirms without a round trip per message, consumers with manual acks and prefetch, and the
 * retry / dead-letter helpers. docs/amqp.md describes the topology and the reconnect rules.
 *
 * THREADS: a handle is NOT thread-safe (rabbitmq-c connections are not). Use one handle per
 * thread; a worker that wants N consumer threads opens N handles.
 *
 * HEARTBEATS: rabbitmq-c only sends and checks heartbeats while one of its calls runs. Every
 * function here that waits (upmon_amqp_poll, upmon_amqp_next, upmon_amqp_confirm_wait,
 * upmon_amqp_publish_sync, the retry helpers) services them. A caller that is otherwise idle or
 * busy must call one of them at least every heartbeat_s / 2 seconds (upmon_amqp_poll(c, 0) is
 * enough), or the broker closes the connection (it is then reconnected on the next call).
 *
 * ERRORS: functions return 0 or a negative UPMON_AMQP_E* code; results go through
 * out-parameters. UPMON_AMQP_ECONN means the connection was lost (or is still down and the
 * reconnect backoff has not expired): the operation did not happen, the handle reconnects on a
 * later call, and the caller may retry. After a reconnect the handle re-opens its channels,
 * re-enables confirms, re-declares the topology (when configured), and re-issues basic.qos and
 * basic.consume for every queue given to upmon_amqp_consume(). What does NOT survive: publishes
 * not yet confirmed (reported as UPMON_AMQP_LOST, re-publish them), deliveries received but not
 * acked (the broker requeues them; acking them returns UPMON_AMQP_ESTALE and sends nothing), and
 * deliveries buffered but not yet returned by upmon_amqp_next (dropped, requeued by the broker).
 */
#ifndef UPMON_AMQP_H
#define UPMON_AMQP_H

#include <stddef.h>
#include <stdint.h>

/* Error codes (all negative). */
#define UPMON_AMQP_EINVAL    (-1)   /* bad argument or configuration */
#define UPMON_AMQP_ENOMEM    (-2)   /* allocation failed */
#define UPMON_AMQP_ECONN     (-3)   /* not connected / connection lost; retry later */
#define UPMON_AMQP_ETIMEDOUT (-4)   /* nothing happened within the timeout */
#define UPMON_AMQP_EPROTO    (-5)   /* broker refused (channel/connection closed), see log */
#define UPMON_AMQP_ENACK     (-6)   /* publish nacked by the broker */
#define UPMON_AMQP_ERETURNED (-7)   /* publish unroutable (mandatory), returned */
#define UPMON_AMQP_ESTALE    (-8)   /* delivery from an earlier connection, already requeued */
#define UPMON_AMQP_EFULL     (-9)   /* too many unconfirmed publishes / consumers */
#define UPMON_AMQP_ETOOBIG   (-10)  /* body or name over its cap */
#define UPMON_AMQP_ELOST     (-11)  /* connection lost before the confirm arrived */

/* Names of the topology (docs/amqp.md has the whole table). */
#define UPMON_AMQP_EX_TASKS   "upmon.tasks"    /* direct: key monitor_tasks -> monitor_tasks */
#define UPMON_AMQP_EX_EVENTS  "upmon.events"   /* topic: status.*.*, alert.* */
#define UPMON_AMQP_EX_RETRY   "upmon.retry"    /* direct: every retry/dead queue by its name */
#define UPMON_AMQP_Q_TASKS    "monitor_tasks"
#define UPMON_AMQP_KEY_TASKS  "monitor_tasks"
#define UPMON_AMQP_Q_NOTIFY   "notifications"
#define UPMON_AMQP_KEY_ALERTS "alert.#"

/* Header names written by the retry and dead-letter helpers. */
#define UPMON_AMQP_H_ATTEMPT       "x-upmon-attempt"
#define UPMON_AMQP_H_ERROR         "x-upmon-error"
#define UPMON_AMQP_H_FIRST_FAILURE "x-upmon-first-failure"
#define UPMON_AMQP_H_LAST_FAILURE  "x-upmon-last-failure"
#define UPMON_AMQP_H_SERVICE       "x-upmon-service"
#define UPMON_AMQP_H_HOST          "x-upmon-host"

#define UPMON_AMQP_ID_MAX      128   /* message_id incl. NUL */
#define UPMON_AMQP_NAME_MAX    256   /* exchange, queue, routing key incl. NUL */
#define UPMON_AMQP_ERROR_MAX   1024  /* x-upmon-error is truncated to this - 1 bytes */
#define UPMON_AMQP_HEADERS_MAX 32    /* entries in a struct upmon_amqp_headers */
#define UPMON_AMQP_HEADERS_ARENA 4096 /* bytes for keys and string values */
#define UPMON_AMQP_LEVELS_MAX  20    /* retry levels */

struct upmon_amqp;

struct upmon_amqp_config {
	const char *url;           /* amqp://user:pass@host:port/vhost (required, copied) */
	const char *service;       /* x-upmon-service and connection name; default "upmon" */
	int heartbeat_s;           /* 30; 0 disables (not recommended) */
	int connect_timeout_ms;    /* 5000: TCP connect and AMQP handshake */
	int rpc_timeout_ms;        /* 15000: declare/qos/consume round trips */
	const char *queue_type;    /* "quorum" (default) or "classic" */
	int retry_levels;          /* 5: monitor_tasks.retry.1..levels */
	int retry_base_ms;         /* 1000: TTL of level n = min(base * 2^(n-1), max) */
	int retry_max_ms;          /* 60000 */
	int notify_retry_levels;   /* 5: notifications.retry.1..levels */
	int notify_retry_base_ms;  /* 5000 */
	int notify_retry_max_ms;   /* 300000 */
	int reconnect_base_ms;     /* 200: first reconnect delay (then doubles, jittered) */
	int reconnect_max_ms;      /* 30000: reconnect delay cap */
	size_t max_body;           /* 1 MiB: bigger deliveries are dead-lettered, never returned */
	size_t max_unconfirmed;    /* 10000: publishes awaiting an outcome before EFULL */
	int declare_topology;      /* 1: declare the topology on every (re)connect */
};

/* Fills cfg with the defaults above (url NULL). Never fails. */
void upmon_amqp_config_init(struct upmon_amqp_config *cfg);

/* Creates a handle (no I/O yet; the first call that needs the broker connects). Copies what it
 * needs from cfg. Returns 0 and *out, or EINVAL (bad url or bounds, logged) / ENOMEM. */
int upmon_amqp_new(const struct upmon_amqp_config *cfg, struct upmon_amqp **out);
/* Closes the connection politely if up and frees everything. NULL is a no-op. Deliveries the
 * caller still holds stay valid until upmon_amqp_delivery_release(). */
void upmon_amqp_free(struct upmon_amqp *c);

/* Connects now, retrying with backoff for up to timeout_ms. 0 when connected (also when it
 * already was), ECONN when still down at the deadline, EPROTO when the broker refused the
 * setup (e.g. topology declared elsewhere with other arguments). */
int upmon_amqp_connect(struct upmon_amqp *c, int timeout_ms);
/* Services the connection for up to timeout_ms (0 = just once, non-blocking): heartbeats,
 * confirms, buffering deliveries, and reconnecting when down (waiting out the backoff inside
 * the timeout, never spinning). Returns 0 when connected at return, else ECONN / EPROTO. */
int upmon_amqp_poll(struct upmon_amqp *c, int timeout_ms);
/* The connection's socket for poll() (readable = frames may be waiting), or -1 when down.
 * rabbitmq-c buffers frames, so after poll() says readable, and before sleeping on it, drain
 * with upmon_amqp_next(c, 0, ...) / upmon_amqp_poll(c, 0) until they time out. The
 * descriptor changes on reconnect; never close it. */
int upmon_amqp_socket(const struct upmon_amqp *c);
/* 1 when the connection is currently up, else 0. */
int upmon_amqp_is_connected(const struct upmon_amqp *c);
/* Declares every exchange, queue and binding (idempotent; needs a connection, connects with
 * the connect timeout). 0, ECONN or EPROTO (arguments differ from the existing queues'). */
int upmon_amqp_declare_topology(struct upmon_amqp *c);

/* Counters for /metrics. */
struct upmon_amqp_stats {
	uint64_t connects;          /* successful connection setups */
	uint64_t connect_attempts;  /* including failed ones */
	uint64_t disconnects;       /* connections lost or reset */
	uint64_t published, acked, nacked, returned, lost;
	uint64_t delivered, oversized;
};
void upmon_amqp_get_stats(const struct upmon_amqp *c, struct upmon_amqp_stats *out);

/* --- headers: a small protocol-free table of string and integer values --- */

struct upmon_amqp_headers {
	size_t count;
	struct {
		uint16_t key;   /* offset of the key in arena */
		uint16_t str;   /* offset of the string value, when is_int == 0 */
		int is_int;
		int64_t num;
	} item[UPMON_AMQP_HEADERS_MAX];
	size_t used;
	char arena[UPMON_AMQP_HEADERS_ARENA];
};

/* Empties h. */
void upmon_amqp_headers_init(struct upmon_amqp_headers *h);
/* Sets (adds or replaces) key to a string (copied) or an integer. The string is truncated to
 * max_len bytes (0 = no extra limit) without splitting a UTF-8 sequence. Returns 0, EINVAL
 * (empty key, key over 127 bytes) or ETOOBIG (no room left). */
int upmon_amqp_headers_set_str(struct upmon_amqp_headers *h, const char *key, const char *val,
    size_t max_len);
int upmon_amqp_headers_set_int(struct upmon_amqp_headers *h, const char *key, int64_t val);
/* Returns the string value of key (owned by h), or NULL when absent or an integer. */
const char *upmon_amqp_headers_get_str(const struct upmon_amqp_headers *h, const char *key);
/* Reads an integer value (a decimal string is accepted too). 0, or EINVAL when absent/not a
 * number. */
int upmon_amqp_headers_get_int(const struct upmon_amqp_headers *h, const char *key,
    int64_t *out);
/* Key and value accessors for iteration (i < h->count); value_str is NULL for integers. */
const char *upmon_amqp_headers_key(const struct upmon_amqp_headers *h, size_t i);
const char *upmon_amqp_headers_value_str(const struct upmon_amqp_headers *h, size_t i);

/* --- publishing --- */

struct upmon_amqp_message {
	const char *exchange;          /* "" for the default exchange */
	const char *routing_key;
	const void *body;
	size_t body_len;
	const char *message_id;        /* required, < UPMON_AMQP_ID_MAX bytes */
	const struct upmon_amqp_headers *headers; /* NULL = none */
	const char *content_type;      /* NULL = "application/json" */
};

/* Outcome of one publish, as reported by upmon_amqp_confirm_wait(). */
enum upmon_amqp_outcome {
	UPMON_AMQP_ACKED = 1,     /* the broker has it (persisted for durable queues) */
	UPMON_AMQP_NACKED = 2,    /* the broker refused it: re-publish */
	UPMON_AMQP_RETURNED = 3,  /* unroutable (mandatory): no queue got it */
	UPMON_AMQP_LOST = 4,      /* connection lost before the outcome: re-publish */
};

struct upmon_amqp_confirm {
	uint64_t tag;                       /* as returned by upmon_amqp_publish */
	int outcome;                        /* enum upmon_amqp_outcome */
	char message_id[UPMON_AMQP_ID_MAX];
};

/* Sends one persistent (delivery_mode 2), mandatory message with publisher confirms and
 * returns at once with *tag: a number that grows by one per publish on this handle and never
 * repeats, even across reconnects. The outcome arrives later through upmon_amqp_confirm_wait.
 * Errors: EINVAL (missing field), ETOOBIG (message_id or names too long, body over max_body),
 * EFULL (max_unconfirmed outcomes not yet collected), ECONN (not sent). */
int upmon_amqp_publish(struct upmon_amqp *c, const struct upmon_amqp_message *m,
    uint64_t *tag);
/* Reads confirms, returns and nacks for up to timeout_ms and stores up to max outcomes in
 * out[0..*n), in strict tag order: an outcome is reported only once every earlier publish has
 * its own, and each exactly once. Returns 0 when no publish is left waiting for its outcome,
 * ETIMEDOUT when some still are (out may still hold outcomes); call again while *n == max.
 * Never ECONN: a lost connection turns waiting publishes into UPMON_AMQP_LOST outcomes. */
int upmon_amqp_confirm_wait(struct upmon_amqp *c, int timeout_ms,
    struct upmon_amqp_confirm *out, size_t max, size_t *n);
/* Publishes that have no outcome yet. */
size_t upmon_amqp_unconfirmed(const struct upmon_amqp *c);
/* Publish and wait (up to timeout_ms, reconnecting inside it when down) for this message's
 * own confirm; its outcome is not reported by confirm_wait. 0 when acked, else ENACK,
 * ERETURNED, ELOST, ECONN, ETIMEDOUT or a publish error. For low-volume callers. */
int upmon_amqp_publish_sync(struct upmon_amqp *c, const struct upmon_amqp_message *m,
    int timeout_ms);

/* --- consuming --- */

struct upmon_amqp_msg;

struct upmon_amqp_delivery {
	const unsigned char *body;     /* body_len bytes, plus a NUL after them */
	size_t body_len;
	const char *message_id;        /* "" when the publisher set none */
	const char *routing_key;
	const char *exchange;
	const char *queue;             /* the queue it was consumed from */
	const struct upmon_amqp_headers *headers; /* string and integer headers only */
	uint64_t delivery_tag;
	int redelivered;
	int attempt;                   /* x-upmon-attempt, 0 when absent */
	/* private */
	struct upmon_amqp_msg *priv;
	uint64_t generation;
	uint16_t channel;
};

/* Starts a consumer of queue on its own channel with basic.qos prefetch (1..65535) and
 * manual acks; remembered and re-issued after every reconnect. Calling it again for the same
 * queue adds another consumer channel, so N calls with prefetch 1 give N deliveries in flight
 * with at most one unacked per channel. At most 256 consumers per handle.
 * 0, EINVAL, EFULL, ECONN, EPROTO (e.g. no such queue). */
int upmon_amqp_consume(struct upmon_amqp *c, const char *queue, int prefetch);
/* Waits up to timeout_ms for the next delivery on any consumed queue and fills *out; the
 * caller owns it and must upmon_amqp_delivery_release() it (after ack/nack/retry). Services
 * the connection while waiting; when it drops, waits out the backoff and reconnects (and
 * re-consumes) inside the same timeout. Bodies over max_body never reach the caller: they are
 * rejected without requeue, which the queue's dead-letter exchange routes to <queue>_dead
 * with the full body (logged). 0, ETIMEDOUT, EINVAL (nothing consumed), or ECONN / EPROTO
 * when the connection is still down at the deadline. */
int upmon_amqp_next(struct upmon_amqp *c, int timeout_ms, struct upmon_amqp_delivery *out);
/* Frees what next() allocated; *d is zeroed. Safe on a zeroed delivery and after free(c). */
void upmon_amqp_delivery_release(struct upmon_amqp_delivery *d);
/* Acks / rejects one delivery. nack with requeue 0 dead-letters it to <queue>_dead (by the
 * queue's dead-letter exchange, without upmon error headers). 0, ESTALE (delivery from an
 * earlier connection: nothing sent, the broker already requeued it), ECONN. */
int upmon_amqp_ack(struct upmon_amqp *c, const struct upmon_amqp_delivery *d);
int upmon_amqp_nack(struct upmon_amqp *c, const struct upmon_amqp_delivery *d, int requeue);

/* --- retry and dead letters (ack the original only after these return 0) --- */

enum upmon_amqp_route {
	UPMON_AMQP_ROUTE_RETRY = 1,
	UPMON_AMQP_ROUTE_DEAD = 2,
};

/* Sends d's body, message_id and headers to its next retry queue with x-upmon-attempt
 * incremented (level min(attempt + 1, levels)), or, when attempt + 1 > max_retries, to
 * <queue>_dead with the dead-letter headers. Waits for the confirm (up to timeout_ms). Sets
 * *route. The caller acks d after 0; on an error it must not ack (nack with requeue or let the
 * connection drop). EINVAL when d's queue has no retry queues (not monitor_tasks or
 * notifications). */
int upmon_amqp_retry(struct upmon_amqp *c, const struct upmon_amqp_delivery *d,
    const char *error, int max_retries, int timeout_ms, int *route);
/* Sends d's body and message_id to <queue>_dead with x-upmon-error (error, truncated),
 * x-upmon-attempt, x-upmon-first-failure (kept from d when present), x-upmon-last-failure,
 * x-upmon-service and x-upmon-host, and waits for the confirm. Ack d after 0. */
int upmon_amqp_dead_letter(struct upmon_amqp *c, const struct upmon_amqp_delivery *d,
    const char *error, int timeout_ms);

/* --- pure helpers (no I/O; used above, exported for tests and upmonctl) --- */

/* TTL of retry level n (1-based): min(base * 2^(n-1), max); 0 for bad input. */
int64_t upmon_amqp_retry_ttl_ms(int base_ms, int max_ms, int n);
/* Writes "<queue>.retry.<n>" / "<queue>_dead" into buf. 0 or ETOOBIG / EINVAL. */
int upmon_amqp_retry_queue_name(const char *queue, int n, char *buf, size_t size);
int upmon_amqp_dead_queue_name(const char *queue, char *buf, size_t size);
/* 1 when s looks like an RFC 3339 timestamp (as written by upmon_rfc3339_ms, backoff.h). */
int upmon_amqp_is_rfc3339(const char *s);
/* Builds the headers of a retried message from the incoming ones: keeps the caller's headers,
 * drops broker ones (x-death...), sets x-upmon-attempt = attempt, x-upmon-error, keeps or sets
 * x-upmon-first-failure, sets x-upmon-last-failure = now_ms. */
int upmon_amqp_retry_headers(const struct upmon_amqp_headers *in, int attempt,
    const char *error, int64_t now_ms, struct upmon_amqp_headers *out);
/* Same for a dead letter, plus x-upmon-service and x-upmon-host. */
int upmon_amqp_dead_headers(const struct upmon_amqp_headers *in, int attempt,
    const char *error, const char *service, const char *host, int64_t now_ms,
    struct upmon_amqp_headers *out);

/* One queue of the topology as declare_topology declares it. */
struct upmon_amqp_queue_spec {
	char name[UPMON_AMQP_NAME_MAX];
	int64_t ttl_ms;                     /* x-message-ttl, 0 = none */
	const char *dlx;                    /* x-dead-letter-exchange, NULL = none */
	char dlrk[UPMON_AMQP_NAME_MAX];     /* x-dead-letter-routing-key */
	const char *bind_exchange[2];       /* bindings (NULL = unused) */
	char bind_key[2][UPMON_AMQP_NAME_MAX];
};
#define UPMON_AMQP_QUEUES_MAX (2 * (UPMON_AMQP_LEVELS_MAX + 2))
/* Lists the queues of the topology for cfg into out[0..*n) (max >= UPMON_AMQP_QUEUES_MAX
 * always suffices). 0, EINVAL (bad cfg) or ETOOBIG (max too small). */
int upmon_amqp_topology_queues(const struct upmon_amqp_config *cfg,
    struct upmon_amqp_queue_spec *out, size_t max, size_t *n);
/* Checks cfg's bounds; on failure writes one lowercase line to err and returns EINVAL. */
int upmon_amqp_config_check(const struct upmon_amqp_config *cfg, char *err, size_t size);

/* Short lowercase description of an UPMON_AMQP_E* code. */
const char *upmon_amqp_strerror(int err);

#endif
