/*
 * `upmonctl dlq list|replay|purge`: the dead-letter queues (monitor_tasks_dead,
 * notifications_dead) for operators.
 *
 *   list    prints one line per dead message (id, attempts, last failure, who gave up, the
 *           error) and leaves every message where it was (they are taken with manual acks
 *           and rejected with requeue, or requeued by the broker if upmonctl dies)
 *   replay  sends each message back to its work queue (the queue name without "_dead")
 *           through the default exchange, with the x-upmon-* failure headers dropped so it
 *           starts a fresh attempt count, waits for the broker's confirm, then acks the dead
 *           copy: a crash in between leaves a duplicate, never a loss (consumers are
 *           idempotent)
 *   purge   acks (deletes) dead messages; needs --yes
 *
 * Each takes --queue (default monitor_tasks_dead) and --limit (default 100, at most 10000).
 */
#include "upmonctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/amqp.h"
#include "upmon/clients.h"

const struct ctl_cmd ctl_dlq_cmd = {
	"dlq", ctl_cmd_dlq,
	"list|replay|purge [--queue QUEUE] [--limit N] [--body] [--yes]",
	"list, replay or purge dead-lettered messages",
};

#define DLQ_IDLE_MS 1500	/* no delivery for this long: the queue is drained */
#define DLQ_CONFIRM_MS 10000
#define DLQ_BODY_SHOWN 300
#define DLQ_MAX_BODY ((size_t)256 << 20)

enum dlq_action { DLQ_LIST, DLQ_REPLAY, DLQ_PURGE };

static const char *const dlq_queues[] = { "monitor_tasks_dead", "notifications_dead", NULL };

static int
known_queue(const char *q)
{
	size_t i;

	for (i = 0; dlq_queues[i] != NULL; i++)
		if (strcmp(q, dlq_queues[i]) == 0)
			return 1;
	return 0;
}

/* Prints s with control characters as '?' so one message stays one line. */
static void
print_clean(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max; i++)
		putchar((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i]);
	if (s[i] != '\0')
		fputs("...", stdout);
}

static void
print_delivery(const struct upmon_amqp_delivery *d, int body)
{
	const char *err = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_ERROR);
	const char *last = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_LAST_FAILURE);
	const char *svc = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_SERVICE);
	const char *host = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_HOST);

	printf("%s attempt=%d last=%s by=%s@%s error=\"", *d->message_id ? d->message_id : "-",
	    d->attempt, last ? last : "-", svc ? svc : "-", host ? host : "-");
	/* a message rejected by its consumer (e.g. oversized) has no upmon headers */
	print_clean(err ? err : "rejected by the consumer (no x-upmon-error)", 400);
	fputs("\"\n", stdout);
	if (body) {
		fputs("  body: ", stdout);
		print_clean((const char *)d->body, DLQ_BODY_SHOWN);
		putchar('\n');
	}
}

/* Copies d's headers without the x-upmon-* failure history. */
static int
fresh_headers(const struct upmon_amqp_headers *in, struct upmon_amqp_headers *out)
{
	size_t i;
	int rc;

	upmon_amqp_headers_init(out);
	for (i = 0; in != NULL && i < in->count; i++) {
		const char *k = upmon_amqp_headers_key(in, i);
		const char *v = upmon_amqp_headers_value_str(in, i);
		int64_t n;

		if (strncmp(k, "x-upmon-", 8) == 0 || strncmp(k, "x-death", 7) == 0 ||
		    strncmp(k, "x-first-death", 13) == 0 || strncmp(k, "x-last-death", 12) == 0)
			continue;
		if (v != NULL)
			rc = upmon_amqp_headers_set_str(out, k, v, 0);
		else if (upmon_amqp_headers_get_int(in, k, &n) == 0)
			rc = upmon_amqp_headers_set_int(out, k, n);
		else
			continue;
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
replay_one(struct upmon_amqp *c, const struct upmon_amqp_delivery *d, const char *work)
{
	struct upmon_amqp_headers h;
	struct upmon_amqp_message m;
	int rc;

	if ((rc = fresh_headers(d->headers, &h)) != 0)
		return rc;
	memset(&m, 0, sizeof(m));
	m.exchange = "";
	m.routing_key = work;
	m.body = d->body;
	m.body_len = d->body_len;
	m.message_id = *d->message_id ? d->message_id : "replayed";
	m.headers = &h;
	return upmon_amqp_publish_sync(c, &m, DLQ_CONFIRM_MS);
}

static int
parse_action(const char *s, enum dlq_action *out)
{
	if (strcmp(s, "list") == 0)
		*out = DLQ_LIST;
	else if (strcmp(s, "replay") == 0)
		*out = DLQ_REPLAY;
	else if (strcmp(s, "purge") == 0)
		*out = DLQ_PURGE;
	else
		return -1;
	return 0;
}

static int
run(struct ctl *ctl, enum dlq_action action, const char *queue, int limit, int body)
{
	struct upmon_amqp_config cfg;
	struct upmon_amqp_delivery *held = NULL;
	struct upmon_amqp *c = NULL;
	char work[UPMON_AMQP_NAME_MAX];
	int n = 0, i, rc, status = CTL_EXIT_OK;
	size_t qlen = strlen(queue);

	snprintf(work, sizeof(work), "%.*s", (int)(qlen - strlen("_dead")), queue);
	upmon_amqp_config_from(&cfg, ctl->settings, "upmonctl");
	/* A message may be dead BECAUSE it was over the cap: never reject one here (the dead
	 * queues have no dead-letter exchange, so a rejected message would be gone). */
	cfg.max_body = DLQ_MAX_BODY;
	if (upmon_amqp_new(&cfg, &c) != 0)
		return ctl_fail("dlq", "bad amqp configuration (see UPMON_AMQP_URL)");
	if ((rc = upmon_amqp_connect(c, cfg.connect_timeout_ms)) != 0) {
		upmon_amqp_free(c);
		return ctl_fail("dlq", "cannot connect to rabbitmq: %s", upmon_amqp_strerror(rc));
	}
	/* list holds every message unacked until the end, so each is seen once */
	if ((rc = upmon_amqp_consume(c, queue, action == DLQ_LIST ? limit : 1)) != 0) {
		upmon_amqp_free(c);
		return ctl_fail("dlq", "cannot consume %s: %s", queue, upmon_amqp_strerror(rc));
	}
	if ((held = calloc((size_t)limit, sizeof(*held))) == NULL) {
		upmon_amqp_free(c);
		return ctl_fail("dlq", "out of memory");
	}
	while (n < limit) {
		struct upmon_amqp_delivery *d = &held[n];

		rc = upmon_amqp_next(c, DLQ_IDLE_MS, d);
		if (rc == UPMON_AMQP_ETIMEDOUT)
			break;
		if (rc != 0) {
			status = ctl_fail("dlq", "%s: %s", queue, upmon_amqp_strerror(rc));
			break;
		}
		n++;
		if (action == DLQ_LIST) {
			print_delivery(d, body);
			continue;
		}
		if (action == DLQ_REPLAY && (rc = replay_one(c, d, work)) != 0) {
			/* not acked: the broker keeps the dead copy */
			status = ctl_fail("dlq", "replay of %s to %s failed: %s", d->message_id,
			    work, upmon_amqp_strerror(rc));
			break;
		}
		if ((rc = upmon_amqp_ack(c, d)) != 0) {
			status = ctl_fail("dlq", "ack of %s failed: %s", d->message_id,
			    upmon_amqp_strerror(rc));
			break;
		}
		upmon_amqp_delivery_release(d);
	}
	if (action == DLQ_LIST)
		for (i = 0; i < n; i++)
			(void)upmon_amqp_nack(c, &held[i], 1);
	if (status == CTL_EXIT_OK) {
		const char *verb = action == DLQ_LIST ? "listed" :
		    action == DLQ_REPLAY ? "replayed" : "purged";

		if (action == DLQ_REPLAY)
			printf("%d messages %s from %s to %s\n", n, verb, queue, work);
		else
			printf("%d messages %s from %s\n", n, verb, queue);
		if (n == limit)
			printf("(stopped at --limit %d; more may be waiting)\n", limit);
	}
	for (i = 0; i < n; i++)
		upmon_amqp_delivery_release(&held[i]);
	free(held);
	upmon_amqp_free(c);
	return status;
}

int
ctl_cmd_dlq(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "limit", required_argument, NULL, 'l' },
		{ "body", no_argument, NULL, 'b' },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *queue = "monitor_tasks_dead";
	enum dlq_action action;
	int c, limit = 100, body = 0, yes = 0;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
			printf("usage: upmonctl dlq %s\n", ctl_dlq_cmd.usage);
			return CTL_EXIT_OK;
		}
		return ctl_usage(&ctl_dlq_cmd, "missing action (list, replay or purge)");
	}
	if (parse_action(argv[1], &action) != 0)
		return ctl_usage(&ctl_dlq_cmd, "unknown action %s", argv[1]);
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, ":q:l:byh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			queue = optarg;
			break;
		case 'l':
			if (ctl_parse_int(optarg, 1, 10000, &limit) != 0)
				return ctl_usage(&ctl_dlq_cmd, "--limit wants 1..10000");
			break;
		case 'b':
			body = 1;
			break;
		case 'y':
			yes = 1;
			break;
		case 'h':
			printf("usage: upmonctl dlq %s\n", ctl_dlq_cmd.usage);
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage(&ctl_dlq_cmd, "%s needs a value", argv[optind - 1]);
		default:
			return ctl_usage(&ctl_dlq_cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage(&ctl_dlq_cmd, "unexpected argument %s", argv[optind]);
	if (!known_queue(queue))
		return ctl_usage(&ctl_dlq_cmd, "--queue must be monitor_tasks_dead or "
		    "notifications_dead, not %s", queue);
	if (action == DLQ_PURGE && !yes)
		return ctl_usage(&ctl_dlq_cmd, "purge deletes messages: add --yes");
	return run(ctl, action, queue, limit, body);
}
