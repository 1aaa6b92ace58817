/*
 * upmon_password_*: argon2id hash and verify, the parameters in the encoded string, the
 * '!' placeholder, and the semaphore under concurrent use.
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "upmon/password.h"

static void
test_hash_verify(void)
{
	char h1[UPMON_PASSWORD_HASH_MAX], h2[UPMON_PASSWORD_HASH_MAX];
	const char *pw = "correct horse battery";

	CHECK_EQ(upmon_password_hash(pw, strlen(pw), h1, sizeof(h1)), 0);
	CHECK_CONTAINS(h1, "$argon2id$v=19$m=19456,t=2,p=1$");
	CHECK_EQ(strncmp(h1, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
	CHECK_EQ(upmon_password_verify(h1, pw, strlen(pw)), 0);
	/* a fresh salt every time */
	CHECK_EQ(upmon_password_hash(pw, strlen(pw), h2, sizeof(h2)), 0);
	CHECK(strcmp(h1, h2) != 0);
	CHECK_EQ(upmon_password_verify(h2, pw, strlen(pw)), 0);
	/* bytes after a NUL count: the length is the caller's */
	CHECK_EQ(upmon_password_hash("ab\0cd", 5, h2, sizeof(h2)), 0);
	CHECK_EQ(upmon_password_verify(h2, "ab\0cd", 5), 0);
	CHECK_EQ(upmon_password_verify(h2, "ab", 2), -EACCES);
}

static void
test_wrong(void)
{
	char h[UPMON_PASSWORD_HASH_MAX];
	const char *pw = "correct horse battery";

	REQUIRE(upmon_password_hash(pw, strlen(pw), h, sizeof(h)) == 0);
	CHECK_EQ(upmon_password_verify(h, "correct horse batterx", strlen(pw)), -EACCES);
	CHECK_EQ(upmon_password_verify(h, "", 0), -EACCES);
	CHECK_EQ(upmon_password_verify(h, pw, strlen(pw) - 1), -EACCES);
}

static void
test_malformed(void)
{
	char h[UPMON_PASSWORD_HASH_MAX];

	CHECK_EQ(upmon_password_verify("!", "x", 1), -EINVAL);
	CHECK_EQ(upmon_password_verify("", "x", 1), -EINVAL);
	CHECK_EQ(upmon_password_verify(NULL, "x", 1), -EINVAL);
	CHECK_EQ(upmon_password_verify("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x",
	    1), -EINVAL);
	CHECK_EQ(upmon_password_verify("$argon2id$v=19$m=19456,t=2,p=1$!!$!!", "x", 1),
	    -EINVAL);
	/* a buffer too small is refused, not truncated */
	CHECK_EQ(upmon_password_hash("password", 8, h, 40), -ENOSPC);
}

static void
test_generate(void)
{
	char a[21], b[21];
	size_t i;

	CHECK_EQ(upmon_password_generate(a, sizeof(a), 20), 0);
	CHECK_EQ(upmon_password_generate(b, sizeof(b), 20), 0);
	CHECK_EQ(strlen(a), 20);
	CHECK(strcmp(a, b) != 0);
	for (i = 0; i < 20; i++)
		CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		    a[i]) != NULL);
	CHECK_EQ(upmon_password_generate(a, 20, 20), -ENOSPC);
}

static char shared_hash[UPMON_PASSWORD_HASH_MAX];

static void *
verifier(void *arg)
{
	long bad = 0;
	int i;

	(void)arg;
	for (i = 0; i < 2; i++)
		if (upmon_password_verify(shared_hash, "parallel pw", 11) != 0)
			bad++;
	return (void *)bad;
}

/* 8 threads at once: every verify still answers correctly (the semaphore queues them). */
static void
test_concurrent(void)
{
	pthread_t t[8];
	void *ret;
	int i;

	REQUIRE(upmon_password_hash("parallel pw", 11, shared_hash, sizeof(shared_hash)) == 0);
	for (i = 0; i < 8; i++)
		REQUIRE(pthread_create(&t[i], NULL, verifier, NULL) == 0);
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], &ret);
		CHECK_EQ((long)ret, 0);
	}
}

int
main(void)
{
	RUN(test_hash_verify);
	RUN(test_wrong);
	RUN(test_malformed);
	RUN(test_generate);
	RUN(test_concurrent);
	return test_finish();
}
