/*
 * Slot math. A monitor with interval I (ms) has phase p = FNV-1a-64(id) mod I and its slots
 * are p + k*I in Unix ms: a restart or fail-over lands on the same slots, nothing drifts,
 * and the phases spread the load over the interval.
 */
#include "sched.h"

#define FNV64_OFFSET	0xcbf29ce484222325ULL
#define FNV64_PRIME	0x100000001b3ULL

uint64_t
sched_fnv1a64(const char *s)
{
	uint64_t h = FNV64_OFFSET;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= FNV64_PRIME;
	}
	return h;
}

int64_t
sched_phase_ms(const char *monitor_id, int interval_s)
{
	uint64_t period = (uint64_t)interval_s * 1000;

	if (interval_s <= 0)
		return 0;
	return (int64_t)(sched_fnv1a64(monitor_id) % period);
}

/* Floor division for a positive divisor. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b) != 0 && a < 0)
		q--;
	return q;
}

int64_t
sched_next_slot(int64_t phase_ms, int interval_s, int64_t t)
{
	int64_t period = (int64_t)interval_s * 1000;
	int64_t k;

	if (period <= 0)
		return t;
	/* smallest k with phase + k*period >= t: k = ceil((t - phase) / period) */
	k = -floor_div(phase_ms - t, period);
	return phase_ms + k * period;
}

int64_t
sched_slots_between(int64_t phase_ms, int interval_s, int64_t lo, int64_t hi)
{
	int64_t period = (int64_t)interval_s * 1000;
	int64_t first, last;

	if (period <= 0 || hi - lo < 2)
		return 0;
	first = sched_next_slot(phase_ms, interval_s, lo + 1);
	last = sched_next_slot(phase_ms, interval_s, hi) - period;	/* last slot < hi */
	if (last < first)
		return 0;
	return (last - first) / period + 1;
}
