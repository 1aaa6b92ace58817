/*
 * The messaging topology of architecture.md as data (upmon_amqp_topology_queues) and its
 * idempotent declaration. Arguments depend only on the configuration, never on time or host,
 * so every process with the same configuration declares exactly the same queues (RabbitMQ
 * refuses a redeclaration with other arguments: PRECONDITION_FAILED, see docs/amqp.md).
 */
#include "amqp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/log.h"

/* A work queue with per-attempt retry queues and a dead-letter queue. Retry queues
 * dead-letter (on TTL expiry) to ret_exchange with key ret_key, i.e. back to the queue. */
struct family {
	const char *queue;
	const char *src_exchange;      /* where producers publish */
	const char *src_key;
	const char *ret_exchange;
	const char *ret_key;
};

/* monitor_tasks returns through upmon.tasks as architecture.md says. notifications cannot
 * return through upmon.events: that topic exchange would copy the message to every other
 * alert.# queue, so it returns through upmon.retry where it is bound by its own name. */
static const struct family families[] = {
	{ UPMON_AMQP_Q_TASKS, UPMON_AMQP_EX_TASKS, UPMON_AMQP_KEY_TASKS,
	  UPMON_AMQP_EX_TASKS, UPMON_AMQP_KEY_TASKS },
	{ UPMON_AMQP_Q_NOTIFY, UPMON_AMQP_EX_EVENTS, UPMON_AMQP_KEY_ALERTS,
	  UPMON_AMQP_EX_RETRY, UPMON_AMQP_Q_NOTIFY },
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

static const struct {
	const char *name;
	const char *type;
} exchanges[] = {
	{ UPMON_AMQP_EX_TASKS, "direct" },
	{ UPMON_AMQP_EX_EVENTS, "topic" },
	{ UPMON_AMQP_EX_RETRY, "direct" },
};

int64_t
upmon_amqp_retry_ttl_ms(int base_ms, int max_ms, int n)
{
	int64_t ttl = base_ms;
	int i;

	if (base_ms <= 0 || max_ms < base_ms || n < 1)
		return 0;
	for (i = 1; i < n && ttl < max_ms; i++)
		ttl *= 2;
	return ttl < max_ms ? ttl : max_ms;
}


int
upmon_amqp_retry_queue_name(const char *queue, int n, char *buf, size_t size)
{
	int len;

	if (queue == NULL || *queue == '\0' || n < 1 || size == 0)
		return UPMON_AMQP_EINVAL;
	len = snprintf(buf, size, "%s.retry.%d", queue, n);
	if (len < 0 || (size_t)len >= size || len >= UPMON_AMQP_NAME_MAX)
		return UPMON_AMQP_ETOOBIG;
	return 0;
}

int
upmon_amqp_dead_queue_name(const char *queue, char *buf, size_t size)
{
	int len;

	if (queue == NULL || *queue == '\0' || size == 0)
		return UPMON_AMQP_EINVAL;
	len = snprintf(buf, size, "%s_dead", queue);
	if (len < 0 || (size_t)len >= size || len >= UPMON_AMQP_NAME_MAX)
		return UPMON_AMQP_ETOOBIG;
	return 0;
}

static void
family_levels(const struct upmon_amqp_config *cfg, size_t f, int *levels, int *base, int *max)
{
	if (f == 0) {
		*levels = cfg->retry_levels;
		*base = cfg->retry_base_ms;
		*max = cfg->retry_max_ms;
	} else {
		*levels = cfg->notify_retry_levels;
		*base = cfg->notify_retry_base_ms;
		*max = cfg->notify_retry_max_ms;
	}
}

/* Returns 0 and the number of retry levels when queue is a work queue of the topology. */
int
amqp_queue_family(const struct upmon_amqp_config *cfg, const char *queue, int *levels)
{
	int base, max;
	size_t f;

	for (f = 0; f < NFAMILIES; f++) {
		if (strcmp(families[f].queue, queue) == 0) {
			family_levels(cfg, f, levels, &base, &max);
			return 0;
		}
	}
	return UPMON_AMQP_EINVAL;
}

int
upmon_amqp_config_check(const struct upmon_amqp_config *cfg, char *err, size_t size)
{
	const char *bad = NULL;

	if (cfg->url == NULL || strncmp(cfg->url, "amqp://", 7) != 0)
		bad = "amqp url must start with amqp://";
	else if (cfg->heartbeat_s < 0 || cfg->heartbeat_s > 3600)
		bad = "amqp heartbeat must be 0..3600 s";
	else if (cfg->connect_timeout_ms < 100 || cfg->rpc_timeout_ms < 100)
		bad = "amqp connect/rpc timeouts must be at least 100 ms";
	else if (cfg->queue_type == NULL || (strcmp(cfg->queue_type, "quorum") != 0 &&
	    strcmp(cfg->queue_type, "classic") != 0))
		bad = "amqp queue type must be quorum or classic";
	else if (cfg->retry_levels < 1 || cfg->retry_levels > UPMON_AMQP_LEVELS_MAX ||
	    cfg->notify_retry_levels < 1 || cfg->notify_retry_levels > UPMON_AMQP_LEVELS_MAX)
		bad = "amqp retry levels must be 1..20";
	else if (cfg->retry_base_ms < 1 || cfg->retry_max_ms < cfg->retry_base_ms ||
	    cfg->notify_retry_base_ms < 1 || cfg->notify_retry_max_ms < cfg->notify_retry_base_ms)
		bad = "amqp retry ttl: need 1 <= base <= max";
	else if (cfg->reconnect_base_ms < 1 || cfg->reconnect_max_ms < cfg->reconnect_base_ms)
		bad = "amqp reconnect delay: need 1 <= base <= max";
	else if (cfg->max_body < 1 || cfg->max_body > (size_t)512 << 20)
		bad = "amqp max body must be 1 byte..512 MiB";
	else if (cfg->max_unconfirmed < 1 || cfg->max_unconfirmed > 1000000)
		bad = "amqp max unconfirmed must be 1..1000000";
	if (bad == NULL)
		return 0;
	if (err != NULL && size > 0)
		snprintf(err, size, "%s", bad);
	return UPMON_AMQP_EINVAL;
}

static int
spec_add(struct upmon_amqp_queue_spec *out, size_t max, size_t *n,
    struct upmon_amqp_queue_spec **spec)
{
	if (*n >= max)
		return UPMON_AMQP_ETOOBIG;
	*spec = &out[(*n)++];
	memset(*spec, 0, sizeof(**spec));
	return 0;
}

static int
spec_family(const struct family *fam, int levels, int base, int max,
    struct upmon_amqp_queue_spec *out, size_t cap, size_t *n)
{
	struct upmon_amqp_queue_spec *s;
	char dead[UPMON_AMQP_NAME_MAX];
	int i, rc;

	if ((rc = upmon_amqp_dead_queue_name(fam->queue, dead, sizeof(dead))) != 0)
		return rc;
	/* The work queue: rejects (nack without requeue, oversized bodies) go to _dead. */
	if ((rc = spec_add(out, cap, n, &s)) != 0)
		return rc;
	snprintf(s->name, sizeof(s->name), "%s", fam->queue);
	s->dlx = UPMON_AMQP_EX_RETRY;
	snprintf(s->dlrk, sizeof(s->dlrk), "%s", dead);
	s->bind_exchange[0] = fam->src_exchange;
	snprintf(s->bind_key[0], sizeof(s->bind_key[0]), "%s", fam->src_key);
	if (strcmp(fam->ret_exchange, fam->src_exchange) != 0) {
		s->bind_exchange[1] = fam->ret_exchange;
		snprintf(s->bind_key[1], sizeof(s->bind_key[1]), "%s", fam->ret_key);
	}
	for (i = 1; i <= levels; i++) {
		if ((rc = spec_add(out, cap, n, &s)) != 0)
			return rc;
		if ((rc = upmon_amqp_retry_queue_name(fam->queue, i, s->name,
		    sizeof(s->name))) != 0)
			return rc;
		s->ttl_ms = upmon_amqp_retry_ttl_ms(base, max, i);
		s->dlx = fam->ret_exchange;
		snprintf(s->dlrk, sizeof(s->dlrk), "%s", fam->ret_key);
		s->bind_exchange[0] = UPMON_AMQP_EX_RETRY;
		snprintf(s->bind_key[0], sizeof(s->bind_key[0]), "%s", s->name);
	}
	if ((rc = spec_add(out, cap, n, &s)) != 0)
		return rc;
	snprintf(s->name, sizeof(s->name), "%s", dead);
	s->bind_exchange[0] = UPMON_AMQP_EX_RETRY;
	snprintf(s->bind_key[0], sizeof(s->bind_key[0]), "%s", dead);
	return 0;
}

int
upmon_amqp_topology_queues(const struct upmon_amqp_config *cfg,
    struct upmon_amqp_queue_spec *out, size_t max, size_t *n)
{
	int levels, base, maxttl, rc;
	size_t f;

	*n = 0;
	if (upmon_amqp_config_check(cfg, NULL, 0) != 0)
		return UPMON_AMQP_EINVAL;
	for (f = 0; f < NFAMILIES; f++) {
		family_levels(cfg, f, &levels, &base, &maxttl);
		rc = spec_family(&families[f], levels, base, maxttl, out, max, n);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
declare_queue(struct upmon_amqp *c, const struct upmon_amqp_queue_spec *s)
{
	amqp_table_entry_t e[4];
	amqp_table_t args;
	char fields[UPMON_AMQP_NAME_MAX + 16];
	int i = 0, b, rc;

	e[i].key = amqp_cstring_bytes("x-queue-type");
	e[i].value.kind = AMQP_FIELD_KIND_UTF8;
	e[i++].value.value.bytes = amqp_cstring_bytes(c->queue_type);
	if (s->ttl_ms > 0) {
		e[i].key = amqp_cstring_bytes("x-message-ttl");
		e[i].value.kind = AMQP_FIELD_KIND_I64;
		e[i++].value.value.i64 = s->ttl_ms;
	}
	if (s->dlx != NULL) {
		e[i].key = amqp_cstring_bytes("x-dead-letter-exchange");
		e[i].value.kind = AMQP_FIELD_KIND_UTF8;
		e[i++].value.value.bytes = amqp_cstring_bytes(s->dlx);
		e[i].key = amqp_cstring_bytes("x-dead-letter-routing-key");
		e[i].value.kind = AMQP_FIELD_KIND_UTF8;
		e[i++].value.value.bytes = amqp_cstring_bytes(s->dlrk);
	}
	args.num_entries = i;
	args.entries = e;
	amqp_queue_declare(c->conn, AMQP_PUB_CHANNEL, amqp_cstring_bytes(s->name), 0, 1, 0, 0,
	    args);
	snprintf(fields, sizeof(fields), "queue=%s", s->name);
	if ((rc = amqp_rpc_check(c, AMQP_PUB_CHANNEL, fields)) != 0)
		return rc;
	for (b = 0; b < 2 && s->bind_exchange[b] != NULL; b++) {
		amqp_queue_bind(c->conn, AMQP_PUB_CHANNEL, amqp_cstring_bytes(s->name),
		    amqp_cstring_bytes(s->bind_exchange[b]), amqp_cstring_bytes(s->bind_key[b]),
		    amqp_empty_table);
		if ((rc = amqp_rpc_check(c, AMQP_PUB_CHANNEL, fields)) != 0)
			return rc;
	}
	return 0;
}

/* Declares exchanges, queues and bindings on the publish channel of a live connection. On an
 * error the connection has been torn down (amqp_rpc_check). */
int
amqp_declare_all(struct upmon_amqp *c)
{
	struct upmon_amqp_queue_spec *specs;
	size_t i, n;
	int rc;

	for (i = 0; i < sizeof(exchanges) / sizeof(exchanges[0]); i++) {
		amqp_exchange_declare(c->conn, AMQP_PUB_CHANNEL,
		    amqp_cstring_bytes(exchanges[i].name), amqp_cstring_bytes(exchanges[i].type),
		    0, 1, 0, 0, amqp_empty_table);
		if ((rc = amqp_rpc_check(c, AMQP_PUB_CHANNEL, "exchange.declare")) != 0)
			return rc;
	}
	specs = calloc(UPMON_AMQP_QUEUES_MAX, sizeof(*specs));
	if (specs == NULL)
		return UPMON_AMQP_ENOMEM;
	rc = upmon_amqp_topology_queues(&c->cfg, specs, UPMON_AMQP_QUEUES_MAX, &n);
	for (i = 0; rc == 0 && i < n; i++)
		rc = declare_queue(c, &specs[i]);
	if (rc == 0)
		log_debug("amqp topology declared: %zu queues", n);
	free(specs);
	return rc;
}
