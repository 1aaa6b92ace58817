/*
 * upmon-bench-engine: the probe engine alone (no broker, no database), P2 of targets.md.
 *
 *   upmon-bench-engine --url http://127.0.0.1:8080/ [--inflight 256] [--threads 1]
 *       [--duration 20] [--warmup 2] [--timeout-ms 5000] [--no-guard]
 *
 * Each thread owns one probe_engine and keeps --inflight HTTP checks of --url running (a
 * fresh connection per check, as the engine always does), resubmitting each as soon as its
 * result is taken. The SSRF guard is on with 127.0.0.0/8 allowed, as in the local stack, so
 * its cost is counted. After the warm-up, counts checks for --duration seconds and prints
 * one line of key=value pairs:
 *   checks_per_s ok fail cpu_us_per_check rss_mb hwm_mb threads inflight seconds
 * CPU is the whole process (getrusage, user + system). Exit status 1 when any check failed.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "engine.h"
#include "upmon/backoff.h"
#include "upmon/config.h"
#include "upmon/msg.h"
#include "upmon/ssrf.h"

#define BENCH_MONITOR	"6f1c1a1e-0000-4000-8000-00000000be01"
#define BENCH_OWNER	"6f1c1a1e-0000-4000-8000-00000000be02"

struct bench_opts {
	const char *url;
	long inflight;
	long threads;
	long duration;
	long warmup;
	long timeout_ms;
	bool guard;
};

struct bench_thread {
	pthread_t tid;
	const struct bench_opts *opts;
	const struct upmon_ssrf *guard;
	uint64_t ok;			/* counted while measuring */
	uint64_t fail;
	int err;			/* engine error, 0 = none */
	char first_error[UPMON_ERROR_MAX + 1];
};

static atomic_int bench_phase;		/* 0 warm-up, 1 measuring, 2 stop */

static void
usage(void)
{
	fprintf(stderr, "usage: upmon-bench-engine --url URL [--inflight K] [--threads N] "
	    "[--duration S] [--warmup S] [--timeout-ms MS] [--no-guard]\n");
	exit(2);
}

static int
bench_task_init(struct upmon_task *t, const struct bench_opts *o)
{
	upmon_task_init(t);
	memcpy(t->monitor_id, BENCH_MONITOR, sizeof(BENCH_MONITOR));
	memcpy(t->owner_id, BENCH_OWNER, sizeof(BENCH_OWNER));
	t->scheduled_at = 1700000000000;
	t->attempt = 1;
	t->interval_seconds = 10;
	t->retries = 0;
	t->check.type = UPMON_CHECK_HTTP;
	t->check.timeout_ms = (int)o->timeout_ms;
	t->check.method = UPMON_HTTP_GET;
	t->check.nexpected = 1;
	t->check.expected[0].lo = 200;
	t->check.expected[0].hi = 299;
	t->check.follow_redirects = true;
	t->check.max_redirects = 5;
	t->check.verify_tls = true;
	t->check.url = strdup(o->url);
	if (t->check.url == NULL)
		return -ENOMEM;
	return upmon_task_id_format(t->task_id, sizeof(t->task_id), t->monitor_id,
	    t->scheduled_at, t->attempt);
}

static void *
bench_thread_main(void *arg)
{
	struct bench_thread *bt = arg;
	struct probe_engine_config cfg;
	struct probe_engine *e = NULL;
	struct probe_result res;
	struct upmon_task task;
	void *ctx;
	long i;
	int n, rc, phase;

	if ((bt->err = bench_task_init(&task, bt->opts)) < 0)
		goto out_task;
	probe_engine_config_init(&cfg);
	cfg.guard = bt->guard;
	if ((size_t)bt->opts->inflight > cfg.max_inflight)
		cfg.max_inflight = (size_t)bt->opts->inflight;
	if ((bt->err = probe_engine_new(&cfg, &e)) < 0)
		goto out_task;
	for (i = 0; i < bt->opts->inflight; i++)
		if ((bt->err = probe_engine_submit(e, &task, NULL)) < 0)
			goto out_engine;
	while ((phase = atomic_load(&bench_phase)) < 2) {
		if ((n = probe_engine_run(e, 100, -1)) < 0) {
			bt->err = n;
			goto out_engine;
		}
		while ((rc = probe_engine_next(e, &ctx, &res)) == 0) {
			phase = atomic_load(&bench_phase);
			if (phase == 1) {
				if (res.ok)
					bt->ok++;
				else
					bt->fail++;
			}
			if (!res.ok && bt->first_error[0] == '\0')
				snprintf(bt->first_error, sizeof(bt->first_error), "%s", res.error);
			if (phase < 2 && (bt->err = probe_engine_submit(e, &task, NULL)) < 0)
				goto out_engine;
		}
		if (rc != -EAGAIN) {
			bt->err = rc;
			goto out_engine;
		}
	}
out_engine:
	probe_engine_free(e);
out_task:
	upmon_task_release(&task);
	return NULL;
}

static double
bench_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* VmRSS and VmHWM of this process in MB. */
static void
bench_mem(double *rss, double *hwm)
{
	char line[256];
	FILE *f;
	long kb;

	*rss = *hwm = 0;
	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%ld", &kb) == 1)
			*rss = kb / 1024.0;
		else if (strncmp(line, "VmHWM:", 6) == 0 && sscanf(line + 6, "%ld", &kb) == 1)
			*hwm = kb / 1024.0;
	}
	fclose(f);
}

static long
opt_long(const char *name, const char *text, long min, long max)
{
	long v;

	if (upmon_parse_long(text, min, max, &v) < 0) {
		fprintf(stderr, "upmon-bench-engine: bad %s: %s (%ld..%ld)\n", name, text, min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "no-guard", no_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = { NULL, 256, 1, 20, 2, 5000, true };
	struct bench_thread *bt = NULL;
	struct upmon_ssrf *guard = NULL;
	char err[256];
	double t0 = 0, t1 = 1, cpu0 = 0, cpu1 = 0, rss = 0, hwm = 0;
	uint64_t ok = 0, fail = 0;
	long i, started = 0;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': o.url = optarg; break;
		case 'k': o.inflight = opt_long("--inflight", optarg, 1, 65536); break;
		case 't': o.threads = opt_long("--threads", optarg, 1, 64); break;
		case 'd': o.duration = opt_long("--duration", optarg, 1, 3600); break;
		case 'w': o.warmup = opt_long("--warmup", optarg, 0, 600); break;
		case 'T': o.timeout_ms = opt_long("--timeout-ms", optarg, 100, 60000); break;
		case 'G': o.guard = false; break;
		default: usage();
		}
	}
	if (o.url == NULL || optind != argc)
		usage();
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "upmon-bench-engine: curl_global_init failed\n");
		return 1;
	}
	if (upmon_ssrf_new(o.guard, "127.0.0.0/8", &guard, err, sizeof(err)) < 0) {
		fprintf(stderr, "upmon-bench-engine: ssrf: %s\n", err);
		goto out_curl;
	}
	if ((bt = calloc((size_t)o.threads, sizeof(*bt))) == NULL)
		goto out_guard;
	for (i = 0; i < o.threads; i++) {
		bt[i].opts = &o;
		bt[i].guard = guard;
		if (pthread_create(&bt[i].tid, NULL, bench_thread_main, &bt[i]) != 0)
			break;
		started++;
	}
	if (started == o.threads) {
		sleep((unsigned)o.warmup);
		cpu0 = bench_cpu_seconds();
		t0 = (double)upmon_mono_ms();
		atomic_store(&bench_phase, 1);
		sleep((unsigned)o.duration);
		atomic_store(&bench_phase, 2);
		t1 = (double)upmon_mono_ms();
		cpu1 = bench_cpu_seconds();
		bench_mem(&rss, &hwm);
	}
	atomic_store(&bench_phase, 2);
	for (i = 0; i < started; i++)
		pthread_join(bt[i].tid, NULL);
	if (started != o.threads) {
		fprintf(stderr, "upmon-bench-engine: pthread_create failed\n");
		goto out_threads;
	}
	status = 0;
	for (i = 0; i < o.threads; i++) {
		ok += bt[i].ok;
		fail += bt[i].fail;
		if (bt[i].err < 0) {
			fprintf(stderr, "upmon-bench-engine: thread %ld: engine error %s\n", i,
			    strerror(-bt[i].err));
			status = 1;
		}
		if (bt[i].first_error[0] != '\0') {
			fprintf(stderr, "upmon-bench-engine: thread %ld: a check failed: %s\n", i,
			    bt[i].first_error);
			status = 1;
		}
	}
	printf("checks_per_s=%.0f ok=%llu fail=%llu cpu_us_per_check=%.1f rss_mb=%.1f "
	    "hwm_mb=%.1f threads=%ld inflight=%ld seconds=%.1f\n",
	    (double)(ok + fail) * 1000.0 / (t1 - t0), (unsigned long long)ok,
	    (unsigned long long)fail, ok + fail ? (cpu1 - cpu0) * 1e6 / (double)(ok + fail) : 0.0,
	    rss, hwm, o.threads, o.inflight, (t1 - t0) / 1000.0);
out_threads:
	free(bt);
out_guard:
	upmon_ssrf_free(guard);
out_curl:
	curl_global_cleanup();
	return status;
}
