/*
 * The outbox relay: one thread with its own PostgreSQL and AMQP handles. Each round locks a
 * batch of unsent rows (FOR UPDATE SKIP LOCKED, so several relays share the table), publishes
 * them all with confirms, waits until every outcome is in, and marks the acked ones sent in
 * the same transaction. Nacked, lost and returned rows stay unsent and come back after a
 * per-row backoff (outbox.next_attempt_at); a returned status event is marked sent with
 * last_error 'unroutable' (no gateway listening is normal). While the broker or the database
 * is down the thread backs off; it never spins.
 */
#include "relay.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "upmon/backoff.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define CONFIRM_WAIT_MS 10000	/* a round gives up waiting for confirms after this */
#define PENDING_EVERY_MS 2000	/* how often the pending gauge is recounted */
#define BACKOFF_MAX_MS 5000

static const char SQL_FETCH[] =
    "SELECT id, exchange, routing_key, message_id, payload::text, headers::text FROM outbox "
    "WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= now()) "
    "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";
static const char SQL_SENT[] =
    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = $2 "
    "WHERE id = ANY($1::bigint[])";
static const char SQL_FAILED[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = left($2, 1024), "
    "next_attempt_at = now() + least(interval '1 second' * power(2, least(attempts, 6)), "
    "interval '60 seconds') WHERE id = $1::bigint";
static const char SQL_PENDING[] = "SELECT count(*) FROM outbox WHERE sent_at IS NULL";

struct row {
	int64_t id;
	uint64_t tag;
	int outcome;		/* enum upmon_amqp_outcome, 0 = none yet */
	const char *error;	/* when not published at all */
	int status;		/* routing key starts with "status." */
};

struct probe_relay {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int wake, stop;
	int64_t stop_deadline;	/* monotonic ms */
	struct upmon_db *db;
	struct upmon_amqp *amqp;
	int batch, poll_ms;
	struct row *rows;
	int64_t pending_at;
	struct upmon_counter *m_published, *m_errors;
	struct upmon_gauge *m_pending;
};

void
probe_relay_config_init(struct probe_relay_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	upmon_db_config_init(&cfg->db);
	upmon_amqp_config_init(&cfg->amqp);
	cfg->db.application_name = "upmon-probe-relay";
	cfg->amqp.service = "upmon-probe";
	cfg->batch = 200;
	cfg->poll_ms = 1000;
}

/* Waits on the condvar up to ms unless woken or stopping. Returns the stop flag. */
static int
relay_wait(struct probe_relay *r, int64_t ms)
{
	struct timespec ts;
	int stop;

	upmon_timespec_after(CLOCK_REALTIME, ms, &ts);
	pthread_mutex_lock(&r->mu);
	while (!r->wake && !r->stop)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0)
			break;
	r->wake = 0;
	stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

void
probe_relay_wake(void *relay)
{
	struct probe_relay *r = relay;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->wake = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Parses the headers column (a JSON object of strings and integers) into h. */
static void
parse_headers(const char *text, struct upmon_amqp_headers *h)
{
	json_object *o;

	upmon_amqp_headers_init(h);
	if (text == NULL || strcmp(text, "{}") == 0 || (o = json_tokener_parse(text)) == NULL)
		return;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			if (json_object_is_type(val, json_type_int))
				upmon_amqp_headers_set_int(h, key, json_object_get_int64(val));
			else if (json_object_is_type(val, json_type_string))
				upmon_amqp_headers_set_str(h, key, json_object_get_string(val), 0);
		}
	}
	json_object_put(o);
}

/* Publishes row i of res; on a publish error that is the row's fault, records it. Returns 0,
 * or UPMON_AMQP_ECONN when the broker is unavailable (abandon the round). */
static int
publish_row(struct probe_relay *r, const PGresult *res, int i)
{
	struct upmon_amqp_headers h;
	struct upmon_amqp_message m = { 0 };
	struct row *w = &r->rows[i];
	const char *hdr = upmon_db_value(res, i, 5);
	int rc;

	memset(w, 0, sizeof(*w));
	if (upmon_db_int64(res, i, 0, &w->id) < 0) {
		w->error = "bad row";
		return 0;
	}
	m.exchange = upmon_db_value(res, i, 1);
	m.routing_key = upmon_db_value(res, i, 2);
	m.message_id = upmon_db_value(res, i, 3);
	m.body = upmon_db_value(res, i, 4);
	m.body_len = m.body != NULL ? strlen(m.body) : 0;
	w->status = m.routing_key != NULL && strncmp(m.routing_key, "status.", 7) == 0;
	if (hdr != NULL && strcmp(hdr, "{}") != 0) {
		parse_headers(hdr, &h);
		m.headers = &h;
	}
	rc = upmon_amqp_publish(r->amqp, &m, &w->tag);
	if (rc == UPMON_AMQP_ECONN || rc == UPMON_AMQP_EFULL)
		return UPMON_AMQP_ECONN;
	if (rc < 0)
		w->error = upmon_amqp_strerror(rc);
	return 0;
}

/* Collects the outcomes of the rows published this round (tags first..last). */
static void
collect(struct probe_relay *r, int n, uint64_t first)
{
	struct upmon_amqp_confirm out[64];
	int64_t deadline = upmon_mono_ms() + CONFIRM_WAIT_MS;
	size_t got, k;
	int rc, i;

	for (;;) {
		rc = upmon_amqp_confirm_wait(r->amqp, 200, out, 64, &got);
		for (k = 0; k < got; k++) {
			if (out[k].tag < first)
				continue;	/* a straggler of an abandoned round */
			for (i = 0; i < n; i++)
				if (r->rows[i].error == NULL && r->rows[i].tag == out[k].tag)
					r->rows[i].outcome = out[k].outcome;
		}
		if (got == 64)
			continue;
		if (rc == 0 || upmon_mono_ms() >= deadline)
			break;
	}
}

static const char *
outcome_error(int outcome)
{
	switch (outcome) {
	case UPMON_AMQP_NACKED: return "nacked";
	case UPMON_AMQP_RETURNED: return "unroutable";
	case UPMON_AMQP_LOST: return "connection lost before the confirm";
	default: return "no confirm in time";
	}
}

/* Appends the id to the array literal in buf ("{" initially). */
static void
add_id(char *buf, size_t size, int64_t id)
{
	size_t used = strlen(buf);

	snprintf(buf + used, size - used, "%s%lld", used > 1 ? "," : "", (long long)id);
}

/* Marks the ids of the array literal ids (without its "}") sent with last_error err. */
static int
mark_sent(struct probe_relay *r, char *ids, size_t size, const char *last_error,
    struct upmon_db_error *err)
{
	size_t used = strlen(ids);
	const char *p[2];

	if (used <= 1)
		return 0;
	snprintf(ids + used, size - used, "}");
	p[0] = ids;
	p[1] = last_error;
	return upmon_db_query_prepared(r->db, 0, "relay_sent", 2, p, NULL, err);
}

/* Marks the outcomes in the database. 0 or a negative UPMON_DB_E_* code. */
static int
mark(struct probe_relay *r, int n, int *published, int *failed, struct upmon_db_error *err)
{
	size_t size = (size_t)n * 24 + 4;
	char *acked, *unroutable, idbuf[24];
	const char *p[2];
	int i, rc = UPMON_DB_E_NOMEM;

	acked = calloc(1, size);
	unroutable = calloc(1, size);
	if (acked == NULL || unroutable == NULL)
		goto out;
	acked[0] = unroutable[0] = '{';
	for (i = 0; i < n; i++) {
		struct row *w = &r->rows[i];

		if (w->error == NULL && w->outcome == UPMON_AMQP_ACKED) {
			add_id(acked, size, w->id);
			(*published)++;
		} else if (w->error == NULL && w->outcome == UPMON_AMQP_RETURNED && w->status) {
			add_id(unroutable, size, w->id);
			(*published)++;
		} else {
			snprintf(idbuf, sizeof(idbuf), "%lld", (long long)w->id);
			p[0] = idbuf;
			p[1] = w->error != NULL ? w->error : outcome_error(w->outcome);
			log_warnx("relay: outbox row %lld not published: %s", (long long)w->id, p[1]);
			(*failed)++;
			if ((rc = upmon_db_query_prepared(r->db, 0, "relay_failed", 2, p, NULL,
			    err)) < 0)
				goto out;
		}
	}
	if ((rc = mark_sent(r, acked, size, NULL, err)) < 0 ||
	    (rc = mark_sent(r, unroutable, size, "unroutable", err)) < 0)
		goto out;
	rc = 0;
out:
	free(acked);
	free(unroutable);
	return rc;
}

/*
 * One round. Returns the number of rows fetched (>= 0), or a negative code: UPMON_DB_E_* when
 * the database failed, UPMON_AMQP_ECONN (as -1000 + code) when the broker is down.
 */
#define RELAY_E_BROKER (-1000)
static int
relay_round(struct probe_relay *r)
{
	struct upmon_db_error err = { 0 };
	PGresult *res = NULL;
	char lim[16];
	const char *p[1] = { lim };
	uint64_t first = 0;
	int i, n = 0, published = 0, failed = 0, rc, sent_any = 0;

	if ((rc = upmon_amqp_poll(r->amqp, 0)) != 0)
		return RELAY_E_BROKER;
	snprintf(lim, sizeof(lim), "%d", r->batch);
	if ((rc = upmon_db_begin(r->db, &err)) < 0)
		goto fail;
	if ((rc = upmon_db_query_prepared(r->db, 0, "relay_fetch", 1, p, &res, &err)) < 0)
		goto fail;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		if ((rc = publish_row(r, res, i)) < 0) {
			rc = RELAY_E_BROKER;
			goto fail;
		}
		if (r->rows[i].error == NULL) {
			if (!sent_any)
				first = r->rows[i].tag;
			sent_any = 1;
		}
	}
	if (sent_any)
		collect(r, n, first);
	if ((rc = mark(r, n, &published, &failed, &err)) < 0)
		goto fail;
	if ((rc = upmon_db_commit(r->db, &err)) < 0)
		goto fail;
	PQclear(res);
	upmon_counter_add(r->m_published, (uint64_t)published);
	upmon_counter_add(r->m_errors, (uint64_t)failed);
	return n;
fail:
	upmon_db_rollback(r->db, NULL);
	PQclear(res);
	upmon_counter_inc(r->m_errors);
	if (rc == RELAY_E_BROKER)
		log_warnx("relay: broker unavailable; outbox rows wait");
	else
		log_warnx("relay: %s: %s", upmon_db_strerror(rc), err.message);
	return rc;
}

/* Recounts the pending gauge now and then (approximate by design). */
static void
count_pending(struct probe_relay *r)
{
	PGresult *res = NULL;
	int64_t now = upmon_mono_ms(), v;

	if (r->m_pending == NULL || now - r->pending_at < PENDING_EVERY_MS)
		return;
	r->pending_at = now;
	if (upmon_db_query_prepared(r->db, 0, "relay_pending", 0, NULL, &res, NULL) == 0 &&
	    upmon_db_int64(res, 0, 0, &v) == 0)
		upmon_gauge_set(r->m_pending, (double)v);
	PQclear(res);
}

static void *
relay_main(void *arg)
{
	struct probe_relay *r = arg;
	uint32_t rnd = upmon_jitter_seed(r);
	unsigned fails = 0;
	int n, stop = 0;

	for (;;) {
		n = relay_round(r);
		if (n < 0) {
			fails++;
			if (stop && upmon_mono_ms() >= r->stop_deadline)
				break;
			stop = relay_wait(r, upmon_backoff_ms(100, BACKOFF_MAX_MS, fails,
			    upmon_jitter_next(&rnd)));
			continue;
		}
		fails = 0;
		count_pending(r);
		pthread_mutex_lock(&r->mu);
		stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop && (n < r->batch || upmon_mono_ms() >= r->stop_deadline))
			break;
		if (n >= r->batch)
			continue;	/* more are waiting */
		stop = relay_wait(r, r->poll_ms);
		if (stop) {
			/* one more round publishes what is waiting */
			continue;
		}
	}
	return NULL;
}

static void
relay_free(struct probe_relay *r)
{
	upmon_db_free(r->db);
	upmon_amqp_free(r->amqp);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r->rows);
	free(r);
}

int
probe_relay_start(const struct probe_relay_config *cfg, struct probe_relay **out)
{
	struct upmon_amqp_config acfg;
	struct probe_relay *r;
	int rc = -EINVAL;

	*out = NULL;
	if (cfg == NULL || cfg->db.url == NULL || cfg->amqp.url == NULL || cfg->batch < 0 ||
	    cfg->batch > 10000 || cfg->poll_ms < 0)
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->batch = cfg->batch > 0 ? cfg->batch : 200;
	r->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 1000;
	/* an idle relay still services the AMQP heartbeats every round */
	if (cfg->amqp.heartbeat_s > 0 && r->poll_ms > cfg->amqp.heartbeat_s * 500)
		r->poll_ms = cfg->amqp.heartbeat_s * 500;
	acfg = cfg->amqp;
	acfg.declare_topology = 1;
	if ((r->rows = calloc((size_t)r->batch, sizeof(*r->rows))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (upmon_db_new(&cfg->db, &r->db) != 0 || upmon_amqp_new(&acfg, &r->amqp) != 0)
		goto fail;
	if (upmon_db_prepare(r->db, "relay_fetch", SQL_FETCH, 1) != 0 ||
	    upmon_db_prepare(r->db, "relay_sent", SQL_SENT, 2) != 0 ||
	    upmon_db_prepare(r->db, "relay_failed", SQL_FAILED, 2) != 0 ||
	    upmon_db_prepare(r->db, "relay_pending", SQL_PENDING, 0) != 0)
		goto fail;
	if (cfg->metrics != NULL) {
		r->m_published = upmon_metrics_counter(cfg->metrics,
		    "upmon_probe_outbox_published_total",
		    "Outbox rows published and marked sent.", NULL);
		r->m_errors = upmon_metrics_counter(cfg->metrics,
		    "upmon_probe_outbox_errors_total",
		    "Outbox rows not published (retried) and failed relay rounds.", NULL);
		r->m_pending = upmon_metrics_gauge(cfg->metrics, "upmon_probe_outbox_pending",
		    "Unsent outbox rows (recounted every few seconds).", NULL);
	}
	if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = r;
	return 0;
fail:
	relay_free(r);
	return rc;
}

void
probe_relay_stop(struct probe_relay *r, int timeout_ms)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	r->stop_deadline = upmon_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	relay_free(r);
}
