/*
 * What a request may lease: a PostgreSQL connection from the pool (gw_db, gw_sql), the
 * thread's Redis handle (gw_cache) and the one AMQP connection (gw_amqp_acquire).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_int.h"
#include "upmon/clients.h"
#include "upmon/metrics.h"

#define POOL_WAIT_MS		2000
#define AMQP_CONNECT_MS		2000
#define WARN_INTERVAL_MS	5000

int
gw_resources_init(struct gw *gw)
{
	struct upmon_db_config dcfg;
	pthread_condattr_t ca;
	size_t i;
	int rc;

	pthread_mutex_init(&gw->pool_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&gw->pool_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&gw->amqp_mu, NULL);
	upmon_cache_config_from(&gw->cache_cfg, gw->common);

	gw->npool = (size_t)gw->s->db_pool;
	gw->pool = calloc(gw->npool, sizeof(*gw->pool));
	gw->free_db = calloc(gw->npool, sizeof(*gw->free_db));
	if (gw->pool == NULL || gw->free_db == NULL)
		return -ENOMEM;
	upmon_db_config_from(&dcfg, gw->common, "upmon-gateway");
	for (i = 0; i < gw->npool; i++) {
		if ((rc = upmon_db_new(&dcfg, &gw->pool[i])) != 0)
			return rc == UPMON_DB_E_NOMEM ? -ENOMEM : -EINVAL;
		gw->free_db[gw->nfree++] = gw->pool[i];
	}
	gw->pool_in_use = upmon_metrics_gauge(gw->metrics, "upmon_gateway_db_pool_in_use",
	    "PostgreSQL connections of the pool leased by requests.", NULL);
	upmon_gauge_set(upmon_metrics_gauge(gw->metrics, "upmon_gateway_db_pool_size",
	    "PostgreSQL connections in the pool.", NULL), (double)gw->npool);
	gw->pool_timeouts = upmon_metrics_counter(gw->metrics,
	    "upmon_gateway_db_pool_timeouts_total",
	    "Requests answered 503 because no PostgreSQL connection became free in time.", NULL);
	return 0;
}

void
gw_resources_release(struct gw *gw)
{
	size_t i;

	if (gw->pool != NULL)
		for (i = 0; i < gw->npool; i++)
			upmon_db_free(gw->pool[i]);
	free(gw->pool);
	free(gw->free_db);
	gw->pool = gw->free_db = NULL;
	upmon_amqp_free(gw->amqp);
	gw->amqp = NULL;
	pthread_mutex_destroy(&gw->pool_mu);
	pthread_cond_destroy(&gw->pool_cv);
	pthread_mutex_destroy(&gw->amqp_mu);
}

static void
warn_limited(struct gw_req *r, const char *what, const char *detail)
{
	unsigned suppressed = 0;

	if (log_ratelimit(&r->priv->thr->warn_rl, WARN_INTERVAL_MS, &suppressed))
		log_warnx("%s: %s (request %s; %u similar suppressed)", what, detail,
		    r->priv->reqid, suppressed);
}

static void
reply_unavailable(struct gw_req *r, const char *what)
{
	gw_add_header(r, "Retry-After", "1");
	gw_reply_error(r, 503, "unavailable", "%s is unavailable, try again shortly", what);
	r->priv->auto_replied = true;
}

int
gw_db(struct gw_req *r, struct upmon_db **out)
{
	struct gw *gw = r->gw;
	struct timespec deadline;
	int rc = 0;

	*out = NULL;
	if (r->priv->db != NULL) {
		*out = r->priv->db;
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += POOL_WAIT_MS / 1000;
	pthread_mutex_lock(&gw->pool_mu);
	while (gw->nfree == 0 && rc == 0)
		rc = pthread_cond_timedwait(&gw->pool_cv, &gw->pool_mu, &deadline);
	if (gw->nfree > 0) {
		r->priv->db = gw->free_db[--gw->nfree];
		rc = 0;
	}
	pthread_mutex_unlock(&gw->pool_mu);
	if (r->priv->db == NULL) {
		upmon_counter_inc(gw->pool_timeouts);
		warn_limited(r, "database pool", "no connection became free within 2 s");
		reply_unavailable(r, "the database");
		return -EAGAIN;
	}
	upmon_gauge_add(gw->pool_in_use, 1);
	*out = r->priv->db;
	return 0;
}

static bool
invalid_text_state(const char *sqlstate)
{
	/* class 22: data exception (bad UTF-8 22021, invalid text representation 22P02,
	 * value too long 22001, out of range 22003, ...) */
	return sqlstate[0] == '2' && sqlstate[1] == '2';
}

int
gw_sql(struct gw_req *r, unsigned flags, const char *sql, int nparams,
    const char *const *params, PGresult **res)
{
	struct upmon_db_error err;
	struct upmon_db *db;
	int rc;

	*res = NULL;
	if ((rc = gw_db(r, &db)) != 0)
		return rc;
	memset(&err, 0, sizeof(err));
	rc = upmon_db_query(db, flags, sql, nparams, params, res, &err);
	if (rc == 0)
		return 0;
	switch (rc) {
	case UPMON_DB_E_CONN:
	case UPMON_DB_E_TIMEOUT:
	case UPMON_DB_E_RETRY:
		warn_limited(r, "database", err.message);
		reply_unavailable(r, "the database");
		break;
	case UPMON_DB_E_CONFLICT:
		gw_reply_error(r, 409, "conflict", "conflicts with an existing object");
		break;
	case UPMON_DB_E_CONSTRAINT:
		gw_reply_fields(r, NULL);
		break;
	default:
		if (rc == UPMON_DB_E_QUERY && invalid_text_state(err.sqlstate)) {
			gw_reply_fields(r, NULL);
			break;
		}
		log_warnf(NULL, "sql failed: %s (sqlstate %s): %s (request %s, route %s)",
		    upmon_db_strerror(rc), err.sqlstate, err.message, r->priv->reqid,
		    r->route != NULL ? r->route : "-");
		gw_reply_error(r, 500, "internal", "internal error");
		break;
	}
	return rc;
}

struct upmon_cache *
gw_cache(struct gw_req *r)
{
	return r->priv->thr->cache;
}

int
gw_amqp_acquire(struct gw_req *r, struct upmon_amqp **out)
{
	struct gw *gw = r->gw;
	struct upmon_amqp_config cfg;
	int rc;

	*out = NULL;
	if (r->priv->amqp_held) {	/* already ours: the same handle again */
		*out = gw->amqp;
		return 0;
	}
	pthread_mutex_lock(&gw->amqp_mu);
	if (gw->amqp == NULL) {
		upmon_amqp_config_from(&cfg, gw->common, "upmon-gateway");
		cfg.connect_timeout_ms = AMQP_CONNECT_MS;
		if (upmon_amqp_new(&cfg, &gw->amqp) != 0)
			gw->amqp = NULL;
	}
	rc = gw->amqp == NULL ? -1 : upmon_amqp_poll(gw->amqp, 0);
	if (gw->amqp != NULL && rc != 0)
		rc = upmon_amqp_connect(gw->amqp, AMQP_CONNECT_MS);
	if (rc != 0) {
		pthread_mutex_unlock(&gw->amqp_mu);
		warn_limited(r, "amqp", "broker unreachable");
		reply_unavailable(r, "the message broker");
		return -EAGAIN;
	}
	r->priv->amqp_held = true;
	*out = gw->amqp;
	return 0;
}

void
gw_amqp_release(struct gw_req *r)
{
	if (!r->priv->amqp_held)
		return;
	r->priv->amqp_held = false;
	pthread_mutex_unlock(&r->gw->amqp_mu);
}

void
gw_req_release(struct gw_req *r)
{
	gw_amqp_release(r);
	gw_db_release(r);
}

void
gw_db_release(struct gw_req *r)
{
	struct gw *gw = r->gw;
	struct upmon_db *db = r->priv->db;

	if (db == NULL)
		return;
	if (upmon_db_in_transaction(db))
		upmon_db_rollback(db, NULL);
	r->priv->db = NULL;
	pthread_mutex_lock(&gw->pool_mu);
	gw->free_db[gw->nfree++] = db;
	pthread_cond_signal(&gw->pool_cv);
	pthread_mutex_unlock(&gw->pool_mu);
	upmon_gauge_add(gw->pool_in_use, -1);
}
