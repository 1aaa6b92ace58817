/*
 * One alert email to one channel over SMTP with libesmtp 1.1, its outcome classified.
 *
 * The whole RFC 5322 message is built here (headers, multipart/alternative with a
 * quoted-printable text and HTML part, CRLF line ends, no line over 78 characters in the
 * headers we fold and none over 76 in the bodies) and handed to libesmtp as one string;
 * libesmtp does the envelope, dot-stuffing, STARTTLS and AUTH. Header values built from user
 * data are checked at this boundary: a subject or recipient with CR, LF or NUL (or any other
 * control character) is refused with PERMFAIL before anything is sent.
 *
 * libesmtp 1.1 has three gaps handled here:
 * - its connect(2) has no timeout: a preflight non-blocking connect with UPMON_SMTP_TIMEOUT_MS
 *   runs first (and classifies refused / timed out / DNS as TEMPFAIL);
 * - it cannot do implicit TLS (port 465, "smtps"): for UPMON_SMTP_TLS=tls this file opens the
 *   TLS connection itself (OpenSSL, verification against the CA file and the host name) and
 *   relays it through a one-shot loopback listener that libesmtp connects to in plain text
 *   for the length of one send (see tunnel_*);
 * - a failed AUTH (535) makes it carry on unauthenticated: the protocol monitor callback
 *   watches the AUTH exchange so the outcome says "authentication failed" with the code.
 * Every call has its own libesmtp session, SSL_CTX and auth context: worker threads may send
 * at the same time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "mailer.h"
#include "upmon/strbuf.h"
#include "upmon/log.h"

#define REPLY_MAX	256	/* the last server reply line kept for the error text */

/* ---- message building ------------------------------------------------------------------- */

/* Appends text as quoted-printable (RFC 2045): \n becomes CRLF, lines stay <= 76 chars. */
static void
eb_qp(struct upmon_sb *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		char enc[4];
		size_t n;
		int eol = (p[1] == '\n' || p[1] == '\0');

		if (*p == '\n') {
			upmon_sb_str(b, "\r\n");
			col = 0;
			continue;
		}
		if (*p == '\r')
			continue;
		if ((*p >= 33 && *p <= 126 && *p != '=' && !(*p == '.' && col == 0)) ||
		    ((*p == ' ' || *p == '\t') && !eol)) {
			enc[0] = (char)*p;
			n = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			n = 3;
		}
		if (col + n > 75) {
			upmon_sb_str(b, "=\r\n");
			col = 0;
		}
		upmon_sb_add(b, enc, n);
		col += n;
	}
	if (col > 0)
		upmon_sb_str(b, "\r\n");
}

/* Appends "Subject: <s>\r\n": plain when printable ASCII and short, else RFC 2047 base64
 * encoded words of at most 45 input bytes each (UTF-8 sequences never split), folded. */
static void
eb_subject(struct upmon_sb *b, const char *s)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(s), i, off, n;
	int plain = len <= 900;

	for (i = 0; i < len && plain; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			plain = 0;
	/* "=?" in a plain subject would be decoded by readers: encode it then */
	if (plain && strstr(s, "=?") == NULL) {
		upmon_sb_str(b, "Subject: ");
		upmon_sb_add(b, s, len);
		upmon_sb_str(b, "\r\n");
		return;
	}
	upmon_sb_str(b, "Subject:");
	for (off = 0; off < len; off += n) {
		const unsigned char *p = (const unsigned char *)s + off;
		char word[128];
		size_t w = 0, j;

		n = len - off < 45 ? len - off : 45;
		while (n < len - off && n > 1 && (p[n] & 0xc0) == 0x80)
			n--;	/* do not split a UTF-8 sequence */
		memcpy(word, "=?UTF-8?B?", 10);
		w = 10;
		for (j = 0; j < n; j += 3) {
			unsigned v = (unsigned)p[j] << 16;

			if (j + 1 < n)
				v |= (unsigned)p[j + 1] << 8;
			if (j + 2 < n)
				v |= p[j + 2];
			word[w++] = b64[(v >> 18) & 63];
			word[w++] = b64[(v >> 12) & 63];
			word[w++] = j + 1 < n ? b64[(v >> 6) & 63] : '=';
			word[w++] = j + 2 < n ? b64[v & 63] : '=';
		}
		word[w++] = '?';
		word[w++] = '=';
		upmon_sb_str(b, off == 0 ? " " : "\r\n ");
		upmon_sb_add(b, word, w);
	}
	upmon_sb_str(b, "\r\n");
}

/* 0 when s is safe inside a header: no control characters (CR, LF, NUL, ...). */
static int
header_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return -EINVAL;
	return 0;
}

/* 0 when a is a plain ASCII addr-spec we can put in To: and RCPT TO unquoted. */
static int
address_ok(const char *a)
{
	const char *at = strchr(a, '@');
	size_t len = strlen(a);

	if (len == 0 || len > MAILER_ADDR_MAX || at == NULL || at == a || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return -EINVAL;
	for (; *a != '\0'; a++) {
		unsigned char c = (unsigned char)*a;

		if (c <= 0x20 || c >= 0x7f || strchr("<>,;:\"()\\", c) != NULL)
			return -EINVAL;
	}
	return 0;
}

/* 0 when the delivery id only has [A-Za-z0-9_:.-] (it goes into two headers). */
static int
delivery_id_ok(const char *id)
{
	if (*id == '\0')
		return -EINVAL;
	for (; *id != '\0'; id++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.-",
		    *id) == NULL)
			return -EINVAL;
	return 0;
}

/* "upmon <upmon@localhost>" -> "upmon@localhost" into buf; plain addresses as they are. */
static int
envelope_from(const char *from, char *buf, size_t size)
{
	const char *lt = strrchr(from, '<'), *gt;
	size_t n;

	if (lt != NULL) {
		if ((gt = strchr(lt, '>')) == NULL)
			return -EINVAL;
		from = lt + 1;
		n = (size_t)(gt - from);
	} else {
		while (*from == ' ')
			from++;
		n = strcspn(from, " ");
	}
	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(buf, from, n);
	buf[n] = '\0';
	return address_ok(buf);
}

static void
date_header(struct upmon_sb *b)
{
	static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec" };
	char line[80];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf(line, sizeof(line), "Date: %s, %d %s %04d %02d:%02d:%02d +0000\r\n",
	    wday[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
	upmon_sb_str(b, line);
}

/* Builds the whole message (CRLF line ends) into b. */
static void
build_message(struct upmon_sb *b, const struct mailer_smtp_config *cfg,
    const struct mailer_channel *ch, const struct upmon_alert_event *ev,
    const struct mailer_rendered *r, const char *delivery_id)
{
	static atomic_uint seq;
	char boundary[96], msgid[MAILER_DELIVERY_ID_MAX + 1];
	size_t i;

	/* "=_" never occurs in quoted-printable text, so the boundary cannot either */
	snprintf(boundary, sizeof(boundary), "=_upmon_%lx_%x", (unsigned long)time(NULL),
	    atomic_fetch_add(&seq, 1));
	date_header(b);
	upmon_sb_str(b, "From: ");
	upmon_sb_str(b, cfg->from);
	upmon_sb_str(b, "\r\nTo: ");
	for (i = 0; i < ch->nto; i++) {
		upmon_sb_str(b, ch->to[i]);
		upmon_sb_str(b, i + 1 < ch->nto ? ",\r\n " : "\r\n");
	}
	eb_subject(b, r->subject);
	/* a test notification's id has colons, which a Message-ID's dot-atom cannot hold */
	snprintf(msgid, sizeof(msgid), "%s", delivery_id);
	for (i = 0; msgid[i] != '\0'; i++)
		if (msgid[i] == ':')
			msgid[i] = '.';
	upmon_sb_str(b, "Message-ID: <");
	upmon_sb_str(b, msgid);
	upmon_sb_str(b, "@upmon>\r\nX-Upmon-Delivery: ");
	upmon_sb_str(b, delivery_id);
	upmon_sb_str(b, "\r\nX-Upmon-Event: ");
	upmon_sb_str(b, upmon_alert_kind_name(ev->kind));
	if (ev->monitor_id[0] != '\0' && header_safe(ev->monitor_id) == 0) {
		upmon_sb_str(b, "\r\nX-Upmon-Monitor: ");
		upmon_sb_str(b, ev->monitor_id);
	}
	upmon_sb_str(b, "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"");
	upmon_sb_str(b, boundary);
	upmon_sb_str(b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--");
	upmon_sb_str(b, boundary);
	upmon_sb_str(b, "\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	eb_qp(b, r->text);
	upmon_sb_str(b, "\r\n--");
	upmon_sb_str(b, boundary);
	upmon_sb_str(b, "\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	eb_qp(b, r->html);
	upmon_sb_str(b, "\r\n--");
	upmon_sb_str(b, boundary);
	upmon_sb_str(b, "--\r\n");
}

/* ---- connecting ------------------------------------------------------------------------- */

/* strerror(err) with a lowercase first letter (error lines are lowercase), into buf. */
static const char *
errstr(int err, char *buf, size_t size)
{
	snprintf(buf, size, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* Connects to host:port within timeout_ms; the fd (blocking again) in *fdp. On failure fills
 * out with TEMPFAIL (refused, unreachable, timeout, DNS) and returns -1. */
static int
connect_timeout(const char *host, int port, int timeout_ms, int *fdp,
    struct mailer_outcome *out)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, rc, err = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: resolve %s: %s", host,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			err = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : 10000);
		if (rc == 0) {
			err = ETIMEDOUT;
			goto next;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (rc > 0 && err == 0)
			break;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		char eb[128];

		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: connect to %s:%d: %s", host,
		    port, errstr(err, eb, sizeof(eb)));
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*fdp = fd;
	return 0;
}

/* The client SSL_CTX. For STARTTLS (libesmtp's I/O) TLS 1.3 is left out: libesmtp 1.1
 * reads a TLS 1.3 NewSessionTicket that arrives after the handshake as a dropped connection
 * (seen as a flaky "server dropped connection" right after STARTTLS), so that path speaks
 * TLS 1.2. The implicit-TLS relay does its own reads and keeps TLS 1.3. */
static SSL_CTX *
tls_ctx(const struct mailer_smtp_config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (cfg->tls == MAILER_SMTP_TLS_STARTTLS)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	if (cfg->ca_file != NULL && cfg->ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			log_warnx("smtp: cannot load ca file %s", cfg->ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else
		SSL_CTX_set_default_verify_paths(ctx);
	/* the chain's verdict is read after the handshake (libesmtp does the same) */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* ---- implicit TLS: a one-shot loopback relay for libesmtp -------------------------------- */

struct tunnel {
	int lfd;		/* loopback listener libesmtp connects to */
	int port;		/* its port */
	int sfd;		/* TCP to the server */
	SSL *ssl;		/* TLS over sfd */
	int timeout_ms;
	pthread_t thread;
	int running;
};

/* Relays bytes between the first local connection and the TLS stream until one side ends. */
static void *
tunnel_run(void *arg)
{
	struct tunnel *t = arg;
	struct pollfd pfd[2];
	char buf[16384];
	int cfd, n;

	pfd[0].fd = t->lfd;
	pfd[0].events = POLLIN;
	if (poll(pfd, 1, t->timeout_ms) <= 0)
		return NULL;
	/* one connection only: later ones wait in the backlog until tunnel_close */
	if ((cfd = accept(t->lfd, NULL, NULL)) < 0)
		return NULL;
	for (;;) {
		pfd[0].fd = cfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = t->sfd;
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (SSL_pending(t->ssl) == 0 && poll(pfd, 2, t->timeout_ms) <= 0)
			break;
		if (SSL_pending(t->ssl) > 0 || pfd[1].revents != 0) {
			n = SSL_read(t->ssl, buf, sizeof(buf));
			if (n <= 0 && SSL_get_error(t->ssl, n) == SSL_ERROR_WANT_READ)
				continue;	/* a record without data (a session ticket) */
			if (n <= 0 || send(cfd, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		}
		if (pfd[0].revents != 0) {
			n = (int)recv(cfd, buf, sizeof(buf), 0);
			if (n <= 0 || SSL_write(t->ssl, buf, n) != n)
				break;
		}
	}
	SSL_shutdown(t->ssl);
	close(cfd);
	return NULL;
}

static void
tunnel_close(struct tunnel *t)
{
	if (t->running) {
		shutdown(t->sfd, SHUT_RDWR);
		shutdown(t->lfd, SHUT_RDWR);	/* wakes a poll that never saw libesmtp */
		pthread_join(t->thread, NULL);
	}
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	if (t->sfd >= 0)
		close(t->sfd);
	if (t->lfd >= 0)
		close(t->lfd);
}

/* Opens TLS to the server (verifying chain and host when cfg->verify_tls) and a loopback
 * listener relaying to it. On failure fills out and returns -1. */
static int
tunnel_open(struct tunnel *t, const struct mailer_smtp_config *cfg, SSL_CTX *ctx,
    struct mailer_outcome *out)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct timeval tv;
	struct in_addr ip4;
	long vr;

	memset(t, 0, sizeof(*t));
	t->lfd = t->sfd = -1;
	t->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
	if (connect_timeout(cfg->host, cfg->port, t->timeout_ms, &t->sfd, out) != 0)
		return -1;
	tv.tv_sec = t->timeout_ms / 1000;
	tv.tv_usec = (t->timeout_ms % 1000) * 1000;
	setsockopt(t->sfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(t->sfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((t->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(t->ssl, t->sfd) != 1)
		goto local;
	if (inet_pton(AF_INET, cfg->host, &ip4) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), cfg->host);
	else {
		SSL_set_tlsext_host_name(t->ssl, cfg->host);
		SSL_set1_host(t->ssl, cfg->host);
	}
	if (SSL_connect(t->ssl) != 1) {
		unsigned long e = ERR_get_error();

		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: tls handshake with %s:%d: %s",
		    cfg->host, cfg->port, e ? ERR_reason_error_string(e) : "connection closed");
		return -1;
	}
	if (cfg->verify_tls && (vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0,
		    "smtp: tls certificate of %s:%d not trusted: %s", cfg->host, cfg->port,
		    X509_verify_cert_error_string(vr));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(t->lfd, 1) != 0 ||
	    getsockname(t->lfd, (struct sockaddr *)&sa, &len) != 0)
		goto local;
	t->port = ntohs(sa.sin_port);
	if (pthread_create(&t->thread, NULL, tunnel_run, t) != 0)
		goto local;
	t->running = 1;
	return 0;
local:
	{
		char eb[128];

		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: tls relay: %s",
		    errstr(errno, eb, sizeof(eb)));
	}
	return -1;
}

/* ---- the libesmtp session ----------------------------------------------------------------- */

struct send_state {
	const struct mailer_smtp_config *cfg;
	char tls_error[200];		/* certificate problem (PERMFAIL) */
	int starttls_missing;
	int in_auth;			/* AUTH sent, final answer pending */
	int auth_code;			/* final AUTH reply code, 0 = none */
	char auth_reply[REPLY_MAX];
	int last_code;			/* last server reply */
	char last_reply[REPLY_MAX];
};

static void
on_event(smtp_session_t session, int event, void *arg, ...)
{
	struct send_state *st = arg;
	va_list ap;
	int *ok;

	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long vr = va_arg(ap, long);

		ok = va_arg(ap, int *);
		if (!st->cfg->verify_tls)
			*ok = 1;
		else
			snprintf(st->tls_error, sizeof(st->tls_error),
			    "certificate not trusted: %s", X509_verify_cert_error_string(vr));
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		if (!st->cfg->verify_tls)
			*ok = 1;
		else
			snprintf(st->tls_error, sizeof(st->tls_error), "no server certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		SSL *ssl;
		X509 *cert;

		ok = va_arg(ap, int *);
		(void)va_arg(ap, char *);
		ssl = va_arg(ap, SSL *);
		/* libesmtp matches DNS names only: an IP address in the subjectAltName (and
		 * OpenSSL's stricter wildcard rules) are checked here */
		cert = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;
		if (!st->cfg->verify_tls || (cert != NULL &&
		    (X509_check_ip_asc(cert, st->cfg->host, 0) == 1 ||
		    X509_check_host(cert, st->cfg->host, 0, 0, NULL) == 1)))
			*ok = 1;
		else
			snprintf(st->tls_error, sizeof(st->tls_error),
			    "certificate does not match host %s", st->cfg->host);
		X509_free(cert);
		break;
	}
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		ok = va_arg(ap, int *);
		snprintf(st->tls_error, sizeof(st->tls_error), "weak cipher");
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		st->starttls_missing = 1;
		break;
	default:
		break;
	}
	va_end(ap);
}

/* Watches the protocol: the last reply line, and the outcome of AUTH (libesmtp carries on
 * without authentication after a 535). Never logs what is written (credentials). */
static void
on_monitor(const char *buf, int buflen, int writing, void *arg)
{
	struct send_state *st = arg;
	const char *p = buf, *end = buf + buflen;

	if (writing) {
		if (buflen >= 5 && strncmp(buf, "AUTH ", 5) == 0)
			st->in_auth = 1;
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p), i;

		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
			n--;
		if (n >= 3 && p[0] >= '1' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
		    p[2] >= '0' && p[2] <= '9' && (n == 3 || p[3] == ' ')) {
			if (n >= sizeof(st->last_reply))
				n = sizeof(st->last_reply) - 1;
			for (i = 0; i < n; i++) {
				unsigned char c = (unsigned char)p[i];

				st->last_reply[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
			}
			st->last_reply[n] = '\0';
			st->last_code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
			if (st->in_auth && st->last_code != 334) {
				st->in_auth = 0;
				st->auth_code = st->last_code;
				memcpy(st->auth_reply, st->last_reply, n + 1);
			}
		}
		p = nl ? nl + 1 : end;
	}
}

static int
on_auth_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
	const struct mailer_smtp_config *cfg = arg;
	int i;

	for (i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = (char *)cfg->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = (char *)(cfg->password ? cfg->password : "");
		else if (req[i].flags & AUTH_REALM)
			result[i] = (char *)"";
		else
			return 0;
	}
	return 1;
}

static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

/* auth_client_init and the PLAIN / LOGIN plugins (dlopen) once, before threads race. */
static void
auth_init_once(void)
{
	auth_context_t a;

	auth_client_init();
	if ((a = auth_create_context()) != NULL) {
		auth_set_mechanism_flags(a, AUTH_PLUGIN_PLAIN, 0);
		auth_set_mechanism(a, "PLAIN");
		auth_set_mechanism(a, "LOGIN");
		auth_destroy_context(a);
	}
}

/* Turns the statuses of a finished session into out. */
static void
classify(struct send_state *st, smtp_session_t session, smtp_message_t msg,
    smtp_recipient_t *rcpts, const struct mailer_channel *ch, int started,
    struct mailer_outcome *out)
{
	const smtp_status_t *s;
	char refused[400] = "", ebuf[128];
	size_t i, ok = 0, temp = 0, perm = 0, off = 0;
	int code4 = 0, code5 = 0;

	(void)session;
	if (st->tls_error[0] != '\0') {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "smtp: tls: %s", st->tls_error);
		return;
	}
	if (st->starttls_missing) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0,
		    "smtp: server does not offer starttls (UPMON_SMTP_TLS=starttls)");
		return;
	}
	if (st->auth_code >= 400) {
		mailer_outcome_set(out, st->auth_code >= 500 ? MAILER_PERMFAIL : MAILER_TEMPFAIL,
		    st->auth_code, "smtp: authentication failed: %s", st->auth_reply);
		return;
	}
	if (!started) {
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: %s",
		    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
		return;
	}
	s = smtp_reverse_path_status(msg);
	if (s != NULL && s->code >= 400) {
		mailer_outcome_set(out, s->code >= 500 ? MAILER_PERMFAIL : MAILER_TEMPFAIL, s->code,
		    "smtp: sender refused: %d %s", s->code, s->text ? s->text : "");
		return;
	}
	for (i = 0; i < ch->nto; i++) {
		s = smtp_recipient_status(rcpts[i]);
		if (s == NULL || s->code == 0)
			continue;
		if (s->code >= 200 && s->code < 300) {
			ok++;
			continue;
		}
		if (s->code >= 500) {
			perm++;
			code5 = s->code;
		} else {
			temp++;
			code4 = s->code;
		}
		if (off < sizeof(refused) - 1) {
			int n = snprintf(refused + off, sizeof(refused) - off, "%s%s (%d)",
			    off ? ", " : "", ch->to[i], s->code);

			if (n > 0)
				off += (size_t)n;
		}
	}
	if (ok == 0 && temp + perm > 0) {
		/* every recipient refused (a pipelined DATA then gets 503: not the reason) */
		if (temp > 0)
			mailer_outcome_set(out, MAILER_TEMPFAIL, code4,
			    "smtp: recipients refused: %s", refused);
		else
			mailer_outcome_set(out, MAILER_PERMFAIL, code5,
			    "smtp: recipients refused: %s", refused);
		return;
	}
	s = smtp_message_transfer_status(msg);
	if (s != NULL && s->code >= 200 && s->code < 300 && ok > 0) {
		mailer_outcome_init(out);
		out->code = s->code;
		/* partly refused: sent (a retry would duplicate the accepted ones); noted */
		if (perm + temp > 0)
			mailer_outcome_set(out, MAILER_SENT, s->code,
			    "smtp: sent, but recipients refused: %s", refused);
		return;
	}
	if (s != NULL && s->code >= 400) {
		mailer_outcome_set(out, s->code >= 500 ? MAILER_PERMFAIL : MAILER_TEMPFAIL, s->code,
		    "smtp: message refused: %d %s", s->code, s->text ? s->text : "");
		return;
	}
	/* the session ended before an answer to the message: greeting refused, dropped... */
	if (st->last_code >= 500)
		mailer_outcome_set(out, MAILER_PERMFAIL, st->last_code, "smtp: %s",
		    st->last_reply);
	else if (smtp_errno() != 0)
		mailer_outcome_set(out, MAILER_TEMPFAIL, st->last_code >= 400 ? st->last_code : 0,
		    "smtp: %s (last reply: %s)", smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)),
		    st->last_reply[0] ? st->last_reply : "none");
	else
		mailer_outcome_set(out, MAILER_TEMPFAIL, st->last_code >= 400 ? st->last_code : 0,
		    "smtp: session ended before the message was accepted (last reply: %s)",
		    st->last_reply[0] ? st->last_reply : "none");
}

/* Checks every header value built from user or configuration data. 0 or PERMFAIL in out. */
static int
check_headers(const struct mailer_smtp_config *cfg, const struct mailer_channel *ch,
    const struct mailer_rendered *r, const char *delivery_id, char *from, size_t fromsize,
    struct mailer_outcome *out)
{
	size_t i;

	if (ch->nto == 0 || ch->nto > MAILER_TO_MAX) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "email channel has no recipients");
		return -1;
	}
	for (i = 0; i < ch->nto; i++) {
		if (ch->to[i] == NULL || header_safe(ch->to[i]) != 0) {
			mailer_outcome_set(out, MAILER_PERMFAIL, 0,
			    "recipient %zu refused: control character (cr, lf or nul) in an address",
			    i + 1);
			return -1;
		}
		if (address_ok(ch->to[i]) != 0) {
			mailer_outcome_set(out, MAILER_PERMFAIL, 0,
			    "recipient %zu refused: not a plain ascii address", i + 1);
			return -1;
		}
	}
	if (header_safe(r->subject) != 0) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0,
		    "subject refused: control character (cr, lf or nul)");
		return -1;
	}
	if (delivery_id == NULL || delivery_id_ok(delivery_id) != 0) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "delivery id refused");
		return -1;
	}
	if (cfg->from == NULL || header_safe(cfg->from) != 0 ||
	    envelope_from(cfg->from, from, fromsize) != 0) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "UPMON_SMTP_FROM is not a valid address");
		return -1;
	}
	return 0;
}

int
mailer_email_send(const struct mailer_smtp_config *cfg, const struct mailer_links *links,
    const struct mailer_channel *ch, const struct upmon_alert_event *ev,
    const char *delivery_id, struct mailer_outcome *out)
{
	struct mailer_rendered r = { 0 };
	struct upmon_sb msg = UPMON_SB_INIT;
	struct send_state st;
	struct tunnel tun;
	smtp_session_t session = NULL;
	smtp_message_t m;
	smtp_recipient_t rcpts[MAILER_TO_MAX];
	auth_context_t auth = NULL;
	SSL_CTX *ctx = NULL;
	char from[MAILER_ADDR_MAX + 1], server[300];
	int rc = 0, fd, started, timeout, tunneled = 0;
	size_t i;

	mailer_outcome_init(out);
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	memset(&tun, 0, sizeof(tun));
	tun.lfd = tun.sfd = -1;
	timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;

	if ((rc = mailer_render_email(ev, links, &r)) != 0) {
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "render: out of memory");
		return rc;
	}
	if (check_headers(cfg, ch, &r, delivery_id, from, sizeof(from), out) != 0)
		goto done;
	build_message(&msg, cfg, ch, ev, &r, delivery_id);
	if (msg.err != 0) {
		rc = msg.err;
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: out of memory");
		goto done;
	}

	if (cfg->tls != MAILER_SMTP_TLS_NONE && (ctx = tls_ctx(cfg)) == NULL) {
		mailer_outcome_set(out, MAILER_PERMFAIL, 0, "smtp: tls setup failed (ca file %s)",
		    cfg->ca_file ? cfg->ca_file : "system");
		goto done;
	}
	if (cfg->tls == MAILER_SMTP_TLS_IMPLICIT) {
		if (tunnel_open(&tun, cfg, ctx, out) != 0)
			goto done;
		tunneled = 1;
		snprintf(server, sizeof(server), "127.0.0.1:%d", tun.port);
	} else {
		/* libesmtp's connect has no timeout: make sure the server answers first */
		if (connect_timeout(cfg->host, cfg->port, timeout, &fd, out) != 0)
			goto done;
		close(fd);
		snprintf(server, sizeof(server), "%s:%d", cfg->host, cfg->port);
	}

	if ((session = smtp_create_session()) == NULL ||
	    (m = smtp_add_message(session)) == NULL) {
		rc = -ENOMEM;
		mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: out of memory");
		goto done;
	}
	smtp_set_server(session, server);
	if (cfg->helo != NULL && cfg->helo[0] != '\0')
		smtp_set_hostname(session, cfg->helo);
	smtp_set_timeout(session, Timeout_GREETING | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout);
	smtp_set_timeout(session, Timeout_ENVELOPE | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout);
	smtp_set_timeout(session, Timeout_DATA | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout);
	smtp_set_timeout(session, Timeout_TRANSFER | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout);
	smtp_set_timeout(session, Timeout_DATA2 | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout);
	smtp_set_eventcb(session, on_event, &st);
	smtp_set_monitorcb(session, on_monitor, &st, 0);
	if (cfg->tls == MAILER_SMTP_TLS_STARTTLS) {
		smtp_starttls_set_ctx(session, ctx);
		smtp_starttls_enable(session, Starttls_REQUIRED);
	} else
		smtp_starttls_enable(session, Starttls_DISABLED);
	if (cfg->user != NULL && cfg->user[0] != '\0') {
		pthread_once(&auth_once, auth_init_once);
		if ((auth = auth_create_context()) == NULL) {
			rc = -ENOMEM;
			mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: out of memory");
			goto done;
		}
		auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(auth, on_auth_interact, (void *)cfg);
		smtp_auth_set_context(session, auth);
	}
	smtp_set_reverse_path(m, from);
	smtp_set_message_str(m, msg.s);
	for (i = 0; i < ch->nto; i++)
		if ((rcpts[i] = smtp_add_recipient(m, ch->to[i])) == NULL) {
			rc = -ENOMEM;
			mailer_outcome_set(out, MAILER_TEMPFAIL, 0, "smtp: out of memory");
			goto done;
		}

	started = smtp_start_session(session);
	classify(&st, session, m, rcpts, ch, started, out);
	if (out->result == MAILER_SENT && cfg->user != NULL && cfg->user[0] != '\0' &&
	    st.auth_code == 0)
		log_warnx("smtp: sent without authentication: the server offered no usable "
		    "mechanism");
done:
	for (i = 0; out->error[i] != '\0'; i++)	/* server text: one line */
		if ((unsigned char)out->error[i] < 0x20 || out->error[i] == 0x7f)
			out->error[i] = ' ';
	while (i > 0 && out->error[i - 1] == ' ')
		out->error[--i] = '\0';
	if (session != NULL)
		smtp_destroy_session(session);
	if (auth != NULL)
		auth_destroy_context(auth);
	if (tunneled || tun.sfd >= 0 || tun.lfd >= 0)
		tunnel_close(&tun);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	upmon_sb_release(&msg);
	mailer_rendered_release(&r);
	return rc;
}
