/*
 * Publishing. Tasks go out with publisher confirms and many in flight: publish returns at
 * once with a tag, and upmon_amqp_confirm_wait() reports outcomes later in strict tag order,
 * so the in-flight bookkeeping is a FIFO ring of (tag, monitor, slot). A nacked or lost
 * publish is queued again with the same task id unless its monitor changed or went away.
 * While the broker is down (or too much is in flight) due slots wait in a bounded backlog,
 * published when the broker is back; a slot older than its monitor's interval is counted
 * as missed instead (the next slot is already due).
 */
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/amqp.h"
#include "upmon/backoff.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define CONFIRM_BATCH	512
#define LOG_EVERY_MS	10000
#define COLLECT_EVERY_MS 2

/* ---- ring ---- */

void
sched_ring_init(struct sched_ring *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void
sched_ring_release(struct sched_ring *r)
{
	free(r->v);
	sched_ring_init(r, r->max);
}

struct sched_due *
sched_ring_at(struct sched_ring *r, size_t i)
{
	return &r->v[(r->head + i) % r->cap];
}

int
sched_ring_push(struct sched_ring *r, const struct sched_due *d)
{
	struct sched_due *v;
	size_t ncap, i;

	if (r->max > 0 && r->n >= r->max)
		return -ENOSPC;
	if (r->n == r->cap) {
		ncap = r->cap ? r->cap * 2 : 1024;
		if ((v = malloc(ncap * sizeof(*v))) == NULL)
			return -ENOMEM;
		for (i = 0; i < r->n; i++)
			v[i] = *sched_ring_at(r, i);
		free(r->v);
		r->v = v;
		r->cap = ncap;
		r->head = 0;
	}
	r->v[(r->head + r->n) % r->cap] = *d;
	r->n++;
	return 0;
}

int
sched_ring_pop(struct sched_ring *r, struct sched_due *d)
{
	if (r->n == 0)
		return -ENOENT;
	if (d != NULL)
		*d = r->v[r->head];
	r->head = (r->head + 1) % r->cap;
	r->n--;
	return 0;
}

/* ---- publisher ---- */

int
sched_pub_init(struct sched_pub *p, struct upmon_amqp *amqp, struct sched_monitors *mons,
    struct sched_metrics *sm, size_t max_backlog, size_t max_in_flight)
{
	memset(p, 0, sizeof(*p));
	p->amqp = amqp;
	p->mons = mons;
	p->metrics = sm;
	p->max_in_flight = max_in_flight;
	sched_ring_init(&p->in_flight, 0);
	sched_ring_init(&p->backlog, max_backlog);
	return 0;
}

void
sched_pub_release(struct sched_pub *p)
{
	sched_ring_release(&p->in_flight);
	sched_ring_release(&p->backlog);
}

static void
update_gauges(struct sched_pub *p)
{
	upmon_gauge_set(p->metrics->backlog, (double)p->backlog.n);
	upmon_gauge_set(p->metrics->in_flight, (double)p->in_flight.n);
}

/* The entry d refers to when it is still current, else NULL. */
static struct sched_mon *
due_mon(struct sched_pub *p, const struct sched_due *d)
{
	struct sched_mon *m = sched_monitors_get(p->mons, d->no);

	if (m == NULL || m->invalid || m->version != d->version)
		return NULL;
	return m;
}

/*
 * Sends one task. 0 when sent or dropped for good (monitor gone, encoding refused);
 * UPMON_AMQP_ECONN / EFULL when it should wait in the backlog.
 */
static int
publish_one(struct sched_pub *p, struct sched_due *d, int64_t now_us)
{
	struct upmon_amqp_message msg;
	struct upmon_task t;
	struct sched_mon *m;
	char *body = NULL;
	size_t len;
	int rc;

	if ((m = due_mon(p, d)) == NULL)
		return 0;
	t = m->task;		/* shallow: the strings stay the template's */
	t.scheduled_at = d->slot;
	t.attempt = 1;
	if (upmon_task_id_format(t.task_id, sizeof(t.task_id), t.monitor_id, d->slot, 1) != 0)
		return 0;
	if ((rc = upmon_msg_task_encode(&t, &body, &len)) != 0) {
		log_ctx_set(t.monitor_id, t.task_id);
		log_warnx("task not encoded (%d): dropped", rc);
		log_ctx_clear();
		return 0;
	}
	memset(&msg, 0, sizeof(msg));
	msg.exchange = UPMON_AMQP_EX_TASKS;
	msg.routing_key = UPMON_AMQP_KEY_TASKS;
	msg.body = body;
	msg.body_len = len;
	msg.message_id = t.task_id;
	rc = upmon_amqp_publish(p->amqp, &msg, &d->tag);
	free(body);
	if (rc == UPMON_AMQP_ECONN || rc == UPMON_AMQP_EFULL)
		return rc;
	if (rc != 0) {
		log_ctx_set(t.monitor_id, t.task_id);
		log_warnx("task not published: %s", upmon_amqp_strerror(rc));
		log_ctx_clear();
		return 0;
	}
	if (sched_ring_push(&p->in_flight, d) != 0)
		log_warnx("out of memory tracking an in-flight task");
	upmon_counter_inc(p->metrics->published);
	if (d->again)
		upmon_counter_inc(p->metrics->republished);
	else
		upmon_histogram_observe(p->metrics->lateness,
		    (double)(now_us - d->slot * 1000) / 1e6);
	return 0;
}

static void
to_backlog(struct sched_pub *p, const struct sched_due *d)
{
	if (sched_ring_push(&p->backlog, d) != 0)
		upmon_counter_inc(p->metrics->missed);
}

static bool
can_publish(struct sched_pub *p)
{
	return upmon_amqp_is_connected(p->amqp) && p->in_flight.n < p->max_in_flight;
}

void
sched_pub_due(struct sched_pub *p, uint32_t no, int64_t slot, int64_t now_us)
{
	struct sched_mon *m = sched_monitors_get(p->mons, no);
	struct sched_due d;

	if (m == NULL)
		return;
	memset(&d, 0, sizeof(d));
	d.slot = slot;
	d.no = no;
	d.version = m->version;
	if (p->backlog.n > 0 || !can_publish(p) || publish_one(p, &d, now_us) != 0)
		to_backlog(p, &d);
}

static void
collect(struct sched_pub *p)
{
	struct upmon_amqp_confirm out[CONFIRM_BATCH];
	struct sched_due d;
	size_t n, i;
	int64_t now;

	do {
		n = 0;
		(void)upmon_amqp_confirm_wait(p->amqp, 0, out, CONFIRM_BATCH, &n);
		for (i = 0; i < n; i++) {
			/* strict tag order: the head is this outcome, unless the outcome
			 * is of a publish dropped with leadership (older than the head) */
			while (p->in_flight.n > 0 &&
			    sched_ring_at(&p->in_flight, 0)->tag < out[i].tag)
				sched_ring_pop(&p->in_flight, NULL);
			if (p->in_flight.n == 0 ||
			    sched_ring_at(&p->in_flight, 0)->tag != out[i].tag)
				continue;
			sched_ring_pop(&p->in_flight, &d);
			switch (out[i].outcome) {
			case UPMON_AMQP_ACKED:
				upmon_counter_inc(p->metrics->confirmed);
				break;
			case UPMON_AMQP_NACKED:
			case UPMON_AMQP_LOST:
				if (due_mon(p, &d) != NULL) {
					d.again = true;
					to_backlog(p, &d);
				}
				break;
			case UPMON_AMQP_RETURNED:
				upmon_counter_inc(p->metrics->returned);
				now = upmon_mono_ms();
				if (now - p->returned_logged_ms >= LOG_EVERY_MS) {
					p->returned_logged_ms = now;
					log_warnx("task %s returned unroutable: is %s bound to "
					    "%s?", out[i].message_id, UPMON_AMQP_Q_TASKS,
					    UPMON_AMQP_EX_TASKS);
				}
				break;
			}
		}
	} while (n == CONFIRM_BATCH);
}

void
sched_pub_service(struct sched_pub *p, int64_t now_us)
{
	struct sched_due *d;
	struct sched_mon *m;
	int64_t now_ms = now_us / 1000;
	int rc;

	/* outcomes are read off the socket by every poll anyway; collecting them every
	 * couple of ms (not every turn) saves a system call per task */
	if (now_ms - p->collected_ms >= COLLECT_EVERY_MS || !can_publish(p) ||
	    p->backlog.n > 0) {
		p->collected_ms = now_ms;
		collect(p);
	}
	while (p->backlog.n > 0 && can_publish(p)) {
		d = sched_ring_at(&p->backlog, 0);
		if ((m = due_mon(p, d)) == NULL) {
			sched_ring_pop(&p->backlog, NULL);
			continue;
		}
		if (now_ms - d->slot > (int64_t)m->task.interval_seconds * 1000) {
			upmon_counter_inc(p->metrics->missed);
			sched_ring_pop(&p->backlog, NULL);
			continue;
		}
		if ((rc = publish_one(p, d, now_us)) != 0)
			break;
		sched_ring_pop(&p->backlog, NULL);
	}
	/* a long outage: drop what aged out even while nothing can be published */
	while (p->backlog.n > 0 && !can_publish(p)) {
		d = sched_ring_at(&p->backlog, 0);
		m = due_mon(p, d);
		if (m != NULL && now_ms - d->slot <= (int64_t)m->task.interval_seconds * 1000)
			break;
		if (m != NULL)
			upmon_counter_inc(p->metrics->missed);
		sched_ring_pop(&p->backlog, NULL);
	}
	update_gauges(p);
}

void
sched_pub_drop(struct sched_pub *p)
{
	p->in_flight.n = 0;
	p->in_flight.head = 0;
	p->backlog.n = 0;
	p->backlog.head = 0;
	update_gauges(p);
}

int64_t
sched_pub_oldest(struct sched_pub *p)
{
	int64_t oldest = INT64_MAX;
	size_t i;
	struct sched_ring *rings[2] = { &p->in_flight, &p->backlog };
	int r;

	for (r = 0; r < 2; r++)
		for (i = 0; i < rings[r]->n; i++)
			if (sched_ring_at(rings[r], i)->slot < oldest)
				oldest = sched_ring_at(rings[r], i)->slot;
	return oldest;
}
