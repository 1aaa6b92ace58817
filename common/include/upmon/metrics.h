/*
 * A small Prometheus metrics registry: counters, gauges and histograms with fixed buckets,
 * each series with optional constant labels, rendered in the text exposition format 0.0.4
 * (served by the admin endpoint, admin.h).
 *
 * Registration takes the registry's mutex and may allocate; do it at start-up and keep the
 * handle. Updating a series through its handle is lock-free (atomics) and cheap enough for
 * every task. A NULL handle (a failed registration) is accepted by every update function and
 * does nothing, so a metric can never crash a service; the failure is logged once.
 *
 * Labels are passed as NULL-terminated name, value pairs:
 *   c = upmon_metrics_counter(reg, "upmon_tasks_published_total", "Tasks published.",
 *       "queue", "monitor_tasks", NULL);
 * Registering the same name and labels again returns the same handle. Names follow the
 * Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*); counter names must end in "_total"; label
 * names are [a-zA-Z_][a-zA-Z0-9_]* and may not start with "__" ("le" is reserved for
 * histograms). Label values may hold any text; they are escaped when rendered.
 */
#ifndef UPMON_METRICS_H
#define UPMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct upmon_metrics;
struct upmon_counter;
struct upmon_gauge;
struct upmon_histogram;

/* Bucket bounds (seconds) for lateness and latencies: 1 ms .. 60 s. */
#define UPMON_METRICS_SECONDS_BUCKETS \
	{ 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

/* Creates an empty registry; NULL when out of memory. */
struct upmon_metrics *upmon_metrics_new(void);
/* Frees the registry and every handle obtained from it; NULL is a no-op. */
void upmon_metrics_free(struct upmon_metrics *m);

/* Registers (or finds) a series. Returns its handle, or NULL (logged) if a name or label is
 * invalid, the name is already used with another type or other buckets, or out of memory.
 * The strings are copied. The handle lives as long as the registry. */
struct upmon_counter *upmon_metrics_counter(struct upmon_metrics *m, const char *name,
    const char *help, ...) __attribute__((sentinel));
struct upmon_gauge *upmon_metrics_gauge(struct upmon_metrics *m, const char *name,
    const char *help, ...) __attribute__((sentinel));
/* bounds: nbounds (1..64) finite upper bounds in increasing order; "+Inf" is implicit. */
struct upmon_histogram *upmon_metrics_histogram(struct upmon_metrics *m, const char *name,
    const char *help, const double *bounds, size_t nbounds, ...) __attribute__((sentinel));

enum upmon_metric_type {
	UPMON_METRIC_COUNTER = 0,
	UPMON_METRIC_GAUGE = 1,
};

/* A value computed at scrape time: fn(arg) is called, under the registry's mutex, each time
 * the registry is rendered (it must not register metrics). type is counter or gauge.
 * Returns 0, -EINVAL (invalid name, label or type conflict) or -ENOMEM. */
int upmon_metrics_callback(struct upmon_metrics *m, enum upmon_metric_type type,
    const char *name, const char *help, double (*fn)(void *arg), void *arg, ...)
    __attribute__((sentinel));

void upmon_counter_inc(struct upmon_counter *c);
void upmon_counter_add(struct upmon_counter *c, uint64_t n);
uint64_t upmon_counter_get(const struct upmon_counter *c);

void upmon_gauge_set(struct upmon_gauge *g, double v);
void upmon_gauge_add(struct upmon_gauge *g, double delta);	/* negative to decrease */
double upmon_gauge_get(const struct upmon_gauge *g);

/* Counts v in the first bucket whose bound is >= v (NaN is ignored). */
void upmon_histogram_observe(struct upmon_histogram *h, double v);

/*
 * Adds the standard process metrics: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_start_time_seconds,
 * process_open_fds, process_max_fds (from /proc and getrusage, read at scrape time), and
 * upmon_build_info{version, service} 1. Returns 0 or a negative errno.
 */
int upmon_metrics_add_process(struct upmon_metrics *m, const char *service,
    const char *version);

/* Renders every series in the text exposition format 0.0.4 (HELP, TYPE, then the samples;
 * families and series in registration order) into a new heap buffer: *out (caller frees),
 * *len without the terminating NUL. Returns 0 or -ENOMEM. */
int upmon_metrics_render(struct upmon_metrics *m, char **out, size_t *len);

#endif
