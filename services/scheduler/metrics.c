/*
 * The scheduler's Prometheus series. Lateness buckets are fine enough to read p50, p99 and
 * p99.9 between 0.1 ms and 1 s.
 */
#include "sched.h"

#include <string.h>

#include "upmon/metrics.h"

static const double lateness_bounds[] = {
	0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5,
};

void
sched_metrics_init(struct sched_metrics *sm, struct upmon_metrics *reg)
{
	memset(sm, 0, sizeof(*sm));
	if (reg == NULL)
		return;
	sm->published = upmon_metrics_counter(reg, "upmon_scheduler_tasks_published_total",
	    "Tasks published to upmon.tasks (re-publishes included).", NULL);
	sm->confirmed = upmon_metrics_counter(reg, "upmon_scheduler_tasks_confirmed_total",
	    "Tasks the broker confirmed (acked).", NULL);
	sm->republished = upmon_metrics_counter(reg, "upmon_scheduler_tasks_republished_total",
	    "Tasks published again after a nack or a lost connection.", NULL);
	sm->missed = upmon_metrics_counter(reg, "upmon_scheduler_missed_slots_total",
	    "Slots skipped: no leader ran, or the broker was down longer than an interval.",
	    NULL);
	sm->returned = upmon_metrics_counter(reg, "upmon_scheduler_tasks_returned_total",
	    "Tasks returned unroutable by the broker (topology broken).", NULL);
	sm->lateness = upmon_metrics_histogram(reg, "upmon_scheduler_lateness_seconds",
	    "Publish time minus slot time of first publishes.", lateness_bounds,
	    sizeof(lateness_bounds) / sizeof(lateness_bounds[0]), NULL);
	sm->leader = upmon_metrics_gauge(reg, "upmon_scheduler_leader",
	    "1 while this instance is the leader.", NULL);
	sm->monitors = upmon_metrics_gauge(reg, "upmon_scheduler_monitors",
	    "Active monitors scheduled.", NULL);
	sm->invalid = upmon_metrics_gauge(reg, "upmon_scheduler_invalid_monitors",
	    "Active monitors skipped because their definition is invalid on the wire.", NULL);
	sm->backlog = upmon_metrics_gauge(reg, "upmon_scheduler_backlog",
	    "Due tasks waiting for the broker.", NULL);
	sm->in_flight = upmon_metrics_gauge(reg, "upmon_scheduler_in_flight",
	    "Published tasks awaiting their confirm.", NULL);
}
