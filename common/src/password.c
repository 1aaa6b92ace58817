/*
 * argon2id password hashes (libargon2), bounded to UPMON_PASSWORD_CONCURRENCY at a time.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/random.h>

#include <argon2.h>

#include "upmon/password.h"

#define SALT_LEN	16
#define HASH_LEN	32
#define PREFIX		"$argon2id$"

static sem_t slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void
slots_init(void)
{
	sem_init(&slots, 0, UPMON_PASSWORD_CONCURRENCY);
}

static void
slot_take(void)
{
	pthread_once(&slots_once, slots_init);
	while (sem_wait(&slots) != 0 && errno == EINTR)
		;
}

static void
slot_give(void)
{
	sem_post(&slots);
}

static int
random_fill(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
argon2_errno(int rc)
{
	switch (rc) {
	case ARGON2_OK:
		return 0;
	case ARGON2_VERIFY_MISMATCH:
		return -EACCES;
	case ARGON2_MEMORY_ALLOCATION_ERROR:
	case ARGON2_THREAD_FAIL:
		return -ENOMEM;
	case ARGON2_ENCODING_FAIL:
		return -ENOSPC;
	default:
		return -EINVAL;
	}
}

int
upmon_password_hash(const char *pw, size_t len, char *out, size_t outsize)
{
	unsigned char salt[SALT_LEN];
	size_t need;
	int rc;

	if (outsize > 0)
		out[0] = '\0';
	if (len > UINT32_MAX)
		return -EINVAL;
	need = argon2_encodedlen(UPMON_PASSWORD_T, UPMON_PASSWORD_M_KIB, UPMON_PASSWORD_P,
	    SALT_LEN, HASH_LEN, Argon2_id);
	if (outsize < need)
		return -ENOSPC;
	if (random_fill(salt, sizeof(salt)) != 0)
		return -EIO;
	slot_take();
	rc = argon2id_hash_encoded(UPMON_PASSWORD_T, UPMON_PASSWORD_M_KIB, UPMON_PASSWORD_P,
	    pw, len, salt, sizeof(salt), HASH_LEN, out, outsize);
	slot_give();
	explicit_bzero(salt, sizeof(salt));
	return argon2_errno(rc);
}

int
upmon_password_verify(const char *encoded, const char *pw, size_t len)
{
	int rc;

	if (encoded == NULL || strncmp(encoded, PREFIX, strlen(PREFIX)) != 0 ||
	    len > UINT32_MAX)
		return -EINVAL;
	slot_take();
	rc = argon2id_verify(encoded, pw, len);
	slot_give();
	return argon2_errno(rc);
}

int
upmon_password_generate(char *out, size_t size, size_t nchars)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char b[64];
	size_t n = 0, i;

	if (size == 0 || nchars > size - 1)
		return -ENOSPC;
	while (n < nchars) {
		if (random_fill(b, sizeof(b)) != 0)
			return -EIO;
		/* 248 = 4 * 62: reject the top bytes so every character is equally likely */
		for (i = 0; i < sizeof(b) && n < nchars; i++)
			if (b[i] < 248)
				out[n++] = alphabet[b[i] % 62];
	}
	out[n] = '\0';
	explicit_bzero(b, sizeof(b));
	return 0;
}
