/* The SSRF guard: every blocked range at its edges, mapped and NAT64 addresses, the
 * allowlist and its parse errors, and the libcurl options it sets. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>

#include "test.h"
#include "upmon/ssrf.h"

/* Judges text (an IPv4 or IPv6 literal) with g; returns the check's result, why in why. */
static int
judge(const struct upmon_ssrf *g, const char *text, char *why, size_t whylen)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(80);
		return upmon_ssrf_check(g, (struct sockaddr *)&sin, sizeof(sin), why, whylen);
	}
	if (inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(80);
		return upmon_ssrf_check(g, (struct sockaddr *)&sin6, sizeof(sin6), why, whylen);
	}
	fprintf(stderr, "bad literal in test: %s\n", text);
	exit(1);
}

static void
expect_blocked(const struct upmon_ssrf *g, const char *text, const char *reason)
{
	char why[UPMON_SSRF_WHY_MAX], want[UPMON_SSRF_WHY_MAX];
	int rc = judge(g, text, why, sizeof(why));

	if (rc != -EACCES)
		test_fail(__FILE__, __LINE__, "%s: expected blocked, got %d", text, rc);
	snprintf(want, sizeof(want), "(%s)", reason);
	CHECK_CONTAINS(why, "blocked address ");
	CHECK_CONTAINS(why, want);
}

static void
expect_allowed(const struct upmon_ssrf *g, const char *text)
{
	char why[UPMON_SSRF_WHY_MAX];
	int rc = judge(g, text, why, sizeof(why));

	test_checks++;
	if (rc != 0)
		test_fail(__FILE__, __LINE__, "%s: expected allowed, got %d (%s)", text, rc, why);
}

static struct upmon_ssrf *
guard(const char *allow)
{
	struct upmon_ssrf *g = NULL;
	char err[256];
	int rc = upmon_ssrf_new(true, allow, &g, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "guard(%s): %s\n", allow ? allow : "NULL", err);
	REQUIRE(rc == 0 && g != NULL);
	return g;
}

static void
test_ipv4_ranges(void)
{
	struct upmon_ssrf *g = guard(NULL);
	char why[UPMON_SSRF_WHY_MAX];

	CHECK_EQ(judge(g, "127.0.0.1", why, sizeof(why)), -EACCES);
	CHECK_STR(why, "blocked address 127.0.0.1 (loopback)");
	expect_blocked(g, "0.0.0.0", "this network");
	expect_blocked(g, "0.255.255.255", "this network");
	expect_allowed(g, "1.0.0.0");
	expect_allowed(g, "9.255.255.255");
	expect_blocked(g, "10.0.0.0", "private");
	expect_blocked(g, "10.255.255.255", "private");
	expect_allowed(g, "11.0.0.0");
	expect_allowed(g, "100.63.255.255");
	expect_blocked(g, "100.64.0.0", "shared address space");
	expect_blocked(g, "100.127.255.255", "shared address space");
	expect_allowed(g, "100.128.0.0");
	expect_allowed(g, "126.255.255.255");
	expect_blocked(g, "127.0.0.0", "loopback");
	expect_blocked(g, "127.255.255.255", "loopback");
	expect_allowed(g, "128.0.0.0");
	expect_allowed(g, "169.253.255.255");
	expect_blocked(g, "169.254.0.0", "link-local");
	expect_blocked(g, "169.254.169.254", "cloud metadata");
	expect_blocked(g, "169.254.255.255", "link-local");
	expect_allowed(g, "169.255.0.0");
	expect_allowed(g, "172.15.255.255");
	expect_blocked(g, "172.16.0.0", "private");
	expect_blocked(g, "172.31.255.255", "private");
	expect_allowed(g, "172.32.0.0");
	expect_allowed(g, "191.255.255.255");
	expect_blocked(g, "192.0.0.0", "ietf protocol assignments");
	expect_blocked(g, "192.0.0.255", "ietf protocol assignments");
	expect_allowed(g, "192.0.1.0");
	expect_allowed(g, "192.167.255.255");
	expect_blocked(g, "192.168.0.0", "private");
	expect_blocked(g, "192.168.255.255", "private");
	expect_allowed(g, "192.169.0.0");
	expect_allowed(g, "198.17.255.255");
	expect_blocked(g, "198.18.0.0", "benchmarking");
	expect_blocked(g, "198.19.255.255", "benchmarking");
	expect_allowed(g, "198.20.0.0");
	expect_allowed(g, "223.255.255.255");
	expect_blocked(g, "224.0.0.0", "multicast");
	expect_blocked(g, "239.255.255.255", "multicast");
	expect_blocked(g, "240.0.0.0", "reserved");
	expect_blocked(g, "255.255.255.254", "reserved");
	expect_blocked(g, "255.255.255.255", "broadcast");
	expect_allowed(g, "8.8.8.8");
	expect_allowed(g, "93.184.216.34");
	upmon_ssrf_free(g);
}

static void
test_ipv6_ranges(void)
{
	struct upmon_ssrf *g = guard("");
	char why[UPMON_SSRF_WHY_MAX];

	expect_blocked(g, "::", "unspecified");
	expect_blocked(g, "::1", "loopback");
	CHECK_EQ(judge(g, "::1", why, sizeof(why)), -EACCES);
	CHECK_STR(why, "blocked address ::1 (loopback)");
	expect_allowed(g, "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_blocked(g, "fc00::", "unique local");
	expect_blocked(g, "fd12:3456::1", "unique local");
	expect_blocked(g, "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local");
	expect_allowed(g, "fe00::1");
	expect_allowed(g, "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_blocked(g, "fe80::", "link-local");
	expect_blocked(g, "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local");
	expect_allowed(g, "fec0::1");
	expect_blocked(g, "ff00::", "multicast");
	expect_blocked(g, "ff02::1", "multicast");
	expect_blocked(g, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast");
	expect_allowed(g, "2001:4860:4860::8888");
	expect_allowed(g, "2606:4700::1111");
	/* IPv4 embedded in IPv6: judged as the IPv4 address */
	expect_blocked(g, "::ffff:127.0.0.1", "loopback");
	CHECK_EQ(judge(g, "::ffff:7f00:1", why, sizeof(why)), -EACCES);
	CHECK_STR(why, "blocked address ::ffff:127.0.0.1 (loopback)");
	expect_blocked(g, "::ffff:169.254.169.254", "cloud metadata");
	expect_blocked(g, "::ffff:10.1.2.3", "private");
	expect_blocked(g, "::ffff:0.0.0.0", "this network");
	expect_allowed(g, "::ffff:8.8.8.8");
	expect_blocked(g, "64:ff9b::127.0.0.1", "loopback");
	expect_blocked(g, "64:ff9b::192.168.1.1", "private");
	expect_allowed(g, "64:ff9b::8.8.8.8");
	expect_blocked(g, "::127.0.0.1", "loopback");
	expect_blocked(g, "::10.0.0.1", "private");
	expect_blocked(g, "::0.0.0.2", "this network");
	upmon_ssrf_free(g);
}

static void
test_allowlist(void)
{
	struct upmon_ssrf *g = guard(" 127.0.0.2/32, 10.1.0.0/16 ,::1/128,fd00::/8, 192.168.7.7 ");

	expect_allowed(g, "127.0.0.2");
	expect_blocked(g, "127.0.0.1", "loopback");
	expect_blocked(g, "127.0.0.3", "loopback");
	expect_allowed(g, "10.1.0.0");
	expect_allowed(g, "10.1.255.255");
	expect_blocked(g, "10.2.0.0", "private");
	expect_blocked(g, "10.0.255.255", "private");
	expect_allowed(g, "::1");
	expect_allowed(g, "fd00::1");
	expect_blocked(g, "fc00::1", "unique local");
	expect_allowed(g, "192.168.7.7");
	expect_blocked(g, "192.168.7.8", "private");
	/* a v4 allow entry also covers the v4 address embedded in a mapped v6 address */
	expect_allowed(g, "::ffff:127.0.0.2");
	expect_allowed(g, "::ffff:10.1.2.3");
	expect_blocked(g, "::ffff:10.2.2.3", "private");
	expect_blocked(g, "169.254.169.254", "cloud metadata");
	upmon_ssrf_free(g);

	g = guard("0.0.0.0/0");
	expect_allowed(g, "127.0.0.1");
	expect_allowed(g, "169.254.169.254");
	expect_blocked(g, "::1", "loopback");
	upmon_ssrf_free(g);
	g = guard("127.0.0.0/8");
	expect_allowed(g, "127.0.0.1");
	expect_allowed(g, "127.255.255.255");
	expect_blocked(g, "0.0.0.1", "this network");
	expect_blocked(g, "10.0.0.1", "private");
	upmon_ssrf_free(g);
}

static void
expect_parse_error(const char *allow, const char *want)
{
	struct upmon_ssrf *g = (struct upmon_ssrf *)&g;
	char err[256] = "";

	CHECK_EQ(upmon_ssrf_new(true, allow, &g, err, sizeof(err)), -EINVAL);
	CHECK(g == NULL);
	CHECK_CONTAINS(err, want);
	CHECK(strchr(err, '\n') == NULL);
}

static void
test_allowlist_errors(void)
{
	struct upmon_ssrf *g = NULL;

	expect_parse_error("10.0.0.0/33", "bad prefix length in \"10.0.0.0/33\"");
	expect_parse_error("10.0.0.0/", "bad prefix length");
	expect_parse_error("10.0.0.0/-1", "bad prefix length");
	expect_parse_error("10.0.0.0/8x", "bad prefix length");
	expect_parse_error("::/129", "bad prefix length");
	expect_parse_error("10.0.0.1/8", "host bits set in \"10.0.0.1/8\"");
	expect_parse_error("fd00::1/8", "host bits set");
	expect_parse_error("localhost", "not an ip address in \"localhost\"");
	expect_parse_error("2130706433", "not an ip address");
	expect_parse_error("0177.0.0.1", "not an ip address");
	expect_parse_error("0x7f.1", "not an ip address");
	expect_parse_error("10.0.0", "not an ip address");
	expect_parse_error("10.0.0.0/8,", "empty entry");
	expect_parse_error("10.0.0.0/8,,::1", "empty entry");
	expect_parse_error(",", "empty entry");
	expect_parse_error("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee",
	    "over-long");
	/* blank means none; a disabled guard allows everything */
	CHECK_EQ(upmon_ssrf_new(true, "  ", &g, NULL, 0), 0);
	CHECK(upmon_ssrf_enabled(g));
	expect_blocked(g, "127.0.0.1", "loopback");
	upmon_ssrf_free(g);
	CHECK_EQ(upmon_ssrf_new(false, "", &g, NULL, 0), 0);
	CHECK(!upmon_ssrf_enabled(g));
	expect_allowed(g, "127.0.0.1");
	expect_allowed(g, "169.254.169.254");
	expect_allowed(g, "::1");
	upmon_ssrf_free(g);
	CHECK(!upmon_ssrf_enabled(NULL));
	expect_allowed(NULL, "127.0.0.1");
	upmon_ssrf_free(NULL);
}

static void
test_bad_sockaddr(void)
{
	struct upmon_ssrf *g = guard(NULL);
	struct sockaddr_in sin;
	struct sockaddr sa;
	char why[UPMON_SSRF_WHY_MAX];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	CHECK_EQ(upmon_ssrf_check(g, (struct sockaddr *)&sin, 2, why, sizeof(why)), -EINVAL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK_EQ(upmon_ssrf_check(g, &sa, sizeof(sa), why, sizeof(why)), -EAFNOSUPPORT);
	CHECK_CONTAINS(why, "blocked address family");
	upmon_ssrf_free(g);
}

/* The curl glue refuses a blocked address before any socket exists and restricts protocols;
 * a URL with a file:// scheme is refused by curl itself. No network is used: 127.0.0.1 is
 * refused by the guard, file:// by the protocol list. */
static void
test_curl_attach(void)
{
	struct upmon_ssrf *g = guard(NULL);
	struct upmon_ssrf_curl st = { .guard = g };
	CURL *c = curl_easy_init();
	CURLcode rc;

	REQUIRE(c != NULL);
	CHECK_EQ(upmon_ssrf_curl_attach(&st, c), 0);
	curl_easy_setopt(c, CURLOPT_URL, "http://2130706433:9/");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	rc = curl_easy_perform(c);
	CHECK_EQ(rc, CURLE_COULDNT_CONNECT);
	CHECK(st.blocked);
	CHECK_STR(st.why, "blocked address 127.0.0.1 (loopback)");
	upmon_ssrf_curl_reset(&st);
	CHECK(!st.blocked);
	CHECK_STR(st.why, "");
	curl_easy_setopt(c, CURLOPT_URL, "file:///etc/passwd");
	rc = curl_easy_perform(c);
	CHECK_EQ(rc, CURLE_UNSUPPORTED_PROTOCOL);
	curl_easy_cleanup(c);
	upmon_ssrf_free(g);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_ipv4_ranges);
	RUN(test_ipv6_ranges);
	RUN(test_allowlist);
	RUN(test_allowlist_errors);
	RUN(test_bad_sockaddr);
	RUN(test_curl_attach);
	curl_global_cleanup();
	return test_finish();
}
