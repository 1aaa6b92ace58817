/*
 * The admin endpoint every long-running service starts (civetweb, a few threads):
 *
 *   GET /healthz   200 "ok" while the process is alive
 *   GET /readyz    200 {"ready":true,...} when every readiness check passes, else 503 with a
 *                  JSON body naming each check that is not ready and why
 *   GET /metrics   the registry in Prometheus text format (text/plain; version=0.0.4)
 *   anything else  404 {"error":"not found"}; methods other than GET/HEAD get 405
 *
 * Readiness checks are named flags (upmon_admin_set_ready) or callbacks
 * (upmon_admin_add_check). A service declares its flags at start (cfg->not_ready) so /readyz
 * is 503 until each dependency is up, flips them as connections come and go, and on SIGTERM
 * sets a "shutdown" flag false so load balancers stop sending work while it drains.
 */
#ifndef UPMON_ADMIN_H
#define UPMON_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct upmon_metrics;
struct upmon_admin;

struct upmon_admin_config {
	const char *addr;		/* IPv4 address to bind; NULL = "127.0.0.1" */
	int port;			/* 0 = any free port (see upmon_admin_port) */
	const char *service;		/* name in log lines */
	int threads;			/* civetweb worker threads; 0 = 2, at most 8 */
	const char *const *not_ready;	/* NULL-terminated flags that start not ready */
};

/* A readiness callback: returns 0 when ready, else non-zero with a short reason in reason
 * (size bytes). Called on every /readyz request, from a civetweb thread: keep it quick and
 * thread-safe (read a flag or a timestamp, never block on the network). */
typedef int (*upmon_ready_fn)(void *arg, char *reason, size_t size);

/* Starts the endpoint and stores the handle in *out. metrics may be NULL (empty /metrics);
 * it must outlive the endpoint. Returns 0, -EINVAL (bad address, port or flag name), -EIO
 * when the address cannot be bound (port in use; civetweb's reason is logged), -ENOMEM. */
int upmon_admin_start(const struct upmon_admin_config *cfg, struct upmon_metrics *metrics,
    struct upmon_admin **out);

/* The TCP port actually bound (useful when cfg->port was 0). */
int upmon_admin_port(const struct upmon_admin *a);

/* Sets (creating it if needed) the readiness flag name. Thread-safe.
 * Returns 0, -EINVAL (empty or over-long name), -ENOSPC (more than 16 checks). */
int upmon_admin_set_ready(struct upmon_admin *a, const char *name, bool ready);

/* Adds a readiness callback (see upmon_ready_fn); arg must outlive the endpoint.
 * Returns 0, -EINVAL, -ENOSPC. */
int upmon_admin_add_check(struct upmon_admin *a, const char *name, upmon_ready_fn fn,
    void *arg);

/* Returns true when every readiness check passes (what /readyz answers). */
bool upmon_admin_is_ready(struct upmon_admin *a);

/* Stops the server (waits for requests in progress) and frees the handle; NULL is a no-op. */
void upmon_admin_stop(struct upmon_admin *a);

#endif
