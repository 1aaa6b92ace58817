/*
 * UUIDs as text (8-4-4-4-12 hex digits), as PostgreSQL writes the ids of users, monitors,
 * channels, alerts and windows. Pure functions.
 */
#ifndef UPMON_UUID_H
#define UPMON_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define UPMON_UUID_LEN	36

/* Copies the uuid s[0..n) (either case) in lowercase into out and returns true; false when
 * it is not one (out is then unspecified). */
bool upmon_uuid_parse(const char *s, size_t n, char out[UPMON_UUID_LEN + 1]);
/* True when the NUL-terminated s is a uuid (either case). */
bool upmon_uuid_valid(const char *s);

#endif /* UPMON_UUID_H */
