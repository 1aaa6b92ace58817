/*
 * Minimal test harness: assertion macros that print both values and the location, and a
 * runner that counts. Each test binary defines test functions and calls them from main via
 * RUN(fn); main returns test_finish(), which is non-zero when any check failed.
 */
#ifndef UPMON_TEST_H
#define UPMON_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int test_failures;
extern int test_checks;

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int test_finish(void);
/* Returns the value of environment variable name; a missing one means the harness is broken,
 * so the test fails (exit 1) with a line naming the variable. Never skips. */
const char *test_env(const char *name);
/* Runs a shell command line, returns its exit status (or -1). */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Waits up to timeout_ms for 127.0.0.1:port to accept a TCP connection (a server the test
 * started); 0 when it does, -1 when it never did. */
int test_wait_port(int port, int timeout_ms);
/* A TCP port on 127.0.0.1 that was free a moment ago (bound, read, closed). */
int test_free_port(void);

#define CHECK(cond) do { test_checks++; if (!(cond)) \
    test_fail(__FILE__, __LINE__, "check failed: %s", #cond); } while (0)
#define CHECK_INT(a, op, b) do { long long va_ = (long long)(a), vb_ = (long long)(b); \
    test_checks++; if (!(va_ op vb_)) test_fail(__FILE__, __LINE__, \
    "%s %s %s: %lld vs %lld", #a, #op, #b, va_, vb_); } while (0)
#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)
#define CHECK_STR(a, b) do { const char *sa_ = (a), *sb_ = (b); test_checks++; \
    if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) test_fail(__FILE__, __LINE__, \
    "%s == %s: \"%s\" vs \"%s\"", #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
    } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *h_ = (hay), *n_ = (needle); \
    test_checks++; if (h_ == NULL || strstr(h_, n_) == NULL) test_fail(__FILE__, __LINE__, \
    "%s contains \"%s\": got \"%s\"", #hay, n_, h_ ? h_ : "(null)"); } while (0)
/* A check whose failure makes the rest of the test meaningless. */
#define REQUIRE(cond) do { test_checks++; if (!(cond)) { \
    test_fail(__FILE__, __LINE__, "required: %s", #cond); exit(test_finish()); } } while (0)

#define RUN(fn) do { fprintf(stderr, "-- %s\n", #fn); fn(); } while (0)

#endif
