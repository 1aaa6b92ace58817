/*
 * Leadership through a PostgreSQL session advisory lock held by a dedicated handle. The db
 * module reconnects transparently, and the session lock dies with the old connection, so a
 * leader treats a changed upmon_db_generation() or a failed query on that handle as lost
 * leadership. The leader also keeps the single scheduler_state row current: published_through
 * (every slot <= it was published) lets the next leader count what nobody published.
 */
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "upmon/backoff.h"
#include "upmon/db.h"
#include "upmon/log.h"

static const char try_sql[] = "SELECT pg_try_advisory_lock($1::int8)";
static const char unlock_sql[] = "SELECT pg_advisory_unlock_all()";
static const char state_sql[] =
	"INSERT INTO scheduler_state AS s (id, leader, published_through, heartbeat_at) "
	"VALUES (1, $1, timestamptz 'epoch' + $2::int8 * interval '1 millisecond', now()) "
	"ON CONFLICT (id) DO UPDATE SET leader = EXCLUDED.leader, "
	"published_through = COALESCE(EXCLUDED.published_through, s.published_through), "
	"heartbeat_at = EXCLUDED.heartbeat_at";
static const char read_sql[] =
	"SELECT floor(extract(epoch FROM published_through) * 1000)::int8 FROM scheduler_state "
	"WHERE id = 1";

int
sched_leader_try(struct sched_leader *l)
{
	const char *params[1] = { SCHED_LOCK_KEY };
	struct upmon_db_error err;
	PGresult *res = NULL;
	const char *v;
	int rc;

	if (l->leader)
		return 0;
	if ((rc = upmon_db_query(l->db, UPMON_DB_IDEMPOTENT, try_sql, 1, params, &res,
	    &err)) != 0)
		return rc;
	v = upmon_db_value(res, 0, 0);
	if (v != NULL && v[0] == 't') {
		l->leader = true;
		l->generation = upmon_db_generation(l->db);
	}
	PQclear(res);
	return 0;
}

int
sched_leader_heartbeat(struct sched_leader *l, int64_t published_through_ms)
{
	char pt[24];
	const char *params[2] = { l->name, NULL };
	struct upmon_db_error err;
	int rc;

	if (!l->leader)
		return -1;
	if (published_through_ms != INT64_MIN) {
		snprintf(pt, sizeof(pt), "%lld", (long long)published_through_ms);
		params[1] = pt;
	}
	rc = upmon_db_query(l->db, 0, state_sql, 2, params, NULL, &err);
	if (upmon_db_generation(l->db) != l->generation || rc == UPMON_DB_E_CONN ||
	    rc == UPMON_DB_E_TIMEOUT) {
		log_warnx("leader lock session lost: %s", rc != 0 ? err.message :
		    "reconnected");
		l->leader = false;
		return -1;
	}
	if (rc != 0)
		log_warnx("writing scheduler_state: %s", err.message);
	return 0;
}

int
sched_leader_published_through(struct sched_leader *l, int64_t *ms)
{
	struct upmon_db_error err;
	PGresult *res = NULL;
	int rc;

	if ((rc = upmon_db_query(l->db, UPMON_DB_IDEMPOTENT, read_sql, 0, NULL, &res,
	    &err)) != 0) {
		log_warnx("reading scheduler_state: %s", err.message);
		return rc;
	}
	rc = (PQntuples(res) == 1 && upmon_db_int64(res, 0, 0, ms) == 0) ? 0 : -ENOENT;
	PQclear(res);
	return rc;
}

void
sched_leader_release(struct sched_leader *l)
{
	struct upmon_db_error err;

	if (l->leader && upmon_db_generation(l->db) == l->generation &&
	    upmon_db_connected(l->db))
		(void)upmon_db_query(l->db, 0, unlock_sql, 0, NULL, NULL, &err);
	l->leader = false;
}

/* Sleeps up to ms in small steps, returning early when asked to stop or when the loop
 * asks to resign. */
static void
nap(struct sched_leader *l, long ms)
{
	int64_t deadline = upmon_mono_ms() + ms;

	while (!atomic_load(&l->stop) && upmon_mono_ms() < deadline &&
	    atomic_load(&l->state) != SCHED_LS_RESIGN)
		upmon_sleep_ms(10);
}

static void *
leader_main(void *arg)
{
	struct sched_leader *l = arg;
	int64_t pt;
	int st, rc, warned = 0;

	while (!atomic_load(&l->stop)) {
		st = atomic_load(&l->state);
		if (st == SCHED_LS_RESIGN) {
			sched_leader_release(l);
			atomic_store(&l->state, SCHED_LS_STANDBY);
			continue;
		}
		if (!l->leader) {
			if (st != SCHED_LS_STANDBY) {	/* the loop has not caught up yet */
				nap(l, 10);
				continue;
			}
			if ((rc = sched_leader_try(l)) != 0) {
				if (!warned++)
					log_warnx("leader lock: %s", upmon_db_strerror(rc));
			} else {
				warned = 0;
			}
			if (l->leader) {
				if (sched_leader_published_through(l, &pt) != 0)
					pt = INT64_MIN;
				atomic_store(&l->gained_pt, pt);
				atomic_store(&l->published_through, INT64_MIN);
				atomic_store(&l->state, SCHED_LS_GAINED);
				continue;
			}
			nap(l, l->poll_ms);
			continue;
		}
		if (sched_leader_heartbeat(l, atomic_load(&l->published_through)) != 0) {
			atomic_store(&l->state, SCHED_LS_LOST);
			continue;
		}
		nap(l, l->state_ms);
	}
	if (l->leader) {
		(void)sched_leader_heartbeat(l, atomic_load(&l->published_through));
		sched_leader_release(l);
	}
	return NULL;
}

int
sched_leader_start(struct sched_leader *l)
{
	int rc;

	atomic_store(&l->state, SCHED_LS_STANDBY);
	atomic_store(&l->published_through, INT64_MIN);
	atomic_store(&l->gained_pt, INT64_MIN);
	atomic_store(&l->stop, 0);
	if ((rc = pthread_create(&l->thread, NULL, leader_main, l)) != 0)
		return -rc;
	l->started = true;
	return 0;
}

void
sched_leader_stop(struct sched_leader *l)
{
	if (!l->started)
		return;
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	l->started = false;
}
