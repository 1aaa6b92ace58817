/*
 * The latest status of a monitor, as the probe writes it to Redis (upmon:status:<monitor_id>)
 * after its commit and the gateway reads it. Same machinery and rules as the broker messages
 * (msg.c, msg_event.c); proto/latest_status.schema.json is the same contract.
 */
#include "upmon/msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_int.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MS_MAX 3600000

#define L(f) offsetof(struct upmon_latest_status, f)
static const struct mf latest_fields[] = {
	{ "monitor_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, L(monitor_id), 0, NULL },
	{ "owner_id", MF_ID, MF_REQ, 1, UPMON_ID_MAX, 0, L(owner_id), 0, NULL },
	{ "status", MF_ENUM, MF_REQ, 0, 0, 0, L(status), 0, msg_status_names },
	{ "since", MF_I64, MF_REQ, MSG_TIME_MIN, MSG_TIME_MAX, 0, L(since), 0, NULL },
	{ "checked_at", MF_I64, MF_REQ, MSG_TIME_MIN, MSG_TIME_MAX, 0, L(checked_at), 0, NULL },
	{ "scheduled_at", MF_I64, MF_REQ, MSG_TIME_MIN, MSG_TIME_MAX, 0, L(scheduled_at), 0,
	  NULL },
	{ "attempt", MF_INT, MF_REQ, 1, 32, 0, L(attempt), 0, NULL },
};

/* Present only when has_cert. */
static const struct mf cert_fields[] = {
	{ "cert_days_left", MF_INT, MF_REQ, -36500, 36500, 0, L(cert_days_left), 0, NULL },
};

#define T(f) offsetof(struct upmon_timings, f)
static const struct mf timing_fields[] = {
	{ "dns_ms", MF_INT, MF_OMIT, 0, MS_MAX, -1, T(dns_ms), 0, NULL },
	{ "connect_ms", MF_INT, MF_OMIT, 0, MS_MAX, -1, T(connect_ms), 0, NULL },
	{ "tls_ms", MF_INT, MF_OMIT, 0, MS_MAX, -1, T(tls_ms), 0, NULL },
	{ "first_byte_ms", MF_INT, MF_OMIT, 0, MS_MAX, -1, T(first_byte_ms), 0, NULL },
	{ "total_ms", MF_INT, MF_OMIT, 0, MS_MAX, -1, T(total_ms), 0, NULL },
};

void
upmon_latest_status_init(struct upmon_latest_status *st)
{
	memset(st, 0, sizeof(*st));
	st->timings.dns_ms = -1;
	st->timings.connect_ms = -1;
	st->timings.tls_ms = -1;
	st->timings.first_byte_ms = -1;
	st->timings.total_ms = -1;
}

void
upmon_latest_status_release(struct upmon_latest_status *st)
{
	mf_release(msg_result_fields, msg_result_nfields, &st->result);
	upmon_latest_status_init(st);
}

int
upmon_latest_status_validate(const struct upmon_latest_status *st, char *err, size_t errlen)
{
	struct mctx c = { "latest", "", err, errlen };
	int rc;

	if ((rc = mf_validate(&c, latest_fields, N(latest_fields), st)) < 0)
		return rc;
	if (st->has_cert &&
	    (rc = mf_validate(&c, cert_fields, N(cert_fields), st)) < 0)
		return rc;
	snprintf(c.prefix, sizeof(c.prefix), "result.");
	if ((rc = mf_validate(&c, msg_result_fields, msg_result_nfields, &st->result)) < 0)
		return rc;
	snprintf(c.prefix, sizeof(c.prefix), "timings.");
	return mf_validate(&c, timing_fields, N(timing_fields), &st->timings);
}

static const char *
latest_key_ok(const char *key, const void *arg)
{
	(void)arg;
	if (strcmp(key, "v") == 0 || strcmp(key, "result") == 0 ||
	    strcmp(key, "timings") == 0 || strcmp(key, "cert_days_left") == 0 ||
	    mf_has(latest_fields, N(latest_fields), key))
		return NULL;
	return "unknown field";
}

static const char *
timing_key_ok(const char *key, const void *arg)
{
	(void)arg;
	return mf_has(timing_fields, N(timing_fields), key) ? NULL : "unknown field";
}

/* Decodes the required nested object name of root with its table into base. */
static int
decode_object(struct mctx *c, json_object *root, const char *name, mf_key_fn ok,
    const struct mf *f, size_t n, void *base)
{
	json_object *o;
	int rc;

	if (!json_object_object_get_ex(root, name, &o))
		return mfail(c, name, "missing");
	if (!json_object_is_type(o, json_type_object))
		return mfail(c, name, "expected object, got %s", mf_json_type(o));
	snprintf(c->prefix, sizeof(c->prefix), "%s.", name);
	if ((rc = mf_check_keys(c, o, ok, NULL)) < 0 ||
	    (rc = mf_decode(c, o, f, n, base)) < 0)
		return rc;
	c->prefix[0] = '\0';
	return 0;
}

int
upmon_msg_latest_decode(const char *buf, size_t len, struct upmon_latest_status *out,
    char *err, size_t errlen)
{
	struct mctx c = { "latest", "", err, errlen };
	json_object *root = NULL;
	int rc;

	upmon_latest_status_init(out);
	if ((rc = msg_parse("latest", buf, len, &root, err, errlen)) < 0)
		return rc;
	if ((rc = mf_check_keys(&c, root, latest_key_ok, NULL)) < 0 ||
	    (rc = mf_decode(&c, root, latest_fields, N(latest_fields), out)) < 0)
		goto fail;
	if (json_object_object_get_ex(root, "cert_days_left", NULL)) {
		out->has_cert = true;
		if ((rc = mf_decode(&c, root, cert_fields, N(cert_fields), out)) < 0)
			goto fail;
	}
	if ((rc = decode_object(&c, root, "result", msg_result_key_ok,
	    msg_result_fields, msg_result_nfields, &out->result)) < 0 ||
	    (rc = decode_object(&c, root, "timings", timing_key_ok, timing_fields,
	    N(timing_fields), &out->timings)) < 0)
		goto fail;
	if ((rc = upmon_latest_status_validate(out, err, errlen)) < 0)
		goto fail;
	json_object_put(root);
	return 0;
fail:
	json_object_put(root);
	upmon_latest_status_release(out);
	return rc;
}

/* Adds a new object under name to root and fills it from base with the table. */
static int
encode_object(json_object *root, const char *name, const struct mf *f, size_t n,
    const void *base)
{
	json_object *o;

	if ((o = json_object_new_object()) == NULL)
		return -ENOMEM;
	if (json_object_object_add(root, name, o) != 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	return mf_encode(o, f, n, base);
}

int
upmon_msg_latest_encode(const struct upmon_latest_status *st, char **out, size_t *len)
{
	json_object *root;
	char err[8];
	int rc;

	*out = NULL;
	if (upmon_latest_status_validate(st, err, sizeof(err)) < 0)
		return -EINVAL;
	if ((root = msg_new_root()) == NULL)
		return -ENOMEM;
	if ((rc = mf_encode(root, latest_fields, N(latest_fields), st)) < 0 ||
	    (st->has_cert &&
	    (rc = mf_encode(root, cert_fields, N(cert_fields), st)) < 0) ||
	    (rc = encode_object(root, "result", msg_result_fields, msg_result_nfields,
	    &st->result)) < 0 ||
	    (rc = encode_object(root, "timings", timing_fields, N(timing_fields),
	    &st->timings)) < 0)
		goto out;
	rc = msg_serialize(root, out, len);
out:
	json_object_put(root);
	return rc;
}
