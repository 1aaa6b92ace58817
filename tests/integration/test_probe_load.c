/*
 * The probe under load, one process, measured and printed (numbers for docs, bounds loose
 * enough for a shared 2-core machine):
 *   inflight  512 checks in flight (/slow/2000, 2 threads x 256 channels): RSS at that
 *             moment and the peak, which must stay <= 64 MB (P7); all 512 rows stored
 *   drain     20,000 tasks against /ok published up front, then one probe with the default
 *             settings drains them: checks/s from the commit times in check_results, every
 *             task stored once, the queue empty and nothing unacked
 * Runs under tests/support/with-stack.
 */
#include "test_probe_support.h"

/* P7: 64 MB. Under AddressSanitizer (the asan preset builds the probe too) the shadow memory
 * and the free quarantine inflate RSS several times, so the bound there is only a guard
 * against runaway growth; the real bound is checked by the other presets and by
 * tests/bench/pipeline.sh --p7. */
#if defined(__SANITIZE_ADDRESS__)
#define P7_RSS_MAX	(256L * 1024 * 1024)
#else
#define P7_RSS_MAX	(64L * 1024 * 1024)
#endif
#define INFLIGHT	512
#define DRAIN_MON	200
#define DRAIN_SLOTS	100	/* DRAIN_MON * DRAIN_SLOTS tasks */

static char workdir[] = "/tmp/upmon-probe-load.XXXXXX";
static PGconn *pg;
static struct upmon_amqp *pub;
static struct tp_target target;
static char owner[UPMON_ID_MAX + 1];

/* VmRSS or VmHWM of pid in bytes, -1 when unknown. */
static long
proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
			kb = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static void
publish_set(const char *prefix, const char *path, int nmon, int nslot, int timeout_ms)
{
	struct tp_monitor *mons;

	mons = calloc((size_t)nmon, sizeof(*mons));
	REQUIRE(mons != NULL);
	tp_monitors(pg, mons, nmon, owner, prefix, &target, path, timeout_ms);
	tp_publish_slots(pub, mons, nmon, 0, nslot);
	free(mons);
}

static int
wait_rows(const char *prefix, long long n, int timeout_ms)
{
	return tp_wait_count(pg, "SELECT count(*) FROM check_results r JOIN monitors m ON "
	    "m.id = r.monitor_id WHERE m.name LIKE $1 || '-%'", prefix, n, timeout_ms, 200);
}

static void
test_inflight(void)
{
	static const char *const env[] = { "UPMON_PROBE_THREADS=2", "UPMON_PROBE_CONSUMERS=256",
	    NULL };
	struct tp_probe p;
	int64_t deadline;
	double inflight = 0;
	long rss = -1, hwm;

	publish_set("inflight", "/slow/2000", 64, INFLIGHT / 64, 10000);
	tp_probe_start(&p, workdir, "probe-inflight", env);
	deadline = upmon_mono_ms() + 20000;
	while (upmon_mono_ms() < deadline) {
		inflight = tp_metric(&p, "upmon_probe_inflight");
		if (inflight >= INFLIGHT) {
			upmon_sleep_ms(500);	/* all of them connected and waiting */
			rss = proc_kb(p.pid, "VmRSS");
			break;
		}
		upmon_sleep_ms(20);
	}
	CHECK_INT(inflight, ==, INFLIGHT);
	CHECK_EQ(wait_rows("inflight", INFLIGHT, 30000), 0);
	hwm = proc_kb(p.pid, "VmHWM");
	fprintf(stderr, "P7: %d checks in flight: RSS %.1f MB, peak %.1f MB\n", INFLIGHT,
	    (double)rss / 1048576.0, (double)hwm / 1048576.0);
	CHECK_INT(rss, >, 0);
	CHECK_INT(rss, <=, P7_RSS_MAX);
	CHECK_INT(hwm, <=, P7_RSS_MAX);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results WHERE NOT ok", 0), 0);
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 10000), 0);
	tp_probe_stop(&p, SIGTERM);
}

static void
test_drain(void)
{
	struct tp_probe p;
	const long long n = (long long)DRAIN_MON * DRAIN_SLOTS;
	char span[64], batch[64];
	int64_t t0, t1;
	double secs;

	t0 = upmon_mono_ms();
	publish_set("drain", "/ok", DRAIN_MON, DRAIN_SLOTS, 5000);
	fprintf(stderr, "published %lld tasks in %lld ms\n", n, (long long)(upmon_mono_ms() - t0));
	t0 = upmon_mono_ms();
	tp_probe_start(&p, workdir, "probe-drain", NULL);
	CHECK_EQ(wait_rows("drain", n, 80000), 0);
	t1 = upmon_mono_ms();
	tp_qs(pg, span, sizeof(span), "SELECT extract(epoch FROM max(r.checked_at) - "
	    "min(r.checked_at)) FROM check_results r JOIN monitors m ON m.id = r.monitor_id "
	    "WHERE m.name LIKE 'drain-%'", 0);
	tp_qs(pg, batch, sizeof(batch), "SELECT round(avg(c), 1) FROM (SELECT count(*) c FROM "
	    "check_results r JOIN monitors m ON m.id = r.monitor_id WHERE m.name LIKE 'drain-%' "
	    "GROUP BY r.checked_at) b", 0);
	secs = strtod(span, NULL);
	fprintf(stderr, "drain: %lld checks; first to last commit %.2f s = %.0f checks/s; "
	    "process start to last row %.2f s = %.0f checks/s; mean rows per commit %s; "
	    "RSS peak %.1f MB\n", n, secs, secs > 0 ? (double)(n - 1) / secs : 0.0,
	    (double)(t1 - t0) / 1000.0, (double)n * 1000.0 / (double)(t1 - t0), batch,
	    (double)proc_kb(p.pid, "VmHWM") / 1048576.0);
	fprintf(stderr, "drain: %.0f commits, mean commit %.1f ms, mean Redis write-through "
	    "%.1f ms per batch; probe CPU %.0f us per check\n",
	    tp_metric(&p, "upmon_probe_commit_seconds_count"),
	    1000.0 * tp_metric(&p, "upmon_probe_commit_seconds_sum") /
	    tp_metric(&p, "upmon_probe_commit_seconds_count"),
	    1000.0 * tp_metric(&p, "upmon_probe_cache_seconds_sum") /
	    tp_metric(&p, "upmon_probe_cache_seconds_count"),
	    1e6 * tp_metric(&p, "process_cpu_seconds_total") / (double)n);
	CHECK_EQ(tp_q(pg, "SELECT count(*) FROM check_results r JOIN monitors m ON "
	    "m.id = r.monitor_id WHERE m.name LIKE 'drain-%' AND r.ok", 0), n);
	CHECK_INT(secs, >, 0);
	CHECK_INT(secs, <, 60);		/* >= 333 checks/s even on a loaded machine */
	CHECK_EQ(tp_queue_wait("monitor_tasks", 0, 10000), 0);
	tp_probe_stop(&p, SIGTERM);
}

int
main(void)
{
	tp_target_threads = 600;
	tp_setup(workdir, "load@example.test", &pg, owner, &target, &pub);
	RUN(test_inflight);
	RUN(test_drain);
	return tp_teardown(workdir, &target, pub, pg);
}
