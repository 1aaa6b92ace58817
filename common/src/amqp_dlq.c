/*
 * The dead-letter queue operations of dlq.h: list, replay and purge on a connection of their
 * own, and the passive queue.declare behind the queue counters. The last two need the
 * handle's internals (its configuration and its publish channel), hence amqp_int.h.
 */
#include "amqp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/dlq.h"
#include "upmon/log.h"

#define DLQ_IDLE_MS 1500	/* no delivery for this long: the queue is drained */
#define DLQ_TAIL_MS 250		/* idle wait once the messages counted at the start came */
#define DLQ_CONFIRM_MS 10000
#define DLQ_REQUEUE_MS 3000	/* a listing waits this long at most for its requeues */
#define DLQ_MAX_BODY ((size_t)256 << 20)

enum dlq_action { DLQ_LIST, DLQ_REPLAY, DLQ_PURGE };

const char *const upmon_dlq_queues[] = { "monitor_tasks_dead", "notifications_dead", NULL };

bool
upmon_dlq_known(const char *queue)
{
	size_t i;

	for (i = 0; queue != NULL && upmon_dlq_queues[i] != NULL; i++)
		if (strcmp(queue, upmon_dlq_queues[i]) == 0)
			return true;
	return false;
}

int
upmon_dlq_work_queue(const char *queue, char *buf, size_t size)
{
	size_t len;

	if (!upmon_dlq_known(queue))
		return UPMON_AMQP_EINVAL;
	len = strlen(queue) - strlen("_dead");
	if (len + 1 > size)
		return UPMON_AMQP_ETOOBIG;
	memcpy(buf, queue, len);
	buf[len] = '\0';
	return 0;
}

void
upmon_dlq_config_of(const struct upmon_amqp *c, struct upmon_amqp_config *cfg)
{
	*cfg = c->cfg;
}

int
upmon_dlq_queue_stat(struct upmon_amqp *c, const char *queue, long *messages,
    long *consumers)
{
	amqp_queue_declare_ok_t *ok;
	char fields[UPMON_AMQP_NAME_MAX + 16];
	int rc;

	*messages = *consumers = 0;
	if (strlen(queue) >= UPMON_AMQP_NAME_MAX)
		return UPMON_AMQP_ETOOBIG;
	if ((rc = amqp_ensure(c, upmon_mono_ms() + c->cfg.connect_timeout_ms)) != 0)
		return rc;
	ok = amqp_queue_declare(c->conn, AMQP_PUB_CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0,
	    0, amqp_empty_table);
	/* read the answer before amqp_rpc_check releases the decoding buffers */
	if (ok != NULL) {
		*messages = (long)ok->message_count;
		*consumers = (long)ok->consumer_count;
	}
	snprintf(fields, sizeof(fields), "queue=%s", queue);
	return amqp_rpc_check(c, AMQP_PUB_CHANNEL, fields);
}

/* Copies d's headers without the x-upmon-* failure history and the broker's x-death. */
static int
fresh_headers(const struct upmon_amqp_headers *in, struct upmon_amqp_headers *out)
{
	size_t i;
	int rc;

	upmon_amqp_headers_init(out);
	for (i = 0; in != NULL && i < in->count; i++) {
		const char *k = upmon_amqp_headers_key(in, i);
		const char *v = upmon_amqp_headers_value_str(in, i);
		int64_t n;

		if (strncmp(k, "x-upmon-", 8) == 0 || strncmp(k, "x-death", 7) == 0 ||
		    strncmp(k, "x-first-death", 13) == 0 || strncmp(k, "x-last-death", 12) == 0)
			continue;
		if (v != NULL)
			rc = upmon_amqp_headers_set_str(out, k, v, 0);
		else if (upmon_amqp_headers_get_int(in, k, &n) == 0)
			rc = upmon_amqp_headers_set_int(out, k, n);
		else
			continue;
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
replay_one(struct upmon_amqp *c, const struct upmon_amqp_delivery *d, const char *work)
{
	struct upmon_amqp_headers h;
	struct upmon_amqp_message m;
	int rc;

	if ((rc = fresh_headers(d->headers, &h)) != 0)
		return rc;
	memset(&m, 0, sizeof(m));
	m.exchange = "";
	m.routing_key = work;
	m.body = d->body;
	m.body_len = d->body_len;
	m.message_id = *d->message_id ? d->message_id : "replayed";
	m.headers = &h;
	return upmon_amqp_publish_sync(c, &m, DLQ_CONFIRM_MS);
}

/*
 * Ends the consumer: closing its channel requeues every message it holds unacked at once
 * (the listed ones, and one a replay or purge had prefetched but not taken; a nack with
 * requeue would let the broker redeliver them to the same, still open consumer). Then waits
 * (at most DLQ_REQUEUE_MS) until the queue counts want messages as ready again: a quorum
 * queue requeues through its log, so without the wait a listing or a count right after
 * could miss messages that are only on their way back.
 */
static void
give_back(struct upmon_amqp *c, long want)
{
	int64_t deadline = upmon_mono_ms() + DLQ_REQUEUE_MS;
	uint16_t ch;
	long ready, consumers;

	if (!c->connected || c->nconsumers == 0)
		return;		/* a lost connection requeued them already */
	ch = c->consumers[0].channel;
	(void)amqp_channel_close(c->conn, ch, AMQP_REPLY_SUCCESS);
	if (amqp_rpc_check(c, ch, "channel.close") != 0)
		return;
	while (upmon_dlq_queue_stat(c, c->consumers[0].queue, &ready, &consumers) == 0 &&
	    (ready < want || consumers > 0) && upmon_mono_ms() < deadline) {
		log_debug("dlq: %ld ready, %ld consumers, waiting for %ld", ready, consumers,
		    want);
		upmon_sleep_ms(20);
	}
}

/* Takes up to limit messages from queue and lists, replays or purges each. */
static int
run(const struct upmon_amqp_config *cfg0, enum dlq_action action, const char *queue,
    int limit, upmon_dlq_fn fn, void *arg, int *np, char *err, size_t errsize)
{
	struct upmon_amqp_config cfg = *cfg0;
	struct upmon_amqp_delivery *held = NULL;
	struct upmon_amqp *c = NULL;
	char work[UPMON_AMQP_NAME_MAX];
	long ready = 0, consumers;
	int n = 0, i, rc;

	*np = 0;
	if (errsize > 0)
		*err = '\0';
	if (upmon_dlq_work_queue(queue, work, sizeof(work)) != 0 || limit < 1 ||
	    limit > UPMON_DLQ_LIMIT_MAX) {
		snprintf(err, errsize, "unknown dead-letter queue or bad limit");
		return UPMON_AMQP_EINVAL;
	}
	/* A message may be dead BECAUSE it was over the cap: never reject one here (the dead
	 * queues have no dead-letter exchange, so a rejected message would be gone). */
	cfg.max_body = DLQ_MAX_BODY;
	if ((rc = upmon_amqp_new(&cfg, &c)) != 0) {
		snprintf(err, errsize, "bad amqp configuration (see UPMON_AMQP_URL)");
		return rc;
	}
	if ((rc = upmon_amqp_connect(c, cfg.connect_timeout_ms)) != 0) {
		snprintf(err, errsize, "cannot connect to rabbitmq: %s", upmon_amqp_strerror(rc));
		goto out;
	}
	/* how many are waiting now: once they came, stop after a short idle wait */
	if ((rc = upmon_dlq_queue_stat(c, queue, &ready, &consumers)) != 0) {
		snprintf(err, errsize, "cannot consume %s: %s", queue, upmon_amqp_strerror(rc));
		goto out;
	}
	/* list holds every message unacked until the end, so each is seen once */
	if ((rc = upmon_amqp_consume(c, queue, action == DLQ_LIST ? limit : 1)) != 0) {
		snprintf(err, errsize, "cannot consume %s: %s", queue, upmon_amqp_strerror(rc));
		goto out;
	}
	if ((held = calloc((size_t)limit, sizeof(*held))) == NULL) {
		snprintf(err, errsize, "out of memory");
		rc = UPMON_AMQP_ENOMEM;
		goto out;
	}
	while (n < limit) {
		struct upmon_amqp_delivery *d = &held[n];

		rc = upmon_amqp_next(c, n >= ready ? DLQ_TAIL_MS : DLQ_IDLE_MS, d);
		if (rc == UPMON_AMQP_ETIMEDOUT) {
			rc = 0;
			break;
		}
		if (rc != 0) {
			snprintf(err, errsize, "%s: %s", queue, upmon_amqp_strerror(rc));
			break;
		}
		n++;
		if (action == DLQ_LIST) {
			if (fn != NULL && (rc = fn(d, arg)) != 0) {
				snprintf(err, errsize, "listing %s stopped", queue);
				break;
			}
			continue;
		}
		if (action == DLQ_REPLAY && (rc = replay_one(c, d, work)) != 0) {
			/* not acked: the broker keeps the dead copy */
			snprintf(err, errsize, "replay of %s to %s failed: %s", d->message_id, work,
			    upmon_amqp_strerror(rc));
			n--;
			break;
		}
		if ((rc = upmon_amqp_ack(c, d)) != 0) {
			snprintf(err, errsize, "ack of %s failed: %s", d->message_id,
			    upmon_amqp_strerror(rc));
			n--;
			break;
		}
		upmon_amqp_delivery_release(d);
	}
	give_back(c, action == DLQ_LIST ? ready : ready - n);
	*np = n;
out:
	if (held != NULL) {
		/* replay and purge released theirs; a failed one is still held (requeued by the
		 * broker when the connection closes) */
		for (i = 0; i < limit && i <= n; i++)
			upmon_amqp_delivery_release(&held[i]);
		free(held);
	}
	upmon_amqp_free(c);
	return rc;
}

int
upmon_dlq_list(const struct upmon_amqp_config *cfg, const char *queue, int limit,
    upmon_dlq_fn fn, void *arg, int *n, char *err, size_t errsize)
{
	return run(cfg, DLQ_LIST, queue, limit, fn, arg, n, err, errsize);
}

int
upmon_dlq_replay(const struct upmon_amqp_config *cfg, const char *queue, int limit, int *n,
    char *err, size_t errsize)
{
	return run(cfg, DLQ_REPLAY, queue, limit, NULL, NULL, n, err, errsize);
}

int
upmon_dlq_purge(const struct upmon_amqp_config *cfg, const char *queue, int limit, int *n,
    char *err, size_t errsize)
{
	return run(cfg, DLQ_PURGE, queue, limit, NULL, NULL, n, err, errsize);
}
