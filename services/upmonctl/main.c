/*
 * upmonctl: the operator CLI. main() only wires: shared flags and configuration, then the
 * subcommand named by the first argument. Adding a subcommand = one file defining
 * ctl_cmd_<name> and its struct ctl_cmd, plus one row in the table below.
 */
#include "upmonctl.h"
#include "upmon/log.h"

#include <stdio.h>
#include <string.h>

static int ctl_cmd_help(struct ctl *ctl, int argc, char **argv);

static const struct ctl_cmd help_cmd = {
	"help", ctl_cmd_help, "", "list the subcommands",
};

/* One row per subcommand, in the order `upmonctl help` lists them. */
static const struct ctl_cmd *const commands[] = {
	&ctl_migrate_cmd,
	&ctl_partitions_cmd,
	&ctl_dlq_cmd,
	&ctl_config_cmd,
	&ctl_monitors_cmd,
	&ctl_user_cmd,
	&help_cmd,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int
ctl_cmd_help(struct ctl *ctl, int argc, char **argv)
{
	size_t i;

	printf("usage: upmonctl [-v] [-c file] command [args]\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		printf("  %-11s %s\n      upmonctl %s %s\n", commands[i]->name,
		    commands[i]->summary, commands[i]->name, commands[i]->usage);
	printf("\nConfiguration comes from UPMON_* variables (upmonctl --help lists them).\n");
	return CTL_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct upmon_cli_info info = {
		.program = "upmonctl",
		.usage = "[-v] [-c file] command [args]   (upmonctl help lists commands)",
		.summary = "upmon operator CLI: migrate the schema, manage partitions.",
	};
	struct upmon_common_settings settings;
	struct ctl_settings ctl_settings;
	struct upmon_config_table tables[2];
	struct upmon_cli cli;
	struct ctl ctl;
	size_t i;
	int rc;

	memset(&settings, 0, sizeof(settings));
	memset(&ctl_settings, 0, sizeof(ctl_settings));
	tables[0] = upmon_common_table(&settings);
	tables[1] = ctl_settings_table(&ctl_settings);
	rc = upmon_cli_main(&info, argc, argv, tables, 2, &cli);
	if (rc != UPMON_CLI_RUN)
		goto out;
	/* a CLI speaks through its exit status and one error line; -v shows the logs */
	if (!cli.foreground)
		log_set_level(UPMON_LOG_ERROR + cli.verbose);
	if (cli.argc < 1) {
		fprintf(stderr, "upmonctl: missing command (upmonctl help lists them)\n");
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	ctl.settings = &settings;
	ctl.ctl_settings = &ctl_settings;
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(cli.argv[0], commands[i]->name) == 0) {
			rc = commands[i]->run(&ctl, cli.argc, cli.argv);
			goto out;
		}
	}
	fprintf(stderr, "upmonctl: unknown command %s (upmonctl help lists them)\n",
	    cli.argv[0]);
	rc = CTL_EXIT_USAGE;
out:
	upmon_config_release(tables, 2);
	return rc;
}
