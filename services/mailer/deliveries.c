/*
 * The mailer's SQL (mailer_int.h): the channels of an alert, whether its alerts row exists,
 * claiming a deliveries row per (alert, channel) and recording the outcome. Parameterised
 * prepared statements only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "mailer_int.h"
#include "upmon/uuid.h"
#include "upmon/log.h"

#define CHANNEL_COLS \
	"c.id, c.owner_id, c.name, c.kind, c.config::text, c.secret, c.enabled"

static const struct {
	const char *name;
	const char *sql;
	int nparams;
} stmts[] = {
	{ "mailer_channel",
	  "SELECT " CHANNEL_COLS " FROM notification_channels c "
	  "WHERE c.id = $1::uuid AND c.owner_id = $2::uuid", 2 },
	{ "mailer_monitor_channels",
	  "SELECT " CHANNEL_COLS " FROM monitor_channels mc "
	  "JOIN notification_channels c ON c.id = mc.channel_id AND c.owner_id = mc.owner_id "
	  "WHERE mc.monitor_id = $1::uuid AND mc.owner_id = $2::uuid AND c.enabled "
	  "ORDER BY c.created_at, c.id", 2 },
	{ "mailer_alert_exists",
	  "SELECT 1 FROM alerts WHERE id = $1::uuid AND owner_id = $2::uuid", 2 },
	{ "mailer_lock",
	  "SELECT pg_try_advisory_lock(hashtextextended('upmon.delivery.' || $1 || '.' || $2, "
	  "0))", 2 },
	{ "mailer_unlock",
	  "SELECT pg_advisory_unlock(hashtextextended('upmon.delivery.' || $1 || '.' || $2, "
	  "0))", 2 },
	{ "mailer_claim",
	  "WITH ins AS (INSERT INTO deliveries (alert_id, channel_id, owner_id) "
	  "VALUES ($1::uuid, $2::uuid, $3::uuid) ON CONFLICT (alert_id, channel_id) DO NOTHING "
	  "RETURNING status, attempts) "
	  "SELECT status, attempts FROM ins UNION ALL "
	  "SELECT status, attempts FROM deliveries WHERE alert_id = $1::uuid "
	  "AND channel_id = $2::uuid LIMIT 1", 3 },
	{ "mailer_record",
	  "UPDATE deliveries SET status = $3, attempts = attempts + 1, "
	  "last_error = NULLIF($4, ''), "
	  "delivered_at = CASE WHEN $3 = 'delivered' THEN now() END "
	  "WHERE alert_id = $1::uuid AND channel_id = $2::uuid AND status = 'pending'", 4 },
};

int
mailer_db_prepare(struct upmon_db *db)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
		rc = upmon_db_prepare(db, stmts[i].name, stmts[i].sql, stmts[i].nparams);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Copies the JSON string v (no embedded NUL, at most max bytes) into *out. 0, -EINVAL,
 * -ENOMEM. */
static int
json_str_dup(struct json_object *v, size_t max, char **out)
{
	const char *s;
	size_t len;

	if (v == NULL || !json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len > max || memchr(s, '\0', len) != NULL)
		return -EINVAL;
	*out = strdup(s);
	return *out == NULL ? -ENOMEM : 0;
}

/* Fills ch's kind-specific fields from its config (jsonb as text). 0, -EINVAL (unusable
 * config, logged by the caller) or -ENOMEM. */
static int
channel_config(struct mailer_channel *ch, const char *config)
{
	struct json_object *root, *v, *e;
	size_t i, n;
	int rc = -EINVAL;

	root = json_tokener_parse(config);
	if (root == NULL || !json_object_is_type(root, json_type_object))
		goto out;
	if (ch->kind == MAILER_CHANNEL_EMAIL) {
		if (!json_object_object_get_ex(root, "to", &v) ||
		    !json_object_is_type(v, json_type_array))
			goto out;
		n = json_object_array_length(v);
		if (n == 0 || n > MAILER_TO_MAX)
			goto out;
		for (i = 0; i < n; i++) {
			e = json_object_array_get_idx(v, i);
			rc = json_str_dup(e, MAILER_ADDR_MAX, &ch->to[ch->nto]);
			if (rc != 0)
				goto out;
			ch->nto++;
		}
	} else {
		if (!json_object_object_get_ex(root, "url", &v))
			goto out;
		rc = json_str_dup(v, 4096, &ch->url);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* Fills ch from row r of the CHANNEL_COLS result. 0, -EINVAL or -ENOMEM. */
static int
channel_from_row(const PGresult *res, int r, struct mailer_channel *ch)
{
	const char *id = upmon_db_value(res, r, 0), *owner = upmon_db_value(res, r, 1);
	const char *name = upmon_db_value(res, r, 2), *kind = upmon_db_value(res, r, 3);
	const char *config = upmon_db_value(res, r, 4), *secret = upmon_db_value(res, r, 5);

	memset(ch, 0, sizeof(*ch));
	if (id == NULL || owner == NULL || name == NULL || kind == NULL || config == NULL)
		return -EINVAL;
	snprintf(ch->id, sizeof(ch->id), "%s", id);
	snprintf(ch->owner_id, sizeof(ch->owner_id), "%s", owner);
	if (strcmp(kind, "email") == 0)
		ch->kind = MAILER_CHANNEL_EMAIL;
	else if (strcmp(kind, "webhook") == 0)
		ch->kind = MAILER_CHANNEL_WEBHOOK;
	else
		return -EINVAL;
	ch->name = strdup(name);
	if (ch->name == NULL)
		return -ENOMEM;
	if (secret != NULL && secret[0] != '\0' && (ch->secret = strdup(secret)) == NULL)
		return -ENOMEM;
	return channel_config(ch, config);
}

int
mailer_db_channels(struct upmon_db *db, const struct upmon_alert_event *ev,
    struct mailer_channel **out, size_t *n)
{
	struct mailer_channel *chs = NULL;
	const char *params[2], *enabled;
	PGresult *res = NULL;
	size_t k = 0;
	int rc, r, rows;

	*out = NULL;
	*n = 0;
	if (ev->channel_id[0] != '\0') {
		if (!upmon_uuid_valid(ev->channel_id) || !upmon_uuid_valid(ev->owner_id))
			return 0;
		params[0] = ev->channel_id;
		params[1] = ev->owner_id;
		rc = upmon_db_query_prepared(db, UPMON_DB_IDEMPOTENT, "mailer_channel", 2, params,
		    &res, NULL);
	} else {
		if (!upmon_uuid_valid(ev->monitor_id) || !upmon_uuid_valid(ev->owner_id))
			return 0;
		params[0] = ev->monitor_id;
		params[1] = ev->owner_id;
		rc = upmon_db_query_prepared(db, UPMON_DB_IDEMPOTENT, "mailer_monitor_channels",
		    2, params, &res, NULL);
	}
	if (rc != 0)
		return rc;
	rows = PQntuples(res);
	if (rows > 0 && (chs = calloc((size_t)rows, sizeof(*chs))) == NULL) {
		rc = UPMON_DB_E_NOMEM;
		goto out;
	}
	for (r = 0; r < rows; r++) {
		enabled = upmon_db_value(res, r, 6);
		if (ev->kind != UPMON_ALERT_TEST && (enabled == NULL || strcmp(enabled, "t") != 0))
			continue;
		rc = channel_from_row(res, r, &chs[k]);
		if (rc == -ENOMEM) {
			mailer_channel_release(&chs[k]);
			rc = UPMON_DB_E_NOMEM;
			goto out;
		}
		if (rc != 0) {
			log_warnx("channel %s: unusable configuration, skipped",
			    upmon_db_value(res, r, 0));
			mailer_channel_release(&chs[k]);
			rc = 0;
			continue;
		}
		k++;
	}
	rc = 0;
out:
	PQclear(res);
	if (rc != 0 || k == 0) {
		while (k > 0)
			mailer_channel_release(&chs[--k]);
		free(chs);
		return rc;
	}
	*out = chs;
	*n = k;
	return 0;
}

int
mailer_db_alert_exists(struct upmon_db *db, const char *alert_id, const char *owner_id,
    bool *exists)
{
	const char *params[2] = { alert_id, owner_id };
	PGresult *res = NULL;
	int rc;

	*exists = false;
	if (!upmon_uuid_valid(alert_id) || !upmon_uuid_valid(owner_id))
		return 0;
	rc = upmon_db_query_prepared(db, UPMON_DB_IDEMPOTENT, "mailer_alert_exists", 2, params,
	    &res, NULL);
	if (rc != 0)
		return rc;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

int
mailer_db_claim(struct upmon_db *db, const char *alert_id, const struct mailer_channel *ch,
    enum mailer_claim *claim, int *attempts)
{
	const char *params[3] = { alert_id, ch->id, ch->owner_id };
	struct upmon_db_error err;
	const char *v;
	PGresult *res = NULL;
	int64_t n = 0;
	int rc;

	*attempts = 0;
	*claim = MAILER_CLAIM_GONE;
	rc = upmon_db_query_prepared(db, 0, "mailer_lock", 2, params, &res, NULL);
	if (rc != 0)
		return rc;
	v = upmon_db_value(res, 0, 0);
	if (v == NULL || strcmp(v, "t") != 0) {
		PQclear(res);
		*claim = MAILER_CLAIM_BUSY;
		return 0;
	}
	PQclear(res);
	res = NULL;
	/* The lock is taken first, so this statement's snapshot sees what a worker that held
	 * it before us recorded. */
	rc = upmon_db_query_prepared(db, 0, "mailer_claim", 3, params, &res, &err);
	if (rc == UPMON_DB_E_CONSTRAINT) {
		/* foreign key: the channel or the alert was deleted since */
		log_debug("claim: %s", err.message);
		rc = 0;
		goto unlock;
	}
	if (rc != 0)
		goto unlock;
	if (PQntuples(res) == 0)
		goto unlock;
	v = upmon_db_value(res, 0, 0);
	(void)upmon_db_int64(res, 0, 1, &n);
	*attempts = (int)n;
	if (v != NULL && strcmp(v, "pending") == 0) {
		*claim = MAILER_CLAIM_SEND;
		PQclear(res);
		return 0;
	}
	*claim = v != NULL && strcmp(v, "delivered") == 0 ? MAILER_CLAIM_DELIVERED :
	    MAILER_CLAIM_FAILED;
unlock:
	PQclear(res);
	mailer_db_unclaim(db, alert_id, ch->id);
	return rc;
}

void
mailer_db_unclaim(struct upmon_db *db, const char *alert_id, const char *channel_id)
{
	const char *params[2] = { alert_id, channel_id };
	PGresult *res = NULL;

	if (upmon_db_query_prepared(db, 0, "mailer_unlock", 2, params, &res, NULL) == 0)
		PQclear(res);
}

int
mailer_db_record(struct upmon_db *db, const char *alert_id, const char *channel_id,
    const struct mailer_outcome *out)
{
	const char *params[4];
	PGresult *res = NULL;
	int rc;

	params[0] = alert_id;
	params[1] = channel_id;
	switch (out->result) {
	case MAILER_SENT:
		params[2] = "delivered";
		break;
	case MAILER_PERMFAIL:
		params[2] = "failed";
		break;
	default:
		params[2] = "pending";
		break;
	}
	params[3] = out->result == MAILER_SENT ? "" : out->error;
	rc = upmon_db_query_prepared(db, UPMON_DB_IDEMPOTENT, "mailer_record", 4, params, &res,
	    NULL);
	if (rc == 0)
		PQclear(res);
	return rc;
}
