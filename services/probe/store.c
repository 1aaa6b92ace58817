/*
 * The probe's store: one transaction per batch of results. The batch goes to PostgreSQL as
 * one jsonb argument of upmon_probe_apply() (sql/0005_probe.sql, redefined by
 * 0006_alerting.sql), which runs the pause check, the idempotent result insert, the state
 * machine, the rollup and the alerts rows (down, recovery, DOWN reminders, TLS expiry) per item
 * and returns one row per item; this file then encodes the wire messages (re-probe tasks, status
 * events, alert events) with msg.c and writes them to the outbox with one more statement.
 * README.md ("The store") has the semantics.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "store_int.h"
#include "upmon/amqp.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define APPLY_TRIES 3		/* a deadlock or serialization failure is retried */
#define STORE_WARN_INTERVAL_MS 5000	/* one "database down" warning per 5 s */

static const char SQL_APPLY[] =
    "SELECT n, outcome, final, applied, status, previous, since_ms, at_ms, alert_kind, "
    "alert_id, outage_s, name, target, tls_alert_id, cert_days_left, reminder "
    "FROM upmon_probe_apply($1::jsonb)";
static const char SQL_OUTBOX[] =
    "INSERT INTO outbox (exchange, routing_key, message_id, payload) "
    "SELECT x->>'e', x->>'k', x->>'m', (x->>'p')::jsonb "
    "FROM jsonb_array_elements($1::jsonb) AS x ON CONFLICT (message_id) DO NOTHING";
static const char SQL_SYSERR[] =
    "SELECT alert_id, name, target, at_ms FROM "
    "upmon_probe_system_error($1::uuid, $2::uuid, $3::bigint, $4::integer, $5::integer, $6)";

void
probe_store_config_init(struct probe_store_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	upmon_db_config_init(&cfg->db);
	upmon_cache_config_init(&cfg->cache);
	cfg->db.application_name = "upmon-probe";
	cfg->retry_levels = 5;
}

static void
register_metrics(struct probe_store *s, struct upmon_metrics *m)
{
	static const double bounds[] = UPMON_METRICS_SECONDS_BUCKETS;
	static const char *const outcomes[] = { "", "stored", "duplicate", "gone", "failed" };
	int i;

	if (m == NULL)
		return;
	for (i = 1; i <= 4; i++)
		s->m_results[i] = upmon_metrics_counter(m, "upmon_probe_results_total",
		    "Check results applied by the store, by outcome.", "outcome", outcomes[i],
		    NULL);
	s->m_alert_down = upmon_metrics_counter(m, "upmon_probe_alerts_total",
	    "Alerts raised by the store.", "kind", "down", NULL);
	s->m_alert_recovery = upmon_metrics_counter(m, "upmon_probe_alerts_total",
	    "Alerts raised by the store.", "kind", "recovery", NULL);
	s->m_alert_syserr = upmon_metrics_counter(m, "upmon_probe_alerts_total",
	    "Alerts raised by the store.", "kind", "system_error", NULL);
	s->m_alert_tls = upmon_metrics_counter(m, "upmon_probe_alerts_total",
	    "Alerts raised by the store.", "kind", "tls_expiry", NULL);
	s->m_alert_reminder = upmon_metrics_counter(m, "upmon_probe_alerts_total",
	    "Alerts raised by the store.", "kind", "reminder", NULL);
	s->m_reprobes = upmon_metrics_counter(m, "upmon_probe_reprobes_total",
	    "Confirmation re-probes queued through the outbox.", NULL);
	s->m_changes = upmon_metrics_counter(m, "upmon_probe_status_changes_total",
	    "Monitor status changes applied.", NULL);
	s->m_errors = upmon_metrics_counter(m, "upmon_probe_store_errors_total",
	    "Batches that did not commit (the tasks are retried).", NULL);
	s->m_cache_errors = upmon_metrics_counter(m, "upmon_probe_cache_errors_total",
	    "Latest-status writes to Redis that failed (ignored).", NULL);
	s->m_commit = upmon_metrics_histogram(m, "upmon_probe_commit_seconds",
	    "Time to apply and commit one batch.", bounds, sizeof(bounds) / sizeof(bounds[0]),
	    NULL);
}

int
probe_store_new(const struct probe_store_config *cfg, struct probe_store **out)
{
	struct probe_store *s;

	*out = NULL;
	if (cfg == NULL || cfg->db.url == NULL || cfg->retry_levels < 1 ||
	    cfg->retry_levels > UPMON_AMQP_LEVELS_MAX)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->retry_levels = cfg->retry_levels;
	s->wake = cfg->wake;
	s->wake_arg = cfg->wake_arg;
	if (cfg->probe_host != NULL)
		snprintf(s->probe_host, sizeof(s->probe_host), "%s", cfg->probe_host);
	else if (gethostname(s->probe_host, sizeof(s->probe_host) - 1) != 0)
		snprintf(s->probe_host, sizeof(s->probe_host), "unknown");
	if (upmon_db_new(&cfg->db, &s->db) != 0)
		goto fail;
	if (upmon_db_prepare(s->db, "probe_apply", SQL_APPLY, 1) != 0 ||
	    upmon_db_prepare(s->db, "probe_outbox", SQL_OUTBOX, 1) != 0 ||
	    upmon_db_prepare(s->db, "probe_syserr", SQL_SYSERR, 6) != 0)
		goto fail;
	if (cfg->cache.url != NULL && upmon_cache_new(&cfg->cache, &s->cache) != 0)
		goto fail;
	register_metrics(s, cfg->metrics);
	*out = s;
	return 0;
fail:
	probe_store_free(s);
	return -EINVAL;
}

void
probe_store_free(struct probe_store *s)
{
	if (s == NULL)
		return;
	upmon_db_free(s->db);
	upmon_cache_free(s->cache);
	free(s->extra);
	free(s->order);
	free(s);
}

/* Orders items by (monitor_id, scheduled_at, attempt): the lock order of every batch. */
static int
item_cmp(const void *a, const void *b)
{
	const struct upmon_task *x = (*(struct probe_item *const *)a)->task;
	const struct upmon_task *y = (*(struct probe_item *const *)b)->task;
	int c = strcmp(x->monitor_id, y->monitor_id);

	if (c != 0)
		return c;
	if (x->scheduled_at != y->scheduled_at)
		return x->scheduled_at < y->scheduled_at ? -1 : 1;
	return (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

static int
grow(struct probe_store *s, size_t n)
{
	struct probe_item **o;
	struct store_extra *e;

	if (n <= s->cap)
		return 0;
	if ((o = realloc(s->order, n * sizeof(*o))) == NULL)
		return -ENOMEM;
	s->order = o;
	if ((e = realloc(s->extra, n * sizeof(*e))) == NULL)
		return -ENOMEM;
	s->extra = e;
	s->cap = n;
	return 0;
}

static void
item_reset(struct probe_item *it)
{
	it->outcome = 0;
	it->err = 0;
	it->errmsg[0] = '\0';
	it->final = false;
	it->reprobe = false;
	it->status = UPMON_STATUS_PENDING;
	it->changed = false;
}

static void
fail_item(struct probe_item *it, int code, const char *msg)
{
	it->outcome = PROBE_ITEM_FAILED;
	it->err = code;
	snprintf(it->errmsg, sizeof(it->errmsg), "%s", msg);
}

static void
count_outcomes(struct probe_store *s, struct probe_item **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (items[i]->outcome >= 1 && items[i]->outcome <= 4)
			upmon_counter_inc(s->m_results[items[i]->outcome]);
		if (items[i]->reprobe)
			upmon_counter_inc(s->m_reprobes);
		if (items[i]->changed)
			upmon_counter_inc(s->m_changes);
	}
}

/*
 * Applies order[0..n) in one transaction. Returns 0 (committed; outcomes set), or a negative
 * UPMON_DB_E_* (rolled back; outcomes meaningless), with err filled.
 */
static int
apply_tx(struct probe_store *s, struct probe_item **order, struct store_extra *extra,
    size_t n, struct upmon_db_error *err)
{
	struct store_outbox ob;
	PGresult *res = NULL;
	const char *param;
	char *items_json = NULL;
	size_t i;
	int rc;

	probe_store_outbox_init(&ob);
	for (i = 0; i < n; i++) {
		item_reset(order[i]);
		memset(&extra[i], 0, sizeof(extra[i]));
	}
	if ((rc = probe_store_items_json(s, order, n, &items_json)) < 0) {
		rc = UPMON_DB_E_NOMEM;
		goto out;
	}
	if ((rc = upmon_db_begin(s->db, err)) < 0)
		goto out;
	param = items_json;
	if ((rc = upmon_db_query_prepared(s->db, 0, "probe_apply", 1, &param, &res, err)) < 0)
		goto out;
	if ((rc = probe_store_read_rows(s, res, order, extra, n, &ob)) < 0) {
		err->code = rc;
		snprintf(err->message, sizeof(err->message), "bad reply of upmon_probe_apply");
		goto out;
	}
	if (ob.count > 0) {
		if ((rc = probe_store_outbox_json(&ob, &param)) < 0) {
			rc = UPMON_DB_E_NOMEM;
			goto out;
		}
		if ((rc = upmon_db_query_prepared(s->db, 0, "probe_outbox", 1, &param, NULL,
		    err)) < 0)
			goto out;
	}
	rc = upmon_db_commit(s->db, err);
out:
	if (rc < 0)
		upmon_db_rollback(s->db, NULL);
	else if (ob.count > 0 && s->wake != NULL)
		s->wake(s->wake_arg);
	PQclear(res);
	free(items_json);
	probe_store_outbox_release(&ob);
	return rc;
}

/* Applies with retries of transient lock conflicts. */
static int
apply_retry(struct probe_store *s, struct probe_item **order, struct store_extra *extra,
    size_t n, struct upmon_db_error *err)
{
	int rc = 0, t;

	for (t = 0; t < APPLY_TRIES; t++) {
		rc = apply_tx(s, order, extra, n, err);
		if (rc != UPMON_DB_E_RETRY)
			break;
	}
	return rc;
}

/* A failure that is the data's fault (one item), not the server's: isolate the item. */
static int
permanent(int rc)
{
	return rc == UPMON_DB_E_CONSTRAINT || rc == UPMON_DB_E_CONFLICT ||
	    rc == UPMON_DB_E_QUERY || rc == UPMON_DB_E_RETRY;
}

int
probe_store_apply(struct probe_store *s, struct probe_item *items, size_t n)
{
	struct upmon_db_error err = { 0 };
	struct timespec t0, t1;
	char errbuf[sizeof(items->errmsg)];
	size_t i, m = 0;
	int rc;

	if (n == 0)
		return 0;
	if (grow(s, n) < 0)
		return UPMON_DB_E_NOMEM;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s->nextra = 0;
	for (i = 0; i < n; i++) {
		item_reset(&items[i]);
		if (items[i].result.local_error) {
			/* the probe's own failure says nothing about the target: not stored, the
			 * caller retries the task like any processing failure */
			snprintf(errbuf, sizeof(errbuf), "probe failure: %.200s",
			    items[i].result.error);
			fail_item(&items[i], UPMON_DB_E_INVALID, errbuf);
		} else if (!probe_store_uuid_ok(items[i].task->monitor_id) ||
		    !probe_store_uuid_ok(items[i].task->owner_id))
			items[i].outcome = PROBE_ITEM_GONE;	/* no such monitor can exist */
		else
			s->order[m++] = &items[i];
	}
	qsort(s->order, m, sizeof(s->order[0]), item_cmp);
	rc = m > 0 ? apply_retry(s, s->order, s->extra, m, &err) : 0;
	if (rc < 0 && permanent(rc) && m > 1) {
		/* find the culprit: each item in its own transaction */
		log_warnx("store: batch of %zu failed (%s: %s); applying item by item", m,
		    upmon_db_strerror(rc), err.message);
		for (i = 0; i < m; i++) {
			rc = apply_retry(s, &s->order[i], &s->extra[i], 1, &err);
			if (rc < 0 && !permanent(rc))
				break;
			if (rc < 0)
				fail_item(s->order[i], rc, err.message);
			rc = 0;
		}
	} else if (rc < 0 && permanent(rc)) {
		fail_item(s->order[0], rc, err.message);
		rc = 0;
	}
	if (rc < 0) {
		unsigned skipped;

		upmon_counter_inc(s->m_errors);
		if (log_ratelimit(&s->warn_rl, STORE_WARN_INTERVAL_MS, &skipped))
			log_warnx("store: batch of %zu not committed: %s: %s (%u similar "
			    "suppressed)", n, upmon_db_strerror(rc), err.message, skipped);
		return rc;
	}
	for (i = 0; i < m; i++)
		if (s->order[i]->outcome == PROBE_ITEM_FAILED) {
			log_ctx_set(s->order[i]->task->monitor_id, s->order[i]->task->task_id);
			log_warnx("store: result not stored: %s", s->order[i]->errmsg);
			log_ctx_clear();
		}
	s->nextra = m;
	count_outcomes(s, s->order, m);
	for (i = 0; i < n; i++) {
		if (items[i].result.local_error)
			upmon_counter_inc(s->m_results[PROBE_ITEM_FAILED]);
		else if (!probe_store_uuid_ok(items[i].task->monitor_id) ||
		    !probe_store_uuid_ok(items[i].task->owner_id))
			upmon_counter_inc(s->m_results[PROBE_ITEM_GONE]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	upmon_histogram_observe(s->m_commit, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

int
probe_store_system_error(struct probe_store *s, const struct upmon_task *task, int attempts,
    const char *error)
{
	struct upmon_db_error err = { 0 };
	struct store_outbox ob;
	PGresult *res = NULL;
	char slot[24], att[16], atts[16], msg[UPMON_ERROR_MAX + 1];
	const char *params[6], *param;
	int rc;

	if (!probe_store_uuid_ok(task->monitor_id) || !probe_store_uuid_ok(task->owner_id))
		return 0;
	probe_store_outbox_init(&ob);
	snprintf(slot, sizeof(slot), "%lld", (long long)task->scheduled_at);
	snprintf(att, sizeof(att), "%d", task->attempt);
	snprintf(atts, sizeof(atts), "%d", attempts);
	probe_store_clean_text(msg, sizeof(msg), error != NULL && *error != '\0' ? error :
	    "processing failed");
	params[0] = task->monitor_id;
	params[1] = task->owner_id;
	params[2] = slot;
	params[3] = att;
	params[4] = atts;
	params[5] = msg;
	if ((rc = upmon_db_begin(s->db, &err)) < 0)
		goto out;
	if ((rc = upmon_db_query_prepared(s->db, 0, "probe_syserr", 6, params, &res, &err)) < 0)
		goto out;
	if (PQntuples(res) == 1 && upmon_db_value(res, 0, 0) != NULL) {
		if ((rc = probe_store_syserr_event(&ob, task, attempts, msg, res)) < 0) {
			err.code = rc = UPMON_DB_E_NOMEM;
			snprintf(err.message, sizeof(err.message), "cannot encode the alert");
			goto out;
		}
		if (ob.count > 0) {
			if ((rc = probe_store_outbox_json(&ob, &param)) < 0) {
				rc = UPMON_DB_E_NOMEM;
				goto out;
			}
			if ((rc = upmon_db_query_prepared(s->db, 0, "probe_outbox", 1, &param,
			    NULL, &err)) < 0)
				goto out;
		}
	}
	rc = upmon_db_commit(s->db, &err);
out:
	if (rc < 0) {
		unsigned skipped;

		upmon_db_rollback(s->db, NULL);
		if (log_ratelimit(&s->warn_rl, STORE_WARN_INTERVAL_MS, &skipped)) {
			log_ctx_set(task->monitor_id, task->task_id);
			log_warnx("store: system_error alert not written: %s: %s (%u similar "
			    "suppressed)", upmon_db_strerror(rc), err.message, skipped);
			log_ctx_clear();
		}
	} else if (ob.count > 0) {
		upmon_counter_inc(s->m_alert_syserr);
		if (s->wake != NULL)
			s->wake(s->wake_arg);
	}
	PQclear(res);
	probe_store_outbox_release(&ob);
	return rc;
}
