/*
 * The mailer's worker threads (mailer_int.h). Each thread owns one AMQP handle with one
 * prefetch-1 consumer on `notifications` and one PostgreSQL connection; nothing is shared
 * between threads but the stop flag, the counters and the metrics (atomics).
 *
 * One notification on a thread:
 *   next -> decode (bad: notifications_dead, ack)
 *        -> channels (the event's channel, or the monitor's linked enabled channels)
 *        -> alerts row exists? (not for kind test; missing: ack and drop)
 *        -> per channel: claim (advisory lock + deliveries row) -> send -> record -> unlock
 *        -> every channel done: ack; a temporary failure: notifications.retry.<n>, then ack;
 *           past max_attempts: notifications_dead with the last error, then ack.
 * The ack always follows the commits of the records, so a crash before it resends at most
 * the sends whose records were not yet committed (README.md, "Duplicates").
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailer_int.h"
#include "upmon/backoff.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define IDLE_MS		250	/* wait for a delivery */
#define HOLD_MIN_MS	250	/* first wait while PostgreSQL is unavailable */
#define HOLD_MAX_MS	5000	/* cap of that wait */
#define ERR_MAX		(UPMON_ERROR_MAX + 1)

struct consume_metrics {
	struct upmon_counter *n_done, *n_retried, *n_dead, *n_dropped, *n_invalid;
	struct upmon_counter *d[2][3];		/* [kind][result] */
	struct upmon_histogram *seconds;
	struct upmon_counter *retried, *dead, *duplicates, *record_lost;
	struct upmon_gauge *amqp_up, *db_up, *inflight;
};

struct mthread {
	struct mailer_consume *c;
	int idx;
	pthread_t tid;
	bool started;
	struct upmon_amqp *amqp;
	struct upmon_db *db;
	bool consuming;
	int64_t consume_retry_at;
	unsigned consume_tries;
	uint32_t jitter;
	int amqp_up, db_ok;		/* as last published to the gauges */
	atomic_int amqp_up_a, db_failing_a;
	struct log_ratelimit rl;
};

struct mailer_consume {
	struct mailer_consume_config cfg;
	struct mthread *t;
	int nthreads;
	atomic_int stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running;
	struct consume_metrics m;
	atomic_uint_fast64_t notifications, sent, tempfail, permfail, retried, dead;
	atomic_uint_fast64_t duplicates, inflight;
};

/* What one notification came to after its channels. */
struct note {
	struct upmon_amqp_delivery *d;
	struct upmon_alert_event ev;
	bool temp;			/* some channel failed temporarily: retry the message */
	char error[ERR_MAX];		/* the last temporary failure */
};

static const char *const kind_names[2] = { "email", "webhook" };
static const char *const result_names[3] = { "sent", "tempfail", "permfail" };

void
mailer_consume_config_init(struct mailer_consume_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	upmon_amqp_config_init(&cfg->amqp);
	upmon_db_config_init(&cfg->db);
	cfg->workers = 4;
	cfg->max_attempts = cfg->amqp.notify_retry_levels + 1;
	cfg->confirm_timeout_ms = 10000;
	cfg->hold_ms = 60000;
}

static void
metrics_init(struct consume_metrics *m, struct upmon_metrics *reg)
{
	static const double secs[] = UPMON_METRICS_SECONDS_BUCKETS;
	static const char *const nh = "Notifications finished (acked), by outcome.";
	static const char *const dh = "Sends to one channel, by channel kind and result.";
	int k, r;

	memset(m, 0, sizeof(*m));
	if (reg == NULL)
		return;
	m->n_done = upmon_metrics_counter(reg, "upmon_mailer_notifications_total", nh, "outcome",
	    "done", NULL);
	m->n_retried = upmon_metrics_counter(reg, "upmon_mailer_notifications_total", nh, "outcome",
	    "retried", NULL);
	m->n_dead = upmon_metrics_counter(reg, "upmon_mailer_notifications_total", nh, "outcome",
	    "dead", NULL);
	m->n_dropped = upmon_metrics_counter(reg, "upmon_mailer_notifications_total", nh, "outcome",
	    "dropped", NULL);
	m->n_invalid = upmon_metrics_counter(reg, "upmon_mailer_notifications_total", nh, "outcome",
	    "invalid", NULL);
	for (k = 0; k < 2; k++)
		for (r = 0; r < 3; r++)
			m->d[k][r] = upmon_metrics_counter(reg, "upmon_mailer_deliveries_total", dh,
			    "kind", kind_names[k], "result", result_names[r], NULL);
	m->seconds = upmon_metrics_histogram(reg, "upmon_mailer_delivery_seconds",
	    "Time of one send (SMTP transaction or webhook request).", secs,
	    sizeof(secs) / sizeof(secs[0]), NULL);
	m->retried = upmon_metrics_counter(reg, "upmon_mailer_retried_total",
	    "Notifications sent to a retry queue after a temporary failure.", NULL);
	m->dead = upmon_metrics_counter(reg, "upmon_mailer_dead_total",
	    "Notifications dead-lettered (undecodable, or past the attempts).", NULL);
	m->duplicates = upmon_metrics_counter(reg, "upmon_mailer_duplicates_skipped_total",
	    "Channel deliveries skipped because they were already delivered.", NULL);
	m->record_lost = upmon_metrics_counter(reg, "upmon_mailer_record_lost_total",
	    "Sends whose outcome could not be recorded in time (the message is retried and "
	    "the send may repeat).", NULL);
	m->amqp_up = upmon_metrics_gauge(reg, "upmon_mailer_amqp_connected",
	    "Worker threads whose RabbitMQ connection is up.", NULL);
	m->db_up = upmon_metrics_gauge(reg, "upmon_mailer_db_connected",
	    "Worker threads whose PostgreSQL connection is up.", NULL);
	m->inflight = upmon_metrics_gauge(reg, "upmon_mailer_inflight",
	    "Notifications taken from the broker and not yet acked.", NULL);
}

/* Publishes the thread's connection states to the gauges and the stats. */
static void
update_conn(struct mthread *t, bool db_failing)
{
	struct consume_metrics *m = &t->c->m;
	int up = upmon_amqp_is_connected(t->amqp), ok = upmon_db_connected(t->db);

	if (up != t->amqp_up)
		upmon_gauge_add(m->amqp_up, up - t->amqp_up);
	if (ok != t->db_ok)
		upmon_gauge_add(m->db_up, ok - t->db_ok);
	t->amqp_up = up;
	t->db_ok = ok;
	atomic_store(&t->amqp_up_a, up);
	atomic_store(&t->db_failing_a, db_failing ? 1 : 0);
}

static bool
stopping(const struct mthread *t)
{
	return atomic_load(&t->c->stopping) != 0;
}

/*
 * Waits after a failed PostgreSQL call while servicing the AMQP connection (heartbeats).
 * Returns false when the hold is over (deadline passed, or stop requested and !keep).
 */
static bool
hold(struct mthread *t, int64_t deadline, unsigned *tries, int rc, bool keep)
{
	int64_t now = upmon_mono_ms(), ms;
	unsigned suppressed;

	update_conn(t, true);
	if (now >= deadline || (!keep && stopping(t)))
		return false;
	if (log_ratelimit(&t->rl, 10000, &suppressed))
		log_warnx("postgresql unavailable (%s): holding the notification (%u similar "
		    "suppressed)", upmon_db_strerror(rc), suppressed);
	ms = upmon_backoff_ms(HOLD_MIN_MS, HOLD_MAX_MS, (*tries)++,
	    upmon_jitter_next(&t->jitter));
	if (now + ms > deadline)
		ms = deadline - now;
	(void)upmon_amqp_poll(t->amqp, (int)ms);
	return true;
}

/* ---- ends of a message -------------------------------------------------------------- */

static void
finish(struct mthread *t, const struct upmon_amqp_delivery *d, struct upmon_counter *outcome)
{
	int rc = upmon_amqp_ack(t->amqp, d);

	if (rc != 0)
		log_warnx("ack failed: %s (the broker redelivers the notification)",
		    upmon_amqp_strerror(rc));
	atomic_fetch_add(&t->c->notifications, 1);
	upmon_counter_inc(outcome);
}

static void
requeue(struct mthread *t, const struct upmon_amqp_delivery *d)
{
	(void)upmon_amqp_nack(t->amqp, d, 1);
}

static void
dead_letter(struct mthread *t, const struct upmon_amqp_delivery *d, const char *error,
    struct upmon_counter *outcome)
{
	int rc;

	rc = upmon_amqp_dead_letter(t->amqp, d, error, t->c->cfg.confirm_timeout_ms);
	if (rc != 0) {
		log_warnx("dead-letter publish failed: %s (requeued)", upmon_amqp_strerror(rc));
		requeue(t, d);
		return;
	}
	atomic_fetch_add(&t->c->dead, 1);
	upmon_counter_inc(t->c->m.dead);
	finish(t, d, outcome);
}

/* A temporary failure: the next retry queue, or notifications_dead past the attempts. */
static void
retry(struct mthread *t, const struct upmon_amqp_delivery *d, const char *error)
{
	const struct mailer_consume_config *cfg = &t->c->cfg;
	int rc, route = 0, attempt = d->attempt + 1;

	if (attempt >= cfg->max_attempts) {
		log_warnx("giving up after %d attempts: %s", attempt, error);
		dead_letter(t, d, error, t->c->m.n_dead);
		return;
	}
	rc = upmon_amqp_retry(t->amqp, d, error, cfg->max_attempts - 1,
	    cfg->confirm_timeout_ms, &route);
	if (rc != 0) {
		log_warnx("retry publish failed: %s (requeued)", upmon_amqp_strerror(rc));
		requeue(t, d);
		return;
	}
	if (route == UPMON_AMQP_ROUTE_DEAD) {
		atomic_fetch_add(&t->c->dead, 1);
		upmon_counter_inc(t->c->m.dead);
		finish(t, d, t->c->m.n_dead);
		return;
	}
	log_warnx("attempt %d of %d failed, retrying later: %s", attempt, cfg->max_attempts,
	    error);
	atomic_fetch_add(&t->c->retried, 1);
	upmon_counter_inc(t->c->m.retried);
	finish(t, d, t->c->m.n_retried);
}

/* ---- one channel ---------------------------------------------------------------------- */

static void
send_one(struct mthread *t, const struct note *n, const struct mailer_channel *ch,
    const char *delivery_id, struct mailer_outcome *out)
{
	const struct mailer_consume_config *cfg = &t->c->cfg;
	int64_t t0 = upmon_mono_ms();
	int rc;

	mailer_outcome_init(out);
	if (ch->kind == MAILER_CHANNEL_EMAIL)
		rc = mailer_email_send(&cfg->smtp, &cfg->links, ch, &n->ev, delivery_id, out);
	else
		rc = mailer_webhook_send(&cfg->webhook, &cfg->links, ch, &n->ev, delivery_id,
		    out);
	if (rc != 0 && out->result == MAILER_SENT)
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "local failure: %s", strerror(-rc));
	upmon_histogram_observe(t->c->m.seconds, (double)(upmon_mono_ms() - t0) / 1000.0);
	upmon_counter_inc(t->c->m.d[ch->kind == MAILER_CHANNEL_WEBHOOK][out->result]);
	switch (out->result) {
	case MAILER_SENT:
		atomic_fetch_add(&t->c->sent, 1);
		log_info("channel %s (%s): delivered", ch->id, kind_names[ch->kind]);
		break;
	case MAILER_TEMPFAIL:
		atomic_fetch_add(&t->c->tempfail, 1);
		log_warnx("channel %s (%s): temporary failure: %s", ch->id,
		    kind_names[ch->kind], out->error);
		break;
	default:
		atomic_fetch_add(&t->c->permfail, 1);
		log_warnx("channel %s (%s): permanent failure: %s", ch->id,
		    kind_names[ch->kind], out->error);
		break;
	}
}

static void
note_temp(struct note *n, const struct mailer_channel *ch, const char *error)
{
	n->temp = true;
	/* room for "channel <id>: " (ids are at most UPMON_ID_MAX bytes), the error cut to fit */
	snprintf(n->error, sizeof(n->error), "channel %s: %.*s", ch->id,
	    (int)(sizeof(n->error) - UPMON_ID_MAX - 11), error);
}

/*
 * Records out with bounded holds while PostgreSQL is unavailable (kept going during a
 * shutdown: the send already happened). false when it could not be recorded.
 */
static bool
record(struct mthread *t, const struct note *n, const struct mailer_channel *ch,
    const struct mailer_outcome *out)
{
	int64_t deadline = upmon_mono_ms() + t->c->cfg.hold_ms;
	unsigned tries = 0;
	int rc;

	for (;;) {
		rc = mailer_db_record(t->db, n->ev.alert_id, ch->id, out);
		if (rc == 0)
			return true;
		if (!upmon_db_error_transient(rc) || !hold(t, deadline, &tries, rc, true))
			break;
	}
	log_warnx("channel %s: outcome not recorded (%s): the notification is retried and "
	    "may be sent again", ch->id, upmon_db_strerror(rc));
	upmon_counter_inc(t->c->m.record_lost);
	return false;
}

/* Delivers ev to one channel of an alert with a deliveries row. false when the message must
 * be given back unacked (stop requested while PostgreSQL was unavailable, nothing sent). */
static bool
deliver(struct mthread *t, struct note *n, const struct mailer_channel *ch)
{
	int64_t deadline = upmon_mono_ms() + t->c->cfg.hold_ms;
	char delivery_id[MAILER_DELIVERY_ID_MAX + 1];
	struct mailer_outcome out;
	enum mailer_claim claim;
	unsigned tries = 0;
	int rc, attempts;

	for (;;) {
		rc = mailer_db_claim(t->db, n->ev.alert_id, ch, &claim, &attempts);
		if (rc == 0)
			break;
		if (!upmon_db_error_transient(rc)) {
			note_temp(n, ch, "database error claiming the delivery");
			return true;
		}
		if (!hold(t, deadline, &tries, rc, false)) {
			if (stopping(t))
				return false;
			note_temp(n, ch, "database unavailable");
			return true;
		}
	}
	update_conn(t, false);
	switch (claim) {
	case MAILER_CLAIM_DELIVERED:
		log_info("channel %s: already delivered, skipped", ch->id);
		atomic_fetch_add(&t->c->duplicates, 1);
		upmon_counter_inc(t->c->m.duplicates);
		return true;
	case MAILER_CLAIM_FAILED:
		log_info("channel %s: failed permanently before, skipped", ch->id);
		return true;
	case MAILER_CLAIM_GONE:
		log_info("channel %s: gone, skipped", ch->id);
		return true;
	case MAILER_CLAIM_BUSY:
		note_temp(n, ch, "being delivered by another worker");
		return true;
	case MAILER_CLAIM_SEND:
		break;
	}
	mailer_delivery_id(delivery_id, sizeof(delivery_id), n->ev.alert_id, ch->id);
	send_one(t, n, ch, delivery_id, &out);
	if (!record(t, n, ch, &out)) {
		note_temp(n, ch, out.result == MAILER_SENT ? "sent but not recorded" :
		    out.error);
	} else if (out.result == MAILER_TEMPFAIL)
		note_temp(n, ch, out.error);
	mailer_db_unclaim(t->db, n->ev.alert_id, ch->id);
	return true;
}

/* ---- one notification ---------------------------------------------------------------- */

/* Reads the channels (and, but for kind test, that the alerts row exists), holding while
 * PostgreSQL is unavailable. 0; 1 to drop the message; -1 to requeue it (stopping); -2 to
 * retry it (n->error says why). */
static int
resolve(struct mthread *t, struct note *n, struct mailer_channel **chs, size_t *nch)
{
	int64_t deadline = upmon_mono_ms() + t->c->cfg.hold_ms;
	unsigned tries = 0;
	bool exists = true;
	int rc;

	for (;;) {
		if (n->ev.kind != UPMON_ALERT_TEST)
			rc = mailer_db_alert_exists(t->db, n->ev.alert_id, n->ev.owner_id,
			    &exists);
		else
			rc = 0;
		if (rc == 0 && exists)
			rc = mailer_db_channels(t->db, &n->ev, chs, nch);
		if (rc == 0)
			break;
		if (!upmon_db_error_transient(rc)) {
			snprintf(n->error, sizeof(n->error), "database error: %s",
			    upmon_db_strerror(rc));
			return -2;
		}
		if (!hold(t, deadline, &tries, rc, false)) {
			if (stopping(t))
				return -1;
			snprintf(n->error, sizeof(n->error), "database unavailable");
			return -2;
		}
	}
	update_conn(t, false);
	if (!exists) {
		log_warnx("alert %s has no alerts row: dropped", n->ev.alert_id);
		return 1;
	}
	if (*nch == 0) {
		log_info("no channel to notify: done");
		return 1;
	}
	return 0;
}

/* A test notification: no alerts row, no deliveries row; sent once per message. */
static void
deliver_test(struct mthread *t, struct note *n, const struct mailer_channel *ch)
{
	char delivery_id[MAILER_DELIVERY_ID_MAX + 1];
	struct mailer_outcome out;

	mailer_delivery_id(delivery_id, sizeof(delivery_id), n->ev.alert_id, ch->id);
	send_one(t, n, ch, delivery_id, &out);
	if (out.result == MAILER_TEMPFAIL)
		note_temp(n, ch, out.error);
}

static void
process(struct mthread *t, struct upmon_amqp_delivery *d)
{
	struct mailer_channel *chs = NULL;
	char err[256], reason[ERR_MAX];
	struct note n;
	size_t nch = 0, i;
	bool ok = true;
	int rc;

	memset(&n, 0, sizeof(n));
	n.d = d;
	err[0] = '\0';
	rc = upmon_msg_alert_decode((const char *)d->body, d->body_len, &n.ev, err,
	    sizeof(err));
	if (rc != 0) {
		log_ctx_set(NULL, d->message_id);
		snprintf(reason, sizeof(reason), "undecodable alert event: %s",
		    err[0] != '\0' ? err : strerror(-rc));
		dead_letter(t, d, reason, t->c->m.n_invalid);
		log_ctx_clear();
		return;
	}
	log_ctx_set(n.ev.monitor_id[0] != '\0' ? n.ev.monitor_id : NULL, n.ev.alert_id);
	if (d->redelivered || d->attempt > 0)
		log_debug("redelivered %d, attempt %d", d->redelivered, d->attempt + 1);
	rc = resolve(t, &n, &chs, &nch);
	if (rc == 1) {
		finish(t, d, t->c->m.n_dropped);
		goto out;
	}
	if (rc == -1) {
		requeue(t, d);
		goto out;
	}
	if (rc == -2) {
		retry(t, d, n.error);
		goto out;
	}
	for (i = 0; i < nch && ok; i++) {
		if (n.ev.kind == UPMON_ALERT_TEST)
			deliver_test(t, &n, &chs[i]);
		else
			ok = deliver(t, &n, &chs[i]);
	}
	if (!ok)
		requeue(t, d);
	else if (n.temp)
		retry(t, d, n.error);
	else
		finish(t, d, t->c->m.n_done);
out:
	for (i = 0; i < nch; i++)
		mailer_channel_release(&chs[i]);
	free(chs);
	upmon_alert_event_release(&n.ev);
	log_ctx_clear();
}

/* ---- the thread ------------------------------------------------------------------------ */

static void
consume_start(struct mthread *t)
{
	int rc;

	if (upmon_mono_ms() < t->consume_retry_at) {
		(void)upmon_amqp_poll(t->amqp, (int)(t->consume_retry_at - upmon_mono_ms()));
		return;
	}
	rc = upmon_amqp_consume(t->amqp, UPMON_AMQP_Q_NOTIFY, 1);
	if (rc != 0) {
		if (t->consume_tries++ == 0)
			log_warnx("consume %s: %s (retrying)", UPMON_AMQP_Q_NOTIFY,
			    upmon_amqp_strerror(rc));
		t->consume_retry_at = upmon_mono_ms() + upmon_backoff_ms(200, 5000,
		    t->consume_tries - 1, upmon_jitter_next(&t->jitter));
		return;
	}
	t->consuming = true;
	t->consume_tries = 0;
	log_debug("worker %d consuming %s", t->idx, UPMON_AMQP_Q_NOTIFY);
}

static void *
thread_main(void *arg)
{
	struct mthread *t = arg;
	struct mailer_consume *c = t->c;
	struct upmon_amqp_delivery d;
	int rc;

	while (!stopping(t)) {
		if (!t->consuming) {
			consume_start(t);
			update_conn(t, atomic_load(&t->db_failing_a) != 0);
			continue;
		}
		memset(&d, 0, sizeof(d));
		rc = upmon_amqp_next(t->amqp, IDLE_MS, &d);
		update_conn(t, atomic_load(&t->db_failing_a) != 0);
		if (rc != 0)
			continue;
		atomic_fetch_add(&c->inflight, 1);
		upmon_gauge_add(c->m.inflight, 1);
		process(t, &d);
		upmon_amqp_delivery_release(&d);
		atomic_fetch_sub(&c->inflight, 1);
		upmon_gauge_add(c->m.inflight, -1);
	}
	/* Closing the connection gives anything unacked back to the broker. */
	upmon_amqp_free(t->amqp);
	t->amqp = NULL;
	upmon_gauge_add(c->m.amqp_up, -t->amqp_up);
	upmon_gauge_add(c->m.db_up, -t->db_ok);
	t->amqp_up = t->db_ok = 0;
	atomic_store(&t->amqp_up_a, 0);
	upmon_db_free(t->db);
	t->db = NULL;
	pthread_mutex_lock(&c->lock);
	c->running--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int
thread_init(struct mailer_consume *c, struct mthread *t, int idx)
{
	int rc;

	t->c = c;
	t->idx = idx;
	t->jitter = upmon_jitter_seed(t);
	rc = upmon_amqp_new(&c->cfg.amqp, &t->amqp);
	if (rc != 0)
		return rc == UPMON_AMQP_ENOMEM ? -ENOMEM : -EINVAL;
	rc = upmon_db_new(&c->cfg.db, &t->db);
	if (rc != 0)
		return rc == UPMON_DB_E_NOMEM ? -ENOMEM : -EINVAL;
	rc = mailer_db_prepare(t->db);
	if (rc != 0)
		return rc == UPMON_DB_E_NOMEM ? -ENOMEM : -EINVAL;
	return 0;
}

int
mailer_consume_start(const struct mailer_consume_config *cfg, struct mailer_consume **out)
{
	struct mailer_consume *c;
	pthread_condattr_t ca;
	int i, rc;

	*out = NULL;
	if (cfg->amqp.url == NULL || cfg->db.url == NULL || cfg->workers < 1 ||
	    cfg->workers > 64 || cfg->max_attempts < 1 || cfg->max_attempts > 100 ||
	    cfg->confirm_timeout_ms < 1 || cfg->hold_ms < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->cfg = *cfg;
	c->nthreads = cfg->workers;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	metrics_init(&c->m, cfg->metrics);
	c->t = calloc((size_t)c->nthreads, sizeof(*c->t));
	if (c->t == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < c->nthreads; i++) {
		rc = thread_init(c, &c->t[i], i);
		if (rc != 0)
			goto fail;
	}
	for (i = 0; i < c->nthreads; i++) {
		pthread_mutex_lock(&c->lock);
		c->running++;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&c->t[i].tid, NULL, thread_main, &c->t[i]) != 0) {
			pthread_mutex_lock(&c->lock);
			c->running--;
			pthread_mutex_unlock(&c->lock);
			rc = -EAGAIN;
			goto fail;
		}
		c->t[i].started = true;
	}
	*out = c;
	return 0;
fail:
	mailer_consume_free(c);
	return rc;
}

void
mailer_consume_stop(struct mailer_consume *c)
{
	if (c != NULL)
		atomic_store(&c->stopping, 1);
}

int
mailer_consume_wait(struct mailer_consume *c, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	upmon_timespec_after(CLOCK_MONOTONIC, timeout_ms, &ts);
	pthread_mutex_lock(&c->lock);
	while (c->running > 0 && rc == 0)
		rc = pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	rc = c->running > 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void
mailer_consume_get_stats(struct mailer_consume *c, struct mailer_consume_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	out->notifications = atomic_load(&c->notifications);
	out->sent = atomic_load(&c->sent);
	out->tempfail = atomic_load(&c->tempfail);
	out->permfail = atomic_load(&c->permfail);
	out->retried = atomic_load(&c->retried);
	out->dead = atomic_load(&c->dead);
	out->duplicates = atomic_load(&c->duplicates);
	out->inflight = atomic_load(&c->inflight);
	for (i = 0; i < c->nthreads; i++) {
		out->amqp_connected += atomic_load(&c->t[i].amqp_up_a);
		out->db_failing += atomic_load(&c->t[i].db_failing_a);
	}
}

void
mailer_consume_free(struct mailer_consume *c)
{
	int i;

	if (c == NULL)
		return;
	mailer_consume_stop(c);
	for (i = 0; c->t != NULL && i < c->nthreads; i++) {
		if (c->t[i].started)
			pthread_join(c->t[i].tid, NULL);
		upmon_amqp_free(c->t[i].amqp);
		upmon_db_free(c->t[i].db);
	}
	free(c->t);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
