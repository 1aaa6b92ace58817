/*
 * Internal to the probe's store (store.c, store_msg.c): the handle's fields and the helpers
 * that turn items into the jsonb argument of upmon_probe_apply() and its rows into outbox
 * messages and cache values.
 */
#ifndef UPMON_PROBE_STORE_INT_H
#define UPMON_PROBE_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "store.h"
#include "upmon/log.h"

struct upmon_counter;
struct upmon_histogram;

/* What the last apply learnt about one item beyond struct probe_item (for the cache). */
struct store_extra {
	int64_t since_ms;		/* last status change */
	int64_t at_ms;			/* the transaction's time */
};

struct probe_store {
	struct upmon_db *db;
	struct upmon_cache *cache;
	int retry_levels;
	char probe_host[256];
	void (*wake)(void *arg);
	void *wake_arg;
	/* the last batch, sorted; extra[k] belongs to order[k] */
	struct probe_item **order;
	struct store_extra *extra;
	size_t cap, nextra;
	/* metrics (NULL handles are no-ops) */
	struct upmon_counter *m_results[5];	/* by enum probe_item_outcome */
	struct upmon_counter *m_alert_down, *m_alert_recovery, *m_alert_syserr;
	struct upmon_counter *m_alert_tls, *m_alert_reminder;
	struct upmon_counter *m_reprobes, *m_changes, *m_errors, *m_cache_errors;
	struct upmon_histogram *m_commit;
	/* while the database is down every batch fails alike: one warning per 5 s */
	struct log_ratelimit warn_rl;
};

/* Outbox rows of one transaction, as the jsonb array the outbox INSERT takes. */
struct store_outbox {
	json_object *rows;		/* [{"e","k","m","p"}...], NULL until the first row */
	size_t count;
	const char *json;		/* owned by rows */
};

void probe_store_outbox_init(struct store_outbox *ob);
void probe_store_outbox_release(struct store_outbox *ob);
/* Serialises the rows; *param points into ob (valid until release). 0 or -ENOMEM. */
int probe_store_outbox_json(struct store_outbox *ob, const char **param);

/* 1 when s is a UUID in text form (8-4-4-4-12 hex digits). */
int probe_store_uuid_ok(const char *s);
/* Copies s into buf as valid UTF-8 without control characters (others become '?'). */
void probe_store_clean_text(char *buf, size_t size, const char *s);

/* The jsonb argument of upmon_probe_apply() for order[0..n) (*out: heap, caller frees). */
int probe_store_items_json(const struct probe_store *s, struct probe_item **order, size_t n,
    char **out);
/* Reads upmon_probe_apply()'s rows into the items and extra, and adds the outbox rows they
 * call for (re-probe tasks, status events, alert events) to ob. 0 or a negative code. */
int probe_store_read_rows(struct probe_store *s, const PGresult *res,
    struct probe_item **order, struct store_extra *extra, size_t n, struct store_outbox *ob);
/* Adds the SYSTEM_ERROR alert event of upmon_probe_system_error()'s row to ob. */
int probe_store_syserr_event(struct store_outbox *ob, const struct upmon_task *task,
    int attempts, const char *error, const PGresult *res);

#endif
