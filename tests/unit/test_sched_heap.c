/*
 * The scheduler's min-heap with a position index (services/scheduler/heap.c) and its FIFO
 * ring (publish.c): order, update up and down, removal of any id, against a brute-force
 * model over random operations.
 */
#include "test.h"
#include "sched.h"

#include <stdint.h>
#include <errno.h>
#include <stdlib.h>

#define NIDS 2000

static uint32_t rng = 12345;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* the model: key per id, or INT64_MIN when absent */
static int64_t model[NIDS];

static int
model_min(uint32_t *id, int64_t *key)
{
	uint32_t i, best = UINT32_MAX;

	for (i = 0; i < NIDS; i++)
		if (model[i] != INT64_MIN && (best == UINT32_MAX || model[i] < model[best]))
			best = i;
	if (best == UINT32_MAX)
		return -1;
	*id = best;
	*key = model[best];
	return 0;
}

static void
test_basic(void)
{
	struct sched_heap h;
	uint32_t id;
	int64_t key;

	sched_heap_init(&h);
	CHECK(sched_heap_peek(&h, &id, &key) != 0);
	CHECK_EQ(sched_heap_set(&h, 5, 50), 0);
	CHECK_EQ(sched_heap_set(&h, 3, 30), 0);
	CHECK_EQ(sched_heap_set(&h, 9, 90), 0);
	CHECK_EQ(sched_heap_peek(&h, &id, &key), 0);
	CHECK_EQ(id, 3);
	CHECK_EQ(key, 30);
	CHECK_EQ(sched_heap_set(&h, 9, 10), 0);	/* update down */
	CHECK_EQ(sched_heap_peek(&h, &id, &key), 0);
	CHECK_EQ(id, 9);
	CHECK_EQ(sched_heap_set(&h, 9, 100), 0);	/* update up */
	CHECK_EQ(sched_heap_peek(&h, &id, NULL), 0);
	CHECK_EQ(id, 3);
	CHECK_EQ(h.n, 3);
	sched_heap_remove(&h, 3);
	sched_heap_remove(&h, 3);			/* absent: no-op */
	sched_heap_remove(&h, 100000);			/* never seen: no-op */
	CHECK(!sched_heap_contains(&h, 3));
	CHECK(sched_heap_contains(&h, 5));
	CHECK_EQ(sched_heap_peek(&h, &id, NULL), 0);
	CHECK_EQ(id, 5);
	CHECK_EQ(sched_heap_set(&h, 200000, 1), 0);	/* a large id grows the index */
	CHECK_EQ(sched_heap_peek(&h, &id, NULL), 0);
	CHECK_EQ(id, 200000);
	sched_heap_clear(&h);
	CHECK_EQ(h.n, 0);
	CHECK(!sched_heap_contains(&h, 5));
	sched_heap_release(&h);
}

static void
test_random(void)
{
	struct sched_heap h;
	uint32_t id, mid;
	int64_t key, mkey;
	int i, op, bad = 0;

	sched_heap_init(&h);
	for (i = 0; i < NIDS; i++)
		model[i] = INT64_MIN;
	for (i = 0; i < 200000; i++) {
		op = (int)(rnd() % 10);
		id = rnd() % NIDS;
		if (op < 6) {
			key = (int64_t)(rnd() % 100000);
			if (sched_heap_set(&h, id, key) != 0)
				bad++;
			model[id] = key;
		} else if (op < 8) {
			sched_heap_remove(&h, id);
			model[id] = INT64_MIN;
		} else if (sched_heap_peek(&h, &id, &key) == 0) {
			/* pop the minimum the way the loop does: move it later */
			if (model_min(&mid, &mkey) != 0 || mkey != key || model[id] != key)
				bad++;
			if (sched_heap_set(&h, id, key + 60000) != 0)
				bad++;
			model[id] = key + 60000;
		} else if (model_min(&mid, &mkey) == 0) {
			bad++;
		}
		if (i % 997 == 0) {
			size_t n = 0;
			uint32_t k;

			for (k = 0; k < NIDS; k++)
				if (model[k] != INT64_MIN) {
					n++;
					if (!sched_heap_contains(&h, k))
						bad++;
				}
			if (n != h.n)
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	/* drain: keys come out in order */
	{
		int64_t last = INT64_MIN;

		while (sched_heap_peek(&h, &id, &key) == 0) {
			if (key < last)
				bad++;
			last = key;
			sched_heap_remove(&h, id);
		}
		CHECK_EQ(bad, 0);
	}
	sched_heap_release(&h);
}

static void
test_ring(void)
{
	struct sched_ring r;
	struct sched_due d = { 0 }, out;
	int i, bad = 0;

	sched_ring_init(&r, 3000);
	for (i = 0; i < 2500; i++) {
		d.tag = (uint64_t)i;
		CHECK_EQ(sched_ring_push(&r, &d), 0);
		if (i % 3 == 0) {
			if (sched_ring_pop(&r, &out) != 0 || out.tag != (uint64_t)(i / 3))
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(sched_ring_at(&r, 0)->tag, 834);
	for (i = 0; r.n < 3000; i++)
		CHECK_EQ(sched_ring_push(&r, &d), 0);
	CHECK_EQ(sched_ring_push(&r, &d), -ENOSPC);
	while (sched_ring_pop(&r, NULL) == 0)
		;
	CHECK_EQ(r.n, 0);
	CHECK(sched_ring_pop(&r, &out) != 0);
	sched_ring_release(&r);
}

int
main(void)
{
	RUN(test_basic);
	RUN(test_random);
	RUN(test_ring);
	return test_finish();
}
