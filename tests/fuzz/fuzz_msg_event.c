/*
 * libFuzzer target: the status-event, alert-event and latest-status decoders, all three on
 * every input. Whatever decodes must re-encode, decode again and re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same(char *e1, size_t l1, char *e2, size_t l2)
{
	if (l1 != l2 || memcmp(e1, e2, l1) != 0)
		abort();		/* round trip not stable */
	free(e1);
	free(e2);
}

static void
status_event(const char *buf, size_t len)
{
	struct upmon_status_event a, b;
	char err[256], *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (upmon_msg_status_decode(buf, len, &a, err, sizeof(err)) != 0) {
		upmon_status_event_release(&a);
		return;
	}
	if (upmon_msg_status_encode(&a, &e1, &l1) != 0 ||
	    upmon_msg_status_decode(e1, l1, &b, err, sizeof(err)) != 0 ||
	    upmon_msg_status_encode(&b, &e2, &l2) != 0)
		abort();
	same(e1, l1, e2, l2);
	upmon_status_event_release(&a);
	upmon_status_event_release(&b);
}

static void
alert_event(const char *buf, size_t len)
{
	struct upmon_alert_event a, b;
	char err[256], *e1 = NULL, *e2 = NULL, key[64];
	size_t l1 = 0, l2 = 0;

	if (upmon_msg_alert_decode(buf, len, &a, err, sizeof(err)) != 0) {
		upmon_alert_event_release(&a);
		return;
	}
	if (upmon_msg_alert_routing_key(&a, key, sizeof(key)) != 0)
		abort();
	if (upmon_msg_alert_encode(&a, &e1, &l1) != 0 ||
	    upmon_msg_alert_decode(e1, l1, &b, err, sizeof(err)) != 0 ||
	    upmon_msg_alert_encode(&b, &e2, &l2) != 0)
		abort();
	same(e1, l1, e2, l2);
	upmon_alert_event_release(&a);
	upmon_alert_event_release(&b);
}

static void
latest_status(const char *buf, size_t len)
{
	struct upmon_latest_status a, b;
	char err[256], *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (upmon_msg_latest_decode(buf, len, &a, err, sizeof(err)) != 0) {
		upmon_latest_status_release(&a);
		return;
	}
	if (upmon_msg_latest_encode(&a, &e1, &l1) != 0 ||
	    upmon_msg_latest_decode(e1, l1, &b, err, sizeof(err)) != 0 ||
	    upmon_msg_latest_encode(&b, &e2, &l2) != 0)
		abort();
	same(e1, l1, e2, l2);
	upmon_latest_status_release(&a);
	upmon_latest_status_release(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	status_event((const char *)data, size);
	alert_event((const char *)data, size);
	latest_status((const char *)data, size);
	return 0;
}
