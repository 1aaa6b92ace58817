/*
 * Internal interfaces of upmon-mailer between main.c, consume.c and deliveries.c (the parts'
 * public contract is mailer.h). Symbols start with mailer_.
 */
#ifndef UPMON_MAILER_INT_H
#define UPMON_MAILER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailer.h"
#include "upmon/amqp.h"
#include "upmon/db.h"

struct upmon_metrics;
struct mailer_consume;

/* ---- deliveries.c: the SQL of one notification ---------------------------------------- */

/* What the deliveries row of (alert, channel) says before a send. */
enum mailer_claim {
	MAILER_CLAIM_SEND = 0,		/* pending (new or after temporary failures): send */
	MAILER_CLAIM_DELIVERED,		/* already delivered: skip (a duplicate) */
	MAILER_CLAIM_FAILED,		/* permanently failed: skip */
	MAILER_CLAIM_GONE,		/* the channel (or alert) vanished: skip */
	MAILER_CLAIM_BUSY,		/* another worker is sending it right now */
};

/* Registers the mailer's prepared statements on db. 0 or an UPMON_DB_E_* code. */
int mailer_db_prepare(struct upmon_db *db);

/*
 * The channels ev goes to: ev->channel_id alone when set (enabled or not for kind test,
 * enabled otherwise), else the enabled channels linked to ev->monitor_id (monitor_channels),
 * oldest first. A channel whose config cannot be used (an email without "to", a webhook
 * without "url") is left out and logged. New array in *out (caller frees each with
 * mailer_channel_release, then the array), *n entries (0 and NULL when none).
 * 0 or an UPMON_DB_E_* code (E_CONN: PostgreSQL unavailable, try again later).
 */
int mailer_db_channels(struct upmon_db *db, const struct upmon_alert_event *ev,
    struct mailer_channel **out, size_t *n);

/* Sets *exists to whether the alerts row alert_id of owner_id exists (false for a non-uuid
 * id). 0 or an UPMON_DB_E_* code. */
int mailer_db_alert_exists(struct upmon_db *db, const char *alert_id, const char *owner_id,
    bool *exists);

/*
 * Claims the delivery of alert_id to ch: takes a session advisory lock on (alert, channel)
 * (so two workers holding copies of one alert never send it at once), then inserts the
 * deliveries row ON CONFLICT DO NOTHING and reads its status. *claim says what to do; for
 * MAILER_CLAIM_SEND the lock is held until mailer_db_unclaim(); *attempts is the row's
 * attempts so far. 0 or an UPMON_DB_E_* code (the lock is released on failure).
 */
int mailer_db_claim(struct upmon_db *db, const char *alert_id, const struct mailer_channel *ch,
    enum mailer_claim *claim, int *attempts);

/* Releases the advisory lock of mailer_db_claim (best effort, never fails; a lock lost with
 * its connection is gone anyway). */
void mailer_db_unclaim(struct upmon_db *db, const char *alert_id, const char *channel_id);

/*
 * Records the outcome of one send on the pending deliveries row: SENT -> delivered
 * (delivered_at now), PERMFAIL -> failed, TEMPFAIL -> stays pending; attempts + 1 and
 * last_error either way. Idempotent for a row already delivered or failed (no change).
 * 0 or an UPMON_DB_E_* code.
 */
int mailer_db_record(struct upmon_db *db, const char *alert_id, const char *channel_id,
    const struct mailer_outcome *out);

/* ---- consume.c: the worker threads ---------------------------------------------------- */

struct mailer_consume_config {
	struct upmon_amqp_config amqp;
	struct upmon_db_config db;
	struct mailer_smtp_config smtp;		/* strings borrowed: outlive the workers */
	struct mailer_webhook_config webhook;
	struct mailer_links links;
	int workers;				/* threads, 1..64 */
	int max_attempts;			/* attempts before notifications_dead, 1..100 */
	int confirm_timeout_ms;			/* retry / dead-letter publish confirms */
	int hold_ms;				/* how long a message is held while PostgreSQL
						 * is unavailable before it goes to a retry queue */
	struct upmon_metrics *metrics;		/* NULL = none */
};

struct mailer_consume_stats {
	uint64_t notifications;			/* messages finished (acked) */
	uint64_t sent, tempfail, permfail;	/* channel sends */
	uint64_t retried, dead, duplicates;
	uint64_t inflight;			/* messages held now */
	int amqp_connected;			/* threads whose AMQP connection is up */
	int db_failing;				/* threads whose last PostgreSQL call failed */
};

/* Fills cfg with defaults (4 workers, 6 attempts, 10 s confirms, 60 s hold). */
void mailer_consume_config_init(struct mailer_consume_config *cfg);
/* Starts cfg->workers threads (cfg is copied, its strings are borrowed). 0, -EINVAL,
 * -ENOMEM or -EAGAIN; *out is NULL on failure. */
int mailer_consume_start(const struct mailer_consume_config *cfg, struct mailer_consume **out);
/* Asks the threads to stop: each finishes its current message (send, record, ack) and
 * exits; a message held for PostgreSQL is given back to the broker unacked. */
void mailer_consume_stop(struct mailer_consume *c);
/* Waits up to timeout_ms for every thread to exit. 0 or -ETIMEDOUT. */
int mailer_consume_wait(struct mailer_consume *c, int timeout_ms);
void mailer_consume_get_stats(struct mailer_consume *c, struct mailer_consume_stats *out);
/* Stops, joins and frees; NULL is a no-op. */
void mailer_consume_free(struct mailer_consume *c);

#endif
