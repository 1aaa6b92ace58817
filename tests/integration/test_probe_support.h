/*
 * Helpers shared by the probe worker tests (test_probe_worker.c, test_probe_kill.c,
 * test_probe_pgdown.c, test_probe_broker.c, test_probe_redis.c, test_probe_load.c): child
 * processes (the test target, upmon-probe), SQL through libpq with parameters, users and
 * monitors, publishing tasks, the probe's /metrics, the queue counts of the management API,
 * and a test's common start, end-of-test checks and end. Header-only (static) so each test
 * stays one file.
 */
#ifndef TEST_PROBE_SUPPORT_H
#define TEST_PROBE_SUPPORT_H

#include "test_amqp_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upmon/config.h"
#include "upmon/msg.h"

/* Retry settings the probe runs with and the publisher declares with (they are part of the
 * queue arguments, so both sides must agree). */
struct tp_retry {
	int levels, base_ms, max_ms;
};

static struct tp_retry tp_retry_cfg = { 3, 200, 800 };

/* civetweb threads of the test target: /slow/<ms> holds one per request. */
static int tp_target_threads = 64;

/* ---- processes ----------------------------------------------------------------------- */

/* Starts argv[0] with the extra "NAME=value" entries of env (NULL-terminated) added to the
 * environment; stdout and stderr go to log (appended). Returns the pid. */
static inline pid_t
tp_spawn(const char *log, char *const argv[], const char *const *env)
{
	pid_t pid;
	int fd;
	size_t i;

	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid > 0)
		return pid;
	for (i = 0; env != NULL && env[i] != NULL; i++)
		putenv((char *)env[i]);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	execv(argv[0], argv);
	_exit(127);
}

/* Waits up to timeout_ms for pid; returns its wait status, or -1 on timeout. */
static inline int
tp_wait_pid(pid_t pid, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;
	int st;

	for (;;) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		if (upmon_mono_ms() > deadline)
			return -1;
		upmon_sleep_ms(20);
	}
}

static inline void
tp_kill(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(pid, sig);
		(void)tp_wait_pid(pid, 15000);
	}
}

struct tp_target {
	pid_t pid;
	int port;
};

/* Starts upmon-test-target on 127.0.0.1 (port file and log in dir). */
static inline void
tp_target_start(struct tp_target *t, const char *dir)
{
	char bin[1024], pf[512], log[512], line[128], threads[16];
	char *argv[8];
	FILE *f;
	int i;

	snprintf(bin, sizeof(bin), "%s/upmon-test-target", test_env("UPMON_BIN_DIR"));
	snprintf(pf, sizeof(pf), "%s/target.port", dir);
	snprintf(log, sizeof(log), "%s/target.log", dir);
	argv[0] = bin;
	argv[1] = (char *)"--listen";
	argv[2] = (char *)"127.0.0.1:0";
	argv[3] = (char *)"--port-file";
	argv[4] = pf;
	argv[5] = (char *)"--threads";
	snprintf(threads, sizeof(threads), "%d", tp_target_threads);
	argv[6] = threads;
	argv[7] = NULL;
	t->pid = tp_spawn(log, argv, NULL);
	t->port = 0;
	for (i = 0; i < 100 && t->port == 0; i++) {
		f = fopen(pf, "r");
		if (f != NULL) {
			if (fgets(line, sizeof(line), f) != NULL) {
				char *sp = strchr(line, ' ');
				long p;

				if (sp != NULL) {
					sp[strcspn(sp, "\n")] = '\0';
					if (upmon_parse_long(sp + 1, 1, 65535, &p) == 0)
						t->port = (int)p;
				}
			}
			fclose(f);
		}
		if (t->port == 0)
			upmon_sleep_ms(100);
	}
	REQUIRE(t->port > 0);
}

struct tp_probe {
	pid_t pid;
	int admin_port;
	char log[512];
};

/* Starts upmon-probe with the test's retry settings, loopback allowed, and extra env. */
static inline void
tp_probe_start(struct tp_probe *p, const char *dir, const char *name,
    const char *const *extra)
{
	static char envbuf[32][256];
	const char *env[40];
	char bin[1024];
	char *argv[2];
	size_t n = 0, i;

	snprintf(bin, sizeof(bin), "%s/upmon-probe", test_env("UPMON_BIN_DIR"));
	snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
	p->admin_port = test_free_port();
	snprintf(envbuf[n], sizeof(envbuf[n]), "UPMON_ADMIN_PORT=%d", p->admin_port);
	env[n] = envbuf[n]; n++;
	snprintf(envbuf[n], sizeof(envbuf[n]), "UPMON_RETRY_LEVELS=%d", tp_retry_cfg.levels);
	env[n] = envbuf[n]; n++;
	snprintf(envbuf[n], sizeof(envbuf[n]), "UPMON_RETRY_BASE_MS=%d", tp_retry_cfg.base_ms);
	env[n] = envbuf[n]; n++;
	snprintf(envbuf[n], sizeof(envbuf[n]), "UPMON_RETRY_MAX_MS=%d", tp_retry_cfg.max_ms);
	env[n] = envbuf[n]; n++;
	env[n++] = "UPMON_PROBE_SSRF_ALLOW=127.0.0.0/8";
	env[n++] = "UPMON_RECONNECT_MAX_MS=1000";
	env[n++] = "UPMON_PG_CONNECT_TIMEOUT=2";
	for (i = 0; extra != NULL && extra[i] != NULL && n < 39; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	argv[0] = bin;
	argv[1] = NULL;
	p->pid = tp_spawn(p->log, argv, env);
}

/* ---- the probe's /metrics ---------------------------------------------------------------- */

static inline char *
tp_http_get(const char *url)
{
	struct t_buf b = { NULL, 0 };
	long status = 0;
	CURL *h;
	CURLcode cc;

	h = curl_easy_init();
	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, t_curl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK || status != 200) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The value of the sample whose line starts with series (name plus labels, exactly as
 * rendered, e.g. "upmon_probe_tasks_gone_total"), or -1 when absent or unreachable. */
static inline double
tp_metric(const struct tp_probe *p, const char *series)
{
	char url[128], *body, *line;
	size_t n = strlen(series);
	double v = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", p->admin_port);
	body = tp_http_get(url);
	if (body == NULL)
		return -1;
	for (line = body; line != NULL && *line != '\0'; ) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ') {
			v = strtod(line + n + 1, NULL);
			break;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	free(body);
	return v;
}

/* Waits until the probe's admin endpoint answers /readyz with 200. */
static inline int
tp_probe_ready(const struct tp_probe *p, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;
	char url[128], *body;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", p->admin_port);
	while (upmon_mono_ms() < deadline) {
		body = tp_http_get(url);
		if (body != NULL) {
			free(body);
			return 0;
		}
		upmon_sleep_ms(100);
	}
	return -1;
}

/* ---- SQL -------------------------------------------------------------------------------- */

static inline PGconn *
tp_pg(void)
{
	PGconn *c = PQconnectdb(test_env("UPMON_PG_URL"));

	if (PQstatus(c) != CONNECTION_OK)
		fprintf(stderr, "pg: %s\n", PQerrorMessage(c));
	REQUIRE(PQstatus(c) == CONNECTION_OK);
	return c;
}

/* Runs sql with n text parameters (const char *...) and returns the first column of the
 * first row as a number (0 when no row), or -1 on an error (printed). */
static inline long long
tp_q(PGconn *c, const char *sql, int n, ...)
{
	const char *params[16];
	PGresult *r;
	long long v = 0;
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n && i < 16; i++)
		params[i] = va_arg(ap, const char *);
	va_end(ap);
	if (PQstatus(c) != CONNECTION_OK)
		PQreset(c);
	r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "sql failed: %s: %s\n", sql, PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* Same, returning the first value as a string into buf ("" when none). */
static inline int
tp_qs(PGconn *c, char *buf, size_t size, const char *sql, int n, ...)
{
	const char *params[16];
	PGresult *r;
	va_list ap;
	int i, rc = -1;

	va_start(ap, n);
	for (i = 0; i < n && i < 16; i++)
		params[i] = va_arg(ap, const char *);
	va_end(ap);
	buf[0] = '\0';
	r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		rc = 0;
		if (PQntuples(r) > 0)
			snprintf(buf, size, "%s", PQgetvalue(r, 0, 0));
	} else {
		fprintf(stderr, "sql failed: %s: %s\n", sql, PQerrorMessage(c));
	}
	PQclear(r);
	return rc;
}

static inline void
tp_migrate(void)
{
	REQUIRE(test_sh("%s/upmonctl migrate >/dev/null", test_env("UPMON_BIN_DIR")) == 0);
}

/* Creates a user; its id goes to owner (UPMON_ID_MAX + 1 bytes). */
static inline void
tp_user(PGconn *c, const char *email, char *owner)
{
	REQUIRE(tp_qs(c, owner, UPMON_ID_MAX + 1, "INSERT INTO users (email, password_hash) "
	    "VALUES ($1, 'x') RETURNING id", 1, email) == 0 && owner[0] != '\0');
}

/* A monitor as the tests need it, and the task of one of its slots. */
struct tp_monitor {
	char id[UPMON_ID_MAX + 1];
	char owner[UPMON_ID_MAX + 1];
	char url[256];
	char keyword[64];		/* "" = none */
	int timeout_ms;
	int retries;
};

static inline void
tp_monitor_create(PGconn *c, struct tp_monitor *m, const char *owner, const char *name,
    const char *url, const char *keyword, int timeout_ms, int retries)
{
	char tmo[16], rt[16];

	memset(m, 0, sizeof(*m));
	snprintf(m->owner, sizeof(m->owner), "%s", owner);
	snprintf(m->url, sizeof(m->url), "%s", url);
	snprintf(m->keyword, sizeof(m->keyword), "%s", keyword != NULL ? keyword : "");
	m->timeout_ms = timeout_ms;
	m->retries = retries;
	snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
	snprintf(rt, sizeof(rt), "%d", retries);
	REQUIRE(tp_qs(c, m->id, sizeof(m->id), "INSERT INTO monitors (owner_id, name, type, url, "
	    "keyword, interval_seconds, timeout_ms, retries) VALUES ($1, $2, 'http', $3, "
	    "NULLIF($4, ''), 60, $5::integer, $6::integer) RETURNING id", 6, owner, name, url,
	    m->keyword, tmo, rt) == 0 && m->id[0] != '\0');
}

/* A slot in the last hours (today's or yesterday's partition), distinct per k. */
static inline int64_t
tp_slot(int k)
{
	static int64_t base;

	if (base == 0) {
		base = upmon_wall_ms() - 3 * 3600 * 1000;
		base -= base % 60000;
	}
	return base + (int64_t)k * 60000;
}

static inline void
tp_task(const struct tp_monitor *m, int64_t slot, int attempt, struct upmon_task *t)
{
	upmon_task_init(t);
	REQUIRE(snprintf(t->monitor_id, sizeof(t->monitor_id), "%s", m->id) <
	    (int)sizeof(t->monitor_id));
	REQUIRE(snprintf(t->owner_id, sizeof(t->owner_id), "%s", m->owner) <
	    (int)sizeof(t->owner_id));
	t->scheduled_at = slot;
	t->attempt = attempt;
	t->interval_seconds = 60;
	t->retries = m->retries;
	t->check.type = UPMON_CHECK_HTTP;
	t->check.timeout_ms = m->timeout_ms;
	t->check.url = strdup(m->url);
	if (m->keyword[0] != '\0')
		t->check.keyword = strdup(m->keyword);
	REQUIRE(upmon_task_id_format(t->task_id, sizeof(t->task_id), m->id, slot, attempt) == 0);
}

/* ---- AMQP --------------------------------------------------------------------------------- */

static inline struct upmon_amqp *
tp_publisher(void)
{
	struct upmon_amqp_config cfg;

	t_config(&cfg);
	cfg.retry_levels = tp_retry_cfg.levels;
	cfg.retry_base_ms = tp_retry_cfg.base_ms;
	cfg.retry_max_ms = tp_retry_cfg.max_ms;
	return t_open(&cfg);
}

/* Publishes body with message_id to upmon.tasks / monitor_tasks (no confirm wait). */
static inline void
tp_publish_raw(struct upmon_amqp *c, const char *id, const char *body, size_t len)
{
	struct upmon_amqp_confirm out[256];
	struct upmon_amqp_message m;
	uint64_t tag;
	size_t n;
	int rc;

	memset(&m, 0, sizeof(m));
	m.exchange = UPMON_AMQP_EX_TASKS;
	m.routing_key = UPMON_AMQP_KEY_TASKS;
	m.message_id = id;
	m.body = body;
	m.body_len = len;
	while ((rc = upmon_amqp_publish(c, &m, &tag)) == UPMON_AMQP_EFULL)
		(void)upmon_amqp_confirm_wait(c, 100, out, 256, &n);
	REQUIRE(rc == 0);
}

static inline void
tp_publish_task(struct upmon_amqp *c, const struct upmon_task *t)
{
	char *body = NULL;
	size_t len = 0;

	REQUIRE(upmon_msg_task_encode(t, &body, &len) == 0);
	tp_publish_raw(c, t->task_id, body, len);
	free(body);
}

/* Waits for every publish's confirm; returns how many were not acked. */
static inline size_t
tp_confirm_all(struct upmon_amqp *c)
{
	struct upmon_amqp_confirm out[512];
	int64_t deadline = upmon_mono_ms() + 30000;
	size_t n, i, bad = 0;
	int rc;

	do {
		rc = upmon_amqp_confirm_wait(c, 1000, out, 512, &n);
		for (i = 0; i < n; i++)
			if (out[i].outcome != UPMON_AMQP_ACKED)
				bad++;
	} while ((rc != 0 || n == 512) && upmon_mono_ms() < deadline);
	return bad + upmon_amqp_unconfirmed(c);
}

/* messages (ready + unacked) and messages_unacknowledged of a queue; -1 when unknown. */
static inline void
tp_queue(const char *queue, long *messages, long *unacked)
{
	struct json_object *j, *v;
	char path[512];

	*messages = *unacked = -1;
	snprintf(path, sizeof(path), "/api/queues/%s/%s", t_vhost_enc(), queue);
	j = t_mgmt(path, NULL);
	if (j == NULL)
		return;
	if ((v = t_jget(j, "messages")) != NULL)
		*messages = json_object_get_int64(v);
	if ((v = t_jget(j, "messages_unacknowledged")) != NULL)
		*unacked = json_object_get_int64(v);
	json_object_put(j);
}

/* Waits until queue shows n messages and 0 unacked twice in a row (the management
 * statistics lag by about a second). Returns 0 or -1 on timeout. */
static inline int
tp_queue_wait(const char *queue, long n, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;
	long m, u;
	int good = 0;

	while (upmon_mono_ms() < deadline) {
		tp_queue(queue, &m, &u);
		good = (m == n && u == 0) ? good + 1 : 0;
		if (good >= 2)
			return 0;
		upmon_sleep_ms(700);
	}
	fprintf(stderr, "queue %s: %ld messages, %ld unacked (want %ld, 0)\n", queue, m, u, n);
	return -1;
}

/* Fetches up to max messages of queue (requeued) as a JSON array; caller puts it. */
static inline struct json_object *
tp_queue_get(const char *queue, int max)
{
	char path[512], body[128];

	snprintf(path, sizeof(path), "/api/queues/%s/%s/get", t_vhost_enc(), queue);
	snprintf(body, sizeof(body), "{\"count\":%d,\"ackmode\":\"ack_requeue_true\","
	    "\"encoding\":\"auto\"}", max);
	return t_mgmt(path, body);
}

/* The string value of a message header (from tp_queue_get), or NULL. */
static inline const char *
tp_msg_header(struct json_object *msg, const char *key)
{
	return t_jstr(t_jget(t_jget(msg, "properties"), "headers"), key);
}

static inline const char *
tp_msg_id(struct json_object *msg)
{
	return t_jstr(t_jget(msg, "properties"), "message_id");
}

/* Prints the tail of a log after a failure. */
static inline void
tp_tail(const char *log)
{
	(void)test_sh("echo '--- %s'; tail -n 30 '%s' >&2", log, log);
}

/* ---- a test's scaffolding ------------------------------------------------------------------ */

/* The common start of a probe test: logging, workdir (a mkdtemp template, rewritten in
 * place), the migrated database in *pg, a user with email in owner (UPMON_ID_MAX + 1
 * bytes), the test target and, when pub is not NULL, a publisher in *pub. */
static inline void
tp_setup(char *workdir, const char *email, PGconn **pg, char *owner, struct tp_target *target,
    struct upmon_amqp **pub)
{
	t_log_init();
	REQUIRE(mkdtemp(workdir) != NULL);
	tp_migrate();
	*pg = tp_pg();
	tp_user(*pg, email, owner);
	tp_target_start(target, workdir);
	if (pub != NULL)
		*pub = tp_publisher();
}

/* Creates n monitors named <prefix>-<i>, all checking path of the test target. */
static inline void
tp_monitors(PGconn *c, struct tp_monitor *mons, int n, const char *owner, const char *prefix,
    const struct tp_target *target, const char *path, int timeout_ms)
{
	char url[256], name[64];
	int i;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", target->port, path);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s-%d", prefix, i);
		tp_monitor_create(c, &mons[i], owner, name, url, NULL, timeout_ms, 0);
	}
}

/* Publishes the first attempt of slots base..base+nslot-1 of each of the nmon monitors
 * (slot by slot) and checks that the broker confirmed every one. */
static inline void
tp_publish_slots(struct upmon_amqp *pub, const struct tp_monitor *mons, int nmon, int base,
    int nslot)
{
	struct upmon_task t;
	int i, k;

	for (k = 0; k < nslot; k++) {
		for (i = 0; i < nmon; i++) {
			tp_task(&mons[i], tp_slot(base + k), 1, &t);
			tp_publish_task(pub, &t);
			upmon_task_release(&t);
		}
	}
	CHECK_EQ(tp_confirm_all(pub), 0);
}

/* Polls the count query sql (param: its one parameter, or NULL for none) every poll_ms
 * until it reaches n; returns 0, or -1 after timeout_ms. */
static inline int
tp_wait_count(PGconn *c, const char *sql, const char *param, long long n, int timeout_ms,
    int poll_ms)
{
	int64_t deadline = upmon_mono_ms() + timeout_ms;

	while (upmon_mono_ms() < deadline) {
		if ((param != NULL ? tp_q(c, sql, 1, param) : tp_q(c, sql, 0)) >= n)
			return 0;
		upmon_sleep_ms(poll_ms);
	}
	return -1;
}

/* monitor_tasks drains to empty with nothing unacked, and nothing was dead-lettered, each
 * within timeout_ms (after a broker restart the management API shows no counts for a queue
 * for several seconds, whatever its content, so both get the same patience). */
static inline void
tp_check_queues_empty(int timeout_ms)
{
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, timeout_ms), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks_dead", 0, timeout_ms), 0);
}

/* Waits up to 60 s for n rows in check_results, then checks: exactly n rows, one per
 * (monitor, slot, attempt), all ok, and the task queues empty with nothing unacked. */
static inline void
tp_check_all_stored(PGconn *c, long long n)
{
	(void)tp_wait_count(c, "SELECT count(*) FROM check_results", NULL, n, 60000, 250);
	CHECK_EQ(tp_q(c, "SELECT count(*) FROM check_results", 0), n);
	CHECK_EQ(tp_q(c, "SELECT count(*) FROM (SELECT DISTINCT monitor_id, scheduled_at, "
	    "attempt FROM check_results) d", 0), n);
	CHECK_EQ(tp_q(c, "SELECT count(*) FROM check_results WHERE NOT ok", 0), 0);
	tp_check_queues_empty(20000);
}

/* Stops a probe with sig (its log's tail printed first when a check failed). */
static inline void
tp_probe_stop(struct tp_probe *p, int sig)
{
	if (test_failures > 0)
		tp_tail(p->log);
	tp_kill(p->pid, sig);
}

/* The common end of a probe test: the target stopped, pub (may be NULL) and pg closed, the
 * workdir removed when every check passed (kept with TP_KEEP). Returns test_finish(). */
static inline int
tp_teardown(const char *workdir, struct tp_target *target, struct upmon_amqp *pub, PGconn *pg)
{
	tp_kill(target->pid, SIGTERM);
	if (pub != NULL)
		upmon_amqp_free(pub);
	PQfinish(pg);
	if (test_failures == 0 && getenv("TP_KEEP") == NULL)
		(void)test_sh("rm -rf '%s'", workdir);
	return test_finish();
}

#endif
