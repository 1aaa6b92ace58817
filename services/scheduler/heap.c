/*
 * A binary min-heap of (key, id) with a position index per id, so the scheduler can move or
 * drop any monitor's next slot in O(log n). Ties are broken by id to keep the order stable.
 */
#include "sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOPOS UINT32_MAX

void
sched_heap_init(struct sched_heap *h)
{
	memset(h, 0, sizeof(*h));
}

void
sched_heap_release(struct sched_heap *h)
{
	free(h->items);
	free(h->pos);
	sched_heap_init(h);
}

void
sched_heap_clear(struct sched_heap *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		h->pos[h->items[i].id] = NOPOS;
	h->n = 0;
}

static int
less(const struct sched_heap_item *a, const struct sched_heap_item *b)
{
	return a->key < b->key || (a->key == b->key && a->id < b->id);
}

static void
place(struct sched_heap *h, size_t i, struct sched_heap_item it)
{
	h->items[i] = it;
	h->pos[it.id] = (uint32_t)i;
}

static void
sift_up(struct sched_heap *h, size_t i)
{
	struct sched_heap_item it = h->items[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!less(&it, &h->items[parent]))
			break;
		place(h, i, h->items[parent]);
		i = parent;
	}
	place(h, i, it);
}

static void
sift_down(struct sched_heap *h, size_t i)
{
	struct sched_heap_item it = h->items[i];
	size_t child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= h->n)
			break;
		if (child + 1 < h->n && less(&h->items[child + 1], &h->items[child]))
			child++;
		if (!less(&h->items[child], &it))
			break;
		place(h, i, h->items[child]);
		i = child;
	}
	place(h, i, it);
}

static int
grow_pos(struct sched_heap *h, uint32_t id)
{
	size_t ncap, i;
	uint32_t *p;

	if (id < h->npos)
		return 0;
	ncap = h->npos ? h->npos : 1024;
	while (ncap <= id)
		ncap *= 2;
	if ((p = realloc(h->pos, ncap * sizeof(*p))) == NULL)
		return -ENOMEM;
	for (i = h->npos; i < ncap; i++)
		p[i] = NOPOS;
	h->pos = p;
	h->npos = ncap;
	return 0;
}

int
sched_heap_set(struct sched_heap *h, uint32_t id, int64_t key)
{
	struct sched_heap_item *items;
	size_t i, ncap;

	if (id == NOPOS)
		return -EINVAL;
	if (grow_pos(h, id) != 0)
		return -ENOMEM;
	if ((i = h->pos[id]) != NOPOS) {
		int64_t old = h->items[i].key;

		h->items[i].key = key;
		if (key < old)
			sift_up(h, i);
		else
			sift_down(h, i);
		return 0;
	}
	if (h->n == h->cap) {
		ncap = h->cap ? h->cap * 2 : 1024;
		if ((items = realloc(h->items, ncap * sizeof(*items))) == NULL)
			return -ENOMEM;
		h->items = items;
		h->cap = ncap;
	}
	h->items[h->n].key = key;
	h->items[h->n].id = id;
	h->pos[id] = (uint32_t)h->n;
	h->n++;
	sift_up(h, h->n - 1);
	return 0;
}

void
sched_heap_remove(struct sched_heap *h, uint32_t id)
{
	size_t i;
	struct sched_heap_item last;

	if (id >= h->npos || (i = h->pos[id]) == NOPOS)
		return;
	h->pos[id] = NOPOS;
	h->n--;
	if (i == h->n)
		return;
	last = h->items[h->n];
	place(h, i, last);
	if (i > 0 && less(&last, &h->items[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

int
sched_heap_peek(const struct sched_heap *h, uint32_t *id, int64_t *key)
{
	if (h->n == 0)
		return -ENOENT;
	if (id != NULL)
		*id = h->items[0].id;
	if (key != NULL)
		*key = h->items[0].key;
	return 0;
}

bool
sched_heap_contains(const struct sched_heap *h, uint32_t id)
{
	return id < h->npos && h->pos[id] != NOPOS;
}
