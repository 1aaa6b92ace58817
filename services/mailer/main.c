/*
 * upmon-mailer: consumes alert events from `notifications`, delivers them by email and
 * webhook, records each delivery, acks after the record. main() only wires: flags and
 * configuration, the SSRF guard, metrics and the admin endpoint, the worker threads, then
 * waits for SIGTERM/SIGINT and drains.
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

#include "mailer_int.h"
#include "settings.h"
#include "upmon/admin.h"
#include "upmon/backoff.h"
#include "upmon/clients.h"
#include "upmon/config.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/metrics.h"
#include "upmon/msg.h"
#include "upmon/ssrf.h"

#define MAILER_SERVICE	"upmon-mailer"
#define DB_PING_MS	5000

struct mailer_main {
	struct upmon_common_settings *s;
	struct mailer_settings *ms;
	struct upmon_ssrf *guard;
	struct upmon_metrics *metrics;
	struct upmon_admin *admin;
	struct mailer_consume *consume;
	struct upmon_db *ping_db;
	int64_t next_ping;
	bool db_ok;
	char user_agent[64];
};

static const char *
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static int
start_admin(struct mailer_main *mm)
{
	static const char *const not_ready[] = { "amqp", "db", NULL };
	struct upmon_admin_config acfg;
	int rc;

	memset(&acfg, 0, sizeof(acfg));
	acfg.addr = mm->s->admin_addr;
	acfg.port = (int)mm->s->admin_port;
	acfg.service = MAILER_SERVICE;
	acfg.not_ready = not_ready;
	rc = upmon_admin_start(&acfg, mm->metrics, &mm->admin);
	if (rc != 0)
		return rc;
	upmon_admin_set_ready(mm->admin, "shutdown", true);
	log_info("admin endpoint on %s:%d", acfg.addr, upmon_admin_port(mm->admin));
	return 0;
}

static int
start_workers(struct mailer_main *mm)
{
	struct mailer_consume_config cfg;
	struct mailer_settings *ms = mm->ms;
	size_t len;

	mailer_consume_config_init(&cfg);
	upmon_amqp_config_from(&cfg.amqp, mm->s, MAILER_SERVICE);
	upmon_db_config_from(&cfg.db, mm->s, MAILER_SERVICE);
	cfg.smtp.host = ms->smtp_host;
	cfg.smtp.port = (int)ms->smtp_port;
	cfg.smtp.tls = (enum mailer_smtp_tls)ms->smtp_tls;
	cfg.smtp.verify_tls = ms->smtp_tls_verify;
	cfg.smtp.ca_file = nonempty(ms->smtp_ca_file);
	cfg.smtp.user = nonempty(ms->smtp_user);
	cfg.smtp.password = nonempty(ms->smtp_password);
	cfg.smtp.from = ms->smtp_from;
	cfg.smtp.timeout_ms = (int)ms->smtp_timeout_ms;
	cfg.smtp.helo = nonempty(ms->smtp_helo);
	snprintf(mm->user_agent, sizeof(mm->user_agent), "upmon-mailer/%s", upmon_version());
	cfg.webhook.timeout_ms = (int)ms->webhook_timeout_ms;
	cfg.webhook.connect_timeout_ms = (int)ms->webhook_connect_timeout_ms;
	cfg.webhook.ssrf = mm->guard;
	cfg.webhook.user_agent = mm->user_agent;
	/* links never end in '/' */
	len = strlen(ms->dashboard_url);
	while (len > 0 && ms->dashboard_url[len - 1] == '/')
		ms->dashboard_url[--len] = '\0';
	cfg.links.dashboard_url = ms->dashboard_url;
	cfg.workers = (int)ms->workers;
	cfg.max_attempts = ms->max_attempts > 0 ? (int)ms->max_attempts :
	    cfg.amqp.notify_retry_levels + 1;
	cfg.confirm_timeout_ms = (int)mm->s->amqp_confirm_timeout_ms;
	cfg.metrics = mm->metrics;
	return mailer_consume_start(&cfg, &mm->consume);
}

/* Flips the readiness flags from the threads' view and a periodic database ping. */
static void
update_ready(struct mailer_main *mm)
{
	struct mailer_consume_stats st;
	PGresult *res = NULL;
	int64_t now = upmon_mono_ms();

	if (now >= mm->next_ping) {
		mm->db_ok = upmon_db_query(mm->ping_db, 0, "SELECT 1", 0, NULL, &res, NULL) == 0;
		PQclear(res);
		mm->next_ping = now + DB_PING_MS;
	}
	mailer_consume_get_stats(mm->consume, &st);
	upmon_admin_set_ready(mm->admin, "amqp", st.amqp_connected == (int)mm->ms->workers);
	upmon_admin_set_ready(mm->admin, "db", mm->db_ok && st.db_failing == 0);
}

/* Runs until SIGTERM or SIGINT (blocked in every thread, taken here with sigtimedwait). */
static int
wait_signal(struct mailer_main *mm, const sigset_t *set)
{
	struct timespec ts = { 1, 0 };
	int sig;

	for (;;) {
		sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		update_ready(mm);
	}
}

/* Drains: no new notifications, the ones being sent finished, recorded and acked. */
static int
drain(struct mailer_main *mm, int sig)
{
	struct mailer_consume_stats st;

	log_info("%s: stopping (finishing the notifications in flight)", strsignal(sig));
	upmon_admin_set_ready(mm->admin, "shutdown", false);
	mailer_consume_stop(mm->consume);
	if (mailer_consume_wait(mm->consume, (int)mm->s->shutdown_timeout_ms) != 0) {
		mailer_consume_get_stats(mm->consume, &st);
		log_warnx("shutdown timeout: exiting with %llu notifications unacked "
		    "(redelivered)", (unsigned long long)st.inflight);
		return 1;
	}
	mailer_consume_get_stats(mm->consume, &st);
	log_info("stopped: %llu notifications, %llu sent, %llu temporary and %llu permanent "
	    "failures, %llu retried, %llu dead, %llu duplicates skipped",
	    (unsigned long long)st.notifications, (unsigned long long)st.sent,
	    (unsigned long long)st.tempfail, (unsigned long long)st.permfail,
	    (unsigned long long)st.retried, (unsigned long long)st.dead,
	    (unsigned long long)st.duplicates);
	return 0;
}

static int
run(struct mailer_main *mm)
{
	struct upmon_db_config dcfg;
	char err[256];
	sigset_t set;
	int rc, sig;

	upmon_msg_set_max_bytes((size_t)mm->s->max_message_bytes);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		return 1;
	}
	rc = upmon_ssrf_new(mm->ms->ssrf_guard, mm->ms->ssrf_allow, &mm->guard, err,
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

	mm->metrics = upmon_metrics_new();
	if (mm->metrics == NULL)
		return 1;
	upmon_metrics_add_process(mm->metrics, MAILER_SERVICE, upmon_version());
	if ((rc = start_admin(mm)) != 0) {
		log_error("admin endpoint: %s", strerror(-rc));
		return 1;
	}
	upmon_db_config_from(&dcfg, mm->s, MAILER_SERVICE "-ping");
	if (upmon_db_new(&dcfg, &mm->ping_db) != 0) {
		log_error("bad database settings");
		return 1;
	}
	if ((rc = start_workers(mm)) != 0) {
		log_error("worker threads: %s", strerror(-rc));
		return 1;
	}
	log_info("started: %ld workers, smtp %s:%ld (%s), ssrf guard %s", mm->ms->workers,
	    mm->ms->smtp_host, mm->ms->smtp_port,
	    mm->ms->smtp_tls == MAILER_SMTP_TLS_NONE ? "plain" :
	    mm->ms->smtp_tls == MAILER_SMTP_TLS_STARTTLS ? "starttls" : "tls",
	    mm->ms->ssrf_guard ? "on" : "off");
	sig = wait_signal(mm, &set);
	return drain(mm, sig);
}

int
main(int argc, char **argv)
{
	static const struct upmon_cli_info info = {
		.program = MAILER_SERVICE,
		.usage = "[-dnv] [-c file]",
		.summary = "upmon mailer: delivers alerts by email and webhook, records each "
		    "delivery, acks after the record.",
	};
	struct upmon_common_settings settings;
	struct mailer_settings ms;
	struct upmon_config_table tables[2];
	struct upmon_cli cli;
	struct mailer_main mm;
	int rc;

	memset(&settings, 0, sizeof(settings));
	memset(&ms, 0, sizeof(ms));
	memset(&mm, 0, sizeof(mm));
	tables[0] = upmon_common_table(&settings);
	tables[1] = mailer_settings_table(&ms);
	rc = upmon_cli_main(&info, argc, argv, tables, 2, &cli);
	if (rc != UPMON_CLI_RUN)
		goto out;
	mm.s = &settings;
	mm.ms = &ms;
	rc = run(&mm);
	if (rc != 0 && mm.consume != NULL) {
		/* threads may still hold notifications: leave, the broker requeues them */
		fflush(NULL);
		_exit(rc);
	}
	mailer_consume_free(mm.consume);
	upmon_admin_stop(mm.admin);
	upmon_db_free(mm.ping_db);
	upmon_metrics_free(mm.metrics);
	upmon_ssrf_free(mm.guard);
	curl_global_cleanup();
out:
	upmon_config_release(tables, 2);
	return rc;
}
