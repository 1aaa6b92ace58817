/*
 * Time and backoff shared by every client that reconnects (amqp, db, cache): a monotonic
 * clock, an EINTR-safe sleep, a small jitter generator and jittered exponential backoff.
 */
#ifndef UPMON_BACKOFF_H
#define UPMON_BACKOFF_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and intervals, never for timestamps. */
int64_t upmon_mono_ms(void);
/* Milliseconds since the epoch (CLOCK_REALTIME): for timestamps. */
int64_t upmon_wall_ms(void);
/* Writes epoch_ms (>= 0) as RFC 3339 UTC with milliseconds, "2024-02-29T23:59:58.123Z",
 * into buf, which must hold UPMON_RFC3339_LEN + 1 bytes. 0, or -EINVAL (bad time, small buf). */
#define UPMON_RFC3339_LEN 24
int upmon_rfc3339_ms(int64_t epoch_ms, char *buf, size_t size);
/* Sets *out to the time ms milliseconds from now on clock (CLOCK_MONOTONIC, CLOCK_REALTIME):
 * the absolute deadline pthread_cond_timedwait and clock_nanosleep want. ms < 0 counts as 0. */
void upmon_timespec_after(clockid_t clock, int64_t ms, struct timespec *out);
/* Sleeps ms milliseconds, resuming after signals; ms <= 0 returns at once. */
void upmon_sleep_ms(int64_t ms);

/* A non-zero seed for upmon_jitter_next, mixed from the clock, the pid and salt (e.g. the
 * handle's address, so handles created together do not back off in lockstep). */
uint32_t upmon_jitter_seed(const void *salt);
/* Advances *state (xorshift32; for jitter only, not for security) and returns it. */
uint32_t upmon_jitter_next(uint32_t *state);

/*
 * Delay before reconnect attempt `attempt` (0 = the first retry): d = min(max_ms,
 * base_ms * 2^attempt), then a value in [d/2, d] chosen by rnd ("equal jitter"). Never 0,
 * whatever the input, so a caller cannot spin.
 */
int upmon_backoff_ms(int base_ms, int max_ms, unsigned attempt, uint32_t rnd);

#endif
