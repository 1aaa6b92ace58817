/*
 * upmon-smtp-sink: a small SMTP server for the local stack and the tests. It accepts every
 * message and stores it as one file, MAILDIR/<timestamp>-<seq>.eml, written to a temporary
 * name first and then linked into place, so a reader never sees half a message. The file
 * starts with X-Upmon-Envelope-From and one X-Upmon-Envelope-To line per recipient, followed
 * by the message exactly as received (dot-unstuffed, line endings kept).
 *
 * Usage: upmon-smtp-sink [-l ADDR] -p PORT -d MAILDIR
 *
 * One thread, poll(2) over the listener and up to MAX_CLIENTS sessions. Lines are capped at
 * MAX_LINE bytes, messages at MAX_MSG bytes (answered 552). SIGTERM and SIGINT exit 0.
 * Only libc and POSIX are used.
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

#define MAX_CLIENTS 64
#define MAX_LINE 4096			/* longest accepted line, CRLF included */
#define MAX_MSG (10u * 1024 * 1024)	/* longest accepted message body */
#define MAX_RCPT 100
#define MAX_ADDR 512
#define IDLE_TIMEOUT_S 300
#define HOSTNAME "upmon-smtp-sink"

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
};

static volatile sig_atomic_t stop_requested;
static const char *maildir;
static unsigned long msg_seq;

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
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
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
}

/* Closes the session and frees the slot. */
static void client_close(struct client *c)
{
	session_reset(c);
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
		else
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
	c->rcpt[c->nrcpt] = strdup(addr);
	if (c->rcpt[c->nrcpt] == NULL)
		return reply(c, "451 4.3.0 out of memory\r\n");
	c->nrcpt++;
	return reply(c, "250 2.1.5 ok\r\n");
}

/* Handles AUTH: every credential is accepted (the sink stores mail, it guards nothing). */
static int cmd_auth(struct client *c, const char *line)
{
	const char *arg = line + 4;

	while (*arg == ' ')
		arg++;
	if (strncasecmp(arg, "PLAIN", 5) == 0) {
		if (arg[5] == ' ' && arg[6] != '\0')
			return reply(c, "235 2.7.0 authenticated\r\n");
		c->state = ST_AUTH_PLAIN;
		return reply(c, "334 \r\n");
	}
	if (strncasecmp(arg, "LOGIN", 5) == 0) {
		c->state = ST_AUTH_USER;
		return reply(c, "334 VXNlcm5hbWU6\r\n");
	}
	return reply(c, "504 5.5.4 mechanism not supported\r\n");
}

/* Handles one command line. Returns 0, or a negative value when the session must end. */
static int handle_command(struct client *c, const char *line)
{
	if (c->state == ST_AUTH_PLAIN || c->state == ST_AUTH_PASS) {
		c->state = ST_CMD;
		return reply(c, "235 2.7.0 authenticated\r\n");
	}
	if (c->state == ST_AUTH_USER) {
		c->state = ST_AUTH_PASS;
		return reply(c, "334 UGFzc3dvcmQ6\r\n");
	}
	if (is_cmd(line, "EHLO"))
		return reply(c, "250-" HOSTNAME "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			     "250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n");
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

	n = recv(c->fd, c->in + c->inlen, MAX_LINE - c->inlen, 0);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->last_active = time(NULL);
	c->inlen += (size_t)n;
	for (i = 0; i < c->inlen && rc == 0; i++) {
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
			pfd[n].fd = clients[i].fd;
			pfd[n].events = POLLIN;
			slot[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (i = 1; i < n; i++) {
			struct client *c = &clients[slot[i]];

			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
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
	fprintf(stderr, "usage: upmon-smtp-sink [-l ADDR] -p PORT -d MAILDIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	struct sigaction sa;
	struct stat st;
	int opt, port = -1, lfd, rc;

	while ((opt = getopt(argc, argv, "l:p:d:h")) != -1) {
		switch (opt) {
		case 'l': addr = optarg; break;
		case 'p': port = parse_port(optarg); break;
		case 'd': maildir = optarg; break;
		default: return usage();
		}
	}
	if (port < 0 || maildir == NULL || optind != argc)
		return usage();
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
	logmsg("listening on %s:%d, storing mail in %s", addr, port, maildir);
	rc = serve(lfd);
	close(lfd);
	if (rc != 0) {
		logmsg("poll: %s", strerror(-rc));
		return 1;
	}
	logmsg("stopped");
	return 0;
}
