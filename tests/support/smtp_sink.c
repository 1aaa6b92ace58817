/*
 * upmon-smtp-sink: a small SMTP server for the local stack and the tests. It accepts every
 * message and stores it as one file, MAILDIR/<timestamp>-<seq>.eml, written to a temporary
 * name first and then linked into place, so a reader never sees half a message. The file
 * starts with X-Upmon-Envelope-From and one X-Upmon-Envelope-To line per recipient, followed
 * by the message exactly as received (dot-unstuffed, line endings kept).
 *
 * Usage: upmon-smtp-sink [-l ADDR] -p PORT -d MAILDIR [-t CERT -k KEY [-T]] [-a USER:PASS]
 *
 *   -t CERT -k KEY  advertise STARTTLS and do it (PEM files)
 *   -T              implicit TLS: TLS from the first byte on the port (needs -t and -k)
 *   -a USER:PASS    AUTH PLAIN / LOGIN required before MAIL and checked (535 when wrong)
 *
 * After the envelope lines, stored files also carry "X-Upmon-TLS: yes" when the session was
 * encrypted and "X-Upmon-Auth: <user>" when it authenticated. Fault recipients (by local part):
 * "tempfail" gets 451 at RCPT, "permfail" 550 at RCPT, "slow<N>" (e.g. slow3000@x) is accepted
 * and its message stored, but the final 250 after DATA is sent N ms later (the file is
 * written before the delay; other sessions go on meanwhile).
 *
 * One thread, poll(2) over the listener and up to MAX_CLIENTS sessions. Lines are capped at
 * MAX_LINE bytes, messages at MAX_MSG bytes (answered 552). SIGTERM and SIGINT exit 0.
 * libc, POSIX and OpenSSL (libssl) are used.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CLIENTS 64
#define MAX_LINE 4096			/* longest accepted line, CRLF included */
#define MAX_MSG (10u * 1024 * 1024)	/* longest accepted message body */
#define MAX_RCPT 100
#define MAX_ADDR 512
#define IDLE_TIMEOUT_S 300
#define HOSTNAME "upmon-smtp-sink"
#define MAX_SLOW_MS 600000
#define MAX_CRED 256

enum state { ST_CMD, ST_DATA, ST_AUTH_PLAIN, ST_AUTH_USER, ST_AUTH_PASS };

struct client {
	int fd;				/* -1 when the slot is free */
	enum state state;
	char in[MAX_LINE + 1];		/* unparsed input */
	size_t inlen;
	int discarding;			/* dropping the rest of an over-long line */
	time_t last_active;
	char from[MAX_ADDR];
	int have_from;
	char *rcpt[MAX_RCPT];		/* owned, freed by session_reset */
	size_t nrcpt;
	char *body;			/* owned message body while in DATA */
	size_t bodylen, bodycap;
	int too_big;			/* body exceeded MAX_MSG or had an over-long line */
	SSL *ssl;			/* non-NULL once TLS started */
	int handshaking;		/* SSL_accept not finished yet */
	int implicit;			/* TLS from the first byte: greet after the handshake */
	int authed;			/* AUTH succeeded */
	char auth_user[MAX_CRED];	/* who (for X-Upmon-Auth) */
	char login_user[MAX_CRED];	/* AUTH LOGIN: the user sent first */
	long slow_ms;			/* largest slow<N> recipient of this transaction */
	const char *delayed;		/* reply to send at delayed_at (a literal), or NULL */
	long long delayed_at;		/* monotonic ms */
};

static volatile sig_atomic_t stop_requested;
static const char *maildir;
static unsigned long msg_seq;
static SSL_CTX *tls_ctx;		/* -t/-k given */
static int implicit_tls;		/* -T */
static const char *auth_cred;		/* -a USER:PASS, NULL = any credentials accepted */

/* Monotonic milliseconds. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Signal handler for SIGTERM/SIGINT: asks the main loop to stop. */
static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Prints a diagnostic line to stderr with the program prefix. */
static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "upmon-smtp-sink: %s\n", line);
}

/* Writes all of buf to fd; returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends one reply; on failure (the peer is gone or never reads) returns -errno and the caller
 * closes the session. The socket is non-blocking, replies are tiny. */
static int reply(struct client *c, const char *text)
{
	size_t len = strlen(text);
	size_t off = 0;

	while (off < len) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, text + off, (int)(len - off));

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				struct pollfd pfd = { c->fd, e == SSL_ERROR_WANT_READ ? POLLIN :
				    POLLOUT, 0 };

				if ((e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) &&
				    poll(&pfd, 1, 5000) > 0)
					continue;
				return -EIO;
			}
			off += (size_t)r;
			continue;
		}
		n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { c->fd, POLLOUT, 0 };

				if (poll(&pfd, 1, 5000) > 0)
					continue;
			}
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Frees the envelope and body of the current transaction (the session stays open). */
static void session_reset(struct client *c)
{
	size_t i;

	for (i = 0; i < c->nrcpt; i++)
		free(c->rcpt[i]);
	c->nrcpt = 0;
	c->have_from = 0;
	c->from[0] = '\0';
	free(c->body);
	c->body = NULL;
	c->bodylen = 0;
	c->bodycap = 0;
	c->too_big = 0;
	c->slow_ms = 0;
}

/* Closes the session and frees the slot. */
static void client_close(struct client *c)
{
	session_reset(c);
	if (c->ssl != NULL) {
		if (!c->handshaking)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	c->ssl = NULL;
	c->handshaking = 0;
	c->implicit = 0;
	c->authed = 0;
	c->auth_user[0] = '\0';
	c->login_user[0] = '\0';
	c->delayed = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->inlen = 0;
	c->discarding = 0;
	c->state = ST_CMD;
}

/* Copies at most cap-1 bytes of src[0..len) into dst and terminates it. */
static void copy_bounded(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Returns 1 when the line starts with the command word cmd (case-insensitive) followed by
 * the end of the line, a space or a colon. */
static int is_cmd(const char *line, const char *cmd)
{
	size_t n = strlen(cmd);

	if (strncasecmp(line, cmd, n) != 0)
		return 0;
	return line[n] == '\0' || line[n] == ' ' || line[n] == ':';
}

/* Extracts the address of "MAIL FROM:<a>" / "RCPT TO:<a>" (the part after the colon) into
 * out. Returns 0, or -EINVAL when it is malformed, too long or holds control characters. */
static int parse_path(const char *arg, char *out, size_t cap)
{
	const char *p = strchr(arg, ':');
	const char *start, *end;
	size_t len, i;

	if (p == NULL)
		return -EINVAL;
	p++;
	while (*p == ' ')
		p++;
	if (*p == '<') {
		start = p + 1;
		end = strchr(start, '>');
		if (end == NULL)
			return -EINVAL;
	} else {
		start = p;
		end = start + strcspn(start, " ");
	}
	len = (size_t)(end - start);
	if (len >= cap)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)start[i];

		if (ch < 0x21 || ch == 0x7f)
			return -EINVAL;
	}
	copy_bounded(out, cap, start, len);
	return 0;
}

/* Appends len bytes to the message body, growing it geometrically. Past MAX_MSG the body is
 * dropped and too_big is set. Returns 0 or -ENOMEM. */
static int body_append(struct client *c, const char *data, size_t len)
{
	size_t need;
	char *nb;

	if (c->too_big)
		return 0;
	if (len > MAX_MSG || c->bodylen > MAX_MSG - len) {
		c->too_big = 1;
		free(c->body);
		c->body = NULL;
		c->bodylen = c->bodycap = 0;
		return 0;
	}
	need = c->bodylen + len;
	if (need > c->bodycap) {
		size_t ncap = c->bodycap ? c->bodycap : 8192;

		while (ncap < need)
			ncap *= 2;
		nb = realloc(c->body, ncap);
		if (nb == NULL)
			return -ENOMEM;
		c->body = nb;
		c->bodycap = ncap;
	}
	memcpy(c->body + c->bodylen, data, len);
	c->bodylen += len;
	return 0;
}

/* Writes the envelope header lines and the body to fd. Returns 0 or -errno. */
static int write_message(int fd, const struct client *c)
{
	char line[MAX_ADDR + 64];
	size_t i;
	int n, rc;

	n = snprintf(line, sizeof(line), "X-Upmon-Envelope-From: <%s>\r\n", c->from);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	rc = write_all(fd, line, (size_t)n);
	for (i = 0; rc == 0 && i < c->nrcpt; i++) {
		n = snprintf(line, sizeof(line), "X-Upmon-Envelope-To: <%s>\r\n", c->rcpt[i]);
		if (n < 0 || (size_t)n >= sizeof(line))
			return -EINVAL;
		rc = write_all(fd, line, (size_t)n);
	}
	if (rc == 0 && c->ssl != NULL)
		rc = write_all(fd, "X-Upmon-TLS: yes\r\n", 18);
	if (rc == 0 && c->authed) {
		n = snprintf(line, sizeof(line), "X-Upmon-Auth: %s\r\n", c->auth_user);
		if (n < 0 || (size_t)n >= sizeof(line))
			return -EINVAL;
		rc = write_all(fd, line, (size_t)n);
	}
	if (rc == 0 && c->bodylen > 0)
		rc = write_all(fd, c->body, c->bodylen);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	return rc;
}

/* Stores the current message as MAILDIR/<timestamp>-<seq>.eml: written to a hidden
 * temporary file, then linked to its final name (link never overwrites: on a clash the
 * sequence number moves on). Returns 0 or -errno. */
static int store_message(const struct client *c)
{
	char tmp[4096], final[4096], stamp[32];
	struct timespec ts;
	struct tm tm;
	int fd, rc, n, tries;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm) == 0)
		return -EINVAL;
	n = snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%lu", maildir, (long)getpid(), msg_seq);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_message(fd, c);
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	for (tries = 0; rc == 0 && tries < 1000; tries++) {
		n = snprintf(final, sizeof(final), "%s/%s.%06ldZ-%06lu.eml", maildir, stamp,
			     ts.tv_nsec / 1000, msg_seq++);
		if (n < 0 || (size_t)n >= sizeof(final)) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (link(tmp, final) == 0) {
			logmsg("stored %s (%zu bytes, %zu recipients)", final, c->bodylen,
			       c->nrcpt);
			break;
		}
		if (errno != EEXIST)
			rc = -errno;
	}
	unlink(tmp);
	return rc;
}

/* Handles one line of the message body (without its line ending in len, with it in raw).
 * Returns 0, or a negative value when the session must be closed. */
static int handle_data_line(struct client *c, const char *raw, size_t rawlen,
			    const char *line)
{
	int rc;

	if (strcmp(line, ".") == 0) {
		c->state = ST_CMD;
		if (c->too_big)
			rc = reply(c, "552 5.3.4 message too big or line too long\r\n");
		else if (store_message(c) != 0)
			rc = reply(c, "451 4.3.0 could not store message\r\n");
		else if (c->slow_ms > 0) {
			/* stored; the answer comes later (serve() sends it) */
			c->delayed = "250 2.0.0 stored (slowly)\r\n";
			c->delayed_at = now_ms() + c->slow_ms;
			rc = 0;
		} else
			rc = reply(c, "250 2.0.0 stored\r\n");
		session_reset(c);
		return rc;
	}
	if (raw[0] == '.') {		/* dot-unstuffing */
		raw++;
		rawlen--;
	}
	return body_append(c, raw, rawlen);
}

/* Handles MAIL FROM. Returns 0 or a negative value when the session must be closed. */
static int cmd_mail(struct client *c, const char *line)
{
	if (auth_cred != NULL && !c->authed)
		return reply(c, "530 5.7.0 authentication required\r\n");
	if (c->have_from)
		return reply(c, "503 5.5.1 nested MAIL command\r\n");
	if (parse_path(line, c->from, sizeof(c->from)) != 0)
		return reply(c, "501 5.1.7 bad sender address\r\n");
	c->have_from = 1;
	return reply(c, "250 2.1.0 ok\r\n");
}

/* Handles RCPT TO. Returns 0 or a negative value when the session must be closed. */
static int cmd_rcpt(struct client *c, const char *line)
{
	char addr[MAX_ADDR];

	if (!c->have_from)
		return reply(c, "503 5.5.1 need MAIL before RCPT\r\n");
	if (c->nrcpt >= MAX_RCPT)
		return reply(c, "452 4.5.3 too many recipients\r\n");
	if (parse_path(line, addr, sizeof(addr)) != 0 || addr[0] == '\0')
		return reply(c, "501 5.1.3 bad recipient address\r\n");
	if (strncasecmp(addr, "tempfail@", 9) == 0)
		return reply(c, "451 4.2.0 tempfail recipient: try again later\r\n");
	if (strncasecmp(addr, "permfail@", 9) == 0)
		return reply(c, "550 5.1.1 permfail recipient: no such user\r\n");
	if (strncasecmp(addr, "slow", 4) == 0) {
		char *end;
		long ms = strtol(addr + 4, &end, 10);

		if (end != addr + 4 && *end == '@' && ms > 0 && ms <= MAX_SLOW_MS &&
		    ms > c->slow_ms)
			c->slow_ms = ms;
	}
	c->rcpt[c->nrcpt] = strdup(addr);
	if (c->rcpt[c->nrcpt] == NULL)
		return reply(c, "451 4.3.0 out of memory\r\n");
	c->nrcpt++;
	return reply(c, "250 2.1.5 ok\r\n");
}

/* Decodes base64 src into dst (NUL-terminated, at most cap-1 bytes). Returns the length or
 * -EINVAL. */
static int b64_decode(const char *src, char *dst, size_t cap)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	for (; *src != '\0' && *src != '='; src++) {
		const char *p = strchr(tab, *src);

		if (p == NULL || *src == '\0')
			return -EINVAL;
		acc = (acc << 6) | (unsigned)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= cap)
				return -EINVAL;
			dst[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	dst[n] = '\0';
	return (int)n;
}

/* Checks user/pass against -a (any pair when -a is not given) and answers 235 or 535. */
static int auth_finish(struct client *c, const char *user, const char *pass)
{
	size_t ulen = strlen(user);

	c->state = ST_CMD;
	if (auth_cred != NULL) {
		const char *colon = strchr(auth_cred, ':');

		if (colon == NULL || (size_t)(colon - auth_cred) != ulen ||
		    strncmp(auth_cred, user, ulen) != 0 || strcmp(colon + 1, pass) != 0) {
			logmsg("auth failed for user %s", user);
			return reply(c, "535 5.7.8 authentication credentials invalid\r\n");
		}
	}
	c->authed = 1;
	copy_bounded(c->auth_user, sizeof(c->auth_user), user, ulen);
	return reply(c, "235 2.7.0 authenticated\r\n");
}

/* AUTH PLAIN response: base64 of "authzid NUL user NUL pass". */
static int auth_plain(struct client *c, const char *b64)
{
	char buf[3 * MAX_CRED];
	int n = b64_decode(b64, buf, sizeof(buf));
	const char *user, *pass;

	c->state = ST_CMD;
	if (n < 0)
		return reply(c, "501 5.5.2 bad base64\r\n");
	user = memchr(buf, '\0', (size_t)n);
	if (user == NULL || user + 1 >= buf + n)
		return reply(c, "501 5.5.2 bad plain response\r\n");
	user++;
	pass = user + strlen(user) + 1;
	if (pass > buf + n)
		return reply(c, "501 5.5.2 bad plain response\r\n");
	return auth_finish(c, user, pass);
}

/* Handles AUTH PLAIN / LOGIN; credentials are checked only with -a. */
static int cmd_auth(struct client *c, const char *line)
{
	const char *arg = line + 4;

	while (*arg == ' ')
		arg++;
	if (c->authed)
		return reply(c, "503 5.5.1 already authenticated\r\n");
	if (strncasecmp(arg, "PLAIN", 5) == 0) {
		if (arg[5] == ' ' && arg[6] != '\0')
			return auth_plain(c, arg + 6);
		c->state = ST_AUTH_PLAIN;
		return reply(c, "334 \r\n");
	}
	if (strncasecmp(arg, "LOGIN", 5) == 0) {
		if (arg[5] == ' ' && arg[6] != '\0') {
			if (b64_decode(arg + 6, c->login_user, sizeof(c->login_user)) < 0)
				return reply(c, "501 5.5.2 bad base64\r\n");
			c->state = ST_AUTH_PASS;
			return reply(c, "334 UGFzc3dvcmQ6\r\n");
		}
		c->state = ST_AUTH_USER;
		return reply(c, "334 VXNlcm5hbWU6\r\n");
	}
	return reply(c, "504 5.5.4 mechanism not supported\r\n");
}

/* Starts the TLS handshake on c (after 220 to STARTTLS, or at once for -T). */
static int tls_begin(struct client *c)
{
	c->ssl = SSL_new(tls_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	SSL_set_accept_state(c->ssl);
	c->handshaking = 1;
	c->inlen = 0;			/* nothing sent before the handshake counts */
	return 0;
}

/* Continues the handshake. Returns 0 (done or in progress) or -EIO. */
static int tls_step(struct client *c)
{
	int r = SSL_accept(c->ssl), e;

	if (r == 1) {
		c->handshaking = 0;
		/* a new session: forget EHLO, AUTH and any envelope (RFC 3207) */
		session_reset(c);
		c->authed = 0;
		c->state = ST_CMD;
		if (c->implicit)
			return reply(c, "220 " HOSTNAME " ESMTP ready\r\n");
		return 0;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	logmsg("tls handshake failed: %s", ERR_reason_error_string(ERR_get_error()));
	return -EIO;
}

/* Handles one command line. Returns 0, or a negative value when the session must end. */
static int handle_command(struct client *c, const char *line)
{
	char pass[MAX_CRED];

	if (c->state != ST_CMD && strcmp(line, "*") == 0) {
		c->state = ST_CMD;
		return reply(c, "501 5.7.0 authentication cancelled\r\n");
	}
	if (c->state == ST_AUTH_PLAIN)
		return auth_plain(c, line);
	if (c->state == ST_AUTH_USER) {
		if (b64_decode(line, c->login_user, sizeof(c->login_user)) < 0) {
			c->state = ST_CMD;
			return reply(c, "501 5.5.2 bad base64\r\n");
		}
		c->state = ST_AUTH_PASS;
		return reply(c, "334 UGFzc3dvcmQ6\r\n");
	}
	if (c->state == ST_AUTH_PASS) {
		if (b64_decode(line, pass, sizeof(pass)) < 0) {
			c->state = ST_CMD;
			return reply(c, "501 5.5.2 bad base64\r\n");
		}
		return auth_finish(c, c->login_user, pass);
	}
	if (is_cmd(line, "EHLO"))
		return reply(c, tls_ctx != NULL && c->ssl == NULL ?
			     "250-" HOSTNAME "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			     "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n" :
			     "250-" HOSTNAME "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			     "250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n");
	if (is_cmd(line, "STARTTLS")) {
		if (tls_ctx == NULL || c->ssl != NULL)
			return reply(c, "502 5.5.1 starttls not available\r\n");
		if (reply(c, "220 2.0.0 ready to start tls\r\n") != 0)
			return -EIO;
		return tls_begin(c) != 0 ? -EIO : 1;	/* 1: stop reading this buffer */
	}
	if (is_cmd(line, "HELO"))
		return reply(c, "250 " HOSTNAME "\r\n");
	if (is_cmd(line, "MAIL"))
		return cmd_mail(c, line);
	if (is_cmd(line, "RCPT"))
		return cmd_rcpt(c, line);
	if (is_cmd(line, "DATA")) {
		if (c->nrcpt == 0)
			return reply(c, "503 5.5.1 need RCPT before DATA\r\n");
		c->state = ST_DATA;
		return reply(c, "354 end data with <CR><LF>.<CR><LF>\r\n");
	}
	if (is_cmd(line, "RSET")) {
		session_reset(c);
		return reply(c, "250 2.0.0 ok\r\n");
	}
	if (is_cmd(line, "NOOP"))
		return reply(c, "250 2.0.0 ok\r\n");
	if (is_cmd(line, "AUTH"))
		return cmd_auth(c, line);
	if (is_cmd(line, "VRFY"))
		return reply(c, "252 2.1.5 cannot verify\r\n");
	if (is_cmd(line, "QUIT")) {
		reply(c, "221 2.0.0 bye\r\n");
		return -ECONNRESET;
	}
	return reply(c, "502 5.5.2 command not implemented\r\n");
}

/* Handles one complete input line of rawlen bytes (line ending included). */
static int handle_line(struct client *c, char *raw, size_t rawlen)
{
	char line[MAX_LINE + 1];
	size_t len = rawlen;

	while (len > 0 && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
		len--;
	copy_bounded(line, sizeof(line), raw, len);
	if (c->state == ST_DATA)
		return handle_data_line(c, raw, rawlen, line);
	return handle_command(c, line);
}

/* Reads what the peer sent and handles every complete line. Returns 0, or a negative value
 * when the session is over (peer closed, error, QUIT). */
static int client_read(struct client *c)
{
	ssize_t n;
	size_t start = 0, i;
	int rc = 0;

	if (c->delayed != NULL)
		return 0;		/* answer pending: read on after it */
	if (c->ssl != NULL && c->handshaking)
		return tls_step(c);
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, c->in + c->inlen, (int)(MAX_LINE - c->inlen));

		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			return -ECONNRESET;
		}
		n = r;
	} else {
		n = recv(c->fd, c->in + c->inlen, MAX_LINE - c->inlen, 0);
		if (n < 0)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
		if (n == 0)
			return -ECONNRESET;
	}
	c->last_active = time(NULL);
	c->inlen += (size_t)n;
	for (i = 0; i < c->inlen && rc == 0 && c->delayed == NULL; i++) {
		if (c->in[i] != '\n')
			continue;
		if (c->discarding) {
			c->discarding = 0;
			if (c->state != ST_DATA)
				rc = reply(c, "500 5.5.6 line too long\r\n");
		} else {
			rc = handle_line(c, c->in + start, i + 1 - start);
		}
		start = i + 1;
	}
	if (rc == 1)
		return 0;		/* STARTTLS: the rest of the plain input is dropped */
	if (rc != 0)
		return rc;
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen == MAX_LINE) {	/* no line ending within the cap */
		c->discarding = 1;
		c->inlen = 0;
		if (c->state == ST_DATA)
			c->too_big = 1;
	}
	return 0;
}

/* Accepts one connection into a free slot and greets it; refuses it with 421 when full. */
static void accept_client(int lfd, struct client *clients)
{
	static const char busy[] = "421 4.3.2 too many connections\r\n";
	int fd, i;

	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return;
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd < 0)
			break;
	if (i == MAX_CLIENTS) {
		(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
		close(fd);
		return;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		close(fd);
		return;
	}
	clients[i].fd = fd;
	clients[i].state = ST_CMD;
	clients[i].inlen = 0;
	clients[i].discarding = 0;
	clients[i].last_active = time(NULL);
	if (implicit_tls) {
		clients[i].implicit = 1;
		if (tls_begin(&clients[i]) != 0)
			client_close(&clients[i]);
		return;
	}
	if (reply(&clients[i], "220 " HOSTNAME " ESMTP ready\r\n") != 0)
		client_close(&clients[i]);
}

/* Opens the listening socket on addr:port. Returns the fd or -errno. */
static int listen_on(const char *addr, int port)
{
	struct sockaddr_in sa;
	int fd, one = 1, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Parses a TCP port number; returns it or -EINVAL. */
static int parse_port(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
		return -EINVAL;
	return (int)v;
}

/* Runs the poll loop until a stop signal arrives. Returns 0 or -errno. */
static int serve(int lfd)
{
	static struct client clients[MAX_CLIENTS];
	struct pollfd pfd[MAX_CLIENTS + 1];
	int slot[MAX_CLIENTS + 1];
	int i, n, rc = 0;

	for (i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	while (!stop_requested) {
		time_t now = time(NULL);
		long long t = now_ms();
		int timeout = 1000;

		n = 0;
		pfd[n].fd = lfd;
		pfd[n].events = POLLIN;
		slot[n++] = -1;
		for (i = 0; i < MAX_CLIENTS; i++) {
			if (clients[i].fd < 0)
				continue;
			if (now - clients[i].last_active > IDLE_TIMEOUT_S) {
				reply(&clients[i], "421 4.4.2 idle timeout\r\n");
				client_close(&clients[i]);
				continue;
			}
			if (clients[i].delayed != NULL) {
				if (clients[i].delayed_at <= t) {
					const char *r = clients[i].delayed;

					clients[i].delayed = NULL;
					clients[i].last_active = now;
					if (reply(&clients[i], r) != 0) {
						client_close(&clients[i]);
						continue;
					}
				} else if (clients[i].delayed_at - t < timeout)
					timeout = (int)(clients[i].delayed_at - t);
			}
			if (clients[i].delayed == NULL && clients[i].ssl != NULL &&
			    !clients[i].handshaking && SSL_pending(clients[i].ssl) > 0)
				timeout = 0;
			pfd[n].fd = clients[i].fd;
			pfd[n].events = clients[i].delayed != NULL ? 0 : POLLIN;
			slot[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (i = 1; i < n; i++) {
			struct client *c = &clients[slot[i]];

			if (c->delayed != NULL) {
				if (pfd[i].revents & (POLLHUP | POLLERR))
					client_close(c);
				continue;
			}
			if ((pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) ||
			    (c->ssl != NULL && !c->handshaking && SSL_pending(c->ssl) > 0))
				if (client_read(c) != 0)
					client_close(c);
		}
		if (pfd[0].revents & POLLIN)
			accept_client(lfd, clients);
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
	return rc;
}

/* Prints the usage line and returns the exit status for a usage error. */
static int usage(void)
{
	fprintf(stderr, "usage: upmon-smtp-sink [-l ADDR] -p PORT -d MAILDIR "
		"[-t CERT -k KEY [-T]] [-a USER:PASS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *cert = NULL, *key = NULL;
	struct sigaction sa;
	struct stat st;
	int opt, port = -1, lfd, rc;

	while ((opt = getopt(argc, argv, "l:p:d:t:k:Ta:h")) != -1) {
		switch (opt) {
		case 'l': addr = optarg; break;
		case 'p': port = parse_port(optarg); break;
		case 'd': maildir = optarg; break;
		case 't': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'T': implicit_tls = 1; break;
		case 'a': auth_cred = optarg; break;
		default: return usage();
		}
	}
	if (port < 0 || maildir == NULL || optind != argc || (cert == NULL) != (key == NULL) ||
	    (implicit_tls && cert == NULL) || (auth_cred != NULL && strchr(auth_cred, ':') == NULL))
		return usage();
	if (cert != NULL) {
		tls_ctx = SSL_CTX_new(TLS_server_method());
		if (tls_ctx == NULL ||
		    SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
			logmsg("cannot load certificate %s / key %s", cert, key);
			return 1;
		}
	}
	if (mkdir(maildir, 0755) != 0 && errno != EEXIST) {
		logmsg("cannot create %s: %s", maildir, strerror(errno));
		return 1;
	}
	if (stat(maildir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		logmsg("%s is not a directory", maildir);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	lfd = listen_on(addr, port);
	if (lfd < 0) {
		logmsg("cannot listen on %s:%d: %s", addr, port, strerror(-lfd));
		return 1;
	}
	logmsg("listening on %s:%d%s%s, storing mail in %s", addr, port,
	       implicit_tls ? " (implicit tls)" : tls_ctx ? " (starttls)" : "",
	       auth_cred ? " (auth required)" : "", maildir);
	rc = serve(lfd);
	close(lfd);
	if (rc != 0) {
		logmsg("poll: %s", strerror(-rc));
		return 1;
	}
	logmsg("stopped");
	SSL_CTX_free(tls_ctx);
	return 0;
}
