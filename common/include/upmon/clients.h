/*
 * The client configurations every service builds from the shared settings (config.h,
 * struct upmon_common_settings): one place that maps UPMON_AMQP_*, UPMON_RETRY_*,
 * UPMON_PG_*, UPMON_REDIS_* and UPMON_RECONNECT_MAX_MS onto the amqp, db and cache modules,
 * so every process on a vhost declares the same queues and backs off the same way.
 *
 * The filled structs point into s (URLs) and into the name arguments: keep them alive until
 * upmon_amqp_new / upmon_db_new / upmon_cache_new has copied what it needs.
 */
#ifndef UPMON_CLIENTS_H
#define UPMON_CLIENTS_H

#include "upmon/amqp.h"
#include "upmon/cache.h"
#include "upmon/config.h"
#include "upmon/db.h"

/* Defaults, then url, heartbeat, queue type, the task retry levels/base/max (the
 * notification retry queues keep their defaults), reconnect cap, body cap
 * (UPMON_MAX_MESSAGE_BYTES) and the connection name service. */
void upmon_amqp_config_from(struct upmon_amqp_config *cfg,
    const struct upmon_common_settings *s, const char *service);
/* Defaults, then url, connect and statement timeouts, reconnect cap and application_name. */
void upmon_db_config_from(struct upmon_db_config *cfg, const struct upmon_common_settings *s,
    const char *application_name);
/* Defaults, then url, UPMON_REDIS_TIMEOUT_MS as both connect and command timeout, and the
 * "down" backoff capped by the reconnect cap and by 2 s (a Redis that is back is used again
 * within seconds). */
void upmon_cache_config_from(struct upmon_cache_config *cfg,
    const struct upmon_common_settings *s);

#endif
