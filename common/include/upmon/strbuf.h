/*
 * A growing heap string for building messages and documents piece by piece. The first
 * allocation failure latches in err and turns every later append into a no-op, so a builder
 * appends freely and checks err once at the end.
 *
 *	struct upmon_sb b = UPMON_SB_INIT;
 *	upmon_sb_str(&b, "a");  upmon_sb_printf(&b, "%d", 1);
 *	if (b.err != 0) { upmon_sb_release(&b); return b.err; }
 *	out = upmon_sb_take(&b);	(the caller owns out)
 */
#ifndef UPMON_STRBUF_H
#define UPMON_STRBUF_H

#include <stddef.h>

struct upmon_sb {
	char *s;		/* NUL-terminated once anything was appended; NULL before */
	size_t len;		/* bytes in s without the NUL */
	size_t cap;
	int err;		/* 0, or the first failure (-ENOMEM, -EINVAL) */
};

#define UPMON_SB_INIT	{ NULL, 0, 0, 0 }

/* Makes room for more bytes (and the NUL). 0, or b->err. */
int upmon_sb_grow(struct upmon_sb *b, size_t more);
/* Appends n bytes of s (which may hold NULs) / the string s / a formatted string. */
void upmon_sb_add(struct upmon_sb *b, const char *s, size_t n);
void upmon_sb_str(struct upmon_sb *b, const char *s);
void upmon_sb_printf(struct upmon_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the string (caller frees; "" allocated when nothing was appended; NULL on an
 * error or allocation failure) and empties b. */
char *upmon_sb_take(struct upmon_sb *b);
/* Frees the string and empties b (err cleared). */
void upmon_sb_release(struct upmon_sb *b);

#endif /* UPMON_STRBUF_H */
