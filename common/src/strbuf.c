/*
 * A growing heap string (upmon/strbuf.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/strbuf.h"

int
upmon_sb_grow(struct upmon_sb *b, size_t more)
{
	size_t ncap;
	char *p;

	if (b->err != 0)
		return b->err;
	if (b->len + more + 1 <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + more + 1)
		ncap *= 2;
	if ((p = realloc(b->s, ncap)) == NULL)
		return b->err = -ENOMEM;
	b->s = p;
	b->cap = ncap;
	return 0;
}

void
upmon_sb_add(struct upmon_sb *b, const char *s, size_t n)
{
	if (upmon_sb_grow(b, n) != 0)
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
upmon_sb_str(struct upmon_sb *b, const char *s)
{
	upmon_sb_add(b, s, strlen(s));
}

void
upmon_sb_printf(struct upmon_sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err != 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if (upmon_sb_grow(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *
upmon_sb_take(struct upmon_sb *b)
{
	char *s;

	if (b->err == 0 && b->s == NULL)
		upmon_sb_grow(b, 0);
	if (b->err == 0 && b->s != NULL)
		b->s[b->len] = '\0';
	s = b->err == 0 ? b->s : NULL;
	if (s == NULL)
		free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->err = 0;
	return s;
}

void
upmon_sb_release(struct upmon_sb *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}
