/*
 * The scheduler's slot math (services/scheduler/grid.c): FNV-1a-64 vectors, phase stable and
 * in range, slots on the grid for intervals 10 s .. 24 h, the next slot after any t, no drift
 * over many periods, an even spread of phases.
 */
#include "test.h"
#include "sched.h"

#include <stdint.h>
#include <stdio.h>

static void
test_fnv_vectors(void)
{
	/* published FNV-1a 64 test vectors */
	CHECK(sched_fnv1a64("") == 0xcbf29ce484222325ULL);
	CHECK(sched_fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
	CHECK(sched_fnv1a64("foobar") == 0x85944171f73967e8ULL);
}

static void
test_phase(void)
{
	static const int intervals[] = { 10, 11, 30, 60, 300, 3599, 3600, 86399, 86400 };
	char id[64];
	size_t i;
	int k;
	int64_t p;

	for (i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		for (k = 0; k < 200; k++) {
			snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", k);
			p = sched_phase_ms(id, intervals[i]);
			CHECK_INT(p, >=, 0);
			CHECK_INT(p, <, (int64_t)intervals[i] * 1000);
			CHECK_EQ(p, sched_phase_ms(id, intervals[i]));
			CHECK_EQ(p, (int64_t)(sched_fnv1a64(id) % ((uint64_t)intervals[i] * 1000)));
		}
	}
}

static void
test_next_slot(void)
{
	static const int intervals[] = { 10, 17, 60, 600, 3600, 86400 };
	const int64_t base = 1763700000000LL;	/* Nov 2025, Unix ms */
	int64_t phase, period, t, s;
	size_t i;
	int k;

	for (i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		period = (int64_t)intervals[i] * 1000;
		phase = sched_phase_ms("a-monitor", intervals[i]);
		for (k = 0; k < 5000; k++) {
			t = base + (int64_t)k * 7919 + k % 3;
			s = sched_next_slot(phase, intervals[i], t);
			CHECK_INT(s, >=, t);
			CHECK_INT(s - t, <, period);
			CHECK_EQ(((s - phase) % period + period) % period, 0);
		}
		/* a slot itself is its own next slot; one ms after it, the next one */
		s = sched_next_slot(phase, intervals[i], base);
		CHECK_EQ(sched_next_slot(phase, intervals[i], s), s);
		CHECK_EQ(sched_next_slot(phase, intervals[i], s + 1), s + period);
		CHECK_EQ(sched_next_slot(phase, intervals[i], s - 1), s);
		/* small and negative t work too */
		CHECK_EQ(sched_next_slot(phase, intervals[i], 0), phase);
		CHECK_INT(sched_next_slot(phase, intervals[i], -5 * period), >=, -5 * period);
	}
}

static void
test_no_drift(void)
{
	const int64_t start = 1763700000123LL;
	int64_t phase = sched_phase_ms("drift", 60), s, first;
	int k;

	first = s = sched_next_slot(phase, 60, start);
	/* a year of one-minute periods, stepping the way the loop does */
	for (k = 0; k < 525600; k++)
		s = sched_next_slot(phase, 60, s + 1);
	CHECK_EQ(s, first + 525600LL * 60000);
	CHECK_EQ((s - phase) % 60000, 0);
}

static void
test_slots_between(void)
{
	int64_t phase = 1234, p = 10000;

	CHECK_EQ(sched_slots_between(phase, 10, phase, phase + p), 0);	/* open interval */
	CHECK_EQ(sched_slots_between(phase, 10, phase, phase + p + 1), 1);
	CHECK_EQ(sched_slots_between(phase, 10, phase - 1, phase + 1), 1);
	CHECK_EQ(sched_slots_between(phase, 10, phase + 1, phase + p), 0);
	CHECK_EQ(sched_slots_between(phase, 10, 1000000, 1000000 + 10 * p), 10);
	CHECK_EQ(sched_slots_between(phase, 10, 500, 400), 0);
	CHECK_EQ(sched_slots_between(phase, 86400, 0, 86400000LL * 365), 365);
}

static void
test_spread(void)
{
	enum { N = 100000, BUCKETS = 60 };
	int counts[BUCKETS] = { 0 };
	char id[64];
	int k, lo = N, hi = 0;

	/* uuid-like ids: phases over a 60 s interval fall evenly into one-second buckets */
	for (k = 0; k < N; k++) {
		snprintf(id, sizeof(id), "%08x-%04x-4%03x-8000-%012x", k * 2654435761u, k & 0xffff,
		    k & 0xfff, k);
		counts[sched_phase_ms(id, 60) / 1000]++;
	}
	for (k = 0; k < BUCKETS; k++) {
		if (counts[k] < lo)
			lo = counts[k];
		if (counts[k] > hi)
			hi = counts[k];
	}
	/* expected 1667 per bucket; allow +-15% */
	CHECK_INT(lo, >, N / BUCKETS * 85 / 100);
	CHECK_INT(hi, <, N / BUCKETS * 115 / 100);
}

int
main(void)
{
	RUN(test_fnv_vectors);
	RUN(test_phase);
	RUN(test_next_slot);
	RUN(test_no_drift);
	RUN(test_slots_between);
	RUN(test_spread);
	return test_finish();
}
