/*
 * `upmonctl dlq list|replay|purge`: the dead-letter queues (monitor_tasks_dead,
 * notifications_dead) for operators.
 *
 *   list    prints one line per dead message (id, attempts, last failure, who gave up, the
 *           error) and leaves every message where it was
 *   replay  sends each message back to its work queue with the failure headers dropped
 *   purge   acks (deletes) dead messages; needs --yes
 *
 * The operations themselves are common/src/amqp_dlq.c (upmon/dlq.h), shared with the gateway.
 *
 * Each takes --queue (default monitor_tasks_dead) and --limit (default 100, at most 10000).
 */
#include "upmonctl.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "upmon/amqp.h"
#include "upmon/clients.h"
#include "upmon/dlq.h"

const struct ctl_cmd ctl_dlq_cmd = {
	"dlq", ctl_cmd_dlq,
	"list|replay|purge [--queue QUEUE] [--limit N] [--body] [--yes]",
	"list, replay or purge dead-lettered messages",
};

#define DLQ_BODY_SHOWN 300

enum dlq_action { DLQ_LIST, DLQ_REPLAY, DLQ_PURGE };

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

/* upmon_dlq_fn of list: one line per message (and its body with --body). */
static int
print_delivery(const struct upmon_amqp_delivery *d, void *arg)
{
	const char *err = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_ERROR);
	const char *last = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_LAST_FAILURE);
	const char *svc = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_SERVICE);
	const char *host = upmon_amqp_headers_get_str(d->headers, UPMON_AMQP_H_HOST);
	const int *body = arg;

	printf("%s attempt=%d last=%s by=%s@%s error=\"", *d->message_id ? d->message_id : "-",
	    d->attempt, last ? last : "-", svc ? svc : "-", host ? host : "-");
	/* a message rejected by its consumer (e.g. oversized) has no upmon headers */
	print_clean(err ? err : "rejected by the consumer (no x-upmon-error)", 400);
	fputs("\"\n", stdout);
	if (*body) {
		fputs("  body: ", stdout);
		print_clean((const char *)d->body, DLQ_BODY_SHOWN);
		putchar('\n');
	}
	return 0;
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
	char work[UPMON_AMQP_NAME_MAX], err[512];
	int n = 0, rc;

	upmon_amqp_config_from(&cfg, ctl->settings, "upmonctl");
	if (action == DLQ_LIST)
		rc = upmon_dlq_list(&cfg, queue, limit, print_delivery, &body, &n, err,
		    sizeof(err));
	else if (action == DLQ_REPLAY)
		rc = upmon_dlq_replay(&cfg, queue, limit, &n, err, sizeof(err));
	else
		rc = upmon_dlq_purge(&cfg, queue, limit, &n, err, sizeof(err));
	if (rc != 0)
		return ctl_fail("dlq", "%s", err);
	if (action == DLQ_REPLAY) {
		(void)upmon_dlq_work_queue(queue, work, sizeof(work));
		printf("%d messages replayed from %s to %s\n", n, queue, work);
	} else {
		printf("%d messages %s from %s\n", n, action == DLQ_LIST ? "listed" : "purged",
		    queue);
	}
	if (n == limit)
		printf("(stopped at --limit %d; more may be waiting)\n", limit);
	return CTL_EXIT_OK;
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
	if (!upmon_dlq_known(queue))
		return ctl_usage(&ctl_dlq_cmd, "--queue must be monitor_tasks_dead or "
		    "notifications_dead, not %s", queue);
	if (action == DLQ_PURGE && !yes)
		return ctl_usage(&ctl_dlq_cmd, "purge deletes messages: add --yes");
	return run(ctl, action, queue, limit, body);
}
