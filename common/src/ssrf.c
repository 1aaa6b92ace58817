/* The SSRF guard: blocked ranges, the allowlist and the libcurl glue. See ssrf.h. */
#include "upmon/ssrf.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upmon/config.h"

#define ALLOW_MAX	256	/* allowlist entries */
#define ENTRY_MAX	64	/* characters of one entry */

struct net {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];		/* network order; IPv4 in the first 4 bytes */
	int prefix;
};

struct upmon_ssrf {
	bool enabled;
	size_t nallow;
	struct net allow[];
};

struct range4 {
	uint32_t net;
	int prefix;
	const char *why;
};

/* Blocked IPv4 ranges (architecture.md, Security). Narrow ones first so the reason is the
 * most specific. */
static const struct range4 blocked4[] = {
	{ 0xffffffffu, 32, "broadcast" },
	{ 0xa9fea9feu, 32, "cloud metadata" },		/* 169.254.169.254 */
	{ 0x00000000u, 8, "this network" },
	{ 0x0a000000u, 8, "private" },
	{ 0x64400000u, 10, "shared address space" },	/* 100.64.0.0/10 */
	{ 0x7f000000u, 8, "loopback" },
	{ 0xa9fe0000u, 16, "link-local" },
	{ 0xac100000u, 12, "private" },			/* 172.16.0.0/12 */
	{ 0xc0000000u, 24, "ietf protocol assignments" },	/* 192.0.0.0/24 */
	{ 0xc0a80000u, 16, "private" },
	{ 0xc6120000u, 15, "benchmarking" },		/* 198.18.0.0/15 */
	{ 0xe0000000u, 4, "multicast" },
	{ 0xf0000000u, 4, "reserved" },
};

/* Compares the first prefix bits of a and b. */
static bool
prefix_eq(const uint8_t *a, const uint8_t *b, int prefix)
{
	int whole = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (whole > 0 && memcmp(a, b, (size_t)whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static const char *
classify4(uint32_t a)
{
	size_t i;
	uint32_t mask;

	for (i = 0; i < sizeof(blocked4) / sizeof(blocked4[0]); i++) {
		mask = blocked4[i].prefix == 0 ? 0 : 0xffffffffu << (32 - blocked4[i].prefix);
		if ((a & mask) == blocked4[i].net)
			return blocked4[i].why;
	}
	return NULL;
}

/* If a6 embeds an IPv4 address (mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, or compatible
 * ::/96 other than :: and ::1), stores it in host order in *v4 and returns true. */
static bool
embedded4(const uint8_t *a6, uint32_t *v4)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t compat[12] = { 0 };
	uint32_t v;

	memcpy(&v, a6 + 12, 4);
	v = ntohl(v);
	if (memcmp(a6, mapped, 12) == 0 || memcmp(a6, nat64, 12) == 0 ||
	    (memcmp(a6, compat, 12) == 0 && v > 1)) {
		*v4 = v;
		return true;
	}
	return false;
}

static const char *
classify6(const uint8_t *a)
{
	static const uint8_t zero[16] = { 0 };
	static const uint8_t ula[1] = { 0xfc }, ll[2] = { 0xfe, 0x80 }, mc[1] = { 0xff };

	if (memcmp(a, zero, 15) == 0 && a[15] <= 1)
		return a[15] == 0 ? "unspecified" : "loopback";
	if (prefix_eq(a, ula, 7))
		return "unique local";
	if (prefix_eq(a, ll, 10))
		return "link-local";
	if (prefix_eq(a, mc, 8))
		return "multicast";
	return NULL;
}

static bool
allowed(const struct upmon_ssrf *g, int family, const uint8_t *addr)
{
	size_t i;

	for (i = 0; i < g->nallow; i++)
		if (g->allow[i].family == family && prefix_eq(addr, g->allow[i].addr,
		    g->allow[i].prefix))
			return true;
	return false;
}

int
upmon_ssrf_check(const struct upmon_ssrf *g, const struct sockaddr *sa, socklen_t len,
    char *why, size_t whylen)
{
	char text[INET6_ADDRSTRLEN];
	const char *reason = NULL;
	uint8_t a4[4];
	const uint8_t *a6;
	uint32_t v4;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (g == NULL || !g->enabled)
		return 0;
	if (sa == NULL || len < (socklen_t)sizeof(sa->sa_family))
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		if (len < (socklen_t)sizeof(*sin))
			return -EINVAL;
		memcpy(a4, &sin->sin_addr, 4);
		if (allowed(g, AF_INET, a4))
			return 0;
		reason = classify4(ntohl(sin->sin_addr.s_addr));
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		if (len < (socklen_t)sizeof(*sin6))
			return -EINVAL;
		a6 = sin6->sin6_addr.s6_addr;
		if (allowed(g, AF_INET6, a6))
			return 0;
		if (embedded4(a6, &v4)) {
			uint32_t n = htonl(v4);

			memcpy(a4, &n, 4);
			if (allowed(g, AF_INET, a4))
				return 0;
			reason = classify4(v4);
		} else {
			reason = classify6(a6);
		}
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	} else {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "blocked address family %d", (int)sa->sa_family);
		return -EAFNOSUPPORT;
	}
	if (reason == NULL)
		return 0;
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "blocked address %s (%s)", text, reason);
	return -EACCES;
}

bool
upmon_ssrf_enabled(const struct upmon_ssrf *g)
{
	return g != NULL && g->enabled;
}

/* Parses one allowlist entry "addr" or "addr/prefix" (already trimmed) into n. */
static int
parse_entry(const char *entry, struct net *n, char *err, size_t errlen)
{
	char buf[ENTRY_MAX + 1];
	char *slash;
	long prefix;
	int max;
	size_t len = strlen(entry);

	if (len == 0 || len > ENTRY_MAX) {
		snprintf(err, errlen, "ssrf allowlist: %s entry", len == 0 ? "empty" : "over-long");
		return -EINVAL;
	}
	memcpy(buf, entry, len + 1);
	memset(n, 0, sizeof(*n));
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "ssrf allowlist: not an ip address in \"%s\"", entry);
		return -EINVAL;
	}
	n->prefix = max;
	if (slash != NULL) {
		if (upmon_parse_long(slash + 1, 0, max, &prefix) < 0) {
			snprintf(err, errlen, "ssrf allowlist: bad prefix length in \"%s\"", entry);
			return -EINVAL;
		}
		n->prefix = (int)prefix;
	}
	{
		uint8_t masked[16] = { 0 };
		int whole = n->prefix / 8, rest = n->prefix % 8;

		memcpy(masked, n->addr, (size_t)whole);
		if (rest != 0)
			masked[whole] = (uint8_t)(n->addr[whole] & (0xffu << (8 - rest)));
		if (memcmp(masked, n->addr, 16) != 0) {
			snprintf(err, errlen, "ssrf allowlist: host bits set in \"%s\"", entry);
			return -EINVAL;
		}
	}
	return 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
upmon_ssrf_new(bool enabled, const char *allow, struct upmon_ssrf **out, char *err,
    size_t errlen)
{
	struct upmon_ssrf *g = NULL;
	char entry[ENTRY_MAX + 2];
	const char *p, *end, *s, *e;
	size_t count = 0, len;
	int rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (err == NULL)
		errlen = 0;
	if (allow == NULL)
		allow = "";
	for (p = allow; is_space(*p); p++)
		;
	if (*p != '\0')
		for (count = 1, s = p; *s != '\0'; s++)
			count += *s == ',';
	if (count > ALLOW_MAX) {
		snprintf(err, errlen, "ssrf allowlist: more than %d entries", ALLOW_MAX);
		return -EINVAL;
	}
	if ((g = calloc(1, sizeof(*g) + count * sizeof(g->allow[0]))) == NULL)
		return -ENOMEM;
	g->enabled = enabled;
	while (count > 0 && p != NULL) {
		end = strchr(p, ',');
		e = end != NULL ? end : p + strlen(p);
		for (s = p; s < e && is_space(*s); s++)
			;
		while (e > s && is_space(e[-1]))
			e--;
		len = (size_t)(e - s);
		if (len > ENTRY_MAX)
			len = ENTRY_MAX + 1;	/* parse_entry says over-long */
		memcpy(entry, s, len);
		entry[len] = '\0';
		if ((rc = parse_entry(entry, &g->allow[g->nallow], err, errlen)) < 0)
			goto fail;
		g->nallow++;
		p = end != NULL ? end + 1 : NULL;
	}
	*out = g;
	return 0;
fail:
	free(g);
	return rc;
}

void
upmon_ssrf_free(struct upmon_ssrf *g)
{
	free(g);
}

/* ---- libcurl glue ------------------------------------------------------------------- */

static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct upmon_ssrf_curl *st = clientp;
	char why[UPMON_SSRF_WHY_MAX];
	curl_socket_t fd;

	(void)purpose;
	if (upmon_ssrf_check(st->guard, &a->addr, a->addrlen, why, sizeof(why)) != 0) {
		if (!st->blocked) {
			st->blocked = true;
			memcpy(st->why, why, sizeof(st->why));
		}
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd < 0)
		st->sock_errno = errno;
	return fd;
}

int
upmon_ssrf_curl_attach(struct upmon_ssrf_curl *st, void *curl_easy)
{
	CURL *c = curl_easy;
	CURLcode rc = CURLE_OK;

	upmon_ssrf_curl_reset(st);
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(c, CURLOPT_PROXY, "");
	rc |= curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	rc |= curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, st);
	return rc == CURLE_OK ? 0 : -EINVAL;
}

void
upmon_ssrf_curl_reset(struct upmon_ssrf_curl *st)
{
	st->blocked = false;
	st->why[0] = '\0';
	st->sock_errno = 0;
}
