/*
 * upmon-scheduler: knows every active monitor and when its next check is due, and publishes
 * one task per due check while it holds the leader lock. main() only wires: flags and
 * configuration, handles, the admin endpoint, signals, the loop (schedule.c), teardown.
 */
#include "sched.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "upmon/admin.h"
#include "upmon/amqp.h"
#include "upmon/clients.h"
#include "upmon/config.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/metrics.h"

/* set by SIGTERM/SIGINT; the loop reads it every turn (<= 50 ms) */
static volatile int stop_int;

static void
on_signal(int sig)
{
	(void)sig;
	stop_int = 1;
}

static int
open_db(const struct upmon_common_settings *cs, const char *app, struct upmon_db **out)
{
	struct upmon_db_config cfg;

	upmon_db_config_from(&cfg, cs, app);
	return upmon_db_new(&cfg, out);
}

static int
open_amqp(const struct upmon_common_settings *cs, struct upmon_amqp **out)
{
	struct upmon_amqp_config cfg;

	upmon_amqp_config_from(&cfg, cs, "upmon-scheduler");
	cfg.max_unconfirmed = 1000000;	/* MAX_IN_FLIGHT bounds it (publish.c) */
	cfg.declare_topology = 1;
	return upmon_amqp_new(&cfg, out);
}

int
main(int argc, char **argv)
{
	static const struct upmon_cli_info info = {
		.program = "upmon-scheduler",
		.usage = "[-dnv] [-c file]",
		.summary = "upmon scheduler: publishes one task per due check (leader-elected).",
	};
	static const char *const not_ready[] = { "postgres", "rabbitmq", NULL };
	struct upmon_common_settings cs;
	struct sched_settings ss;
	struct upmon_config_table tables[2];
	struct upmon_admin_config acfg;
	struct upmon_metrics *reg = NULL;
	struct upmon_admin *admin = NULL;
	struct upmon_db *db = NULL, *lockdb = NULL, *recdb = NULL;
	struct upmon_amqp *amqp = NULL;
	struct sched_ctx ctx;
	struct sigaction sa;
	struct upmon_cli cli;
	int rc;

	memset(&cs, 0, sizeof(cs));
	memset(&ss, 0, sizeof(ss));
	tables[0] = upmon_common_table(&cs);
	tables[1] = sched_settings_table(&ss);
	rc = upmon_cli_main(&info, argc, argv, tables, 2, &cli);
	if (rc != UPMON_CLI_RUN)
		goto out;
	rc = 1;
	upmon_msg_set_max_bytes((size_t)cs.max_message_bytes);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (open_db(&cs, "upmon-scheduler", &db) != 0 ||
	    open_db(&cs, "upmon-scheduler-lock", &lockdb) != 0 ||
	    open_db(&cs, "upmon-scheduler-reconcile", &recdb) != 0) {
		log_error("bad database settings");
		goto out;
	}
	if (open_amqp(&cs, &amqp) != 0) {
		log_error("bad broker settings");
		goto out;
	}
	if ((reg = upmon_metrics_new()) == NULL)
		fatalx("out of memory");
	(void)upmon_metrics_add_process(reg, "upmon-scheduler", upmon_version());
	memset(&acfg, 0, sizeof(acfg));
	acfg.addr = cs.admin_addr;
	acfg.port = (int)cs.admin_port;
	acfg.service = "upmon-scheduler";
	acfg.not_ready = not_ready;
	if (upmon_admin_start(&acfg, reg, &admin) != 0) {
		log_error("cannot start the admin endpoint");
		goto out;
	}

	/* connect early so the first slots do not wait for the broker; not fatal */
	if (upmon_amqp_connect(amqp, (int)cs.pg_connect_timeout * 1000) != 0)
		log_warnx("broker not reachable yet: retrying in the background");
	memset(&ctx, 0, sizeof(ctx));
	ctx.common = &cs;
	ctx.settings = &ss;
	ctx.db = db;
	ctx.lockdb = lockdb;
	ctx.recdb = recdb;
	ctx.amqp = amqp;
	ctx.registry = reg;
	ctx.admin = admin;
	ctx.stop = &stop_int;
	rc = sched_run(&ctx) == 0 ? 0 : 1;
	log_info("stopped");
out:
	upmon_admin_stop(admin);
	upmon_amqp_free(amqp);
	upmon_db_free(lockdb);		/* closing the session releases the leader lock */
	upmon_db_free(recdb);
	upmon_db_free(db);
	upmon_metrics_free(reg);
	upmon_config_release(tables, 2);
	return rc;
}
