/*
 * The probe's worker threads: each consumes monitor_tasks on its own AMQP connection (many
 * consumer channels, prefetch 1 each), runs the checks on its own engine, commits the
 * results in groups through its own store, and acks each task only after its commit.
 * Processing failures go through the retry queues; past the attempt limit a task raises a
 * SYSTEM_ERROR alert and is dead-lettered (README-worker.md has the whole story).
 */
#ifndef UPMON_PROBE_WORKER_H
#define UPMON_PROBE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "store.h"
#include "upmon/amqp.h"

struct upmon_metrics;
struct probe_worker;

struct probe_worker_config {
	struct upmon_amqp_config amqp;	/* url required; one connection per thread */
	struct probe_store_config store;	/* one store per thread */
	struct probe_engine_config engine;	/* one engine per thread */
	int threads;			/* worker threads, default 2 */
	int consumers;			/* consumer channels per thread, default 64 (<= 256) */
	int prefetch;			/* per consumer channel, default 1 */
	int batch_max;			/* results per commit at most, default 128 */
	int max_attempts;		/* processing retries before dead-lettering, default 5 */
	int confirm_timeout_ms;		/* retry / dead-letter publish confirm, default 10000 */
	int dead_backoff_max_ms;	/* cap of the SYSTEM_ERROR alert retry delay, 10000 */
	struct upmon_metrics *metrics;	/* may be NULL */
};

/* Counters of all threads together (for tests and readiness). */
struct probe_worker_stats {
	uint64_t checks;		/* completed checks */
	uint64_t acked;			/* tasks acked after their commit (or drop) */
	uint64_t retried;		/* processing failures sent to a retry queue */
	uint64_t dead_undecodable;
	uint64_t dead_attempts;
	uint64_t duplicates;
	uint64_t gone;
	uint64_t redelivered;		/* deliveries with the redelivered flag */
	uint64_t inflight;		/* tasks taken and not yet acked or retried */
	int amqp_connected;		/* threads whose connection is up */
	int db_failing;			/* threads whose last commit failed on the database */
};

/* Fills cfg with the defaults above (amqp, store and engine defaults, urls NULL). */
void probe_worker_config_init(struct probe_worker_config *cfg);

/* Starts cfg->threads threads (they connect and consume at once). cfg's strings and
 * pointers must outlive the worker. 0, -EINVAL, -ENOMEM, or -EAGAIN (thread creation). */
int probe_worker_start(const struct probe_worker_config *cfg, struct probe_worker **out);

/* Asks every thread to stop taking tasks, finish the ones in flight, commit and ack them.
 * Async-signal-safe (sets an atomic flag) and idempotent. */
void probe_worker_stop(struct probe_worker *w);

/* Waits up to timeout_ms for the threads to finish after probe_worker_stop(). 0 when all
 * finished, -ETIMEDOUT when some still run (call again, or exit without freeing). */
int probe_worker_wait(struct probe_worker *w, int timeout_ms);

/* Sums the threads' counters into *out. Thread-safe. */
void probe_worker_get_stats(struct probe_worker *w, struct probe_worker_stats *out);

/* Joins the threads (stopping them first if needed) and frees w. NULL is a no-op. Only call
 * after probe_worker_wait() returned 0, or when the threads are known to finish. */
void probe_worker_free(struct probe_worker *w);

#endif
