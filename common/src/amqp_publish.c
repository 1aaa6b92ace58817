/*
 * Publishing with publisher confirms and mandatory, without a round trip per message:
 * upmon_amqp_publish() sends and records the message in a list ordered by tag; the frame pump
 * resolves entries on basic.ack / basic.nack (both with "multiple") and basic.return (matched
 * by message_id and route, see amqp_return_done); upmon_amqp_confirm_wait() hands resolved
 * outcomes to the caller. rabbitmq-c 0.11 has no confirm-wait helper of its own.
 */
#include "amqp_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/log.h"

/* Frames handled past the deadline before confirm_wait gives up draining. */
#define OVERTIME_FRAMES 256

static uint32_t
route_hash(const char *exchange, size_t elen, const char *key, size_t klen)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < elen; i++)
		h = (h ^ (unsigned char)exchange[i]) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (i = 0; i < klen; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h;
}

/* Index of the first entry with tag >= tag (entries are sorted by tag). */
static size_t
lower_bound(const struct upmon_amqp *c, uint64_t tag)
{
	size_t lo = 0, hi = c->npending, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c->pending[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
resolve(struct upmon_amqp *c, struct amqp_pending *p, int state)
{
	if (p->state != PEND_WAIT)
		return;
	if (state == PEND_ACKED && p->returned)
		state = PEND_RETURNED;
	p->state = state;
	c->nwait--;
	switch (state) {
	case PEND_ACKED: c->stats.acked++; break;
	case PEND_NACKED: c->stats.nacked++; break;
	case PEND_RETURNED: c->stats.returned++; break;
	default: c->stats.lost++; break;
	}
	if (state != PEND_ACKED)
		log_warnf(NULL, "amqp publish tag=%" PRIu64 " message_id=%s: %s", p->tag,
		    p->message_id, state == PEND_NACKED ? "nacked" :
		    state == PEND_RETURNED ? "returned unroutable" : "lost with the connection");
}

static void
confirm(struct upmon_amqp *c, uint64_t seq, int multiple, int state)
{
	uint64_t tag = c->tag_base + seq;
	size_t i;

	if (multiple) {
		for (i = 0; i < c->npending && c->pending[i].tag <= tag; i++)
			resolve(c, &c->pending[i], state);
		return;
	}
	i = lower_bound(c, tag);
	if (i < c->npending && c->pending[i].tag == tag)
		resolve(c, &c->pending[i], state);
}

/* Every publish still waiting becomes LOST (called when the connection goes). */
void
amqp_confirms_lost(struct upmon_amqp *c)
{
	size_t i;

	for (i = 0; i < c->npending && c->nwait > 0; i++)
		resolve(c, &c->pending[i], PEND_LOST);
	c->pub_in.state = IN_IDLE;
	amqp_msg_free_list(c->pub_in.msg);
	c->pub_in.msg = NULL;
}

/* basic.ack / basic.nack / basic.return on the publish channel. */
int
amqp_handle_pub_method(struct upmon_amqp *c, const amqp_frame_t *f)
{
	const amqp_basic_ack_t *ack;
	const amqp_basic_nack_t *nack;
	const amqp_basic_return_t *ret;

	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD:
		ack = f->payload.method.decoded;
		confirm(c, ack->delivery_tag, ack->multiple, PEND_ACKED);
		return 0;
	case AMQP_BASIC_NACK_METHOD:
		nack = f->payload.method.decoded;
		confirm(c, nack->delivery_tag, nack->multiple, PEND_NACKED);
		return 0;
	case AMQP_BASIC_RETURN_METHOD:
		/* Content header and body frames follow; amqp_handle_content reads them. */
		ret = f->payload.method.decoded;
		if (c->pub_in.state != IN_IDLE)
			return amqp_status_error(c, AMQP_STATUS_BAD_AMQP_DATA, "basic.return");
		c->pub_in.state = IN_HEADER;
		c->pub_in.kind = IN_RETURN;
		amqp_copy_bytes(c->pub_in.exchange, sizeof(c->pub_in.exchange), ret->exchange);
		amqp_copy_bytes(c->pub_in.routing_key, sizeof(c->pub_in.routing_key),
		    ret->routing_key);
		log_debug("amqp basic.return %u for exchange %s key %s", ret->reply_code,
		    c->pub_in.exchange, c->pub_in.routing_key);
		return 0;
	default:
		return 0;
	}
}

/* A returned message has been read completely: mark the oldest waiting publish with the same
 * message_id and route. The broker sends basic.return before the basic.ack of the same
 * message, so the ack that follows resolves the entry as RETURNED. */
void
amqp_return_done(struct upmon_amqp *c, struct amqp_inbound *in)
{
	uint32_t h = route_hash(in->exchange, strlen(in->exchange), in->routing_key,
	    strlen(in->routing_key));
	const char *id = in->msg != NULL ? in->msg->message_id : "";
	size_t i;

	for (i = 0; i < c->npending; i++) {
		struct amqp_pending *p = &c->pending[i];

		if (p->state == PEND_WAIT && !p->returned && p->route_hash == h &&
		    strcmp(p->message_id, id) == 0) {
			p->returned = 1;
			return;
		}
	}
	log_warnx("amqp returned message message_id=%s matches no publish", id);
}

static int
check_message(const struct upmon_amqp *c, const struct upmon_amqp_message *m)
{
	if (m == NULL || m->exchange == NULL || m->routing_key == NULL ||
	    m->message_id == NULL || *m->message_id == '\0' ||
	    (m->body == NULL && m->body_len > 0))
		return UPMON_AMQP_EINVAL;
	if (strlen(m->message_id) >= UPMON_AMQP_ID_MAX ||
	    strlen(m->exchange) >= UPMON_AMQP_NAME_MAX ||
	    strlen(m->routing_key) >= UPMON_AMQP_NAME_MAX ||
	    (m->content_type != NULL && strlen(m->content_type) >= UPMON_AMQP_NAME_MAX) ||
	    m->body_len > c->cfg.max_body)
		return UPMON_AMQP_ETOOBIG;
	return 0;
}

static int
pending_reserve(struct upmon_amqp *c)
{
	struct amqp_pending *p;
	size_t cap;

	if (c->npending < c->cap_pending)
		return 0;
	cap = c->cap_pending ? c->cap_pending * 2 : 64;
	if (cap > c->cfg.max_unconfirmed)
		cap = c->cfg.max_unconfirmed;
	p = realloc(c->pending, cap * sizeof(*p));
	if (p == NULL)
		return UPMON_AMQP_ENOMEM;
	c->pending = p;
	c->cap_pending = cap;
	return 0;
}

int
amqp_publish_raw(struct upmon_amqp *c, const struct upmon_amqp_message *m, int sync,
    uint64_t *tag)
{
	amqp_table_entry_t entries[UPMON_AMQP_HEADERS_MAX];
	amqp_basic_properties_t props;
	struct amqp_pending *p;
	amqp_bytes_t body;
	int rc, st;

	if ((rc = check_message(c, m)) != 0)
		return rc;
	if (c->npending >= c->cfg.max_unconfirmed)
		return UPMON_AMQP_EFULL;
	if ((rc = pending_reserve(c)) != 0)
		return rc;
	amqp_refresh(c);
	if ((rc = amqp_ensure(c, upmon_mono_ms())) != 0)
		return rc;
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
	props.content_type = amqp_cstring_bytes(m->content_type ? m->content_type :
	    "application/json");
	props.delivery_mode = 2;
	props.message_id = amqp_cstring_bytes(m->message_id);
	props.timestamp = (uint64_t)(upmon_wall_ms() / 1000);
	if (m->headers != NULL && m->headers->count > 0) {
		if (amqp_headers_to_table(m->headers, entries, UPMON_AMQP_HEADERS_MAX,
		    &props.headers) != 0)
			return UPMON_AMQP_ETOOBIG;
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
	}
	body.len = m->body_len;
	body.bytes = (void *)(uintptr_t)m->body;
	st = amqp_basic_publish(c->conn, AMQP_PUB_CHANNEL, amqp_cstring_bytes(m->exchange),
	    amqp_cstring_bytes(m->routing_key), 1, 0, &props, body);
	if (st != AMQP_STATUS_OK)
		return amqp_status_error(c, st, "basic.publish");
	p = &c->pending[c->npending++];
	memset(p, 0, sizeof(*p));
	p->tag = c->tag_base + c->next_seq++;
	p->route_hash = route_hash(m->exchange, strlen(m->exchange), m->routing_key,
	    strlen(m->routing_key));
	p->state = PEND_WAIT;
	p->sync = sync;
	snprintf(p->message_id, sizeof(p->message_id), "%s", m->message_id);
	c->nwait++;
	c->stats.published++;
	*tag = p->tag;
	return 0;
}

int
upmon_amqp_publish(struct upmon_amqp *c, const struct upmon_amqp_message *m, uint64_t *tag)
{
	return amqp_publish_raw(c, m, 0, tag);
}

/* Moves the resolved prefix of the list to out (up to max), so outcomes are reported in
 * strict tag order: a caller can keep its publishes in a FIFO and pop from the front. */
static void
drain(struct upmon_amqp *c, struct upmon_amqp_confirm *out, size_t max, size_t *n)
{
	size_t i;

	for (i = 0; i < c->npending && *n < max; i++) {
		struct amqp_pending *p = &c->pending[i];

		if (p->state == PEND_WAIT || p->sync)
			break;
		out[*n].tag = p->tag;
		out[*n].outcome = p->state;
		memcpy(out[*n].message_id, p->message_id, sizeof(p->message_id));
		(*n)++;
	}
	if (i > 0) {
		memmove(c->pending, c->pending + i, (c->npending - i) * sizeof(c->pending[0]));
		c->npending -= i;
	}
}

int
upmon_amqp_confirm_wait(struct upmon_amqp *c, int timeout_ms,
    struct upmon_amqp_confirm *out, size_t max, size_t *n)
{
	int64_t deadline = upmon_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int rc, overtime = 0;

	*n = 0;
	for (;;) {
		drain(c, out, max, n);
		if (c->nwait == 0 || *n >= max || !c->connected)
			break;
		/* (a publish_sync entry can only be pending inside publish_sync itself) */
		rc = amqp_pump(c, deadline);
		if (rc == UPMON_AMQP_ETIMEDOUT)
			break;
		if (upmon_mono_ms() >= deadline && ++overtime > OVERTIME_FRAMES)
			break;
	}
	drain(c, out, max, n);
	return c->nwait == 0 ? 0 : UPMON_AMQP_ETIMEDOUT;
}

size_t
upmon_amqp_unconfirmed(const struct upmon_amqp *c)
{
	return c->nwait;
}

static void
pending_remove(struct upmon_amqp *c, size_t i)
{
	if (c->pending[i].state == PEND_WAIT)
		c->nwait--;
	memmove(&c->pending[i], &c->pending[i + 1],
	    (c->npending - i - 1) * sizeof(c->pending[0]));
	c->npending--;
}

/* Waits for the outcome of tag (a sync entry) and removes it. */
int
amqp_wait_tag(struct upmon_amqp *c, uint64_t tag, int64_t deadline_ms)
{
	size_t i;
	int rc, state;

	for (;;) {
		i = lower_bound(c, tag);
		if (i >= c->npending || c->pending[i].tag != tag)
			return UPMON_AMQP_ELOST;
		state = c->pending[i].state;
		if (state != PEND_WAIT)
			break;
		rc = amqp_pump(c, deadline_ms);
		if (rc == UPMON_AMQP_ETIMEDOUT) {
			pending_remove(c, i);
			return rc;
		}
	}
	pending_remove(c, i);
	switch (state) {
	case PEND_ACKED: return 0;
	case PEND_NACKED: return UPMON_AMQP_ENACK;
	case PEND_RETURNED: return UPMON_AMQP_ERETURNED;
	default: return UPMON_AMQP_ELOST;
	}
}

int
upmon_amqp_publish_sync(struct upmon_amqp *c, const struct upmon_amqp_message *m,
    int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	uint64_t tag;
	int rc;

	amqp_refresh(c);
	if ((rc = amqp_ensure(c, deadline)) != 0)
		return rc;
	if ((rc = amqp_publish_raw(c, m, 1, &tag)) != 0)
		return rc;
	return amqp_wait_tag(c, tag, deadline);
}
