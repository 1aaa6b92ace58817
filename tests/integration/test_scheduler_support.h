/*
 * Helpers shared by the scheduler's integration tests (test_scheduler_*.c): SQL through the db
 * module, upmon-scheduler as a child process with its admin port, its /metrics read with
 * curl, a consumer of monitor_tasks that records every task it sees, and a test's common
 * start, checks of the recorded tasks and end. Header-only (static) so each test stays one
 * file.
 */
#ifndef TEST_SCHEDULER_SUPPORT_H
#define TEST_SCHEDULER_SUPPORT_H

#include "test.h"
#include "sched.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upmon/amqp.h"
#include "upmon/backoff.h"
#include "upmon/db.h"
#include "upmon/log.h"
#include "upmon/msg.h"

/* not every test uses every helper */
#pragma GCC diagnostic ignored "-Wunused-function"

#define TS_OWNER "5c4ed01e-0000-4000-8000-000000000001"

/* ---- SQL ---- */

static struct upmon_db *ts_db;

static void
ts_db_open(void)
{
	struct upmon_db_config cfg;
	struct upmon_db_error err;

	upmon_db_config_init(&cfg);
	cfg.url = test_env("UPMON_PG_URL");
	cfg.application_name = "test-scheduler";
	REQUIRE(upmon_db_new(&cfg, &ts_db) == 0);
	if (upmon_db_connect(ts_db, &err) != 0)
		fprintf(stderr, "connect: %s\n", err.message);
	REQUIRE(upmon_db_connected(ts_db));
}

/* Runs sql with up to 4 text parameters; returns 0 or the db error code (printed). */
static int
ts_sql(const char *sql, int n, const char *p0, const char *p1, const char *p2)
{
	const char *params[3] = { p0, p1, p2 };
	struct upmon_db_error err;
	int rc;

	rc = upmon_db_query(ts_db, 0, sql, n, params, NULL, &err);
	if (rc != 0)
		fprintf(stderr, "sql failed: %s: %s\n", sql, err.message);
	return rc;
}

/* The first column of the first row as a new string ("" when none); caller frees. */
static char *
ts_scalar(const char *sql, int n, const char *p0, const char *p1)
{
	const char *params[2] = { p0, p1 };
	struct upmon_db_error err;
	PGresult *res = NULL;
	const char *v;
	char *out;

	if (upmon_db_query(ts_db, 0, sql, n, params, &res, &err) != 0) {
		fprintf(stderr, "sql failed: %s: %s\n", sql, err.message);
		return strdup("");
	}
	v = upmon_db_value(res, 0, 0);
	out = strdup(v != NULL ? v : "");
	PQclear(res);
	return out;
}

/* Migrates the test database and creates the owner of every monitor. */
static void
ts_schema(void)
{
	REQUIRE(test_sh("\"$UPMON_BIN_DIR/upmonctl\" migrate >/dev/null") == 0);
	ts_db_open();
	REQUIRE(ts_sql("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')", 2,
	    TS_OWNER, "sched-test@example.com", NULL) == 0);
}

/* Inserts n http monitors named <prefix><i> with url http://127.0.0.1:9/<prefix><i>. */
static void
ts_add_monitors(const char *prefix, int n, int interval_s)
{
	char ns[16], is[16];

	snprintf(ns, sizeof(ns), "%d", n);
	snprintf(is, sizeof(is), "%d", interval_s);
	REQUIRE(ts_sql("INSERT INTO monitors (owner_id, name, type, url, interval_seconds, "
	    "timeout_ms) SELECT '" TS_OWNER "', $1 || g, 'http', 'http://127.0.0.1:9/' || $1 || g, "
	    "$3::int, 1000 FROM generate_series(1, $2::int) g", 3, prefix, ns, is) == 0);
}

/* ---- the scheduler process ---- */

struct ts_sched {
	pid_t pid;
	int port;
	char log[256];
};

/* Starts upmon-scheduler with its log in /tmp; extra: "NAME=value" or NULL. */
static void
ts_start(struct ts_sched *s, const char *name, const char *extra)
{
	char bin[512], port[16];
	int fd;

	s->port = test_free_port();
	REQUIRE(s->port > 0);
	snprintf(s->log, sizeof(s->log), "/tmp/upmon-test-scheduler-%s-%d.log", name,
	    (int)getpid());
	snprintf(bin, sizeof(bin), "%s/upmon-scheduler", test_env("UPMON_BIN_DIR"));
	snprintf(port, sizeof(port), "%d", s->port);
	s->pid = fork();
	REQUIRE(s->pid >= 0);
	if (s->pid == 0) {
		setenv("UPMON_ADMIN_ADDR", "127.0.0.1", 1);
		setenv("UPMON_ADMIN_PORT", port, 1);
		setenv("UPMON_LOG_LEVEL", "info", 1);
		setenv("UPMON_SHUTDOWN_TIMEOUT_MS", "5000", 1);
		setenv("UPMON_RECONNECT_MAX_MS", "1000", 1);
		if (extra != NULL)
			putenv((char *)extra);
		if ((fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execl(bin, "upmon-scheduler", (char *)NULL);
		_exit(127);
	}
}

/* Sends sig and waits up to timeout_ms; returns the exit status, 128+signal, or -1. */
static int
ts_stop(struct ts_sched *s, int sig, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;
	int status;
	pid_t r;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && upmon_mono_ms() < deadline)
		upmon_sleep_ms(20);
	if (r == 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
		s->pid = 0;
		return -1;
	}
	s->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* 1 while the child has not exited. */
static int
ts_alive(struct ts_sched *s)
{
	int status;

	return s->pid > 0 && waitpid(s->pid, &status, WNOHANG) == 0;
}

static void
ts_show_log(const struct ts_sched *s)
{
	test_sh("grep -v level=debug %s | tail -n 30 >&2", s->log);
}

/* Removes the child's log once the test passed (a failed test leaves it for reading). */
static void
ts_done(const struct ts_sched *s)
{
	if (test_failures == 0)
		unlink(s->log);
}

/* Reads one sample of /metrics (exact series name incl. labels); -1 when unavailable. */
static double
ts_metric(const struct ts_sched *s, const char *series)
{
	char cmd[256], line[512];
	size_t len = strlen(series);
	double v = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "curl -s -m 2 http://127.0.0.1:%d/metrics", s->port);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, series, len) == 0 && line[len] == ' ')
			v = strtod(line + len + 1, NULL);
	pclose(f);
	return v;
}

/* Waits until /readyz answers 200 (broker and database connected). */
static int
ts_wait_ready(const struct ts_sched *s, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;

	while (upmon_mono_ms() < deadline) {
		if (test_sh("curl -sf -m 2 -o /dev/null http://127.0.0.1:%d/readyz", s->port) == 0)
			return 0;
		upmon_sleep_ms(100);
	}
	return -1;
}

/* Waits until series == value. */
static int
ts_wait_metric(const struct ts_sched *s, const char *series, double value, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;

	while (upmon_mono_ms() < deadline) {
		if (ts_metric(s, series) == value)
			return 0;
		upmon_sleep_ms(50);
	}
	return -1;
}

/* ---- consuming tasks ---- */

struct ts_rec {
	char monitor_id[UPMON_ID_MAX + 1];
	char message_id[UPMON_AMQP_ID_MAX];
	char url[128];
	int64_t slot;
	int64_t received;		/* wall ms */
	int interval;
	int attempt;
	bool task_id_ok;		/* message_id == task_id == format(monitor, slot, attempt) */
};

struct ts_recs {
	struct ts_rec *v;
	size_t n, cap;
	size_t bad;			/* bodies that did not decode */
};

static struct upmon_amqp *
ts_consumer(void)
{
	struct upmon_amqp_config cfg;
	struct upmon_amqp *c = NULL;

	upmon_amqp_config_init(&cfg);
	cfg.url = test_env("UPMON_AMQP_URL");
	cfg.service = "test-scheduler";
	cfg.declare_topology = 0;	/* the scheduler declares it */
	cfg.reconnect_base_ms = 100;
	cfg.reconnect_max_ms = 1000;
	REQUIRE(upmon_amqp_new(&cfg, &c) == 0);
	REQUIRE(upmon_amqp_connect(c, 20000) == 0);
	REQUIRE(upmon_amqp_consume(c, UPMON_AMQP_Q_TASKS, 500) == 0);
	return c;
}

/* Consumes and acks for ms milliseconds, recording every task. */
static void
ts_collect(struct upmon_amqp *c, struct ts_recs *r, int ms)
{
	int64_t deadline = upmon_mono_ms() + ms;
	struct upmon_amqp_delivery d;
	struct upmon_task t;
	struct ts_rec *x;
	char err[256], id[UPMON_TASK_ID_MAX + 1];
	int left;

	while ((left = (int)(deadline - upmon_mono_ms())) > 0) {
		memset(&d, 0, sizeof(d));
		if (upmon_amqp_next(c, left, &d) != 0)
			continue;
		if (upmon_msg_task_decode((const char *)d.body, d.body_len, &t, err,
		    sizeof(err)) != 0) {
			fprintf(stderr, "undecodable task: %s\n", err);
			r->bad++;
			(void)upmon_amqp_ack(c, &d);
			upmon_amqp_delivery_release(&d);
			continue;
		}
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 1024;
			r->v = realloc(r->v, r->cap * sizeof(*r->v));
			REQUIRE(r->v != NULL);
		}
		x = &r->v[r->n++];
		memset(x, 0, sizeof(*x));
		snprintf(x->monitor_id, sizeof(x->monitor_id), "%s", t.monitor_id);
		snprintf(x->message_id, sizeof(x->message_id), "%s", d.message_id);
		snprintf(x->url, sizeof(x->url), "%s", t.check.url ? t.check.url : "");
		x->slot = t.scheduled_at;
		x->received = upmon_wall_ms();
		x->interval = t.interval_seconds;
		x->attempt = t.attempt;
		x->task_id_ok = upmon_task_id_format(id, sizeof(id), t.monitor_id,
		    t.scheduled_at, t.attempt) == 0 && strcmp(id, t.task_id) == 0 &&
		    strcmp(id, d.message_id) == 0;
		upmon_task_release(&t);
		(void)upmon_amqp_ack(c, &d);
		upmon_amqp_delivery_release(&d);
	}
}

/* 1 when slot is on the grid of monitor_id at interval_s. */
static int
ts_on_grid(const char *monitor_id, int interval_s, int64_t slot)
{
	int64_t period = (int64_t)interval_s * 1000;

	return ((slot - sched_phase_ms(monitor_id, interval_s)) % period + period) % period == 0;
}

/* ---- a test's scaffolding ---- */

/* The common start: logging at level, the migrated database with the owner of every
 * monitor, and, when prefix is not NULL, n monitors as ts_add_monitors makes them. */
static void
ts_setup(int level, const char *prefix, int n, int interval_s)
{
	log_init("test-scheduler", level, UPMON_LOG_LOGFMT);
	ts_schema();
	if (prefix != NULL)
		ts_add_monitors(prefix, n, interval_s);
}

/* Starts a scheduler (as ts_start) and waits until it is ready and, when leader is set,
 * the leader; if not, prints its log and stops the test. */
static void
ts_start_ready(struct ts_sched *s, const char *name, const char *extra, int leader)
{
	ts_start(s, name, extra);
	if (ts_wait_ready(s, 20000) != 0 || (leader &&
	    ts_wait_metric(s, "upmon_scheduler_leader", 1, 10000) != 0)) {
		fprintf(stderr, "scheduler %s: not ready%s\n", name, leader ? " or not leader" : "");
		ts_show_log(s);
		REQUIRE(!"scheduler ready (and leader when asked)");
	}
}

/* Checks every recorded task: message_id == task_id == the format of (monitor, slot,
 * attempt), and the slot on the monitor's grid. Returns how many slots are later than
 * after (wall ms). */
static size_t
ts_check_recs(const struct ts_recs *r, int64_t after)
{
	size_t i, badid = 0, offgrid = 0, n = 0;

	for (i = 0; i < r->n; i++) {
		if (!r->v[i].task_id_ok)
			badid++;
		if (!ts_on_grid(r->v[i].monitor_id, r->v[i].interval, r->v[i].slot))
			offgrid++;
		if (r->v[i].slot > after)
			n++;
	}
	CHECK_EQ(badid, 0);
	CHECK_EQ(offgrid, 0);
	return n;
}

/* The common end: the scheduler stopped with SIGTERM and exiting 0, its log printed when a
 * check failed, the consumer, the records and the database handle freed. The caller ends
 * with ts_done() and test_finish(). */
static void
ts_finish(struct ts_sched *s, struct upmon_amqp *c, struct ts_recs *r)
{
	CHECK_EQ(ts_stop(s, SIGTERM, 10000), 0);
	if (test_failures > 0)
		ts_show_log(s);
	upmon_amqp_free(c);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
	upmon_db_free(ts_db);
	ts_db = NULL;
}

#endif
