/*
 * Events on upmon.events: status changes (status.<owner_id>.<monitor_id>) and alerts
 * (alert.<kind>). Same machinery and rules as tasks (msg.c); proto/status_event.schema.json
 * and proto/alert_event.schema.json are the same contract.
 */
#include "upmon/msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"

_Static_assert(sizeof(enum upmon_monitor_status) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum upmon_alert_kind) == sizeof(int), "enums are stored as int");

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *const msg_status_names[] = { "pending", "up", "down", "paused", NULL };
static const char *const kind_names[] = {
	"down", "recovery", "system_error", "tls_expiry", "test", NULL,
};

#define S(f) offsetof(struct upmon_status_event, f)
static const struct mf status_fields[] = {
	{ "monitor_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, S(monitor_id), 0, NULL },
	{ "owner_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, S(owner_id), 0, NULL },
	{ "status", MF_ENUM, MF_REQ, 0, 0, 0, S(status), 0, msg_status_names },
	{ "previous", MF_ENUM, MF_REQ, 0, 0, 0, S(previous), 0, msg_status_names },
	{ "at", MF_I64, MF_REQ, MSG_TIME_MIN, MSG_TIME_MAX, 0, S(at), 0, NULL },
	{ "task_id", MF_TASKID, 0, 1, UPMON_TASK_ID_MAX, 0, S(task_id), 0, NULL },
};

#define R(f) offsetof(struct upmon_result_summary, f)
const struct mf msg_result_fields[] = {
	{ "ok", MF_BOOL, MF_REQ, 0, 0, 0, R(ok), 0, NULL },
	{ "latency_ms", MF_INT, MF_REQ, 0, 3600000, 0, R(latency_ms), 0, NULL },
	{ "status_code", MF_INT, MF_OMIT, 100, 599, 0, R(status_code), 0, NULL },
	{ "error", MF_STR, 0, 1, UPMON_ERROR_MAX, 0, R(error), TX_ANY, NULL },
};
const size_t msg_result_nfields = N(msg_result_fields);

#define A(f) offsetof(struct upmon_alert_event, f)
static const struct mf alert_fields[] = {
	{ "alert_id", MF_KEY, MF_REQ, 1, UPMON_ALERT_ID_MAX, 0, A(alert_id), 0, NULL },
	{ "kind", MF_ENUM, MF_REQ, 0, 0, 0, A(kind), 0, kind_names },
	/* monitor_id is required except for kind test (alert_rules) */
	{ "monitor_id", MF_ID, 0, 1, UPMON_ID_MAX, 0, A(monitor_id), 0, NULL },
	{ "owner_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, A(owner_id), 0, NULL },
	{ "channel_id", MF_ID, 0, 1, UPMON_ID_MAX, 0, A(channel_id), 0, NULL },
	{ "monitor_name", MF_STR, 0, 1, UPMON_NAME_MAX, 0, A(monitor_name), TX_ANY, NULL },
	{ "target", MF_STR, 0, 1, UPMON_TARGET_MAX, 0, A(target), TX_NOCTL, NULL },
	{ "at", MF_I64, MF_REQ, MSG_TIME_MIN, MSG_TIME_MAX, 0, A(at), 0, NULL },
	{ "error", MF_STR, 0, 1, UPMON_ERROR_MAX, 0, A(error), TX_ANY, NULL },
};
/* down: a reminder says so, and for how long the monitor has been down (alert_rules) */
static const struct mf alert_down[] = {
	{ "reminder", MF_BOOL, MF_OMIT, 0, 0, 0, A(reminder), 0, NULL },
	{ "outage_seconds", MF_I64, MF_OMIT, 0, 315360000, 0, A(outage_seconds), 0, NULL },
};
static const struct mf alert_recovery[] = {
	{ "outage_seconds", MF_I64, MF_REQ, 0, 315360000, 0, A(outage_seconds), 0, NULL },
};
static const struct mf alert_system_error[] = {
	{ "task_id", MF_TASKID, MF_REQ, 1, UPMON_TASK_ID_MAX, 0, A(task_id), 0, NULL },
	{ "attempts", MF_INT, MF_REQ, 1, 100, 0, A(attempts), 0, NULL },
};
static const struct mf alert_tls_expiry[] = {
	{ "cert_days_left", MF_INT, MF_REQ, -36500, 36500, 0, A(cert_days_left), 0, NULL },
};

/* The fields only one kind carries, indexed by enum upmon_alert_kind. */
static const struct {
	const struct mf *f;
	size_t n;
} kind_fields[] = {
	{ alert_down, N(alert_down) },
	{ alert_recovery, N(alert_recovery) },
	{ alert_system_error, N(alert_system_error) },
	{ alert_tls_expiry, N(alert_tls_expiry) },
	{ NULL, 0 },	/* test */
};

const char *
upmon_monitor_status_name(enum upmon_monitor_status s)
{
	return (unsigned)s < N(msg_status_names) - 1 ? msg_status_names[s] : NULL;
}

const char *
upmon_alert_kind_name(enum upmon_alert_kind k)
{
	return (unsigned)k < N(kind_names) - 1 ? kind_names[k] : NULL;
}

/* Index of name in a NULL-terminated name table, or -EINVAL. */
static int
name_index(const char *const *names, const char *name)
{
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -EINVAL;
}

int
upmon_monitor_status_parse(const char *name, enum upmon_monitor_status *out)
{
	int i = name_index(msg_status_names, name);

	if (i < 0)
		return i;
	*out = (enum upmon_monitor_status)i;
	return 0;
}

int
upmon_alert_kind_parse(const char *name, enum upmon_alert_kind *out)
{
	int i = name_index(kind_names, name);

	if (i < 0)
		return i;
	*out = (enum upmon_alert_kind)i;
	return 0;
}

/* ---- status events -------------------------------------------------------------------- */

void
upmon_status_event_init(struct upmon_status_event *ev)
{
	memset(ev, 0, sizeof(*ev));
}

void
upmon_status_event_release(struct upmon_status_event *ev)
{
	mf_release(msg_result_fields, msg_result_nfields, &ev->result);
	upmon_status_event_init(ev);
}

int
upmon_status_event_validate(const struct upmon_status_event *ev, char *err, size_t errlen)
{
	struct mctx c = { "status", "", err, errlen };
	int rc;

	if ((rc = mf_validate(&c, status_fields, N(status_fields), ev)) < 0)
		return rc;
	if (ev->status == ev->previous)
		return mfail(&c, "status", "equals \"previous\" (an event is a change)");
	if (!ev->has_result)
		return 0;
	snprintf(c.prefix, sizeof(c.prefix), "result.");
	return mf_validate(&c, msg_result_fields, msg_result_nfields, &ev->result);
}

static const char *
status_key_ok(const char *key, const void *arg)
{
	(void)arg;
	if (strcmp(key, "v") == 0 || strcmp(key, "result") == 0 ||
	    mf_has(status_fields, N(status_fields), key))
		return NULL;
	return "unknown field";
}

const char *
msg_result_key_ok(const char *key, const void *arg)
{
	(void)arg;
	return mf_has(msg_result_fields, msg_result_nfields, key) ? NULL : "unknown field";
}

int
upmon_msg_status_decode(const char *buf, size_t len, struct upmon_status_event *out,
    char *err, size_t errlen)
{
	struct mctx c = { "status", "", err, errlen };
	json_object *root = NULL, *res;
	int rc;

	upmon_status_event_init(out);
	if ((rc = msg_parse("status", buf, len, &root, err, errlen)) < 0)
		return rc;
	if ((rc = mf_check_keys(&c, root, status_key_ok, NULL)) < 0 ||
	    (rc = mf_decode(&c, root, status_fields, N(status_fields), out)) < 0)
		goto fail;
	if (json_object_object_get_ex(root, "result", &res)) {
		if (!json_object_is_type(res, json_type_object)) {
			rc = mfail(&c, "result", "expected object, got %s", mf_json_type(res));
			goto fail;
		}
		out->has_result = true;
		snprintf(c.prefix, sizeof(c.prefix), "result.");
		if ((rc = mf_check_keys(&c, res, msg_result_key_ok, NULL)) < 0 ||
		    (rc = mf_decode(&c, res, msg_result_fields, msg_result_nfields, &out->result)) < 0)
			goto fail;
	}
	if ((rc = upmon_status_event_validate(out, err, errlen)) < 0)
		goto fail;
	json_object_put(root);
	return 0;
fail:
	json_object_put(root);
	upmon_status_event_release(out);
	return rc;
}

int
upmon_msg_status_encode(const struct upmon_status_event *ev, char **out, size_t *len)
{
	json_object *root = NULL, *res;
	char err[8];
	int rc;

	*out = NULL;
	if (upmon_status_event_validate(ev, err, sizeof(err)) < 0)
		return -EINVAL;
	if ((root = msg_new_root()) == NULL)
		return -ENOMEM;
	if ((rc = mf_encode(root, status_fields, N(status_fields), ev)) < 0)
		goto out;
	if (ev->has_result) {
		rc = -ENOMEM;
		if ((res = json_object_new_object()) == NULL)
			goto out;
		if (json_object_object_add(root, "result", res) != 0) {
			json_object_put(res);
			goto out;
		}
		if ((rc = mf_encode(res, msg_result_fields, msg_result_nfields, &ev->result)) < 0)
			goto out;
	}
	rc = msg_serialize(root, out, len);
out:
	json_object_put(root);
	return rc;
}

int
upmon_msg_status_routing_key(const struct upmon_status_event *ev, char *buf, size_t size)
{
	int n = snprintf(buf, size, "status.%s.%s", ev->owner_id, ev->monitor_id);

	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

/* ---- alert events --------------------------------------------------------------------- */

void
upmon_alert_event_init(struct upmon_alert_event *ev)
{
	memset(ev, 0, sizeof(*ev));
}

void
upmon_alert_event_release(struct upmon_alert_event *ev)
{
	mf_release(alert_fields, N(alert_fields), ev);
	upmon_alert_event_init(ev);
}

/* Rules across fields: a monitor id, name and target are required except for system errors,
 * which in turn must say what went wrong, and for test notifications, which must name their
 * channel and may lack a monitor; only a down alert may be a reminder, and only a reminder
 * says for how long the monitor has been down. */
static int
alert_rules(struct mctx *c, const struct upmon_alert_event *ev)
{
	if (ev->reminder && ev->kind != UPMON_ALERT_DOWN)
		return mfail(c, "reminder", "only allowed for kind \"down\"");
	if (ev->kind == UPMON_ALERT_TEST) {
		if (ev->channel_id[0] == '\0')
			return mfail(c, "channel_id", "missing (required for kind \"test\")");
		return 0;
	}
	if (ev->monitor_id[0] == '\0')
		return mfail(c, "monitor_id", "missing");
	if (ev->kind == UPMON_ALERT_SYSTEM_ERROR) {
		if (ev->error == NULL)
			return mfail(c, "error", "missing (required for kind \"system_error\")");
		return 0;
	}
	if (ev->kind == UPMON_ALERT_DOWN && !ev->reminder && ev->outage_seconds != 0)
		return mfail(c, "outage_seconds", "not allowed for kind \"down\" without "
		    "\"reminder\": true");
	if (ev->monitor_name == NULL)
		return mfail(c, "monitor_name", "missing");
	if (ev->target == NULL)
		return mfail(c, "target", "missing");
	return 0;
}

int
upmon_alert_event_validate(const struct upmon_alert_event *ev, char *err, size_t errlen)
{
	struct mctx c = { "alert", "", err, errlen };
	int rc;

	if ((rc = mf_validate(&c, alert_fields, N(alert_fields), ev)) < 0 ||
	    (rc = mf_validate(&c, kind_fields[ev->kind].f, kind_fields[ev->kind].n, ev)) < 0)
		return rc;
	return alert_rules(&c, ev);
}

static const char *
alert_key_ok(const char *key, const void *arg)
{
	const struct upmon_alert_event *ev = arg;
	size_t k;

	if (strcmp(key, "v") == 0 || mf_has(alert_fields, N(alert_fields), key) ||
	    mf_has(kind_fields[ev->kind].f, kind_fields[ev->kind].n, key))
		return NULL;
	for (k = 0; k < N(kind_fields); k++) {
		if (mf_has(kind_fields[k].f, kind_fields[k].n, key)) {
			switch (ev->kind) {
			case UPMON_ALERT_DOWN: return "not allowed for kind \"down\"";
			case UPMON_ALERT_RECOVERY: return "not allowed for kind \"recovery\"";
			case UPMON_ALERT_SYSTEM_ERROR:
				return "not allowed for kind \"system_error\"";
			case UPMON_ALERT_TLS_EXPIRY: return "not allowed for kind \"tls_expiry\"";
			case UPMON_ALERT_TEST: return "not allowed for kind \"test\"";
			}
		}
	}
	return "unknown field";
}

/* A down alert carries outage_seconds only as a reminder (even "outage_seconds": 0). */
static int
down_rules(struct mctx *c, json_object *root, const struct upmon_alert_event *ev)
{
	if (ev->kind == UPMON_ALERT_DOWN && !ev->reminder &&
	    json_object_object_get_ex(root, "outage_seconds", NULL))
		return mfail(c, "outage_seconds", "not allowed for kind \"down\" without "
		    "\"reminder\": true");
	return 0;
}

int
upmon_msg_alert_decode(const char *buf, size_t len, struct upmon_alert_event *out,
    char *err, size_t errlen)
{
	struct mctx c = { "alert", "", err, errlen };
	json_object *root = NULL;
	int rc;

	upmon_alert_event_init(out);
	if ((rc = msg_parse("alert", buf, len, &root, err, errlen)) < 0)
		return rc;
	if ((rc = mf_decode(&c, root, alert_fields, N(alert_fields), out)) < 0 ||
	    (rc = mf_check_keys(&c, root, alert_key_ok, out)) < 0 ||
	    (rc = mf_decode(&c, root, kind_fields[out->kind].f, kind_fields[out->kind].n,
	    out)) < 0 ||
	    (rc = down_rules(&c, root, out)) < 0 ||
	    (rc = alert_rules(&c, out)) < 0)
		goto fail;
	json_object_put(root);
	return 0;
fail:
	json_object_put(root);
	upmon_alert_event_release(out);
	return rc;
}

int
upmon_msg_alert_encode(const struct upmon_alert_event *ev, char **out, size_t *len)
{
	json_object *root;
	char err[8];
	int rc;

	*out = NULL;
	if (upmon_alert_event_validate(ev, err, sizeof(err)) < 0)
		return -EINVAL;
	if ((root = msg_new_root()) == NULL)
		return -ENOMEM;
	if ((rc = mf_encode(root, alert_fields, N(alert_fields), ev)) < 0 ||
	    (rc = mf_encode(root, kind_fields[ev->kind].f, kind_fields[ev->kind].n, ev)) < 0)
		goto out;
	rc = msg_serialize(root, out, len);
out:
	json_object_put(root);
	return rc;
}

int
upmon_msg_alert_routing_key(const struct upmon_alert_event *ev, char *buf, size_t size)
{
	const char *kind = upmon_alert_kind_name(ev->kind);
	int n;

	if (kind == NULL)
		return -EINVAL;
	n = snprintf(buf, size, "alert.%s", kind);
	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}
