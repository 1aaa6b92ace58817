/*
 * The periodic safety net, off the hot path. A thread with its own db handle reads a
 * snapshot of (id, updated_at) of every active monitor in pages; the loop compares it with
 * the table in chunks (memory only, no round trip), reloads the few rows that differ and
 * removes entries whose row is gone. An entry (re)loaded after the snapshot was requested
 * (by a notification) is newer than the snapshot and is left alone.
 */
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "upmon/backoff.h"
#include "upmon/db.h"
#include "upmon/log.h"

#define UUID_LEN 36

static const char light_sql[] =
	"SELECT id, (extract(epoch FROM updated_at) * 1000000)::int8 FROM monitors "
	"WHERE NOT paused AND id > $1::uuid ORDER BY id LIMIT $2";

struct sched_snap_row {
	char id[UUID_LEN + 1];
	int64_t updated_us;
};

static void
snap_free(struct sched_snap *sn)
{
	if (sn == NULL)
		return;
	free(sn->rows);
	free(sn);
}

/* Reads the snapshot in pages; NULL on a database error (logged) or out of memory. */
static struct sched_snap *
snap_fetch(struct upmon_db *db, int batch)
{
	char last[UPMON_ID_MAX + 1] = "00000000-0000-0000-0000-000000000000";
	char limit[24];
	const char *params[2] = { last, limit };
	struct upmon_db_error err;
	struct sched_snap *sn;
	struct sched_snap_row *rows;
	PGresult *res = NULL;
	const char *id;
	int i, n;

	if ((sn = calloc(1, sizeof(*sn))) == NULL)
		return NULL;
	snprintf(limit, sizeof(limit), "%d", batch);
	for (;;) {
		if (upmon_db_query(db, UPMON_DB_IDEMPOTENT, light_sql, 2, params, &res,
		    &err) != 0) {
			log_warnx("reconcile: %s", err.message);
			snap_free(sn);
			return NULL;
		}
		n = PQntuples(res);
		if (sn->n + (size_t)n > sn->cap) {
			sn->cap = (sn->n + (size_t)n) * 2;
			if ((rows = realloc(sn->rows, sn->cap * sizeof(*rows))) == NULL) {
				PQclear(res);
				snap_free(sn);
				return NULL;
			}
			sn->rows = rows;
		}
		for (i = 0; i < n; i++) {
			id = upmon_db_value(res, i, 0);
			if (id == NULL || strlen(id) != UUID_LEN ||
			    upmon_db_int64(res, i, 1, &sn->rows[sn->n].updated_us) != 0)
				continue;
			memcpy(sn->rows[sn->n].id, id, UUID_LEN + 1);
			sn->n++;
		}
		if (n > 0 && (id = upmon_db_value(res, n - 1, 0)) != NULL)
			snprintf(last, sizeof(last), "%s", id);
		PQclear(res);
		if (n < batch)
			break;
	}
	return sn;
}

static void *
reconciler_main(void *arg)
{
	struct sched_reconciler *r = arg;
	struct sched_snap *sn;
	unsigned w;

	while (!atomic_load(&r->stop)) {
		w = atomic_load(&r->want);
		if (w == atomic_load(&r->done) || atomic_load(&r->ready) != NULL) {
			upmon_sleep_ms(10);
			continue;
		}
		if ((sn = snap_fetch(r->db, r->batch)) != NULL) {
			sn->seq = w;
			atomic_store(&r->ready, sn);
		} else {
			atomic_store(&r->failed, w);
		}
		atomic_store(&r->done, w);
	}
	return NULL;
}

int
sched_reconciler_start(struct sched_reconciler *r)
{
	int rc;

	atomic_store(&r->want, 0);
	atomic_store(&r->done, 0);
	atomic_store(&r->failed, 0);
	atomic_store(&r->stop, 0);
	atomic_store(&r->ready, NULL);
	if ((rc = pthread_create(&r->thread, NULL, reconciler_main, r)) != 0)
		return -rc;
	r->started = true;
	return 0;
}

void
sched_reconciler_stop(struct sched_reconciler *r)
{
	if (r->started) {
		atomic_store(&r->stop, 1);
		pthread_join(r->thread, NULL);
		r->started = false;
	}
	snap_free(atomic_exchange(&r->ready, NULL));
	snap_free(r->cur);
	r->cur = NULL;
	free(r->changed);
	r->changed = NULL;
	r->nchanged = r->capchanged = 0;
}

void
sched_reconciler_request(struct sched_reconciler *r, const struct sched_monitors *t)
{
	r->since_version = t->next_version;
	snap_free(r->cur);
	r->cur = NULL;
	atomic_fetch_add(&r->want, 1);
}

void
sched_reconciler_cancel(struct sched_reconciler *r)
{
	/* a snapshot still being read is dropped when it arrives: the next request makes its
	 * seq stale */
	snap_free(r->cur);
	r->cur = NULL;
	r->nchanged = 0;
	snap_free(atomic_exchange(&r->ready, NULL));
}

static int
remember(struct sched_reconciler *r, const char *id)
{
	char (*v)[UPMON_ID_MAX + 1];
	size_t ncap;

	if (r->nchanged == r->capchanged) {
		ncap = r->capchanged ? r->capchanged * 2 : 64;
		if ((v = realloc(r->changed, ncap * sizeof(*v))) == NULL)
			return -ENOMEM;
		r->changed = v;
		r->capchanged = ncap;
	}
	snprintf(r->changed[r->nchanged++], UPMON_ID_MAX + 1, "%s", id);
	return 0;
}

int
sched_reconciler_step(struct sched_reconciler *r, struct sched_monitors *t,
    struct upmon_db *db, size_t chunk, sched_change_fn fn, void *arg, size_t *nchanged)
{
	struct sched_snap *sn;
	struct sched_mon *m;
	size_t end, i;
	uint32_t no;
	int rc;

	*nchanged = 0;
	if (r->cur == NULL) {
		if ((sn = atomic_exchange(&r->ready, NULL)) == NULL)
			return atomic_load(&r->failed) == atomic_load(&r->want) ? -EIO : -EAGAIN;
		if (sn->seq != atomic_load(&r->want)) {
			snap_free(sn);
			return -EAGAIN;
		}
		r->cur = sn;
		r->pos = 0;
		r->nchanged = 0;
		r->pass = ++t->pass;
	}
	sn = r->cur;
	end = r->pos + chunk < sn->n ? r->pos + chunk : sn->n;
	for (i = r->pos; i < end; i++) {
		m = sched_monitors_get(t, sched_monitors_find(t, sn->rows[i].id));
		if (m != NULL)
			m->seen = r->pass;
		if (m != NULL && (m->updated_us == sn->rows[i].updated_us ||
		    m->version > r->since_version))
			continue;
		if (remember(r, sn->rows[i].id) != 0)
			return -ENOMEM;
	}
	r->pos = end;
	if (r->pos < sn->n)
		return -EINPROGRESS;
	/* done: drop entries neither in the snapshot nor loaded since it was asked for */
	for (no = 0; no < t->nno; no++) {
		m = t->byno[no];
		if (m != NULL && m->seen != r->pass && m->version <= r->since_version)
			sched_monitors_remove(t, no, fn, arg);
	}
	rc = 0;
	for (i = 0; i < r->nchanged; i++)
		if ((rc = sched_monitors_load_one(t, db, r->changed[i], fn, arg)) ==
		    UPMON_DB_E_CONN)
			break;
	*nchanged = r->nchanged;
	snap_free(r->cur);
	r->cur = NULL;
	r->nchanged = 0;
	return rc == UPMON_DB_E_CONN ? -EIO : 0;
}
