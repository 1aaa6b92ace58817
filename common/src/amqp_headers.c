/*
 * Message headers: a fixed-size, protocol-free table of string and integer values, its
 * conversion to and from rabbitmq-c's amqp_table_t, and the pure builders of the retry and
 * dead-letter headers (architecture.md, "Dead letters").
 */
#include "amqp_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 127

void
upmon_amqp_headers_init(struct upmon_amqp_headers *h)
{
	h->count = 0;
	h->used = 1;            /* offset 0 is the empty string */
	h->arena[0] = '\0';
}

static int
headers_find(const struct upmon_amqp_headers *h, const char *key)
{
	size_t i;

	for (i = 0; i < h->count; i++)
		if (strcmp(h->arena + h->item[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* Copies len bytes of s into the arena, NUL-terminated; returns the offset or -1. */
static int
arena_put(struct upmon_amqp_headers *h, const char *s, size_t len)
{
	size_t off;

	if (h->used == 0)
		upmon_amqp_headers_init(h);
	off = h->used;
	if (len + 1 > sizeof(h->arena) - off)
		return -1;
	memcpy(h->arena + off, s, len);
	h->arena[off + len] = '\0';
	h->used += len + 1;
	return (int)off;
}

/* Returns the index of key, adding an entry when absent; -1 when full. */
static int
headers_slot(struct upmon_amqp_headers *h, const char *key)
{
	int i = headers_find(h, key), off;

	if (i >= 0)
		return i;
	if (h->count >= UPMON_AMQP_HEADERS_MAX)
		return -1;
	off = arena_put(h, key, strlen(key));
	if (off < 0)
		return -1;
	i = (int)h->count++;
	h->item[i].key = (uint16_t)off;
	h->item[i].str = 0;
	h->item[i].is_int = 0;
	h->item[i].num = 0;
	return i;
}

static int
key_ok(const char *key)
{
	size_t n;

	if (key == NULL)
		return 0;
	n = strlen(key);
	return n > 0 && n <= KEY_MAX;
}

/* Length of s cut to at most max bytes, not splitting a UTF-8 sequence. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
		len--;
	return len;
}

int
upmon_amqp_headers_set_str(struct upmon_amqp_headers *h, const char *key, const char *val,
    size_t max_len)
{
	size_t len;
	int i, off;

	if (!key_ok(key) || val == NULL)
		return UPMON_AMQP_EINVAL;
	if (h->used == 0)
		upmon_amqp_headers_init(h);
	len = strlen(val);
	if (max_len > 0)
		len = utf8_cut(val, len, max_len);
	i = headers_slot(h, key);
	if (i < 0)
		return UPMON_AMQP_ETOOBIG;
	off = arena_put(h, val, len);
	if (off < 0)
		return UPMON_AMQP_ETOOBIG;
	h->item[i].is_int = 0;
	h->item[i].str = (uint16_t)off;
	return 0;
}

int
upmon_amqp_headers_set_int(struct upmon_amqp_headers *h, const char *key, int64_t val)
{
	int i;

	if (!key_ok(key))
		return UPMON_AMQP_EINVAL;
	if (h->used == 0)
		upmon_amqp_headers_init(h);
	i = headers_slot(h, key);
	if (i < 0)
		return UPMON_AMQP_ETOOBIG;
	h->item[i].is_int = 1;
	h->item[i].num = val;
	return 0;
}

const char *
upmon_amqp_headers_get_str(const struct upmon_amqp_headers *h, const char *key)
{
	int i;

	if (h == NULL || key == NULL)
		return NULL;
	i = headers_find(h, key);
	if (i < 0 || h->item[i].is_int)
		return NULL;
	return h->arena + h->item[i].str;
}

int
upmon_amqp_headers_get_int(const struct upmon_amqp_headers *h, const char *key, int64_t *out)
{
	const char *s;
	char *end;
	long long v;
	int i;

	if (h == NULL || key == NULL)
		return UPMON_AMQP_EINVAL;
	i = headers_find(h, key);
	if (i < 0)
		return UPMON_AMQP_EINVAL;
	if (h->item[i].is_int) {
		*out = h->item[i].num;
		return 0;
	}
	s = h->arena + h->item[i].str;
	if (*s == '\0')
		return UPMON_AMQP_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return UPMON_AMQP_EINVAL;
	*out = v;
	return 0;
}

const char *
upmon_amqp_headers_key(const struct upmon_amqp_headers *h, size_t i)
{
	return i < h->count ? h->arena + h->item[i].key : NULL;
}

const char *
upmon_amqp_headers_value_str(const struct upmon_amqp_headers *h, size_t i)
{
	if (i >= h->count || h->item[i].is_int)
		return NULL;
	return h->arena + h->item[i].str;
}

/* Copies at most size - 1 bytes of b into dst, stopping at an embedded NUL. */
void
amqp_copy_bytes(char *dst, size_t size, amqp_bytes_t b)
{
	size_t n = b.len;
	const char *nul;

	if (size == 0)
		return;
	if (n > size - 1)
		n = size - 1;
	if (n > 0 && (nul = memchr(b.bytes, '\0', n)) != NULL)
		n = (size_t)(nul - (const char *)b.bytes);
	if (n > 0)
		memcpy(dst, b.bytes, n);
	dst[n] = '\0';
}

static int
field_int(const amqp_field_value_t *v, int64_t *out)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_I8: *out = v->value.i8; return 1;
	case AMQP_FIELD_KIND_U8: *out = v->value.u8; return 1;
	case AMQP_FIELD_KIND_I16: *out = v->value.i16; return 1;
	case AMQP_FIELD_KIND_U16: *out = v->value.u16; return 1;
	case AMQP_FIELD_KIND_I32: *out = v->value.i32; return 1;
	case AMQP_FIELD_KIND_U32: *out = v->value.u32; return 1;
	case AMQP_FIELD_KIND_I64: *out = v->value.i64; return 1;
	case AMQP_FIELD_KIND_U64:
		if (v->value.u64 > INT64_MAX)
			return 0;
		*out = (int64_t)v->value.u64;
		return 1;
	default:
		return 0;
	}
}

/* Converts the string and integer entries of t; other kinds (tables, arrays such as x-death)
 * and entries that do not fit are skipped. Returns how many were skipped. */
int
amqp_headers_from_table(const amqp_table_t *t, struct upmon_amqp_headers *out)
{
	char key[KEY_MAX + 1], val[UPMON_AMQP_ERROR_MAX + 64];
	const amqp_field_value_t *v;
	int i, skipped = 0, rc;
	int64_t num;

	upmon_amqp_headers_init(out);
	for (i = 0; t != NULL && i < t->num_entries; i++) {
		v = &t->entries[i].value;
		if (t->entries[i].key.len == 0 || t->entries[i].key.len > KEY_MAX) {
			skipped++;
			continue;
		}
		amqp_copy_bytes(key, sizeof(key), t->entries[i].key);
		if (field_int(v, &num)) {
			rc = upmon_amqp_headers_set_int(out, key, num);
		} else if (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES) {
			amqp_copy_bytes(val, sizeof(val), v->value.bytes);
			rc = upmon_amqp_headers_set_str(out, key, val, 0);
		} else {
			rc = UPMON_AMQP_EINVAL;
		}
		if (rc != 0)
			skipped++;
	}
	return skipped;
}

/* Points entries (max of them) at h's keys and values; out stays valid while h does. */
int
amqp_headers_to_table(const struct upmon_amqp_headers *h, amqp_table_entry_t *entries,
    size_t max, amqp_table_t *out)
{
	size_t i;

	out->num_entries = 0;
	out->entries = entries;
	if (h == NULL)
		return 0;
	if (h->count > max)
		return UPMON_AMQP_ETOOBIG;
	for (i = 0; i < h->count; i++) {
		entries[i].key = amqp_cstring_bytes(h->arena + h->item[i].key);
		if (h->item[i].is_int) {
			entries[i].value.kind = AMQP_FIELD_KIND_I64;
			entries[i].value.value.i64 = h->item[i].num;
		} else {
			entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
			entries[i].value.value.bytes =
			    amqp_cstring_bytes(h->arena + h->item[i].str);
		}
	}
	out->num_entries = (int)h->count;
	return 0;
}


int
upmon_amqp_is_rfc3339(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS, optional fraction, then Z or +hh:mm / -hh:mm. */
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	if (s == NULL || strlen(s) > 40)
		return 0;
	for (i = 0; pat[i] != '\0'; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	}
	s += i;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (strcmp(s, "Z") == 0)
		return 1;
	return (s[0] == '+' || s[0] == '-') && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
	    s[2] <= '9' && s[3] == ':' && s[4] >= '0' && s[4] <= '9' && s[5] >= '0' &&
	    s[5] <= '9' && s[6] == '\0';
}

/* Headers the broker sets (dead-lettering, quorum queue redelivery count) or that we set
 * ourselves are not carried over. */
static int
header_carried(const char *key)
{
	return strncmp(key, "x-death", 7) != 0 && strncmp(key, "x-first-death", 13) != 0 &&
	    strncmp(key, "x-last-death", 12) != 0 && strcmp(key, "x-delivery-count") != 0 &&
	    strncmp(key, "x-upmon-", 8) != 0;
}

static int
failure_headers(const struct upmon_amqp_headers *in, int attempt, const char *error,
    const char *service, const char *host, int64_t now_ms, struct upmon_amqp_headers *out)
{
	char now[32];
	const char *first = NULL, *key, *val;
	size_t i;
	int rc = 0;

	upmon_amqp_headers_init(out);
	if (upmon_rfc3339_ms(now_ms, now, sizeof(now)) != 0)
		return UPMON_AMQP_EINVAL;
	/* Ours first, so they always fit. */
	rc |= upmon_amqp_headers_set_int(out, UPMON_AMQP_H_ATTEMPT, attempt);
	rc |= upmon_amqp_headers_set_str(out, UPMON_AMQP_H_ERROR, error ? error : "",
	    UPMON_AMQP_ERROR_MAX - 1);
	if (in != NULL)
		first = upmon_amqp_headers_get_str(in, UPMON_AMQP_H_FIRST_FAILURE);
	if (!upmon_amqp_is_rfc3339(first))
		first = now;
	rc |= upmon_amqp_headers_set_str(out, UPMON_AMQP_H_FIRST_FAILURE, first, 0);
	rc |= upmon_amqp_headers_set_str(out, UPMON_AMQP_H_LAST_FAILURE, now, 0);
	if (service != NULL)
		rc |= upmon_amqp_headers_set_str(out, UPMON_AMQP_H_SERVICE, service, 128);
	if (host != NULL)
		rc |= upmon_amqp_headers_set_str(out, UPMON_AMQP_H_HOST, host, 255);
	if (rc != 0)
		return UPMON_AMQP_ETOOBIG;
	for (i = 0; in != NULL && i < in->count; i++) {
		key = upmon_amqp_headers_key(in, i);
		if (!header_carried(key))
			continue;
		val = upmon_amqp_headers_value_str(in, i);
		/* A caller header that does not fit is dropped, ours stay. */
		if (val != NULL)
			(void)upmon_amqp_headers_set_str(out, key, val, 0);
		else
			(void)upmon_amqp_headers_set_int(out, key, in->item[i].num);
	}
	return 0;
}

int
upmon_amqp_retry_headers(const struct upmon_amqp_headers *in, int attempt, const char *error,
    int64_t now_ms, struct upmon_amqp_headers *out)
{
	return failure_headers(in, attempt, error, NULL, NULL, now_ms, out);
}

int
upmon_amqp_dead_headers(const struct upmon_amqp_headers *in, int attempt, const char *error,
    const char *service, const char *host, int64_t now_ms, struct upmon_amqp_headers *out)
{
	return failure_headers(in, attempt, error, service ? service : "", host ? host : "",
	    now_ms, out);
}
