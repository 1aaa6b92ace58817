/* The table of check types, and what every type shares: error texts and timings. */
#include "checks.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct probe_check_type *const check_types[] = {
	&probe_check_http,
	&probe_check_tcp,
};

const struct probe_check_type *
probe_check_type_find(enum upmon_check_type t)
{
	size_t i;

	for (i = 0; i < sizeof(check_types) / sizeof(check_types[0]); i++)
		if (check_types[i]->type == t)
			return check_types[i];
	return NULL;
}

/* Copies src to dst as one line: first letter lowercased, control characters replaced,
 * trailing full stop and blanks dropped. */
static void
copy_line(char *dst, size_t size, const char *src)
{
	size_t i, n = 0;

	if (size == 0)
		return;
	for (i = 0; src[i] != '\0' && n + 1 < size; i++)
		dst[n++] = iscntrl((unsigned char)src[i]) ? ' ' : src[i];
	while (n > 0 && (dst[n - 1] == '.' || dst[n - 1] == ' '))
		n--;
	dst[n] = '\0';
	if (n > 0)
		dst[0] = (char)tolower((unsigned char)dst[0]);
}

/* What curl said, lowercased: its error buffer, or the generic text of code. */
static void
curl_text(struct probe_xfer *x, CURLcode code, char *buf, size_t size)
{
	copy_line(buf, size, x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(code));
}

/* errno values that are the probe's own trouble, not the target's */
static bool
local_errno(long err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
	    err == EADDRNOTAVAIL;
}

static void
os_error(struct probe_xfer *x, CURLcode code, struct probe_result *r, const char *prefix)
{
	char text[256];
	long err = 0;

	if (x->ssrf.sock_errno != 0)
		err = x->ssrf.sock_errno;
	else if (curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &err) != CURLE_OK)
		err = 0;
	if (err != 0)
		copy_line(text, sizeof(text), strerror((int)err));
	else
		curl_text(x, code, text, sizeof(text));
	if (local_errno(err)) {
		r->local_error = true;
		prefix = "probe: ";
	}
	snprintf(r->error, sizeof(r->error), "%s%s", prefix, text);
}

void
probe_error_from_curl(struct probe_xfer *x, CURLcode code, struct probe_result *r)
{
	char text[CURL_ERROR_SIZE];
	const char *p;

	r->ok = false;
	if (x->ssrf.blocked) {
		r->blocked = true;
		snprintf(r->error, sizeof(r->error), "%s", x->ssrf.why);
		return;
	}
	curl_text(x, code, text, sizeof(text));
	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(r->error, sizeof(r->error), "timeout after %d ms", x->timeout_ms);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		p = strstr(x->errbuf, "host: ");
		snprintf(r->error, sizeof(r->error), "dns: could not resolve host %s",
		    p != NULL ? p + 6 : "");
		copy_line(r->error, sizeof(r->error), r->error);
		break;
	case CURLE_COULDNT_CONNECT:
		os_error(x, code, r, "");
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		os_error(x, code, r, "connection error: ");
		break;
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(r->error, sizeof(r->error), "too many redirects");
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		p = strstr(text, "certificate problem: ");
		snprintf(r->error, sizeof(r->error), "tls: certificate verify failed: %s",
		    p != NULL ? p + 21 : text);
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(r->error, sizeof(r->error), "tls: %s", text);
		break;
	case CURLE_OUT_OF_MEMORY:
		r->local_error = true;
		snprintf(r->error, sizeof(r->error), "probe: out of memory");
		break;
	case CURLE_GOT_NOTHING:
		snprintf(r->error, sizeof(r->error), "empty reply from server");
		break;
	case CURLE_URL_MALFORMAT:
		snprintf(r->error, sizeof(r->error), "bad url: %s", text);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(r->error, sizeof(r->error), "unsupported protocol: %s", text);
		break;
	default:
		snprintf(r->error, sizeof(r->error), "%s", text);
		break;
	}
	if (r->error[0] == '\0')
		snprintf(r->error, sizeof(r->error), "check failed");
}

static int
us_to_ms(curl_off_t us)
{
	if (us <= 0)
		return -1;
	if (us / 1000 > 3600000)
		return 3600000;
	return (int)(us / 1000);
}

void
probe_timings_read(struct probe_xfer *x, struct probe_result *r)
{
	curl_off_t dns = 0, connect = 0, tls = 0, first = 0, total = 0;

	curl_easy_getinfo(x->easy, CURLINFO_NAMELOOKUP_TIME_T, &dns);
	curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect);
	if (x->tls_possible)
		curl_easy_getinfo(x->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
	curl_easy_getinfo(x->easy, CURLINFO_STARTTRANSFER_TIME_T, &first);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total);
	r->timings.dns_ms = us_to_ms(dns);
	r->timings.connect_ms = us_to_ms(connect);
	r->timings.tls_ms = us_to_ms(tls);
	r->timings.first_byte_ms = us_to_ms(first);
	r->timings.total_ms = us_to_ms(total);
	if (r->timings.total_ms < 0)
		r->timings.total_ms = 0;
	r->latency_ms = r->timings.total_ms;
}
