/*
 * The outbox relay: a thread that publishes unsent outbox rows (status events, alert events,
 * confirmation re-probe tasks) with publisher confirms and marks them sent. Several relays
 * (one per probe process) share the table through FOR UPDATE SKIP LOCKED.
 */
#ifndef UPMON_PROBE_RELAY_H
#define UPMON_PROBE_RELAY_H

#include "upmon/amqp.h"
#include "upmon/db.h"

struct upmon_metrics;
struct probe_relay;

struct probe_relay_config {
	struct upmon_db_config db;	/* url required */
	struct upmon_amqp_config amqp;	/* url required */
	int batch;			/* rows per round, default 200 */
	int poll_ms;			/* look for rows at least this often, default 1000 */
	struct upmon_metrics *metrics;	/* may be NULL */
};

void probe_relay_config_init(struct probe_relay_config *cfg);
/* Starts the relay thread. 0, -EINVAL, -ENOMEM. */
int probe_relay_start(const struct probe_relay_config *cfg, struct probe_relay **out);
/* Asks the relay to look at the outbox now (thread-safe, cheap, never blocks). */
void probe_relay_wake(void *relay);
/* Publishes what is waiting (for at most timeout_ms), stops the thread, frees. NULL ok. */
void probe_relay_stop(struct probe_relay *r, int timeout_ms);

#endif
