/* Clocks, sleep, jitter and backoff for reconnecting clients. See backoff.h. */
#include "upmon/backoff.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int64_t
upmon_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
upmon_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
upmon_rfc3339_ms(int64_t epoch_ms, char *buf, size_t size)
{
	struct tm tm;
	time_t secs;
	int n;

	if (epoch_ms < 0 || size < UPMON_RFC3339_LEN + 1)
		return -EINVAL;
	secs = (time_t)(epoch_ms / 1000);
	if (gmtime_r(&secs, &tm) == NULL)
		return -EINVAL;
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (int)(epoch_ms % 1000));
	return (n > 0 && (size_t)n < size) ? 0 : -EINVAL;
}

void
upmon_sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

uint32_t
upmon_jitter_seed(const void *salt)
{
	uint32_t s = (uint32_t)upmon_mono_ms() ^ ((uint32_t)getpid() << 16) ^
	    (uint32_t)(uintptr_t)salt;

	return s != 0 ? s : 0x9e3779b9u;
}

uint32_t
upmon_jitter_next(uint32_t *state)
{
	uint32_t x = *state != 0 ? *state : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

int
upmon_backoff_ms(int base_ms, int max_ms, unsigned attempt, uint32_t rnd)
{
	int64_t d = base_ms > 0 ? base_ms : 1;
	int64_t cap = max_ms > d ? max_ms : d;

	while (attempt-- > 0 && d < cap)
		d *= 2;
	if (d > cap)
		d = cap;
	if (d < 2)
		return 1;
	return (int)(d / 2 + rnd % (uint32_t)(d - d / 2 + 1));
}

void
upmon_timespec_after(clockid_t clock, int64_t ms, struct timespec *out)
{
	if (ms < 0)
		ms = 0;
	clock_gettime(clock, out);
	out->tv_sec += (time_t)(ms / 1000);
	out->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}
