/*
 * `upmonctl partitions`: creates the daily check_results partitions ahead and, with
 * --retention, drops the expired ones (and, with --rollup-retention, old hourly rollups).
 * The work is done by the SQL functions of sql/0002_check_results.sql.
 */
#include "upmonctl.h"

#include <getopt.h>
#include <stdio.h>

const struct ctl_cmd ctl_partitions_cmd = {
	"partitions", ctl_cmd_partitions,
	"[--ahead DAYS] [--retention DAYS] [--rollup-retention DAYS]",
	"create check_results partitions ahead, drop expired ones",
};

/* Runs SELECT fn($1) and prints "label: N". */
static int
call_int_fn(struct upmon_db *db, const char *sql, int arg, const char *label)
{
	char n[16];
	const char *params[1] = { n };
	struct upmon_db_error err;
	PGresult *res = NULL;
	int64_t v;

	snprintf(n, sizeof(n), "%d", arg);
	if (upmon_db_query(db, 0, sql, 1, params, &res, &err) != 0)
		return ctl_fail("partitions", "%s failed: %s", label, err.message);
	if (upmon_db_int64(res, 0, 0, &v) != 0) {
		PQclear(res);
		return ctl_fail("partitions", "%s: unexpected result", label);
	}
	PQclear(res);
	printf("%s: %lld\n", label, (long long)v);
	return 0;
}

int
ctl_cmd_partitions(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ahead", required_argument, NULL, 'a' },
		{ "retention", required_argument, NULL, 'r' },
		{ "rollup-retention", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct upmon_db *db = NULL;
	int c, rc, ahead = 7, retention = 0, rollup_retention = 0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":a:r:R:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (ctl_parse_int(optarg, 0, 366, &ahead) != 0)
				return ctl_usage(&ctl_partitions_cmd, "--ahead wants 0..366 days");
			break;
		case 'r':
			if (ctl_parse_int(optarg, 1, 36500, &retention) != 0)
				return ctl_usage(&ctl_partitions_cmd,
				    "--retention wants 1..36500 days");
			break;
		case 'R':
			if (ctl_parse_int(optarg, 1, 36500, &rollup_retention) != 0)
				return ctl_usage(&ctl_partitions_cmd,
				    "--rollup-retention wants 1..36500 days");
			break;
		case 'h':
			printf("usage: upmonctl partitions %s\n", ctl_partitions_cmd.usage);
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage(&ctl_partitions_cmd, "%s needs a value",
			    argv[optind - 1]);
		default:
			return ctl_usage(&ctl_partitions_cmd, "unknown option %s",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage(&ctl_partitions_cmd, "unexpected argument %s", argv[optind]);
	/* dropping a partition waits for its table lock: no statement timeout */
	if ((rc = ctl_db_open(ctl, "partitions", 0, &db)) != 0)
		goto out;
	rc = call_int_fn(db, "SELECT upmon_ensure_partitions($1::integer)", ahead,
	    "partitions created");
	if (rc == 0 && retention > 0)
		rc = call_int_fn(db, "SELECT upmon_drop_partitions($1::integer)", retention,
		    "partitions dropped");
	if (rc == 0 && rollup_retention > 0)
		rc = call_int_fn(db, "SELECT upmon_prune_rollups($1::integer)", rollup_retention,
		    "rollup rows deleted");
out:
	upmon_db_free(db);
	return rc;
}
