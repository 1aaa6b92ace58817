/*
 * upmon-probe: consumes check tasks, runs the checks, stores results and acks after the
 * commit. main() only wires: flags and configuration, the SSRF guard, metrics and the admin
 * endpoint, the outbox relay, the worker threads, then waits for SIGTERM/SIGINT and drains.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"
#include "settings.h"
#include "store.h"
#include "worker.h"
#include "upmon/admin.h"
#include "upmon/backoff.h"
#include "upmon/clients.h"
#include "upmon/config.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/metrics.h"
#include "upmon/msg.h"
#include "upmon/ssrf.h"


#define PROBE_SERVICE	"upmon-probe"
#define DB_PING_MS	5000

struct probe_main {
	struct upmon_common_settings *s;
	struct probe_settings *ps;
	struct upmon_ssrf *guard;
	struct upmon_metrics *metrics;
	struct upmon_admin *admin;
	struct probe_relay *relay;
	struct probe_worker *worker;
	struct upmon_db *ping_db;
	int64_t next_ping;
	bool db_ok;
};

static int
start_admin(struct probe_main *pm)
{
	static const char *const not_ready[] = { "amqp", "db", NULL };
	struct upmon_admin_config acfg;
	int rc;

	memset(&acfg, 0, sizeof(acfg));
	acfg.addr = pm->s->admin_addr;
	acfg.port = (int)pm->s->admin_port;
	acfg.service = PROBE_SERVICE;
	acfg.not_ready = not_ready;
	rc = upmon_admin_start(&acfg, pm->metrics, &pm->admin);
	if (rc != 0)
		return rc;
	upmon_admin_set_ready(pm->admin, "shutdown", true);
	log_info("admin endpoint on %s:%d", acfg.addr, upmon_admin_port(pm->admin));
	return 0;
}

static int
start_relay(struct probe_main *pm)
{
	struct probe_relay_config rcfg;

	probe_relay_config_init(&rcfg);
	upmon_db_config_from(&rcfg.db, pm->s, PROBE_SERVICE "-relay");
	upmon_amqp_config_from(&rcfg.amqp, pm->s, PROBE_SERVICE "-relay");
	rcfg.batch = (int)pm->ps->relay_batch;
	rcfg.poll_ms = (int)pm->ps->relay_poll_ms;
	rcfg.metrics = pm->metrics;
	return probe_relay_start(&rcfg, &pm->relay);
}

static int
start_worker(struct probe_main *pm)
{
	struct probe_worker_config wcfg;

	probe_worker_config_init(&wcfg);
	upmon_amqp_config_from(&wcfg.amqp, pm->s, PROBE_SERVICE);
	upmon_db_config_from(&wcfg.store.db, pm->s, PROBE_SERVICE);
	upmon_cache_config_from(&wcfg.store.cache, pm->s);
	wcfg.store.retry_levels = (int)pm->s->retry_levels;
	if (pm->ps->host != NULL && pm->ps->host[0] != '\0')
		wcfg.store.probe_host = pm->ps->host;
	wcfg.store.metrics = pm->metrics;
	wcfg.store.wake = probe_relay_wake;
	wcfg.store.wake_arg = pm->relay;
	wcfg.engine.guard = pm->guard;
	wcfg.engine.max_body_bytes = (size_t)pm->ps->max_body_bytes;
	if (pm->ps->user_agent != NULL && pm->ps->user_agent[0] != '\0')
		wcfg.engine.user_agent = pm->ps->user_agent;
	wcfg.threads = (int)pm->ps->threads;
	wcfg.consumers = (int)pm->ps->consumers;
	wcfg.prefetch = (int)pm->s->amqp_prefetch;
	wcfg.batch_max = (int)pm->ps->batch_max;
	wcfg.max_attempts = (int)pm->ps->max_attempts;
	wcfg.confirm_timeout_ms = (int)pm->s->amqp_confirm_timeout_ms;
	wcfg.dead_backoff_max_ms = (int)pm->ps->dead_backoff_max_ms;
	wcfg.metrics = pm->metrics;
	return probe_worker_start(&wcfg, &pm->worker);
}

/* Flips the readiness flags from the threads' view and a periodic database ping. */
static void
update_ready(struct probe_main *pm)
{
	struct probe_worker_stats st;
	PGresult *res = NULL;
	int64_t now = upmon_mono_ms();

	if (now >= pm->next_ping) {
		pm->db_ok = upmon_db_query(pm->ping_db, 0, "SELECT 1", 0, NULL, &res, NULL) == 0;
		PQclear(res);
		pm->next_ping = now + DB_PING_MS;
	}
	probe_worker_get_stats(pm->worker, &st);
	upmon_admin_set_ready(pm->admin, "amqp", st.amqp_connected == (int)pm->ps->threads);
	upmon_admin_set_ready(pm->admin, "db", pm->db_ok && st.db_failing == 0);
}

/* Runs until SIGTERM or SIGINT (blocked in every thread, taken here with sigtimedwait). */
static int
wait_signal(struct probe_main *pm, const sigset_t *set)
{
	struct timespec ts = { 1, 0 };
	int sig;

	for (;;) {
		sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		update_ready(pm);
	}
}

/* Drains: no new tasks, the in-flight ones committed and acked, the relay flushed. Returns
 * the exit status. */
static int
drain(struct probe_main *pm, int sig)
{
	int64_t deadline = upmon_mono_ms() + pm->s->shutdown_timeout_ms, left;
	struct probe_worker_stats st;

	log_info("%s: stopping (finishing the checks in flight)", strsignal(sig));
	upmon_admin_set_ready(pm->admin, "shutdown", false);
	probe_worker_stop(pm->worker);
	if (probe_worker_wait(pm->worker, (int)pm->s->shutdown_timeout_ms) != 0) {
		probe_worker_get_stats(pm->worker, &st);
		log_warnx("shutdown timeout: exiting with %llu tasks unacked (redelivered)",
		    (unsigned long long)st.inflight);
		return 1;
	}
	probe_worker_get_stats(pm->worker, &st);
	left = deadline - upmon_mono_ms();
	probe_relay_stop(pm->relay, left > 0 ? (int)left : 0);
	pm->relay = NULL;
	log_info("stopped: %llu checks, %llu acked, %llu retried, %llu dead", 
	    (unsigned long long)st.checks, (unsigned long long)st.acked,
	    (unsigned long long)st.retried,
	    (unsigned long long)(st.dead_attempts + st.dead_undecodable));
	return 0;
}

static int
run(struct probe_main *pm)
{
	struct upmon_db_config dcfg;
	char err[256];
	sigset_t set;
	int rc, sig;

	upmon_msg_set_max_bytes((size_t)pm->s->max_message_bytes);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		return 1;
	}
	rc = upmon_ssrf_new(pm->ps->ssrf_guard, pm->ps->ssrf_allow, &pm->guard, err,
	    sizeof(err));
	if (rc != 0) {
		log_error("%s", rc == -EINVAL ? err : "ssrf guard: out of memory");
		return 1;
	}
	/* Every thread started from here on inherits the blocked signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	pm->metrics = upmon_metrics_new();
	if (pm->metrics == NULL)
		return 1;
	upmon_metrics_add_process(pm->metrics, PROBE_SERVICE, upmon_version());
	if ((rc = start_admin(pm)) != 0) {
		log_error("admin endpoint: %s", strerror(-rc));
		return 1;
	}
	upmon_db_config_from(&dcfg, pm->s, PROBE_SERVICE "-ping");
	if (upmon_db_new(&dcfg, &pm->ping_db) != 0) {
		log_error("bad database settings");
		return 1;
	}
	if ((rc = start_relay(pm)) != 0) {
		log_error("outbox relay: %s", strerror(-rc));
		return 1;
	}
	if ((rc = start_worker(pm)) != 0) {
		log_error("worker threads: %s", strerror(-rc));
		return 1;
	}
	log_info("started: %ld threads x %ld consumers, batch %ld, ssrf guard %s",
	    pm->ps->threads, pm->ps->consumers, pm->ps->batch_max,
	    pm->ps->ssrf_guard ? "on" : "off");
	sig = wait_signal(pm, &set);
	return drain(pm, sig);
}

int
main(int argc, char **argv)
{
	static const struct upmon_cli_info info = {
		.program = PROBE_SERVICE,
		.usage = "[-dnv] [-c file]",
		.summary = "upmon probe worker: runs the checks, stores results, acks after "
		    "commit.",
	};
	struct upmon_common_settings settings;
	struct probe_settings ps;
	struct upmon_config_table tables[2];
	struct upmon_cli cli;
	struct probe_main pm;
	int rc;

	memset(&settings, 0, sizeof(settings));
	memset(&ps, 0, sizeof(ps));
	memset(&pm, 0, sizeof(pm));
	tables[0] = upmon_common_table(&settings);
	tables[1] = probe_settings_table(&ps);
	rc = upmon_cli_main(&info, argc, argv, tables, 2, &cli);
	if (rc != UPMON_CLI_RUN)
		goto out;
	pm.s = &settings;
	pm.ps = &ps;
	rc = run(&pm);
	if (rc != 0 && pm.worker != NULL) {
		/* threads may still hold tasks: leave without freeing, the broker requeues */
		fflush(NULL);
		_exit(rc);
	}
	probe_worker_free(pm.worker);
	probe_relay_stop(pm.relay, 0);
	upmon_admin_stop(pm.admin);
	upmon_db_free(pm.ping_db);
	upmon_metrics_free(pm.metrics);
	upmon_ssrf_free(pm.guard);
	curl_global_cleanup();
out:
	upmon_config_release(tables, 2);
	return rc;
}
