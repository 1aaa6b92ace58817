/*
 * Client configurations from the shared settings (clients.h).
 */
#include "upmon/clients.h"



/* The cache's "down" backoff stays short even when reconnects elsewhere back off for long:
 * a Redis that is back should be used again within seconds. */
#define CACHE_BACKOFF_CAP_MS 2000

void
upmon_amqp_config_from(struct upmon_amqp_config *cfg, const struct upmon_common_settings *s,
    const char *service)
{
	upmon_amqp_config_init(cfg);
	cfg->url = s->amqp_url;
	cfg->service = service;
	cfg->heartbeat_s = (int)s->amqp_heartbeat;
	cfg->queue_type = s->amqp_queue_type == UPMON_QUEUE_CLASSIC ? "classic" : "quorum";
	cfg->retry_levels = (int)s->retry_levels;
	cfg->retry_base_ms = (int)s->retry_base_ms;
	cfg->retry_max_ms = (int)s->retry_max_ms;
	cfg->reconnect_max_ms = (int)s->reconnect_max_ms;
	if (cfg->reconnect_base_ms > cfg->reconnect_max_ms)
		cfg->reconnect_base_ms = cfg->reconnect_max_ms;
	cfg->max_body = (size_t)s->max_message_bytes;
}

void
upmon_db_config_from(struct upmon_db_config *cfg, const struct upmon_common_settings *s,
    const char *application_name)
{
	upmon_db_config_init(cfg);
	cfg->url = s->pg_url;
	cfg->application_name = application_name;
	cfg->connect_timeout_s = (int)s->pg_connect_timeout;
	cfg->statement_timeout_ms = (int)s->pg_statement_timeout_ms;
	cfg->reconnect_max_ms = (int)s->reconnect_max_ms;
	if (cfg->reconnect_min_ms > cfg->reconnect_max_ms)
		cfg->reconnect_min_ms = cfg->reconnect_max_ms;
}

void
upmon_cache_config_from(struct upmon_cache_config *cfg, const struct upmon_common_settings *s)
{
	upmon_cache_config_init(cfg);
	cfg->url = s->redis_url;
	cfg->connect_timeout_ms = (int)s->redis_timeout_ms;
	cfg->op_timeout_ms = (int)s->redis_timeout_ms;
	cfg->backoff_max_ms = s->reconnect_max_ms < CACHE_BACKOFF_CAP_MS ?
	    (int)s->reconnect_max_ms : CACHE_BACKOFF_CAP_MS;
	if (cfg->backoff_min_ms > cfg->backoff_max_ms)
		cfg->backoff_min_ms = cfg->backoff_max_ms;
}
