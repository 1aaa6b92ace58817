/*
 * The SSRF guard: decides whether an outgoing check or webhook may connect to an address.
 *
 * When enabled it refuses the addresses a user-supplied URL must never reach: loopback,
 * private and shared (CGNAT) ranges, link-local (169.254.169.254, the cloud metadata
 * service), multicast, reserved and unspecified addresses, and their IPv6 counterparts (::,
 * ::1, fc00::/7, fe80::/10, ff00::/8). IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96)
 * and NAT64 (64:ff9b::/96) addresses are judged by the IPv4 address they embed. An allowlist
 * of addresses and CIDRs (for self-hosted use on private networks) overrides the blocks.
 *
 * The check is made on the socket address about to be connected, after DNS, so names that
 * resolve to a blocked address, odd IP spellings (2130706433, 0177.0.0.1, 0x7f.1) and
 * redirects are all caught. upmon_ssrf_curl_attach() wires it into a libcurl easy handle.
 *
 * A guard is immutable after upmon_ssrf_new(), so threads may share one.
 */
#ifndef UPMON_SSRF_H
#define UPMON_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define UPMON_SSRF_WHY_MAX	128

struct upmon_ssrf;

/*
 * Creates a guard. enabled = false allows everything. allow is NULL, "" or a comma-separated
 * list of addresses and CIDRs ("127.0.0.0/8, ::1/128, 10.1.2.3"), which are allowed even
 * inside a blocked range. Returns 0, -EINVAL (a bad entry; err gets one lowercase line such
 * as "ssrf allowlist: bad prefix length in \"10.0.0.0/33\"") or -ENOMEM. Free with
 * upmon_ssrf_free().
 */
int upmon_ssrf_new(bool enabled, const char *allow, struct upmon_ssrf **out, char *err,
    size_t errlen);
/* Frees g; NULL is a no-op. */
void upmon_ssrf_free(struct upmon_ssrf *g);

/* True when g refuses anything at all (g != NULL and enabled). */
bool upmon_ssrf_enabled(const struct upmon_ssrf *g);

/*
 * Judges the address sa (AF_INET or AF_INET6; len its size). Returns 0 when allowed (always
 * when g is NULL or disabled), -EACCES when blocked, with why (may be NULL) set to
 * "blocked address 127.0.0.1 (loopback)", or -EAFNOSUPPORT (other families are blocked too;
 * why says so) or -EINVAL for a short len.
 */
int upmon_ssrf_check(const struct upmon_ssrf *g, const struct sockaddr *sa, socklen_t len,
    char *why, size_t whylen);

/*
 * libcurl glue shared by the probe and the mailer's webhooks. upmon_ssrf_curl_attach() sets,
 * on the easy handle curl_easy (a CURL *):
 *   CURLOPT_OPENSOCKETFUNCTION  every address curl is about to connect to (after DNS, on every
 *                               redirect and retry) goes through upmon_ssrf_check()
 *                               (which allows everything when the guard is off),
 *   CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR "http,https",
 *   CURLOPT_PROXY ""            no proxy, whatever the environment says.
 * st must stay valid while the transfer runs; st->guard is read then. The callback sets
 * st->blocked and st->why when it refuses an address (curl then reports
 * CURLE_COULDNT_CONNECT, or tries the next address of the name), and st->sock_errno when
 * socket() itself fails (EMFILE: a local problem, not the target's); clear them with
 * upmon_ssrf_curl_reset() before reusing st. Returns 0 or -EINVAL (curl refused an option).
 */
struct upmon_ssrf_curl {
	const struct upmon_ssrf *guard;
	bool blocked;
	char why[UPMON_SSRF_WHY_MAX];
	int sock_errno;			/* errno of a failed socket() there, else 0 */
};
int upmon_ssrf_curl_attach(struct upmon_ssrf_curl *st, void *curl_easy);
/* Clears st->blocked, st->why and st->sock_errno (keeps st->guard). */
void upmon_ssrf_curl_reset(struct upmon_ssrf_curl *st);

#endif
