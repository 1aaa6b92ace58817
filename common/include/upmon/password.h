/*
 * Password hashing for user accounts: argon2id with the OWASP parameters (m = 19456 KiB,
 * t = 2, p = 1, 16-byte random salt, 32-byte hash), stored as the encoded PHC string
 * "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>".
 *
 * Each hash or verify takes about 19 MiB and tens of milliseconds of CPU, so a process-wide
 * semaphore lets at most UPMON_PASSWORD_CONCURRENCY of them run at once (a burst of logins
 * on 64 server threads waits instead of taking 64 x 19 MiB).
 */
#ifndef UPMON_PASSWORD_H
#define UPMON_PASSWORD_H

#include <stddef.h>

#define UPMON_PASSWORD_M_KIB		19456
#define UPMON_PASSWORD_T		2
#define UPMON_PASSWORD_P		1
#define UPMON_PASSWORD_CONCURRENCY	4
/* Room for any encoded hash this module writes (it needs about 100 bytes). */
#define UPMON_PASSWORD_HASH_MAX		128

/*
 * Hashes the len bytes of pw (any bytes; the caller enforces length rules) with a fresh salt
 * and writes the encoded NUL-terminated string into out. Returns 0; -ENOSPC when outsize is
 * too small; -EIO when no random bytes could be read; -EINVAL when argon2 refuses the input;
 * -ENOMEM.
 */
int upmon_password_hash(const char *pw, size_t len, char *out, size_t outsize);

/*
 * Checks pw against an encoded argon2id string, in constant time for a given encoded hash.
 * Returns 0 on a match, -EACCES on a mismatch, -EINVAL when encoded is not an argon2id
 * string (such as the '!' placeholder of an account that cannot log in), -ENOMEM.
 */
int upmon_password_verify(const char *encoded, const char *pw, size_t len);

/*
 * Writes a random password of nchars characters from [A-Za-z0-9] (unbiased) and a NUL into
 * out. Returns 0, -ENOSPC when out cannot hold nchars + 1 bytes, -EIO.
 */
int upmon_password_generate(char *out, size_t size, size_t nchars);

#endif
