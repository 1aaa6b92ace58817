/*
 * Internals shared by the amqp*.c files: the handle, the per-channel inbound message state,
 * the unconfirmed publish list. Nothing outside common/src/amqp*.c includes this.
 */
#ifndef UPMON_AMQP_INT_H
#define UPMON_AMQP_INT_H

#include <stdint.h>
#include <sys/time.h>

/* rabbitmq-c 0.12 moved its headers to <rabbitmq-c/...>; Debian 12 ships 0.11 with the old
 * names. Prefer the new ones when present so a newer library builds without #warnings. */
#if defined(__has_include)
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#define UPMON_AMQP_HAVE_HEADERS 1
#endif
#endif
#ifndef UPMON_AMQP_HAVE_HEADERS
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#endif

#include "upmon/amqp.h"
#include "upmon/backoff.h"

#define AMQP_PUB_CHANNEL    1
#define AMQP_CONSUMERS_MAX  256
#define AMQP_FRAME_MAX      131072

/* A message being received (deliver or return) or ready for the caller. */
struct upmon_amqp_msg {
	struct upmon_amqp_msg *next;         /* ready list */
	struct upmon_amqp_headers headers;
	char message_id[UPMON_AMQP_ID_MAX];
	char routing_key[UPMON_AMQP_NAME_MAX];
	char exchange[UPMON_AMQP_NAME_MAX];
	char queue[UPMON_AMQP_NAME_MAX];
	char content_type[UPMON_AMQP_NAME_MAX];
	uint64_t delivery_tag;
	uint64_t generation;
	uint16_t channel;
	int redelivered;
	int oversized;
	uint64_t body_size;                  /* announced by the content header */
	uint64_t received;                   /* body bytes seen so far */
	size_t cap;                          /* bytes allocated in body (0 when oversized) */
	unsigned char body[];                /* cap + 1 bytes */
};

enum inbound_state {
	IN_IDLE = 0,
	IN_HEADER,      /* method seen, waiting for the content header */
	IN_BODY,        /* waiting for body frames */
};

enum inbound_kind {
	IN_DELIVER = 1,
	IN_RETURN = 2,
};

/* What the method frame (basic.deliver / basic.return) said, until the header arrives. */
struct amqp_inbound {
	int state;
	int kind;
	struct upmon_amqp_msg *msg;
	char exchange[UPMON_AMQP_NAME_MAX];
	char routing_key[UPMON_AMQP_NAME_MAX];
	uint64_t delivery_tag;
	int redelivered;
};

struct amqp_consumer {
	char queue[UPMON_AMQP_NAME_MAX];
	int prefetch;
	uint16_t channel;
	struct amqp_inbound in;
};

enum pending_state {
	PEND_WAIT = 0,
	PEND_ACKED = UPMON_AMQP_ACKED,
	PEND_NACKED = UPMON_AMQP_NACKED,
	PEND_RETURNED = UPMON_AMQP_RETURNED,
	PEND_LOST = UPMON_AMQP_LOST,
};

struct amqp_pending {
	uint64_t tag;
	uint32_t route_hash;                 /* exchange + routing key, to match returns */
	int state;
	int returned;                        /* a basic.return matched; ack keeps RETURNED */
	int sync;                            /* owned by publish_sync, not reported */
	char message_id[UPMON_AMQP_ID_MAX];
};

struct upmon_amqp {
	/* configuration (strings owned) */
	struct upmon_amqp_config cfg;
	char *url;
	char *service;
	char *queue_type;
	char *host, *user, *pass, *vhost;
	int port;
	char hostname[256];

	/* connection */
	amqp_connection_state_t conn;
	int connected;
	uint64_t generation;                 /* bumped on every successful setup */
	int64_t connected_at_ms;
	int fail_count;                      /* consecutive failures, drives the backoff */
	int64_t next_attempt_ms;             /* monotonic; no attempt before this */
	uint32_t rnd;

	/* publishing */
	uint64_t tag_base;                   /* tag = tag_base + channel sequence number */
	uint64_t next_seq;                   /* next channel sequence number (1-based) */
	struct amqp_pending *pending;
	size_t npending, cap_pending;
	size_t nwait;                        /* entries still in PEND_WAIT */
	struct amqp_inbound pub_in;

	/* consuming */
	struct amqp_consumer consumers[AMQP_CONSUMERS_MAX];
	size_t nconsumers;
	struct upmon_amqp_msg *ready_head, *ready_tail;

	struct upmon_amqp_stats stats;
};

/* amqp.c */
int amqp_ensure(struct upmon_amqp *c, int64_t deadline_ms);
void amqp_teardown(struct upmon_amqp *c, int graceful, const char *why);
int amqp_rpc_check(struct upmon_amqp *c, uint16_t channel, const char *what);
int amqp_status_error(struct upmon_amqp *c, int status, const char *what);
int amqp_pump(struct upmon_amqp *c, int64_t deadline_ms);
void amqp_refresh(struct upmon_amqp *c);
void amqp_tv_until(int64_t deadline_ms, struct timeval *tv);
void amqp_fields(char *buf, size_t size, const char *queue, uint64_t tag, int attempt);

/* amqp_topology.c */
int amqp_declare_all(struct upmon_amqp *c);
int amqp_queue_family(const struct upmon_amqp_config *cfg, const char *queue, int *levels);

/* amqp_headers.c */
int amqp_headers_from_table(const amqp_table_t *t, struct upmon_amqp_headers *out);
int amqp_headers_to_table(const struct upmon_amqp_headers *h, amqp_table_entry_t *entries,
    size_t max, amqp_table_t *out);
void amqp_copy_bytes(char *dst, size_t size, amqp_bytes_t b);

/* amqp_publish.c */
void amqp_confirms_lost(struct upmon_amqp *c);
int amqp_handle_pub_method(struct upmon_amqp *c, const amqp_frame_t *f);
void amqp_return_done(struct upmon_amqp *c, struct amqp_inbound *in);
int amqp_publish_raw(struct upmon_amqp *c, const struct upmon_amqp_message *m, int sync,
    uint64_t *tag);
int amqp_wait_tag(struct upmon_amqp *c, uint64_t tag, int64_t deadline_ms);

/* amqp_consume.c */
int amqp_consumers_start(struct upmon_amqp *c);
void amqp_consumers_reset(struct upmon_amqp *c);
int amqp_handle_consumer_method(struct upmon_amqp *c, struct amqp_consumer *cons,
    const amqp_frame_t *f);
int amqp_handle_content(struct upmon_amqp *c, const amqp_frame_t *f);
struct amqp_consumer *amqp_consumer_by_channel(struct upmon_amqp *c, uint16_t channel);
void amqp_msg_free_list(struct upmon_amqp_msg *m);

#endif
