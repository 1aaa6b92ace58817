/*
 * libFuzzer target: the gateway's pure request-side parsers. The input is split at '\n' into
 * pieces: method, path, query string, cursor, time, token (missing pieces are ""). Each goes
 * to its parser: gw_route_match() and gw_route_allow() (method, path), the query helpers on a
 * request without a connection (replies are captured, as in tests/unit/test_gw_reply.c),
 * gw_cursor_decode(), upmon_time_parse() and gw_token_verify(), which must refuse every
 * input (none carries a valid signature). The whole input is also tried as a query string
 * and as a token.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"
#include "upmon/jsonv.h"

#define NPIECES	6
#define SECRET	"upmon-fuzz-secret-0123456789-abcdefghij"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
	struct gw_req r;
	struct gw_req_priv p;
};

static void
fake_init(struct fake *f, const char *query)
{
	gw_req_detached_init(&f->r, &f->p, query, "fuzz");
}

static void
fake_reset(struct fake *f)
{
	gw_req_detached_reset(&f->r);
}

static void
route(const char *method, const char *path)
{
	char params[GW_MAX_PARAMS][GW_UUID_LEN + 1], allow[256];
	const struct gw_route *rt;
	bool mm;

	if (gw_route_match(method, path, &rt, params, &mm) == 0 && rt == NULL)
		abort();
	gw_route_allow(path, allow, sizeof(allow));
}

static void
query(const char *q)
{
	static const char *const allowed[] = { "limit", "cursor", "from", "to", "status", NULL };
	struct fake f;
	struct gw_page pg;
	char buf[256];
	int64_t ms;
	long l;

	fake_init(&f, q);
	(void)gw_query_allow(&f.r, allowed);
	fake_reset(&f);
	(void)gw_query_str(&f.r, "status", buf, sizeof(buf));
	fake_reset(&f);
	(void)gw_query_str(&f.r, "status", buf, 4);
	fake_reset(&f);
	(void)gw_query_long(&f.r, "limit", 1, 500, 50, &l);
	fake_reset(&f);
	(void)gw_query_time(&f.r, "from", 0, &ms);
	fake_reset(&f);
	(void)gw_query_time(&f.r, "to", INT64_MAX, &ms);
	fake_reset(&f);
	(void)gw_page_parse(&f.r, 50, 500, &pg);
	fake_reset(&f);
}

static void
cursor(const char *c)
{
	struct fake f;
	char id[GW_UUID_LEN + 1], again[256];
	int64_t ms, ms2;
	char id2[GW_UUID_LEN + 1];

	fake_init(&f, NULL);
	if (gw_cursor_decode(&f.r, c, &ms, id, sizeof(id)) == 0) {
		/* what decodes must encode back to a cursor decoding to the same key */
		if (gw_cursor_encode(ms, id, again, sizeof(again)) != 0)
			abort();
		fake_reset(&f);
		if (gw_cursor_decode(&f.r, again, &ms2, id2, sizeof(id2)) != 0 || ms != ms2 ||
		    strcmp(id, id2) != 0)
			abort();
	}
	fake_reset(&f);
}

static void
token(const char *t)
{
	struct gw_user u;

	if (gw_token_verify(SECRET, t, 1700000000, &u) == 0)
		abort();		/* accepted a token nobody signed */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *all, *piece[NPIECES], *p, *nl;
	char tbuf[64];
	int64_t ms;
	size_t i;

	if ((all = malloc(size + 1)) == NULL)
		return 0;
	memcpy(all, data, size);
	all[size] = '\0';

	/* the whole input (up to its first NUL) as a query string and as a token */
	query(all);
	token(all);

	p = all;
	for (i = 0; i < NPIECES; i++) {
		piece[i] = p;
		if ((nl = strchr(p, '\n')) != NULL) {
			*nl = '\0';
			p = nl + 1;
		} else {
			p += strlen(p);
		}
	}
	route(piece[0], piece[1]);
	query(piece[2]);
	cursor(piece[3]);
	(void)upmon_time_parse(piece[4], &ms);
	if (upmon_time_parse(piece[4], &ms) == 0 && upmon_time_format(ms, tbuf, sizeof(tbuf)) == 0 &&
	    (upmon_time_parse(tbuf, &ms) != 0))
		abort();		/* a formatted time must parse */
	token(piece[5]);
	free(all);
	return 0;
}
