/*
 * upmon-gateway: the REST API. main() only wires: flags and configuration, metrics and the
 * admin endpoint, the HTTP server (server.c), then waits for SIGTERM/SIGINT and stops
 * (civetweb finishes the requests in flight).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_int.h"
#include "settings.h"
#include "upmon/admin.h"
#include "upmon/clients.h"
#include "upmon/config.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

#define GW_SERVICE	"upmon-gateway"
#define DB_PING_MS	2000

struct gw_main {
	struct upmon_common_settings *s;
	struct gw_settings *gs;
	struct upmon_metrics *metrics;
	struct upmon_admin *admin;
	struct gw *gw;
	struct upmon_db *ping_db;
	int64_t next_ping;
};

static int
start_admin(struct gw_main *m)
{
	static const char *const not_ready[] = { "db", "http", NULL };
	struct upmon_admin_config acfg;
	int rc;

	memset(&acfg, 0, sizeof(acfg));
	acfg.addr = m->s->admin_addr;
	acfg.port = (int)m->s->admin_port;
	acfg.service = GW_SERVICE;
	acfg.not_ready = not_ready;
	if ((rc = upmon_admin_start(&acfg, m->metrics, &m->admin)) != 0)
		return rc;
	upmon_admin_set_ready(m->admin, "shutdown", true);
	return 0;
}

/* The "db" readiness flag, from a periodic ping on a connection of its own. */
static void
update_ready(struct gw_main *m)
{
	PGresult *res = NULL;
	int64_t now = gw_now_ms();
	bool ok;

	if (now < m->next_ping)
		return;
	ok = upmon_db_query(m->ping_db, 0, "SELECT 1", 0, NULL, &res, NULL) == 0;
	PQclear(res);
	upmon_admin_set_ready(m->admin, "db", ok);
	m->next_ping = now + DB_PING_MS;
}

static int
run(struct gw_main *m)
{
	struct gw_server_config scfg;
	struct upmon_db_config dcfg;
	struct timespec ts = { 0, 250 * 1000 * 1000 };
	sigset_t set;
	int rc, sig;

	if ((rc = gw_settings_finish(m->gs)) != 0) {
		log_error("settings: %s", strerror(-rc));
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((m->metrics = upmon_metrics_new()) == NULL)
		return 1;
	upmon_metrics_add_process(m->metrics, GW_SERVICE, upmon_version());
	if ((rc = start_admin(m)) != 0) {
		log_error("admin endpoint: %s", strerror(-rc));
		return 1;
	}
	upmon_db_config_from(&dcfg, m->s, GW_SERVICE "-ping");
	if (upmon_db_new(&dcfg, &m->ping_db) != 0) {
		log_error("bad database settings");
		return 1;
	}
	memset(&scfg, 0, sizeof(scfg));
	scfg.s = m->gs;
	scfg.common = m->s;
	scfg.metrics = m->metrics;
	scfg.admin = m->admin;
	if ((rc = gw_server_start(&scfg, &m->gw)) != 0) {
		log_error("api server: %s", strerror(-rc));
		return 1;
	}
	upmon_admin_set_ready(m->admin, "http", true);
	for (;;) {
		update_ready(m);
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	log_info("%s: stopping (finishing the requests in flight)", strsignal(sig));
	upmon_admin_set_ready(m->admin, "shutdown", false);
	gw_server_stop(m->gw);
	m->gw = NULL;
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct upmon_cli_info info = {
		.program = GW_SERVICE,
		.usage = "[-dnv] [-c file]",
		.summary = "upmon gateway: the REST API.",
	};
	struct upmon_common_settings settings;
	struct gw_settings gs;
	struct upmon_config_table tables[2];
	struct upmon_cli cli;
	struct gw_main m;
	int rc;

	/*
	 * A fixed mmap threshold: glibc raises its dynamic one to the size of the largest block
	 * freed (argon2's 19 MiB per login or register), after which every worker thread's arena
	 * kept such a block: RSS grew by about 19 MiB per thread that ever hashed a password
	 * (found by api_fuzz; 343 MB after 96 hashes on 16 threads in test_gateway_auth, up to
	 * 1.2 GB with the default 64). Big blocks are now always mmap()ed and given back on
	 * free (1 MB in the same test).
	 */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	memset(&settings, 0, sizeof(settings));
	memset(&gs, 0, sizeof(gs));
	memset(&m, 0, sizeof(m));
	tables[0] = upmon_common_table(&settings);
	tables[1] = gw_settings_table(&gs);
	rc = upmon_cli_main(&info, argc, argv, tables, 2, &cli);
	if (rc != UPMON_CLI_RUN)
		goto out;
	m.s = &settings;
	m.gs = &gs;
	rc = run(&m);
	gw_server_stop(m.gw);
	upmon_admin_stop(m.admin);
	upmon_db_free(m.ping_db);
	upmon_metrics_free(m.metrics);
out:
	upmon_config_release(tables, 2);
	return rc;
}
