/*
 * The probe's worker threads (worker.h). Each thread owns one AMQP handle with many
 * consumer channels, one check engine and one store; nothing is shared between threads but
 * the stop flag, the counters and the metrics handles (atomics).
 *
 * A task's life on a thread: delivery -> decode -> engine -> batch -> commit -> ack. A task
 * is acked only once its effect is durable: after the commit that stored it (or found it a
 * duplicate, or its monitor gone), after the retry queue confirmed its copy, or after the
 * SYSTEM_ERROR alert committed and the dead-letter queue confirmed its copy.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upmon/backoff.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define WORKER_IDLE_MS		200	/* wait for a delivery when nothing runs */
#define WORKER_BUSY_MS		20	/* engine wait while checks run */
#define WORKER_DEAD_MIN_MS	250	/* first retry of a SYSTEM_ERROR alert */
#define WORKER_ERROR_MAX	512

/* One delivery taken from the broker, from next() to ack. */
struct wtask {
	struct upmon_amqp_delivery d;
	struct upmon_task task;		/* valid when decoded */
	bool decoded;
	struct probe_result result;
	/* pending dead letter */
	struct wtask *next;
	int64_t retry_at;		/* monotonic ms */
	unsigned tries;
	char error[WORKER_ERROR_MAX];
};

struct wthread {
	struct probe_worker *w;
	int idx;
	pthread_t tid;
	bool started;
	struct upmon_amqp *amqp;
	struct probe_engine *engine;
	struct probe_store *store;
	int nconsumers;			/* consumer channels registered so far */
	int64_t consume_retry_at;
	unsigned consume_tries;
	size_t capacity;		/* deliveries in flight at most */
	size_t taken;			/* deliveries held (engine, batch, pending dead) */
	struct probe_result result;	/* scratch for probe_engine_next */
	struct probe_item *items;	/* batch_max */
	struct wtask **batch;		/* batch_max */
	size_t nbatch;
	struct wtask *dead;		/* pending dead letters */
	size_t ndead;
	uint32_t jitter;
	bool db_warned;
	atomic_int amqp_up;
	atomic_int db_failing;
};

struct worker_metrics {
	struct upmon_counter *checks_up, *checks_down;
	struct upmon_histogram *check_seconds;
	struct upmon_gauge *inflight;
	struct upmon_counter *acked, *retried, *dead_undecodable, *dead_attempts;
	struct upmon_counter *duplicate, *gone, *redelivered;
	struct upmon_histogram *batch_size;	/* commit time: the store's histogram */
	struct upmon_histogram *cache_seconds;
};

struct probe_worker {
	struct probe_worker_config cfg;
	struct wthread *t;
	int nthreads;
	atomic_int stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running;			/* threads not yet finished (under lock) */
	struct worker_metrics m;
	atomic_uint_fast64_t checks, acked, retried, dead_undecodable, dead_attempts;
	atomic_uint_fast64_t duplicates, gone, redelivered, inflight;
};

void
probe_worker_config_init(struct probe_worker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	upmon_amqp_config_init(&cfg->amqp);
	probe_store_config_init(&cfg->store);
	probe_engine_config_init(&cfg->engine);
	cfg->threads = 2;
	cfg->consumers = 64;
	cfg->prefetch = 1;
	cfg->batch_max = 128;
	cfg->max_attempts = 5;
	cfg->confirm_timeout_ms = 10000;
	cfg->dead_backoff_max_ms = 10000;
}

static void
worker_metrics_init(struct worker_metrics *m, struct upmon_metrics *reg)
{
	static const double secs[] = UPMON_METRICS_SECONDS_BUCKETS;
	static const double sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };

	memset(m, 0, sizeof(*m));
	if (reg == NULL)
		return;
	m->checks_up = upmon_metrics_counter(reg, "upmon_probe_checks_total",
	    "Checks completed, by result.", "result", "up", NULL);
	m->checks_down = upmon_metrics_counter(reg, "upmon_probe_checks_total",
	    "Checks completed, by result.", "result", "down", NULL);
	m->check_seconds = upmon_metrics_histogram(reg, "upmon_probe_check_seconds",
	    "Duration of one check.", secs, sizeof(secs) / sizeof(secs[0]), NULL);
	m->inflight = upmon_metrics_gauge(reg, "upmon_probe_inflight",
	    "Tasks taken from the broker and not yet acked or retried.", NULL);
	m->acked = upmon_metrics_counter(reg, "upmon_probe_tasks_acked_total",
	    "Tasks acked after their commit.", NULL);
	m->retried = upmon_metrics_counter(reg, "upmon_probe_tasks_retried_total",
	    "Processing failures sent to a retry queue.", NULL);
	m->dead_undecodable = upmon_metrics_counter(reg, "upmon_probe_tasks_dead_total",
	    "Tasks dead-lettered, by reason.", "reason", "undecodable", NULL);
	m->dead_attempts = upmon_metrics_counter(reg, "upmon_probe_tasks_dead_total",
	    "Tasks dead-lettered, by reason.", "reason", "attempts", NULL);
	m->cache_seconds = upmon_metrics_histogram(reg, "upmon_probe_cache_seconds",
	    "Time of the Redis write-through of one committed batch.", secs,
	    sizeof(secs) / sizeof(secs[0]), NULL);
	m->duplicate = upmon_metrics_counter(reg, "upmon_probe_tasks_duplicate_total",
	    "Tasks whose result row already existed (redeliveries).", NULL);
	m->gone = upmon_metrics_counter(reg, "upmon_probe_tasks_gone_total",
	    "Tasks dropped because their monitor was deleted or paused.", NULL);
	m->redelivered = upmon_metrics_counter(reg, "upmon_probe_tasks_redelivered_total",
	    "Deliveries the broker marked as redelivered.", NULL);
	m->batch_size = upmon_metrics_histogram(reg, "upmon_probe_commit_batch_size",
	    "Results per group commit.", sizes, sizeof(sizes) / sizeof(sizes[0]), NULL);
}

/* ---- one task's end ------------------------------------------------------------------ */

static void
task_free(struct wthread *t, struct wtask *wt)
{
	if (wt->decoded)
		upmon_task_release(&wt->task);
	upmon_amqp_delivery_release(&wt->d);
	free(wt);
	t->taken--;
	atomic_fetch_sub(&t->w->inflight, 1);
	upmon_gauge_add(t->w->m.inflight, -1);
}

static void
task_ctx(const struct wtask *wt)
{
	if (wt->decoded)
		log_ctx_set(wt->task.monitor_id, wt->task.task_id);
	else
		log_ctx_set(NULL, wt->d.message_id);
}

/* Acks a delivery whose effect is durable. A stale delivery (connection lost since) was
 * already requeued by the broker; its redelivery is absorbed as a duplicate. */
static void
task_ack(struct wthread *t, struct wtask *wt)
{
	int rc;

	rc = upmon_amqp_ack(t->amqp, &wt->d);
	if (rc != 0) {
		task_ctx(wt);
		log_warnx("ack failed: %s (the broker redelivers the task)",
		    upmon_amqp_strerror(rc));
		log_ctx_clear();
		return;
	}
	atomic_fetch_add(&t->w->acked, 1);
	upmon_counter_inc(t->w->m.acked);
}

/* Gives a delivery back to the broker untouched (its effect is not durable). */
static void
task_requeue(struct wthread *t, struct wtask *wt)
{
	(void)upmon_amqp_nack(t->amqp, &wt->d, 1);
}

static void
dead_push(struct wthread *t, struct wtask *wt, const char *error)
{
	snprintf(wt->error, sizeof(wt->error), "%s", error);
	wt->retry_at = upmon_mono_ms();
	wt->tries = 0;
	wt->next = t->dead;
	t->dead = wt;
	t->ndead++;
}

/*
 * A processing failure: the task goes to its next retry queue, or, past the attempt limit,
 * to the pending dead letters (the SYSTEM_ERROR alert must commit first). Takes wt.
 */
static void
task_fail(struct wthread *t, struct wtask *wt, const char *error)
{
	const struct probe_worker_config *cfg = &t->w->cfg;
	int rc, route = 0;

	if (wt->decoded && wt->d.attempt + 1 > cfg->max_attempts) {
		dead_push(t, wt, error);
		return;
	}
	rc = upmon_amqp_retry(t->amqp, &wt->d, error, cfg->max_attempts,
	    cfg->confirm_timeout_ms, &route);
	task_ctx(wt);
	if (rc != 0) {
		log_warnx("retry publish failed: %s (requeued)", upmon_amqp_strerror(rc));
		task_requeue(t, wt);
	} else {
		if (route == UPMON_AMQP_ROUTE_DEAD) {
			atomic_fetch_add(&t->w->dead_attempts, 1);
			upmon_counter_inc(t->w->m.dead_attempts);
		} else {
			atomic_fetch_add(&t->w->retried, 1);
			upmon_counter_inc(t->w->m.retried);
		}
		log_warnx("processing failed, attempt %d of %d: %s", wt->d.attempt + 1,
		    cfg->max_attempts + 1, error);
		task_ack(t, wt);
	}
	log_ctx_clear();
	task_free(t, wt);
}

/*
 * Tries the pending dead letters whose time has come (all of them when force): the
 * SYSTEM_ERROR alert, then the dead-letter copy, then the ack. A failure keeps the delivery
 * unacked and tries again later with backoff.
 */
static void
dead_run(struct wthread *t, bool force)
{
	const struct probe_worker_config *cfg = &t->w->cfg;
	struct wtask **pp = &t->dead, *wt;
	int64_t now = upmon_mono_ms();
	int rc, attempts;

	while ((wt = *pp) != NULL) {
		if (!force && wt->retry_at > now) {
			pp = &wt->next;
			continue;
		}
		task_ctx(wt);
		attempts = wt->d.attempt + 1;
		rc = probe_store_system_error(t->store, &wt->task, attempts, wt->error);
		if (rc == 0)
			rc = upmon_amqp_dead_letter(t->amqp, &wt->d, wt->error,
			    cfg->confirm_timeout_ms);
		if (rc != 0) {
			wt->tries++;
			wt->retry_at = now + upmon_backoff_ms(WORKER_DEAD_MIN_MS,
			    cfg->dead_backoff_max_ms, wt->tries - 1,
			    upmon_jitter_next(&t->jitter));
			if (wt->tries == 1)
				log_warnx("cannot dead-letter yet (%d), kept unacked", rc);
			log_ctx_clear();
			pp = &wt->next;
			continue;
		}
		log_warnx("dead-lettered after %d attempts: %s", attempts, wt->error);
		log_ctx_clear();
		atomic_fetch_add(&t->w->dead_attempts, 1);
		upmon_counter_inc(t->w->m.dead_attempts);
		task_ack(t, wt);
		*pp = wt->next;
		t->ndead--;
		task_free(t, wt);
	}
}

/* ---- group commit ------------------------------------------------------------------- */

static void take(struct wthread *t, int first_ms);

/*
 * Before the thread blocks on PostgreSQL or Redis: take the deliveries that arrived and let
 * the engine start every waiting check (connect, send), so their network round trips and the
 * targets' work overlap the commit instead of following it.
 */
static void
kick(struct wthread *t)
{
	if (atomic_load(&t->w->stopping) == 0)
		take(t, 0);
	if (probe_engine_inflight(t->engine) > 0)
		(void)probe_engine_run(t->engine, 0, -1);
}

static void
batch_commit(struct wthread *t)
{
	struct probe_worker *w = t->w;
	struct probe_item *it;
	struct wtask *wt;
	char error[WORKER_ERROR_MAX];
	size_t i, n = t->nbatch;
	int64_t t0;
	int rc;

	if (n == 0)
		return;
	for (i = 0; i < n; i++) {
		it = &t->items[i];
		memset(it, 0, sizeof(*it));
		it->task = &t->batch[i]->task;
		it->result = t->batch[i]->result;
	}
	kick(t);
	rc = probe_store_apply(t->store, t->items, n);
	upmon_histogram_observe(w->m.batch_size, (double)n);
	t->nbatch = 0;
	if (rc != 0) {
		atomic_store(&t->db_failing, 1);
		if (!t->db_warned)
			log_warnx("commit of %zu results failed (%d): retrying the tasks", n, rc);
		t->db_warned = true;
		snprintf(error, sizeof(error), "commit failed: %s",
		    rc == UPMON_DB_E_CONN ? "database unavailable" : "database error");
		for (i = 0; i < n; i++)
			task_fail(t, t->batch[i], error);
		return;
	}
	if (t->db_warned)
		log_info("commits succeed again");
	t->db_warned = false;
	atomic_store(&t->db_failing, 0);
	/* Everything durable first gets its ack; then Redis; then the tasks are freed. */
	for (i = 0; i < n; i++) {
		it = &t->items[i];
		switch (it->outcome) {
		case PROBE_ITEM_DUPLICATE:
			atomic_fetch_add(&w->duplicates, 1);
			upmon_counter_inc(w->m.duplicate);
			task_ack(t, t->batch[i]);
			break;
		case PROBE_ITEM_GONE:
			atomic_fetch_add(&w->gone, 1);
			upmon_counter_inc(w->m.gone);
			task_ack(t, t->batch[i]);
			break;
		case PROBE_ITEM_STORED:
			task_ack(t, t->batch[i]);
			break;
		default:
			break;
		}
	}
	kick(t);
	t0 = upmon_mono_ms();
	probe_store_cache(t->store, t->items, n);
	upmon_histogram_observe(w->m.cache_seconds, (double)(upmon_mono_ms() - t0) / 1000.0);
	for (i = 0; i < n; i++) {
		wt = t->batch[i];
		it = &t->items[i];
		if (it->outcome == PROBE_ITEM_STORED || it->outcome == PROBE_ITEM_DUPLICATE ||
		    it->outcome == PROBE_ITEM_GONE) {
			task_free(t, wt);
			continue;
		}
		snprintf(error, sizeof(error), "store: %s",
		    it->errmsg[0] != '\0' ? it->errmsg : "item failed");
		task_fail(t, wt, error);
	}
}

/* Takes the results the engine has finished into the batch, committing full batches. */
static void
collect(struct wthread *t)
{
	struct probe_worker *w = t->w;
	struct wtask *wt;
	void *ctx;

	for (;;) {
		if (probe_engine_next(t->engine, &ctx, &t->result) != 0)
			break;
		wt = ctx;
		wt->result = t->result;
		atomic_fetch_add(&w->checks, 1);
		upmon_counter_inc(wt->result.ok ? w->m.checks_up : w->m.checks_down);
		upmon_histogram_observe(w->m.check_seconds,
		    (double)wt->result.latency_ms / 1000.0);
		t->batch[t->nbatch++] = wt;
		if (t->nbatch == (size_t)w->cfg.batch_max)
			batch_commit(t);
	}
	batch_commit(t);
}

/* ---- taking deliveries ---------------------------------------------------------------- */

static void
take_one(struct wthread *t, struct wtask *wt)
{
	struct probe_worker *w = t->w;
	char err[256], reason[WORKER_ERROR_MAX];
	int rc;

	t->taken++;
	atomic_fetch_add(&w->inflight, 1);
	upmon_gauge_add(w->m.inflight, 1);
	if (wt->d.redelivered) {
		atomic_fetch_add(&w->redelivered, 1);
		upmon_counter_inc(w->m.redelivered);
	}
	err[0] = '\0';
	rc = upmon_msg_task_decode((const char *)wt->d.body, wt->d.body_len, &wt->task, err,
	    sizeof(err));
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "undecodable task: %s",
		    err[0] != '\0' ? err : strerror(-rc));
		task_ctx(wt);
		rc = upmon_amqp_dead_letter(t->amqp, &wt->d, reason, w->cfg.confirm_timeout_ms);
		if (rc == 0) {
			/* upmon_amqp_dead_letter logged it with the reason */
			atomic_fetch_add(&w->dead_undecodable, 1);
			upmon_counter_inc(w->m.dead_undecodable);
			task_ack(t, wt);
		} else {
			log_warnx("dead-letter publish failed: %s (requeued)",
			    upmon_amqp_strerror(rc));
			task_requeue(t, wt);
		}
		log_ctx_clear();
		task_free(t, wt);
		return;
	}
	wt->decoded = true;
	rc = probe_engine_submit(t->engine, &wt->task, wt);
	if (rc != 0) {
		snprintf(reason, sizeof(reason), "engine: %s", strerror(-rc));
		task_fail(t, wt, reason);
	}
}

/* Takes deliveries while there is room; the first wait may block for first_ms. */
static void
take(struct wthread *t, int first_ms)
{
	struct wtask *wt;
	int rc, wait = first_ms;

	while (t->taken < t->capacity) {
		wt = calloc(1, sizeof(*wt));
		if (wt == NULL) {
			log_warnx("out of memory taking a task");
			return;
		}
		rc = upmon_amqp_next(t->amqp, wait, &wt->d);
		if (rc != 0) {
			free(wt);
			return;
		}
		wait = 0;
		take_one(t, wt);
	}
}

/* Registers the consumer channels still missing (all of them at start, with backoff while
 * the broker is unreachable; upmon_amqp re-issues registered ones after reconnects). */
static void
consume_more(struct wthread *t)
{
	const struct probe_worker_config *cfg = &t->w->cfg;
	int rc;

	if (t->nconsumers >= cfg->consumers || upmon_mono_ms() < t->consume_retry_at)
		return;
	while (t->nconsumers < cfg->consumers) {
		rc = upmon_amqp_consume(t->amqp, UPMON_AMQP_Q_TASKS, cfg->prefetch);
		if (rc != 0) {
			if (t->consume_tries++ == 0)
				log_warnx("consume %s: %s (retrying)", UPMON_AMQP_Q_TASKS,
				    upmon_amqp_strerror(rc));
			t->consume_retry_at = upmon_mono_ms() + upmon_backoff_ms(200, 5000,
			    t->consume_tries - 1, upmon_jitter_next(&t->jitter));
			return;
		}
		t->nconsumers++;
	}
	t->consume_tries = 0;
	log_debug("thread %d consuming on %d channels", t->idx, t->nconsumers);
}

/* ---- the thread ------------------------------------------------------------------------ */

static int
idle_wait_ms(const struct wthread *t)
{
	int64_t ms = WORKER_IDLE_MS, now = upmon_mono_ms(), d;
	const struct wtask *wt;

	for (wt = t->dead; wt != NULL; wt = wt->next) {
		d = wt->retry_at - now;
		if (d < ms)
			ms = d < 0 ? 0 : d;
	}
	if (t->nconsumers < t->w->cfg.consumers)
		ms = ms > 50 ? 50 : ms;
	return (int)ms;
}

static void
thread_loop(struct wthread *t)
{
	struct probe_worker *w = t->w;
	bool stopping;
	int n;

	for (;;) {
		stopping = atomic_load(&w->stopping) != 0;
		if (!stopping) {
			consume_more(t);
			if (probe_engine_inflight(t->engine) > 0)
				take(t, 0);
			else if (t->taken < t->capacity && t->nconsumers > 0)
				take(t, idle_wait_ms(t));
			else	/* nothing consumed yet, or every slot waits for a dead
				 * letter: service the connection (waits, never spins) */
				(void)upmon_amqp_poll(t->amqp, idle_wait_ms(t));
		} else if (probe_engine_inflight(t->engine) == 0) {
			break;
		}
		if (probe_engine_inflight(t->engine) > 0) {
			n = probe_engine_run(t->engine, WORKER_BUSY_MS,
			    stopping ? -1 : upmon_amqp_socket(t->amqp));
			if (n < 0) {
				log_warnx("engine: %s", strerror(-n));
				upmon_sleep_ms(10);
			}
			collect(t);
		}
		if (t->ndead > 0)
			dead_run(t, false);
		if (stopping)
			(void)upmon_amqp_poll(t->amqp, 0);
		atomic_store(&t->amqp_up, upmon_amqp_is_connected(t->amqp));
	}
	/* One last try for the pending dead letters; what is left goes back to the broker
	 * unacked when the connection closes. */
	if (t->ndead > 0)
		dead_run(t, true);
}

static void *
thread_main(void *arg)
{
	struct wthread *t = arg;
	struct probe_worker *w = t->w;
	struct wtask *wt;

	thread_loop(t);
	while ((wt = t->dead) != NULL) {
		t->dead = wt->next;
		t->ndead--;
		task_free(t, wt);
	}
	/* Closing the connection gives unacked and unstarted deliveries back to the broker. */
	upmon_amqp_free(t->amqp);
	t->amqp = NULL;
	atomic_store(&t->amqp_up, 0);
	probe_engine_free(t->engine);
	t->engine = NULL;
	if (t->store != NULL)
		probe_store_free(t->store);
	t->store = NULL;
	pthread_mutex_lock(&w->lock);
	w->running--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int
thread_init(struct probe_worker *w, struct wthread *t, int idx)
{
	struct probe_engine_config ecfg = w->cfg.engine;
	int rc;

	t->w = w;
	t->idx = idx;
	t->jitter = upmon_jitter_seed(t);
	t->capacity = (size_t)w->cfg.consumers * (size_t)w->cfg.prefetch;
	if (ecfg.max_inflight < t->capacity)
		ecfg.max_inflight = t->capacity;
	t->items = calloc((size_t)w->cfg.batch_max, sizeof(*t->items));
	t->batch = calloc((size_t)w->cfg.batch_max, sizeof(*t->batch));
	if (t->items == NULL || t->batch == NULL)
		return -ENOMEM;
	rc = upmon_amqp_new(&w->cfg.amqp, &t->amqp);
	if (rc != 0)
		return rc == UPMON_AMQP_ENOMEM ? -ENOMEM : -EINVAL;
	rc = probe_engine_new(&ecfg, &t->engine);
	if (rc != 0)
		return rc;
	rc = probe_store_new(&w->cfg.store, &t->store);
	if (rc != 0)
		return rc;
	return 0;
}

static void
thread_release(struct wthread *t)
{
	upmon_amqp_free(t->amqp);
	probe_engine_free(t->engine);
	if (t->store != NULL)
		probe_store_free(t->store);
	free(t->items);
	free(t->batch);
}

static int
config_check(const struct probe_worker_config *cfg)
{
	if (cfg->amqp.url == NULL || cfg->store.db.url == NULL)
		return -EINVAL;
	if (cfg->threads < 1 || cfg->threads > 256 || cfg->consumers < 1 ||
	    cfg->consumers > 256 || cfg->prefetch < 1 || cfg->prefetch > 1000 ||
	    cfg->batch_max < 1 || cfg->batch_max > 100000 || cfg->max_attempts < 0 ||
	    cfg->max_attempts > 99 || cfg->confirm_timeout_ms < 1 ||
	    cfg->dead_backoff_max_ms < WORKER_DEAD_MIN_MS)
		return -EINVAL;
	return 0;
}

int
probe_worker_start(const struct probe_worker_config *cfg, struct probe_worker **out)
{
	struct probe_worker *w;
	pthread_condattr_t ca;
	int i, rc;

	*out = NULL;
	rc = config_check(cfg);
	if (rc != 0)
		return rc;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->cfg = *cfg;
	w->nthreads = cfg->threads;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	worker_metrics_init(&w->m, cfg->metrics);
	w->t = calloc((size_t)w->nthreads, sizeof(*w->t));
	if (w->t == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < w->nthreads; i++) {
		rc = thread_init(w, &w->t[i], i);
		if (rc != 0)
			goto fail;
	}
	for (i = 0; i < w->nthreads; i++) {
		pthread_mutex_lock(&w->lock);
		w->running++;
		pthread_mutex_unlock(&w->lock);
		if (pthread_create(&w->t[i].tid, NULL, thread_main, &w->t[i]) != 0) {
			pthread_mutex_lock(&w->lock);
			w->running--;
			pthread_mutex_unlock(&w->lock);
			rc = -EAGAIN;
			goto fail;
		}
		w->t[i].started = true;
	}
	*out = w;
	return 0;
fail:
	probe_worker_free(w);
	return rc;
}

void
probe_worker_stop(struct probe_worker *w)
{
	if (w != NULL)
		atomic_store(&w->stopping, 1);
}

int
probe_worker_wait(struct probe_worker *w, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	upmon_timespec_after(CLOCK_MONOTONIC, timeout_ms, &ts);
	pthread_mutex_lock(&w->lock);
	while (w->running > 0 && rc == 0)
		rc = pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	rc = w->running > 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void
probe_worker_get_stats(struct probe_worker *w, struct probe_worker_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	out->checks = atomic_load(&w->checks);
	out->acked = atomic_load(&w->acked);
	out->retried = atomic_load(&w->retried);
	out->dead_undecodable = atomic_load(&w->dead_undecodable);
	out->dead_attempts = atomic_load(&w->dead_attempts);
	out->duplicates = atomic_load(&w->duplicates);
	out->gone = atomic_load(&w->gone);
	out->redelivered = atomic_load(&w->redelivered);
	out->inflight = atomic_load(&w->inflight);
	for (i = 0; i < w->nthreads; i++) {
		out->amqp_connected += atomic_load(&w->t[i].amqp_up);
		out->db_failing += atomic_load(&w->t[i].db_failing);
	}
}

void
probe_worker_free(struct probe_worker *w)
{
	int i;

	if (w == NULL)
		return;
	probe_worker_stop(w);
	for (i = 0; w->t != NULL && i < w->nthreads; i++) {
		if (w->t[i].started)
			pthread_join(w->t[i].tid, NULL);
		thread_release(&w->t[i]);
	}
	free(w->t);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
