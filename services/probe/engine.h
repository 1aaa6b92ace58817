/*
 * The check engine: runs many checks at once on one thread (libcurl multi), HTTP(S) and TCP,
 * each with a fresh connection, the SSRF guard, timings and certificate expiry.
 *
 * One engine per thread; nothing here is thread-safe. The worker (worker.c) feeds it tasks
 * and collects results; tests, benchmarks and upmonctl may use probe_check_run() for one
 * check. Each check type is one file (check_http.c, check_tcp.c) and one row in the table of
 * check types (checks.c).
 */
#ifndef UPMON_PROBE_ENGINE_H
#define UPMON_PROBE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upmon/msg.h"

struct upmon_ssrf;
struct probe_engine;

/* Phase durations of one check in milliseconds, each measured from the start of the check
 * (like curl's *_TIME_T values); -1 when the phase was not reached or does not apply. */
struct probe_timings {
	int dns_ms;
	int connect_ms;
	int tls_ms;
	int first_byte_ms;
	int total_ms;
};

/* The outcome of one check. A target that is down is a result (ok = false), not an error. */
struct probe_result {
	bool ok;
	int status_code;		/* HTTP status, 0 = none (TCP, or no response) */
	int latency_ms;			/* total time of the check */
	struct probe_timings timings;
	bool has_cert;			/* https: the leaf certificate was seen */
	int cert_days_left;		/* when has_cert: whole days until notAfter (may be < 0) */
	int64_t cert_not_after_ms;	/* when has_cert: notAfter, Unix ms */
	bool blocked;			/* the SSRF guard refused an address: nothing connected */
	bool local_error;		/* the probe itself failed (out of file descriptors,
					 * local ports or memory): says nothing about the target;
					 * treat as a processing failure (retry), not as down */
	char error[UPMON_ERROR_MAX + 1];	/* "" when ok, else one lowercase line */
};

struct probe_engine_config {
	const struct upmon_ssrf *guard;	/* NULL = no guard; must outlive the engine */
	size_t max_body_bytes;		/* response bytes kept for the keyword check: 1 MiB */
	size_t max_inflight;		/* checks running at once before submit says EAGAIN: 1024 */
	const char *user_agent;		/* default "upmon-probe/<version>" */
};

/* Fills cfg with the defaults above. */
void probe_engine_config_init(struct probe_engine_config *cfg);

/* Creates an engine. Returns 0, -EINVAL or -ENOMEM. Free with probe_engine_free(). */
int probe_engine_new(const struct probe_engine_config *cfg, struct probe_engine **out);
/* Aborts the checks still running (they are never reported) and frees e. NULL is a no-op. */
void probe_engine_free(struct probe_engine *e);

/*
 * Starts the check of task (what it needs is copied; task may go away) and remembers ctx,
 * which probe_engine_next() hands back with the result. A check that cannot even start (bad
 * URL, blocked address, DNS failure) still completes as a failed result: only the engine's
 * own problems are errors. Returns 0, -EAGAIN (max_inflight reached), -EINVAL, -ENOMEM.
 */
int probe_engine_submit(struct probe_engine *e, const struct upmon_task *task, void *ctx);

/*
 * Drives the running checks, waiting up to timeout_ms for network activity (or for extra_fd,
 * when >= 0, to become readable: pass the AMQP socket so new deliveries wake the loop).
 * Returns the number of completed results waiting for probe_engine_next(), or -ENOMEM /
 * -EIO on an engine failure.
 */
int probe_engine_run(struct probe_engine *e, int timeout_ms, int extra_fd);

/* Takes one completed result: 0 with *ctx and *out filled, or -EAGAIN when none waits. */
int probe_engine_next(struct probe_engine *e, void **ctx, struct probe_result *out);

/* Checks submitted and not yet taken by probe_engine_next(). */
size_t probe_engine_inflight(const struct probe_engine *e);

/* Runs one check to completion on a private engine (tests, benchmarks, upmonctl).
 * Returns 0 with *out filled, or an engine error as above. */
int probe_check_run(const struct probe_engine_config *cfg, const struct upmon_task *task,
    struct probe_result *out);

#endif
