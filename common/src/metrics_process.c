/*
 * The standard process_* metrics (as the Prometheus client libraries name them) and
 * upmon_build_info, read from /proc and getrusage at scrape time.
 */
#include "upmon/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Reads up to size - 1 bytes of a /proc file into buf. Returns the length or -1. */
static ssize_t
read_proc(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* Field index (0 = total size, 1 = resident) of /proc/self/statm, in bytes. */
static double
statm_bytes(int field)
{
	char buf[256], *p = buf, *end;
	unsigned long long v = 0;
	int i;

	if (read_proc("/proc/self/statm", buf, sizeof(buf)) <= 0)
		return 0;
	for (i = 0; i <= field; i++) {
		v = strtoull(p, &end, 10);
		if (end == p)
			return 0;
		p = end;
	}
	return (double)v * (double)sysconf(_SC_PAGESIZE);
}

static double
resident_bytes(void *arg)
{
	(void)arg;
	return statm_bytes(1);
}

static double
virtual_bytes(void *arg)
{
	(void)arg;
	return statm_bytes(0);
}

static double
cpu_seconds(void *arg)
{
	struct rusage ru;

	(void)arg;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double
open_fds(void *arg)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	(void)arg;
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory being read */
}

static double
max_fds(void *arg)
{
	struct rlimit rl;

	(void)arg;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	return (double)rl.rlim_cur;
}

/* Start time of this process in Unix seconds: boot time + field 22 of /proc/self/stat. */
static double
start_time(void)
{
	char buf[1024], *p, *end;
	unsigned long long ticks = 0, btime = 0;
	int i;

	if (read_proc("/proc/self/stat", buf, sizeof(buf)) <= 0 ||
	    (p = strrchr(buf, ')')) == NULL)
		goto fallback;
	p++;	/* fields from 3 on follow the command name */
	for (i = 3; i <= 22; i++) {
		while (*p == ' ')
			p++;
		if (i == 22) {
			ticks = strtoull(p, &end, 10);
			if (end == p)
				goto fallback;
			break;
		}
		p += strcspn(p, " ");
	}
	if (read_proc("/proc/stat", buf, sizeof(buf)) <= 0 ||
	    (p = strstr(buf, "\nbtime ")) == NULL)
		goto fallback;
	btime = strtoull(p + 7, &end, 10);
	if (end == p + 7)
		goto fallback;
	return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
fallback:
	return (double)time(NULL);
}

int
upmon_metrics_add_process(struct upmon_metrics *m, const char *service, const char *version)
{
	struct upmon_gauge *g;
	int rc;

	if ((rc = upmon_metrics_callback(m, UPMON_METRIC_COUNTER, "process_cpu_seconds_total",
	    "Total user and system CPU time spent in seconds.", cpu_seconds, NULL, NULL)) < 0 ||
	    (rc = upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "process_resident_memory_bytes",
	    "Resident memory size in bytes.", resident_bytes, NULL, NULL)) < 0 ||
	    (rc = upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "process_virtual_memory_bytes",
	    "Virtual memory size in bytes.", virtual_bytes, NULL, NULL)) < 0 ||
	    (rc = upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "process_open_fds",
	    "Number of open file descriptors.", open_fds, NULL, NULL)) < 0 ||
	    (rc = upmon_metrics_callback(m, UPMON_METRIC_GAUGE, "process_max_fds",
	    "Maximum number of open file descriptors.", max_fds, NULL, NULL)) < 0)
		return rc;
	g = upmon_metrics_gauge(m, "process_start_time_seconds",
	    "Start time of the process since unix epoch in seconds.", NULL);
	if (g == NULL)
		return -ENOMEM;
	upmon_gauge_set(g, start_time());
	g = upmon_metrics_gauge(m, "upmon_build_info",
	    "A metric with a constant 1 value labeled by the upmon version and service.",
	    "version", version != NULL ? version : "", "service", service != NULL ? service : "",
	    NULL);
	if (g == NULL)
		return -ENOMEM;
	upmon_gauge_set(g, 1);
	return 0;
}
