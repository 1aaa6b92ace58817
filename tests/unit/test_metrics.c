/*
 * metrics: exact exposition text for counters, gauges, histograms and callbacks with
 * escaped labels; registration rules; concurrent updates; process metrics accepted by
 * promtool.
 */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "upmon/metrics.h"

static double
fixed_value(void *arg)
{
	return *(double *)arg;
}

static void
test_exact_text(void)
{
	static const double bounds[] = { 0.005, 0.1, 1, 2.5 };
	struct upmon_metrics *m = upmon_metrics_new();
	struct upmon_counter *c1, *c2, *c3;
	struct upmon_gauge *g;
	struct upmon_histogram *h;
	double cb = 1e-05;
	char *out = NULL;
	size_t len = 0;

	REQUIRE(m != NULL);
	c1 = upmon_metrics_counter(m, "upmon_tasks_published_total", "Tasks published.",
	    "queue", "monitor_tasks", NULL);
	c2 = upmon_metrics_counter(m, "upmon_tasks_published_total", "ignored second help",
	    "queue", "we\"ird\\q\nx", NULL);
	c3 = upmon_metrics_counter(m, "upmon_plain_total", "Help with \\ and\nnewline.", NULL);
	g = upmon_metrics_gauge(m, "upmon_leader", "1 while this scheduler leads.", NULL);
	h = upmon_metrics_histogram(m, "upmon_lateness_seconds", "Publish time minus slot time.",
	    bounds, 4, "service", "scheduler", NULL);
	REQUIRE(c1 && c2 && c3 && g && h);
	CHECK_EQ(upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "upmon_cb", "From a callback.",
	    fixed_value, &cb, "k", "v", NULL), 0);

	upmon_counter_inc(c1);
	upmon_counter_add(c1, 41);
	upmon_counter_inc(c3);
	upmon_gauge_set(g, 1);
	upmon_gauge_add(g, 0.5);
	upmon_gauge_add(g, -1);
	upmon_histogram_observe(h, 0.001);
	upmon_histogram_observe(h, 0.005);	/* le is inclusive */
	upmon_histogram_observe(h, 0.2);
	upmon_histogram_observe(h, 3);
	upmon_histogram_observe(h, NAN);	/* ignored */
	CHECK_EQ(upmon_counter_get(c1), 42);
	CHECK(upmon_gauge_get(g) == 0.5);

	REQUIRE(upmon_metrics_render(m, &out, &len) == 0);
	CHECK_EQ(strlen(out), len);
	CHECK_STR(out,
	    "# HELP upmon_tasks_published_total Tasks published.\n"
	    "# TYPE upmon_tasks_published_total counter\n"
	    "upmon_tasks_published_total{queue=\"monitor_tasks\"} 42\n"
	    "upmon_tasks_published_total{queue=\"we\\\"ird\\\\q\\nx\"} 0\n"
	    "# HELP upmon_plain_total Help with \\\\ and\\nnewline.\n"
	    "# TYPE upmon_plain_total counter\n"
	    "upmon_plain_total 1\n"
	    "# HELP upmon_leader 1 while this scheduler leads.\n"
	    "# TYPE upmon_leader gauge\n"
	    "upmon_leader 0.5\n"
	    "# HELP upmon_lateness_seconds Publish time minus slot time.\n"
	    "# TYPE upmon_lateness_seconds histogram\n"
	    "upmon_lateness_seconds_bucket{service=\"scheduler\",le=\"0.005\"} 2\n"
	    "upmon_lateness_seconds_bucket{service=\"scheduler\",le=\"0.1\"} 2\n"
	    "upmon_lateness_seconds_bucket{service=\"scheduler\",le=\"1\"} 3\n"
	    "upmon_lateness_seconds_bucket{service=\"scheduler\",le=\"2.5\"} 3\n"
	    "upmon_lateness_seconds_bucket{service=\"scheduler\",le=\"+Inf\"} 4\n"
	    "upmon_lateness_seconds_sum{service=\"scheduler\"} 3.206\n"
	    "upmon_lateness_seconds_count{service=\"scheduler\"} 4\n"
	    "# HELP upmon_cb From a callback.\n"
	    "# TYPE upmon_cb gauge\n"
	    "upmon_cb{k=\"v\"} 1e-05\n");
	free(out);

	/* a histogram without labels, and special values */
	cb = INFINITY;
	upmon_gauge_set(g, -INFINITY);
	REQUIRE(upmon_metrics_render(m, &out, &len) == 0);
	CHECK_CONTAINS(out, "upmon_leader -Inf\n");
	CHECK_CONTAINS(out, "upmon_cb{k=\"v\"} +Inf\n");
	free(out);
	upmon_metrics_free(m);
}

static void
test_registration_rules(void)
{
	static const double bounds[] = { 1, 2 }, bad_bounds[] = { 2, 1 };
	static double one = 1, two = 2;
	struct upmon_metrics *m = upmon_metrics_new();
	struct upmon_counter *c;
	char *out;
	size_t len;

	REQUIRE(m != NULL);
	c = upmon_metrics_counter(m, "a_total", "A.", "x", "1", NULL);
	CHECK(c != NULL);
	CHECK(upmon_metrics_counter(m, "a_total", "A.", "x", "1", NULL) == c);
	CHECK(upmon_metrics_counter(m, "a_total", "A.", "x", "2", NULL) != c);
	CHECK(upmon_metrics_gauge(m, "a_total", "A as a gauge.", NULL) == NULL);
	CHECK(upmon_metrics_counter(m, "no_suffix", "Counter without _total.", NULL) == NULL);
	CHECK(upmon_metrics_counter(m, "9bad_total", "Starts with a digit.", NULL) == NULL);
	CHECK(upmon_metrics_gauge(m, "bad-name", "Dash.", NULL) == NULL);
	CHECK(upmon_metrics_gauge(m, "ns:ok_gauge", "Colons are fine.", NULL) != NULL);
	CHECK(upmon_metrics_gauge(m, "g", "G.", "bad-label", "x", NULL) == NULL);
	CHECK(upmon_metrics_gauge(m, "g", "G.", "__reserved", "x", NULL) == NULL);
	CHECK(upmon_metrics_gauge(m, "g", "G.", "dup", "1", "dup", "2", NULL) == NULL);
	CHECK(upmon_metrics_gauge(m, "g", "G.", "k", NULL) == NULL);
	CHECK(upmon_metrics_histogram(m, "h", "H.", bad_bounds, 2, NULL) == NULL);
	CHECK(upmon_metrics_histogram(m, "h", "H.", bounds, 0, NULL) == NULL);
	CHECK(upmon_metrics_histogram(m, "h", "H.", bounds, 2, "le", "1", NULL) == NULL);
	CHECK(upmon_metrics_histogram(m, "h", "H.", bounds, 2, NULL) != NULL);
	CHECK(upmon_metrics_histogram(m, "h", "H.", bounds, 1, NULL) == NULL);
	CHECK_EQ(upmon_metrics_callback(m, UPMON_METRIC_COUNTER, "cb", "No suffix.", NULL,
	    NULL, NULL), -EINVAL);
	CHECK_EQ(upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "cbg", "Callback.", fixed_value,
	    &one, NULL), 0);
	CHECK_EQ(upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "cbg", "Callback.", fixed_value,
	    &one, NULL), 0);	/* the same source again is fine */
	CHECK_EQ(upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "cbg", "Callback.", fixed_value,
	    &two, NULL), -EINVAL);	/* a second source for one series is not */
	CHECK(upmon_metrics_gauge(m, "cbg", "Callback.", NULL) == NULL);
	/* NULL handles are harmless */
	upmon_counter_inc(NULL);
	upmon_counter_add(NULL, 5);
	upmon_gauge_set(NULL, 1);
	upmon_gauge_add(NULL, 1);
	upmon_histogram_observe(NULL, 1);
	CHECK_EQ(upmon_counter_get(NULL), 0);
	/* a family only registered with failures renders nothing */
	REQUIRE(upmon_metrics_render(m, &out, &len) == 0);
	CHECK(strstr(out, "no_suffix") == NULL && strstr(out, "bad-name") == NULL);
	CHECK(strstr(out, "# TYPE g ") == NULL);
	CHECK_CONTAINS(out, "# TYPE cbg gauge\ncbg 1\n");
	free(out);
	upmon_metrics_free(m);
	upmon_metrics_free(NULL);
	CHECK_EQ(upmon_metrics_render(NULL, &out, &len), 0);
	CHECK_STR(out, "");
	free(out);
}

struct worker {
	struct upmon_counter *c;
	struct upmon_gauge *g;
	struct upmon_histogram *h;
};

#define THREADS 4
#define ROUNDS 100000

static void *
hammer(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		upmon_counter_inc(w->c);
		upmon_gauge_add(w->g, 1);
		upmon_histogram_observe(w->h, (i % 2) ? 0.5 : 5);
	}
	return NULL;
}

static void
test_concurrent_updates(void)
{
	static const double bounds[] = { 1 };
	struct upmon_metrics *m = upmon_metrics_new();
	pthread_t t[THREADS];
	struct worker w;
	char *out;
	size_t len;
	int i;

	REQUIRE(m != NULL);
	w.c = upmon_metrics_counter(m, "hits_total", "Hits.", NULL);
	w.g = upmon_metrics_gauge(m, "level", "Level.", NULL);
	w.h = upmon_metrics_histogram(m, "dur_seconds", "Durations.", bounds, 1, NULL);
	for (i = 0; i < THREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, hammer, &w) == 0);
	/* scraping while they run is safe */
	for (i = 0; i < 20; i++) {
		REQUIRE(upmon_metrics_render(m, &out, &len) == 0);
		free(out);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(upmon_counter_get(w.c), THREADS * ROUNDS);
	CHECK(upmon_gauge_get(w.g) == THREADS * ROUNDS);
	REQUIRE(upmon_metrics_render(m, &out, &len) == 0);
	CHECK_CONTAINS(out, "dur_seconds_bucket{le=\"1\"} 200000\n");
	CHECK_CONTAINS(out, "dur_seconds_bucket{le=\"+Inf\"} 400000\n");
	CHECK_CONTAINS(out, "dur_seconds_sum 1100000\n");
	CHECK_CONTAINS(out, "dur_seconds_count 400000\n");
	free(out);
	upmon_metrics_free(m);
}

static void
test_process_metrics_lint(void)
{
	static const double bounds[] = UPMON_METRICS_SECONDS_BUCKETS;
	struct upmon_metrics *m = upmon_metrics_new();
	char path[] = "/tmp/upmon-test-metrics-XXXXXX", *out;
	size_t len;
	FILE *f;
	int fd;

	REQUIRE(m != NULL);
	CHECK_EQ(upmon_metrics_add_process(m, "test", "0.1.0"), 0);
	upmon_histogram_observe(upmon_metrics_histogram(m, "upmon_check_duration_seconds",
	    "Check duration.", bounds, sizeof(bounds) / sizeof(bounds[0]), "type", "http",
	    NULL), 0.3);
	REQUIRE(upmon_metrics_render(m, &out, &len) == 0);
	CHECK_CONTAINS(out, "# TYPE process_cpu_seconds_total counter\n");
	CHECK_CONTAINS(out, "# TYPE process_resident_memory_bytes gauge\n");
	CHECK_CONTAINS(out, "process_start_time_seconds ");
	CHECK_CONTAINS(out, "upmon_build_info{version=\"0.1.0\",service=\"test\"} 1\n");
	CHECK(strstr(out, "process_resident_memory_bytes 0\n") == NULL);
	CHECK(strstr(out, "process_open_fds 0\n") == NULL);
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	f = fdopen(fd, "w");
	REQUIRE(f != NULL);
	fwrite(out, 1, len, f);
	fclose(f);
	CHECK_EQ(test_sh("promtool check metrics < %s", path), 0);
	unlink(path);
	free(out);
	upmon_metrics_free(m);
}

int
main(void)
{
	RUN(test_exact_text);
	RUN(test_registration_rules);
	RUN(test_concurrent_updates);
	RUN(test_process_metrics_lint);
	return test_finish();
}
