/*
 * Route matching over gw_routes (routes.c): literal segments compare exactly, {id} matches
 * one uuid segment (hex in either case, stored lowercase). Pure functions.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server_int.h"

static const char *
seg_end(const char *s)
{
	while (*s != '\0' && *s != '/')
		s++;
	return s;
}

/* 0 when path matches pattern (params filled), else -1. */
static int
match_pattern(const char *pat, const char *path, char params[][GW_UUID_LEN + 1])
{
	const char *pe, *se;
	int np = 0;

	if (*pat == '\0' || *path == '\0')
		return -1;
	while (*pat != '\0' && *path != '\0') {
		if (*pat != '/' || *path != '/')
			return -1;
		pat++;
		path++;
		pe = seg_end(pat);
		se = seg_end(path);
		if (pe - pat == 4 && memcmp(pat, "{id}", 4) == 0) {
			if (np >= GW_MAX_PARAMS ||
			    !upmon_uuid_parse(path, (size_t)(se - path), params[np]))
				return -1;
			np++;
		} else if (pe - pat != se - path || memcmp(pat, path, (size_t)(pe - pat)) != 0) {
			return -1;
		}
		pat = pe;
		path = se;
	}
	return *pat == '\0' && *path == '\0' ? 0 : -1;
}

int
gw_route_match(const char *method, const char *path, const struct gw_route **route,
    char params[][GW_UUID_LEN + 1], bool *method_mismatch)
{
	char tmp[GW_MAX_PARAMS][GW_UUID_LEN + 1];
	size_t i;

	*route = NULL;
	*method_mismatch = false;
	for (i = 0; i < gw_nroutes; i++) {
		if (match_pattern(gw_routes[i].pattern, path, tmp) != 0)
			continue;
		if (strcmp(gw_routes[i].method, method) != 0) {
			*method_mismatch = true;
			continue;
		}
		memcpy(params, tmp, sizeof(tmp));
		*route = &gw_routes[i];
		return 0;
	}
	return -ENOENT;
}

void
gw_route_allow(const char *path, char *buf, size_t size)
{
	char tmp[GW_MAX_PARAMS][GW_UUID_LEN + 1];
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < gw_nroutes; i++) {
		if (match_pattern(gw_routes[i].pattern, path, tmp) != 0)
			continue;
		n = snprintf(buf + off, size - off, "%s, ", gw_routes[i].method);
		if (n < 0 || (size_t)n >= size - off)
			break;
		off += (size_t)n;
	}
	snprintf(buf + off, size - off, "OPTIONS");
}
