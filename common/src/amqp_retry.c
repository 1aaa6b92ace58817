/*
 * Retry and dead-letter helpers. Both re-publish the delivery's body and message_id through
 * upmon.retry (where every retry and dead queue is bound by its own name) and wait for the
 * publisher confirm; the caller acks the original only after they return 0, so a crash in
 * between duplicates the message instead of losing it (consumers are idempotent).
 */
#include "amqp_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/log.h"

static int
republish(struct upmon_amqp *c, const struct upmon_amqp_delivery *d, const char *target,
    const struct upmon_amqp_headers *h, int timeout_ms)
{
	struct upmon_amqp_message m;

	memset(&m, 0, sizeof(m));
	m.exchange = UPMON_AMQP_EX_RETRY;
	m.routing_key = target;
	m.body = d->body;
	m.body_len = d->body_len;
	/* publish requires an id; a message that came without one keeps a visible marker. */
	m.message_id = (d->message_id != NULL && *d->message_id) ? d->message_id : "-";
	m.headers = h;
	if (d->priv != NULL && d->priv->content_type[0] != '\0')
		m.content_type = d->priv->content_type;
	return upmon_amqp_publish_sync(c, &m, timeout_ms);
}

static int
check(struct upmon_amqp *c, const struct upmon_amqp_delivery *d, int *levels)
{
	if (c == NULL || d == NULL || d->priv == NULL || d->queue == NULL)
		return UPMON_AMQP_EINVAL;
	return amqp_queue_family(&c->cfg, d->queue, levels);
}

int
upmon_amqp_dead_letter(struct upmon_amqp *c, const struct upmon_amqp_delivery *d,
    const char *error, int timeout_ms)
{
	struct upmon_amqp_headers *h;
	char target[UPMON_AMQP_NAME_MAX], fields[UPMON_AMQP_NAME_MAX + 64];
	int levels, rc;

	if ((rc = check(c, d, &levels)) != 0)
		return rc;
	if ((rc = upmon_amqp_dead_queue_name(d->queue, target, sizeof(target))) != 0)
		return rc;
	h = malloc(sizeof(*h));
	if (h == NULL)
		return UPMON_AMQP_ENOMEM;
	rc = upmon_amqp_dead_headers(d->headers, d->attempt, error, c->service, c->hostname,
	    upmon_wall_ms(), h);
	if (rc == 0)
		rc = republish(c, d, target, h, timeout_ms);
	amqp_fields(fields, sizeof(fields), d->queue, d->delivery_tag, d->attempt);
	if (rc == 0)
		log_warnf(fields, "amqp dead-lettered message_id=%s to %s: %.200s", d->message_id,
		    target, error ? error : "");
	else
		log_warnf(fields, "amqp dead-letter of message_id=%s failed: %s", d->message_id,
		    upmon_amqp_strerror(rc));
	free(h);
	return rc;
}

int
upmon_amqp_retry(struct upmon_amqp *c, const struct upmon_amqp_delivery *d,
    const char *error, int max_retries, int timeout_ms, int *route)
{
	struct upmon_amqp_headers *h;
	char target[UPMON_AMQP_NAME_MAX], fields[UPMON_AMQP_NAME_MAX + 64];
	int levels, next, rc;

	if ((rc = check(c, d, &levels)) != 0)
		return rc;
	if (max_retries < 0)
		return UPMON_AMQP_EINVAL;
	next = d->attempt + 1;
	if (next > max_retries) {
		rc = upmon_amqp_dead_letter(c, d, error, timeout_ms);
		if (rc == 0 && route != NULL)
			*route = UPMON_AMQP_ROUTE_DEAD;
		return rc;
	}
	rc = upmon_amqp_retry_queue_name(d->queue, next < levels ? next : levels, target,
	    sizeof(target));
	if (rc != 0)
		return rc;
	h = malloc(sizeof(*h));
	if (h == NULL)
		return UPMON_AMQP_ENOMEM;
	rc = upmon_amqp_retry_headers(d->headers, next, error, upmon_wall_ms(), h);
	if (rc == 0)
		rc = republish(c, d, target, h, timeout_ms);
	amqp_fields(fields, sizeof(fields), d->queue, d->delivery_tag, next);
	if (rc == 0) {
		log_infof(fields, "amqp retry of message_id=%s via %s: %.200s", d->message_id, target,
		    error ? error : "");
		if (route != NULL)
			*route = UPMON_AMQP_ROUTE_RETRY;
	} else {
		log_warnf(fields, "amqp retry of message_id=%s failed: %s", d->message_id,
		    upmon_amqp_strerror(rc));
	}
	free(h);
	return rc;
}
