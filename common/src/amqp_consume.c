/*
 * Consuming: one channel per consumer (a queue may be consumed on several channels) with basic.qos and manual acks, assembly of
 * content frames into messages (for deliveries and for publish returns), the ready list that
 * upmon_amqp_next() hands out, and ack / nack guarded against stale delivery tags.
 */
#include "amqp_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/log.h"

static uint16_t
consumer_channel(size_t i)
{
	return (uint16_t)(AMQP_PUB_CHANNEL + 1 + i);
}

struct amqp_consumer *
amqp_consumer_by_channel(struct upmon_amqp *c, uint16_t channel)
{
	size_t i;

	for (i = 0; i < c->nconsumers; i++)
		if (c->consumers[i].channel == channel)
			return &c->consumers[i];
	return NULL;
}

void
amqp_msg_free_list(struct upmon_amqp_msg *m)
{
	struct upmon_amqp_msg *next;

	for (; m != NULL; m = next) {
		next = m->next;
		free(m);
	}
}

static int
start_one(struct upmon_amqp *c, struct amqp_consumer *cons)
{
	char fields[UPMON_AMQP_NAME_MAX + 16];
	int rc;

	snprintf(fields, sizeof(fields), "queue=%s", cons->queue);
	amqp_channel_open(c->conn, cons->channel);
	if ((rc = amqp_rpc_check(c, cons->channel, fields)) != 0)
		return rc;
	amqp_basic_qos(c->conn, cons->channel, 0, (uint16_t)cons->prefetch, 0);
	if ((rc = amqp_rpc_check(c, cons->channel, fields)) != 0)
		return rc;
	amqp_basic_consume(c->conn, cons->channel, amqp_cstring_bytes(cons->queue),
	    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if ((rc = amqp_rpc_check(c, cons->channel, fields)) != 0)
		return rc;
	log_debug("amqp consuming %s on channel %u prefetch %d", cons->queue, cons->channel,
	    cons->prefetch);
	return 0;
}

/* Opens a channel, sets basic.qos and starts basic.consume for every registered queue. */
int
amqp_consumers_start(struct upmon_amqp *c)
{
	size_t i;
	int rc;

	for (i = 0; i < c->nconsumers; i++)
		if ((rc = start_one(c, &c->consumers[i])) != 0)
			return rc;
	return 0;
}

/* Forgets everything received on the lost connection (the broker requeues it). */
void
amqp_consumers_reset(struct upmon_amqp *c)
{
	size_t i;

	for (i = 0; i < c->nconsumers; i++) {
		amqp_msg_free_list(c->consumers[i].in.msg);
		c->consumers[i].in.msg = NULL;
		c->consumers[i].in.state = IN_IDLE;
	}
	amqp_msg_free_list(c->ready_head);
	c->ready_head = c->ready_tail = NULL;
}

int
amqp_handle_consumer_method(struct upmon_amqp *c, struct amqp_consumer *cons,
    const amqp_frame_t *f)
{
	const amqp_basic_deliver_t *d;
	char why[UPMON_AMQP_NAME_MAX + 64];

	switch (f->payload.method.id) {
	case AMQP_BASIC_DELIVER_METHOD:
		d = f->payload.method.decoded;
		if (cons->in.state != IN_IDLE)
			return amqp_status_error(c, AMQP_STATUS_BAD_AMQP_DATA, "basic.deliver");
		cons->in.state = IN_HEADER;
		cons->in.kind = IN_DELIVER;
		cons->in.delivery_tag = d->delivery_tag;
		cons->in.redelivered = d->redelivered;
		amqp_copy_bytes(cons->in.exchange, sizeof(cons->in.exchange), d->exchange);
		amqp_copy_bytes(cons->in.routing_key, sizeof(cons->in.routing_key),
		    d->routing_key);
		return 0;
	case AMQP_BASIC_CANCEL_METHOD:
		/* The broker cancelled us (queue deleted): start over, re-consuming. */
		snprintf(why, sizeof(why), "broker cancelled the consumer of %s", cons->queue);
		amqp_teardown(c, 1, why);
		return UPMON_AMQP_ECONN;
	default:
		return 0;
	}
}

static int
msg_start(struct upmon_amqp *c, struct amqp_inbound *in, uint16_t channel, const char *queue,
    const amqp_frame_t *f)
{
	const amqp_basic_properties_t *p = f->payload.properties.decoded;
	struct upmon_amqp_msg *m;
	uint64_t size = f->payload.properties.body_size;
	size_t cap = 0;

	if (in->kind == IN_DELIVER && size <= c->cfg.max_body)
		cap = (size_t)size;
	m = calloc(1, sizeof(*m) + cap + 1);
	if (m == NULL)
		return UPMON_AMQP_ENOMEM;
	m->body_size = size;
	m->cap = cap;
	m->oversized = in->kind == IN_DELIVER && size > c->cfg.max_body;
	m->channel = channel;
	m->generation = c->generation;
	m->delivery_tag = in->delivery_tag;
	m->redelivered = in->redelivered;
	memcpy(m->exchange, in->exchange, sizeof(m->exchange));
	memcpy(m->routing_key, in->routing_key, sizeof(m->routing_key));
	snprintf(m->queue, sizeof(m->queue), "%s", queue);
	upmon_amqp_headers_init(&m->headers);
	if (p != NULL && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG))
		amqp_copy_bytes(m->message_id, sizeof(m->message_id), p->message_id);
	if (p != NULL && (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG))
		amqp_copy_bytes(m->content_type, sizeof(m->content_type), p->content_type);
	if (p != NULL && (p->_flags & AMQP_BASIC_HEADERS_FLAG))
		(void)amqp_headers_from_table(&p->headers, &m->headers);
	in->msg = m;
	in->state = IN_BODY;
	return 0;
}

/* A delivery is complete: hand it out, or reject an oversized one (its queue's dead-letter
 * exchange moves it to <queue>_dead with the full body). */
static void
deliver_done(struct upmon_amqp *c, struct amqp_inbound *in)
{
	struct upmon_amqp_msg *m = in->msg;
	char fields[UPMON_AMQP_NAME_MAX + 64];

	in->msg = NULL;
	if (m->oversized) {
		amqp_fields(fields, sizeof(fields), m->queue, m->delivery_tag, -1);
		log_warnf(fields, "amqp rejecting oversized message message_id=%s size=%" PRIu64
		    " max=%zu to the dead-letter queue", m->message_id, m->body_size,
		    c->cfg.max_body);
		c->stats.oversized++;
		(void)amqp_basic_reject(c->conn, m->channel, m->delivery_tag, 0);
		free(m);
		return;
	}
	m->body[m->received] = '\0';
	if (c->ready_tail != NULL)
		c->ready_tail->next = m;
	else
		c->ready_head = m;
	c->ready_tail = m;
	c->stats.delivered++;
}

static void
content_done(struct upmon_amqp *c, struct amqp_inbound *in)
{
	in->state = IN_IDLE;
	if (in->kind == IN_DELIVER) {
		deliver_done(c, in);
		return;
	}
	amqp_return_done(c, in);
	free(in->msg);
	in->msg = NULL;
}

/* Content header and body frames, on the publish channel (returns) or a consumer channel. */
int
amqp_handle_content(struct upmon_amqp *c, const amqp_frame_t *f)
{
	struct amqp_consumer *cons = NULL;
	struct amqp_inbound *in;
	struct upmon_amqp_msg *m;
	size_t len;
	int rc;

	if (f->channel == AMQP_PUB_CHANNEL)
		in = &c->pub_in;
	else if ((cons = amqp_consumer_by_channel(c, f->channel)) != NULL)
		in = &cons->in;
	else
		return 0;
	if (f->frame_type == AMQP_FRAME_HEADER && in->state == IN_HEADER) {
		rc = msg_start(c, in, f->channel, cons ? cons->queue : "", f);
		if (rc != 0)
			return rc;
	} else if (f->frame_type == AMQP_FRAME_BODY && in->state == IN_BODY) {
		m = in->msg;
		len = f->payload.body_fragment.len;
		if (len > m->body_size - m->received)
			return amqp_status_error(c, AMQP_STATUS_BAD_AMQP_DATA, "body frame");
		/* Returns and oversized deliveries have cap 0: their body is skipped. */
		if (m->cap > 0 && len > 0)
			memcpy(m->body + m->received, f->payload.body_fragment.bytes, len);
		m->received += len;
	} else {
		return amqp_status_error(c, AMQP_STATUS_BAD_AMQP_DATA, "unexpected content frame");
	}
	if (in->msg->received == in->msg->body_size)
		content_done(c, in);
	return 0;
}

int
upmon_amqp_consume(struct upmon_amqp *c, const char *queue, int prefetch)
{
	struct amqp_consumer *cons;
	int rc;

	if (queue == NULL || *queue == '\0' || prefetch < 1 || prefetch > 65535)
		return UPMON_AMQP_EINVAL;
	if (strlen(queue) >= UPMON_AMQP_NAME_MAX)
		return UPMON_AMQP_ETOOBIG;
	if (c->nconsumers >= AMQP_CONSUMERS_MAX)
		return UPMON_AMQP_EFULL;
	cons = &c->consumers[c->nconsumers];
	memset(cons, 0, sizeof(*cons));
	snprintf(cons->queue, sizeof(cons->queue), "%s", queue);
	cons->prefetch = prefetch;
	cons->channel = consumer_channel(c->nconsumers);
	c->nconsumers++;
	amqp_refresh(c);
	if (c->connected)
		rc = start_one(c, cons);
	else
		rc = amqp_ensure(c, upmon_mono_ms() + c->cfg.connect_timeout_ms);
	if (rc != 0) {
		/* Not registered: a failed consume must not be retried on every reconnect. */
		c->nconsumers--;
		return rc;
	}
	return 0;
}

static void
fill_delivery(struct upmon_amqp_msg *m, struct upmon_amqp_delivery *out)
{
	int64_t attempt = 0;

	memset(out, 0, sizeof(*out));
	out->body = m->body;
	out->body_len = (size_t)m->received;
	out->message_id = m->message_id;
	out->routing_key = m->routing_key;
	out->exchange = m->exchange;
	out->queue = m->queue;
	out->headers = &m->headers;
	out->delivery_tag = m->delivery_tag;
	out->redelivered = m->redelivered;
	if (upmon_amqp_headers_get_int(&m->headers, UPMON_AMQP_H_ATTEMPT, &attempt) == 0 &&
	    attempt >= 0 && attempt <= INT32_MAX)
		out->attempt = (int)attempt;
	out->priv = m;
	out->generation = m->generation;
	out->channel = m->channel;
}

int
upmon_amqp_next(struct upmon_amqp *c, int timeout_ms, struct upmon_amqp_delivery *out)
{
	int64_t deadline = upmon_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct upmon_amqp_msg *m;
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->nconsumers == 0)
		return UPMON_AMQP_EINVAL;
	for (;;) {
		if ((m = c->ready_head) != NULL) {
			c->ready_head = m->next;
			if (c->ready_head == NULL)
				c->ready_tail = NULL;
			m->next = NULL;
			fill_delivery(m, out);
			return 0;
		}
		/* Down: wait out the backoff inside the timeout, reconnect, re-consume. */
		if ((rc = amqp_ensure(c, deadline)) != 0)
			return rc;
		rc = amqp_pump(c, deadline);
		if (rc == UPMON_AMQP_ETIMEDOUT)
			return rc;
		if (rc != 0 && upmon_mono_ms() >= deadline)
			return rc;
	}
}

void
upmon_amqp_delivery_release(struct upmon_amqp_delivery *d)
{
	if (d == NULL)
		return;
	free(d->priv);
	memset(d, 0, sizeof(*d));
}

static int
check_delivery(const struct upmon_amqp *c, const struct upmon_amqp_delivery *d)
{
	if (d == NULL || d->priv == NULL)
		return UPMON_AMQP_EINVAL;
	if (!c->connected || d->generation != c->generation)
		return UPMON_AMQP_ESTALE;
	return 0;
}

int
upmon_amqp_ack(struct upmon_amqp *c, const struct upmon_amqp_delivery *d)
{
	int rc;

	if ((rc = check_delivery(c, d)) != 0)
		return rc;
	return amqp_status_error(c, amqp_basic_ack(c->conn, d->channel, d->delivery_tag, 0),
	    "basic.ack");
}

int
upmon_amqp_nack(struct upmon_amqp *c, const struct upmon_amqp_delivery *d, int requeue)
{
	int rc;

	if ((rc = check_delivery(c, d)) != 0)
		return rc;
	return amqp_status_error(c, amqp_basic_nack(c->conn, d->channel, d->delivery_tag, 0,
	    requeue ? 1 : 0), "basic.nack");
}
