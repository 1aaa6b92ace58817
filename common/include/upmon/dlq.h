/*
 * The dead-letter queues (monitor_tasks_dead, notifications_dead) for operators: list,
 * replay and purge, shared by `upmonctl dlq` and the gateway's /admin/dlq routes, plus the
 * queue counters of /admin/queues.
 *
 *   list    hands each dead message to a callback and leaves every message where it was
 *           (taken with manual acks and rejected with requeue at the end, or requeued by the
 *           broker if the process dies)
 *   replay  sends each message back to its work queue (the queue name without "_dead")
 *           through the default exchange, with the x-upmon-* failure headers and the broker's
 *           x-death headers dropped so it starts a fresh attempt count, waits for the
 *           broker's confirm, then acks the dead copy: a crash in between leaves a duplicate,
 *           never a loss (consumers are idempotent)
 *   purge   acks (deletes) dead messages
 *
 * Each operation opens its own short-lived connection from a configuration (a consumer
 * cannot be cancelled on a shared handle, and one left behind would hold dead messages), so
 * it takes a moment: it stops after `limit` messages, or when no delivery came for 1.5 s
 * (0.25 s once the messages the queue held at the start have come). At the end it closes
 * the consumer's channel, which requeues whatever it still holds, and waits (at most 3 s)
 * until the queue counts those messages again, so a count or listing right after sees them.
 * Dead messages are never rejected without requeue (the dead queues have no dead-letter
 * exchange): the body cap is raised to 256 MiB for these connections.
 */
#ifndef UPMON_DLQ_H
#define UPMON_DLQ_H

#include <stdbool.h>
#include <stddef.h>

#include "upmon/amqp.h"

#define UPMON_DLQ_LIMIT_MAX 10000

/* The dead-letter queues, NULL-terminated. */
extern const char *const upmon_dlq_queues[];

/* True when queue is one of upmon_dlq_queues. */
bool upmon_dlq_known(const char *queue);

/* Writes the work queue of dead queue q ("monitor_tasks_dead" -> "monitor_tasks") into buf.
 * Returns 0, or UPMON_AMQP_EINVAL when q is not a known dead queue, UPMON_AMQP_ETOOBIG. */
int upmon_dlq_work_queue(const char *queue, char *buf, size_t size);

/* Called by upmon_dlq_list() for each listed message, in queue order; d is borrowed for the
 * call. A non-zero return stops the listing (upmon_dlq_list returns it). */
typedef int (*upmon_dlq_fn)(const struct upmon_amqp_delivery *d, void *arg);

/*
 * The three operations on dead queue queue (must be known), for at most limit (1..
 * UPMON_DLQ_LIMIT_MAX) messages, on a connection of their own made from cfg (copied; only
 * the body cap is changed). *n is the number of messages listed, replayed (confirmed and
 * acked) or purged, also on failure. Return 0, or a negative UPMON_AMQP_E* code (or the
 * callback's value) with one lowercase line for people in err ("cannot connect to rabbitmq:
 * connection lost", "replay of m1 to monitor_tasks failed: ...").
 */
int upmon_dlq_list(const struct upmon_amqp_config *cfg, const char *queue, int limit,
    upmon_dlq_fn fn, void *arg, int *n, char *err, size_t errsize);
int upmon_dlq_replay(const struct upmon_amqp_config *cfg, const char *queue, int limit,
    int *n, char *err, size_t errsize);
int upmon_dlq_purge(const struct upmon_amqp_config *cfg, const char *queue, int limit,
    int *n, char *err, size_t errsize);

/* Copies a handle's configuration into *cfg (its strings point into c: keep c alive while
 * cfg is used), so a caller holding a handle can run the operations above. */
void upmon_dlq_config_of(const struct upmon_amqp *c, struct upmon_amqp_config *cfg);

/* The ready messages and the consumers of queue, by a passive queue.declare on c's publish
 * channel (connecting first, up to cfg.connect_timeout_ms). Returns 0, ECONN, ETIMEDOUT or
 * EPROTO (no such queue: the broker closes the channel and the handle reconnects). */
int upmon_dlq_queue_stat(struct upmon_amqp *c, const char *queue, long *messages,
    long *consumers);

#endif
