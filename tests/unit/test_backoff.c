#include "test.h"

#include "upmon/backoff.h"

/* Every delay lies in [d/2, d] for d = min(max, base * 2^attempt), and the jitter spreads. */
static void
test_backoff_bounds(void)
{
	unsigned a;
	uint32_t r;

	for (a = 0; a < 40; a++) {
		int cap = 100, lo_seen = 1 << 30, hi_seen = 0;
		unsigned k;

		for (k = 0; k < a && cap < 5000; k++)
			cap *= 2;
		if (cap > 5000)
			cap = 5000;
		for (r = 0; r < 5000; r++) {
			int d = upmon_backoff_ms(100, 5000, a, r * 2654435761u);

			if (d < lo_seen)
				lo_seen = d;
			if (d > hi_seen)
				hi_seen = d;
		}
		CHECK_INT(lo_seen, >=, cap / 2);
		CHECK_INT(hi_seen, <=, cap);
		CHECK_INT(hi_seen - lo_seen, >, cap / 4);	/* really jittered */
	}
}

/* Never 0, whatever the input: a caller that sleeps the result cannot spin. */
static void
test_backoff_never_zero(void)
{
	CHECK_EQ(upmon_backoff_ms(1, 1, 10, 12345), 1);
	CHECK_INT(upmon_backoff_ms(0, 0, 0, 0), >=, 1);
	CHECK_INT(upmon_backoff_ms(-5, -5, 3, 7), >=, 1);
	CHECK_INT(upmon_backoff_ms(100, 50, 0, 0), >=, 50);	/* max below base: base wins */
	CHECK_INT(upmon_backoff_ms(1000, 60000, 4000000000u, 0xffffffffu), <=, 60000);
}

static void
test_jitter(void)
{
	static int salt_a, salt_b;
	uint32_t a = upmon_jitter_seed(&salt_a), b = upmon_jitter_seed(&salt_b), zero = 0;
	uint32_t x = upmon_jitter_next(&a);

	CHECK(a != 0 && b != 0);
	CHECK(a != b);		/* different salts, different streams */
	CHECK(upmon_jitter_next(&a) != x);
	CHECK(upmon_jitter_next(&zero) != 0);	/* a zero state does not stick */
}

static void
test_clocks(void)
{
	int64_t t0 = upmon_mono_ms(), t1;

	upmon_sleep_ms(30);
	t1 = upmon_mono_ms();
	CHECK_INT(t1 - t0, >=, 30);
	CHECK_INT(t1 - t0, <, 2000);
	CHECK_INT(upmon_wall_ms(), >, 1600000000000LL);
	upmon_sleep_ms(-1);
}

static void
test_timespec_after(void)
{
	struct timespec now, at;
	int64_t d;

	clock_gettime(CLOCK_MONOTONIC, &now);
	upmon_timespec_after(CLOCK_MONOTONIC, 1999, &at);
	CHECK_INT(at.tv_nsec, <, 1000000000L);
	CHECK_INT(at.tv_nsec, >=, 0);
	d = (int64_t)(at.tv_sec - now.tv_sec) * 1000 + (at.tv_nsec - now.tv_nsec) / 1000000;
	CHECK_INT(d, >=, 1999);
	CHECK_INT(d, <=, 2099);
	upmon_timespec_after(CLOCK_MONOTONIC, -5, &at);	/* negative = now */
	d = (int64_t)(at.tv_sec - now.tv_sec) * 1000 + (at.tv_nsec - now.tv_nsec) / 1000000;
	CHECK_INT(d, >=, 0);
	CHECK_INT(d, <=, 100);
}

int
main(void)
{
	RUN(test_timespec_after);
	RUN(test_backoff_bounds);
	RUN(test_backoff_never_zero);
	RUN(test_jitter);
	RUN(test_clocks);
	return test_finish();
}
