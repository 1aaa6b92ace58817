/*
 * Connection lifecycle: configuration, connect with heartbeats, set-up of channels, confirm
 * mode, topology and consumers, loss detection, reconnect with jittered exponential backoff,
 * and the frame pump that every waiting call runs (rabbitmq-c does nothing in the background).
 */
#include "amqp_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "upmon/backoff.h"
#include "upmon/log.h"

/* A connection that lived this long resets the backoff: its loss is not a flapping broker. */
#define HEALTHY_MS 30000

void
upmon_amqp_config_init(struct upmon_amqp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->service = "upmon";
	cfg->heartbeat_s = 30;
	cfg->connect_timeout_ms = 5000;
	cfg->rpc_timeout_ms = 15000;
	cfg->queue_type = "quorum";
	cfg->retry_levels = 5;
	cfg->retry_base_ms = 1000;
	cfg->retry_max_ms = 60000;
	cfg->notify_retry_levels = 5;
	cfg->notify_retry_base_ms = 5000;
	cfg->notify_retry_max_ms = 300000;
	cfg->reconnect_base_ms = 200;
	cfg->reconnect_max_ms = 30000;
	cfg->max_body = 1 << 20;
	cfg->max_unconfirmed = 10000;
	cfg->declare_topology = 1;
}



void
amqp_tv_until(int64_t deadline_ms, struct timeval *tv)
{
	int64_t left = deadline_ms - upmon_mono_ms();

	if (left < 0)
		left = 0;
	tv->tv_sec = (time_t)(left / 1000);
	tv->tv_usec = (suseconds_t)((left % 1000) * 1000);
}



/* Renders "queue=q tag=n attempt=a" (parts left out when empty / 0 / < 0). */
void
amqp_fields(char *buf, size_t size, const char *queue, uint64_t tag, int attempt)
{
	size_t off = 0;
	int n;

	buf[0] = '\0';
	if (queue != NULL && *queue != '\0') {
		n = snprintf(buf + off, size - off, "queue=%s", queue);
		off += (n > 0 && (size_t)n < size - off) ? (size_t)n : 0;
	}
	if (tag > 0) {
		n = snprintf(buf + off, size - off, "%stag=%" PRIu64, off ? " " : "", tag);
		off += (n > 0 && (size_t)n < size - off) ? (size_t)n : 0;
	}
	if (attempt >= 0)
		snprintf(buf + off, size - off, "%sattempt=%d", off ? " " : "", attempt);
}

static char *
dup_or(const char *s, const char *dflt)
{
	return strdup(s != NULL ? s : dflt);
}

/* Splits the url into owned host, user, pass and vhost. amqp_parse_url writes into its
 * argument and points the results into it, so it gets a scratch copy. */
static int
parse_url(struct upmon_amqp *c)
{
	struct amqp_connection_info info;
	char *tmp;
	int rc = UPMON_AMQP_EINVAL;

	tmp = strdup(c->url);
	if (tmp == NULL)
		return UPMON_AMQP_ENOMEM;
	if (amqp_parse_url(tmp, &info) != AMQP_STATUS_OK || info.ssl)
		goto out_tmp;
	c->host = strdup(info.host);
	c->user = strdup(info.user);
	c->pass = strdup(info.password);
	c->vhost = strdup(info.vhost);
	c->port = info.port;
	rc = (c->host && c->user && c->pass && c->vhost) ? 0 : UPMON_AMQP_ENOMEM;
out_tmp:
	free(tmp);
	return rc;
}

int
upmon_amqp_new(const struct upmon_amqp_config *cfg, struct upmon_amqp **out)
{
	struct upmon_amqp *c;
	char err[128];
	int rc;

	*out = NULL;
	if (upmon_amqp_config_check(cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return UPMON_AMQP_EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return UPMON_AMQP_ENOMEM;
	c->cfg = *cfg;
	c->url = strdup(cfg->url);
	c->service = dup_or(cfg->service, "upmon");
	c->queue_type = strdup(cfg->queue_type);
	rc = UPMON_AMQP_ENOMEM;
	if (c->url == NULL || c->service == NULL || c->queue_type == NULL)
		goto fail;
	c->cfg.url = c->url;
	c->cfg.service = c->service;
	c->cfg.queue_type = c->queue_type;
	if ((rc = parse_url(c)) != 0) {
		if (rc == UPMON_AMQP_EINVAL)
			log_error("amqp url is not a valid amqp:// url");
		goto fail;
	}
	if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0)
		snprintf(c->hostname, sizeof(c->hostname), "unknown");
	c->rnd = upmon_jitter_seed(c);
	c->tag_base = 0;
	*out = c;
	return 0;
fail:
	upmon_amqp_free(c);
	return rc;
}

void
upmon_amqp_free(struct upmon_amqp *c)
{
	if (c == NULL)
		return;
	if (c->conn != NULL)
		amqp_teardown(c, 1, "closing");
	free(c->pending);
	free(c->url);
	free(c->service);
	free(c->queue_type);
	free(c->host);
	free(c->user);
	free(c->pass);
	free(c->vhost);
	free(c);
}

/* Drops the connection. Unconfirmed publishes become LOST, buffered and half-read deliveries
 * are freed (the broker requeues them), the next attempt is scheduled with backoff. */
void
amqp_teardown(struct upmon_amqp *c, int graceful, const char *why)
{
	struct timeval tv = { 1, 0 };
	int64_t now = upmon_mono_ms();
	int delay;

	if (c->conn == NULL)
		return;
	if (c->connected) {
		c->stats.disconnects++;
		if (now - c->connected_at_ms >= HEALTHY_MS)
			c->fail_count = 0;
		if (strcmp(why, "closing") != 0)
			log_warnx("amqp connection lost: %s", why);
	}
	if (graceful) {
		amqp_set_rpc_timeout(c->conn, &tv);
		(void)amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(c->conn);
	c->conn = NULL;
	amqp_confirms_lost(c);
	c->connected = 0;
	amqp_consumers_reset(c);
	c->fail_count++;
	delay = upmon_backoff_ms(c->cfg.reconnect_base_ms, c->cfg.reconnect_max_ms,
	    (unsigned)(c->fail_count - 1), upmon_jitter_next(&c->rnd));
	c->next_attempt_ms = now + delay;
}

/* Maps a library status to our code; tears the connection down on any real error. */
int
amqp_status_error(struct upmon_amqp *c, int status, const char *what)
{
	char why[256];

	if (status == AMQP_STATUS_OK)
		return 0;
	if (status == AMQP_STATUS_TIMEOUT)
		return UPMON_AMQP_ETIMEDOUT;
	snprintf(why, sizeof(why), "%s: %s", what, amqp_error_string2(status));
	amqp_teardown(c, 0, why);
	return UPMON_AMQP_ECONN;
}

/* Checks the reply of the last RPC. A broker refusal (channel.close / connection.close) is
 * logged with its code and text and resets the connection: EPROTO. */
int
amqp_rpc_check(struct upmon_amqp *c, uint16_t channel, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);
	char why[512], text[256];
	amqp_channel_close_t *cc;
	amqp_channel_close_ok_t ok;

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		amqp_maybe_release_buffers(c->conn);
		return 0;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		if (r.library_error == AMQP_STATUS_TIMEOUT) {
			snprintf(why, sizeof(why), "%s: rpc timed out", what);
			amqp_teardown(c, 0, why);
			return UPMON_AMQP_ETIMEDOUT;
		}
		return amqp_status_error(c, r.library_error, what);
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		/* channel.close and connection.close share their layout. */
		cc = r.reply.decoded;
		amqp_copy_bytes(text, sizeof(text), cc->reply_text);
		snprintf(why, sizeof(why), "%s: broker refused: %u %s", what, cc->reply_code, text);
		/* what is either "queue=<name>" (a logfmt field) or a method name */
		if (strncmp(what, "queue=", 6) == 0)
			log_emit(UPMON_LOG_ERROR, what, "amqp broker refused: %u %s", cc->reply_code,
			    text);
		else
			log_error("amqp %s", why);
		if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			(void)amqp_send_method(c->conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
			amqp_teardown(c, 1, why);
		} else {
			amqp_teardown(c, 0, why);
		}
		return UPMON_AMQP_EPROTO;
	default:
		amqp_teardown(c, 0, "no rpc reply");
		return UPMON_AMQP_ECONN;
	}
}

static int
open_socket(struct upmon_amqp *c)
{
	struct timeval tv;
	amqp_socket_t *sock;
	int st;

	c->conn = amqp_new_connection();
	if (c->conn == NULL)
		return UPMON_AMQP_ENOMEM;
	sock = amqp_tcp_socket_new(c->conn);
	if (sock == NULL)
		return UPMON_AMQP_ENOMEM;
	tv.tv_sec = c->cfg.connect_timeout_ms / 1000;
	tv.tv_usec = (c->cfg.connect_timeout_ms % 1000) * 1000;
	st = amqp_socket_open_noblock(sock, c->host, c->port, &tv);
	if (st != AMQP_STATUS_OK) {
		log_debug("amqp connect %s:%d: %s", c->host, c->port, amqp_error_string2(st));
		return UPMON_AMQP_ECONN;
	}
	amqp_set_handshake_timeout(c->conn, &tv);
	tv.tv_sec = c->cfg.rpc_timeout_ms / 1000;
	tv.tv_usec = (c->cfg.rpc_timeout_ms % 1000) * 1000;
	amqp_set_rpc_timeout(c->conn, &tv);
	return 0;
}

static int
login(struct upmon_amqp *c)
{
	amqp_table_entry_t props[1];
	amqp_table_t table;
	amqp_rpc_reply_t r;
	char name[384];

	snprintf(name, sizeof(name), "%s@%s", c->service, c->hostname);
	props[0].key = amqp_cstring_bytes("connection_name");
	props[0].value.kind = AMQP_FIELD_KIND_UTF8;
	props[0].value.value.bytes = amqp_cstring_bytes(name);
	table.num_entries = 1;
	table.entries = props;
	r = amqp_login_with_properties(c->conn, c->vhost, 0, AMQP_FRAME_MAX,
	    c->cfg.heartbeat_s, &table, AMQP_SASL_METHOD_PLAIN, c->user, c->pass);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		log_warnx("amqp login to %s:%d vhost %s: %s", c->host, c->port, c->vhost,
		    amqp_error_string2(r.library_error));
	else
		log_warnx("amqp login to %s:%d vhost %s refused", c->host, c->port, c->vhost);
	return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION ? UPMON_AMQP_EPROTO :
	    UPMON_AMQP_ECONN;
}

/* One connection attempt: socket, login, publish channel, topology, confirm mode,
 * consumers. On failure everything is torn down again. */
static int
setup(struct upmon_amqp *c)
{
	int rc;

	c->stats.connect_attempts++;
	if ((rc = open_socket(c)) != 0 || (rc = login(c)) != 0)
		goto fail;
	/* From here on an rpc error tears the connection down in amqp_rpc_check. */
	amqp_channel_open(c->conn, AMQP_PUB_CHANNEL);
	if ((rc = amqp_rpc_check(c, AMQP_PUB_CHANNEL, "channel.open")) != 0)
		return rc;
	if (c->cfg.declare_topology && (rc = amqp_declare_all(c)) != 0)
		return rc;
	amqp_confirm_select(c->conn, AMQP_PUB_CHANNEL);
	if ((rc = amqp_rpc_check(c, AMQP_PUB_CHANNEL, "confirm.select")) != 0)
		return rc;
	c->tag_base += c->next_seq > 0 ? c->next_seq - 1 : 0;
	c->next_seq = 1;
	if ((rc = amqp_consumers_start(c)) != 0)
		return rc;
	c->connected = 1;
	c->connected_at_ms = upmon_mono_ms();
	c->generation++;
	c->stats.connects++;
	c->fail_count = 0;
	log_info("amqp connected to %s:%d vhost %s (connection %" PRIu64 ")", c->host, c->port,
	    c->vhost, c->generation);
	return 0;
fail:
	if (c->conn != NULL)
		amqp_teardown(c, 0, "connect failed");
	return rc;
}

/* Makes sure the connection is up, attempting (re)connects until deadline_ms (monotonic; a
 * deadline in the past allows one attempt when the backoff has expired). Never spins: attempts
 * are spaced by the backoff, and waiting happens in nanosleep. */
int
amqp_ensure(struct upmon_amqp *c, int64_t deadline_ms)
{
	int64_t now;
	int rc = UPMON_AMQP_ECONN;

	for (;;) {
		if (c->connected)
			return 0;
		now = upmon_mono_ms();
		if (now < c->next_attempt_ms) {
			if (deadline_ms < c->next_attempt_ms) {
				upmon_sleep_ms(deadline_ms - now);
				return rc;
			}
			upmon_sleep_ms(c->next_attempt_ms - now);
		}
		rc = setup(c);
		if (rc == 0)
			return 0;
		if (c->conn != NULL)
			amqp_teardown(c, 0, "setup failed");
		log_warnx("amqp reconnect to %s:%d failed (attempt %d, next in %" PRId64 " ms): %s",
		    c->host, c->port, c->fail_count, c->next_attempt_ms - upmon_mono_ms(),
		    upmon_amqp_strerror(rc));
		if (upmon_mono_ms() >= deadline_ms)
			return rc;
	}
}

static int
handle_conn_method(struct upmon_amqp *c, const amqp_frame_t *f)
{
	amqp_connection_close_t *cc;
	amqp_connection_close_ok_t ok;
	char why[320], text[256];

	switch (f->payload.method.id) {
	case AMQP_CONNECTION_CLOSE_METHOD:
		cc = f->payload.method.decoded;
		amqp_copy_bytes(text, sizeof(text), cc->reply_text);
		snprintf(why, sizeof(why), "broker closed the connection: %u %s", cc->reply_code,
		    text);
		(void)amqp_send_method(c->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		amqp_teardown(c, 0, why);
		return UPMON_AMQP_ECONN;
	case AMQP_CONNECTION_BLOCKED_METHOD:
		log_warnx("amqp connection blocked by the broker (resource alarm)");
		return 0;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		log_info("amqp connection unblocked");
		return 0;
	default:
		return 0;
	}
}

static int
handle_channel_close(struct upmon_amqp *c, const amqp_frame_t *f)
{
	amqp_channel_close_t *cc = f->payload.method.decoded;
	amqp_channel_close_ok_t ok;
	char why[320], text[256];

	amqp_copy_bytes(text, sizeof(text), cc->reply_text);
	snprintf(why, sizeof(why), "broker closed channel %u: %u %s", f->channel, cc->reply_code,
	    text);
	log_error("amqp %s", why);
	(void)amqp_send_method(c->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
	amqp_teardown(c, 1, why);
	return UPMON_AMQP_EPROTO;
}

static int
dispatch(struct upmon_amqp *c, const amqp_frame_t *f)
{
	struct amqp_consumer *cons;

	if (f->frame_type != AMQP_FRAME_METHOD)
		return amqp_handle_content(c, f);
	if (f->channel == 0)
		return handle_conn_method(c, f);
	if (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD)
		return handle_channel_close(c, f);
	if (f->channel == AMQP_PUB_CHANNEL)
		return amqp_handle_pub_method(c, f);
	cons = amqp_consumer_by_channel(c, f->channel);
	if (cons != NULL)
		return amqp_handle_consumer_method(c, cons, f);
	log_debug("amqp ignoring method 0x%08x on channel %u", f->payload.method.id, f->channel);
	return 0;
}

/* Reads and handles one frame, waiting until deadline_ms at most. 0 when a frame was
 * handled, ETIMEDOUT, or ECONN / EPROTO when the connection is gone (already torn down). */
int
amqp_pump(struct upmon_amqp *c, int64_t deadline_ms)
{
	amqp_frame_t f;
	struct timeval tv;
	int st, rc;

	if (!c->connected)
		return UPMON_AMQP_ECONN;
	amqp_tv_until(deadline_ms, &tv);
	st = amqp_simple_wait_frame_noblock(c->conn, &f, &tv);
	if (st != AMQP_STATUS_OK)
		return amqp_status_error(c, st, "read");
	rc = dispatch(c, &f);
	if (c->conn != NULL)
		amqp_maybe_release_buffers_on_channel(c->conn, f.channel);
	return rc;
}

/* Handles the frames that have already arrived, without waiting. A broker that closed the
 * connection (restart, heartbeat timeout) is noticed here, before an operation is attempted
 * on a dead socket. */
void
amqp_refresh(struct upmon_amqp *c)
{
	int i;

	for (i = 0; i < 64 && c->connected; i++)
		if (amqp_pump(c, 0) != 0)
			break;
}

int
upmon_amqp_connect(struct upmon_amqp *c, int timeout_ms)
{
	return amqp_ensure(c, upmon_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0));
}

int
upmon_amqp_poll(struct upmon_amqp *c, int timeout_ms)
{
	int64_t deadline = upmon_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int rc;

	if ((rc = amqp_ensure(c, deadline)) != 0)
		return rc;
	do {
		rc = amqp_pump(c, deadline);
	} while (rc == 0 && upmon_mono_ms() < deadline);
	if (rc == 0 || rc == UPMON_AMQP_ETIMEDOUT)
		return 0;
	return rc;
}

int
upmon_amqp_is_connected(const struct upmon_amqp *c)
{
	return c->connected;
}

int
upmon_amqp_socket(const struct upmon_amqp *c)
{
	if (!c->connected || c->conn == NULL)
		return -1;
	return amqp_get_sockfd(c->conn);
}

int
upmon_amqp_declare_topology(struct upmon_amqp *c)
{
	int rc;

	amqp_refresh(c);
	if ((rc = amqp_ensure(c, upmon_mono_ms() + c->cfg.connect_timeout_ms)) != 0)
		return rc;
	return amqp_declare_all(c);
}

void
upmon_amqp_get_stats(const struct upmon_amqp *c, struct upmon_amqp_stats *out)
{
	*out = c->stats;
}

const char *
upmon_amqp_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case UPMON_AMQP_EINVAL: return "invalid argument";
	case UPMON_AMQP_ENOMEM: return "out of memory";
	case UPMON_AMQP_ECONN: return "not connected to the broker";
	case UPMON_AMQP_ETIMEDOUT: return "timed out";
	case UPMON_AMQP_EPROTO: return "refused by the broker";
	case UPMON_AMQP_ENACK: return "nacked by the broker";
	case UPMON_AMQP_ERETURNED: return "unroutable, returned by the broker";
	case UPMON_AMQP_ESTALE: return "delivery from an earlier connection";
	case UPMON_AMQP_EFULL: return "too many outstanding operations";
	case UPMON_AMQP_ETOOBIG: return "too big";
	case UPMON_AMQP_ELOST: return "connection lost before the confirm";
	default: return "unknown error";
	}
}
