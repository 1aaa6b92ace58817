/*
 * The command line every daemon and upmonctl share: -d -v -n -c FILE -h --version, then
 * configuration loading and log set-up (upmon_cli_main).
 */
#include "upmon/config.h"

#include <errno.h>
#include <string.h>

#include "upmon/log.h"

#ifndef UPMON_VERSION
#define UPMON_VERSION "0.0.0"
#endif

/* Handles one long option; *i advances past a separate value. Returns 0 or -EINVAL. */
static int
parse_long_opt(int argc, char **argv, int *i, struct upmon_cli *cli, FILE *err)
{
	const char *arg = argv[*i] + 2;

	if (strcmp(arg, "help") == 0)
		cli->help = true;
	else if (strcmp(arg, "version") == 0)
		cli->version = true;
	else if (strcmp(arg, "check-config") == 0)
		cli->check_config = true;
	else if (strcmp(arg, "foreground") == 0)
		cli->foreground = true;
	else if (strcmp(arg, "verbose") == 0)
		cli->verbose++;
	else if (strncmp(arg, "config=", 7) == 0 && arg[7] != '\0')
		cli->config_file = arg + 7;
	else if (strcmp(arg, "config") == 0) {
		if (*i + 1 >= argc) {
			fprintf(err, "option --config needs a file name\n");
			return -EINVAL;
		}
		cli->config_file = argv[++*i];
	} else {
		fprintf(err, "unknown option --%s (try --help)\n", arg);
		return -EINVAL;
	}
	return 0;
}

/* Handles a cluster of short flags ("-dv", "-cFILE"). Returns 0 or -EINVAL. */
static int
parse_short_opts(int argc, char **argv, int *i, struct upmon_cli *cli, FILE *err)
{
	const char *p;

	for (p = argv[*i] + 1; *p != '\0'; p++) {
		switch (*p) {
		case 'd':
			cli->foreground = true;
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'n':
			cli->check_config = true;
			break;
		case 'h':
			cli->help = true;
			break;
		case 'c':
			if (p[1] != '\0') {
				cli->config_file = p + 1;
			} else if (*i + 1 < argc) {
				cli->config_file = argv[++*i];
			} else {
				fprintf(err, "option -c needs a file name\n");
				return -EINVAL;
			}
			return 0;
		default:
			fprintf(err, "unknown option -%c (try --help)\n", *p);
			return -EINVAL;
		}
	}
	return 0;
}

int
upmon_cli_parse(int argc, char **argv, struct upmon_cli *cli, FILE *err)
{
	int i, rc = 0;

	memset(cli, 0, sizeof(*cli));
	if (err == NULL)
		err = stderr;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (a[1] == '-')
			rc = parse_long_opt(argc, argv, &i, cli, err);
		else
			rc = parse_short_opts(argc, argv, &i, cli, err);
		if (rc < 0)
			return rc;
	}
	cli->argc = argc - i;
	cli->argv = argv + i;
	return 0;
}

static void
print_usage(const struct upmon_cli_info *info, FILE *out)
{
	fprintf(out, "usage: %s %s\n", info->program, info->usage ? info->usage :
	    "[-dnv] [-c file]");
	if (info->summary != NULL)
		fprintf(out, "%s\n", info->summary);
	fprintf(out, "\n"
	    "  -d                 stay in the foreground and log at debug level to stderr\n"
	    "  -v, --verbose      log one level more (repeatable)\n"
	    "  -n, --check-config validate the configuration, print each bad setting, exit\n"
	    "  -c, --config FILE  read NAME=value settings from FILE (the environment wins)\n"
	    "  -h, --help         this text\n"
	    "      --version      print the version and exit\n\n");
}

/* The loaded value of the ENUM option called name, or def if no table has it. */
static int
enum_setting(const struct upmon_config_table *tables, size_t ntables, const char *name,
    int def)
{
	size_t t, k;

	for (t = 0; t < ntables; t++)
		for (k = 0; k < tables[t].nopts; k++)
			if (tables[t].opts[k].type == UPMON_CFG_ENUM &&
			    strcmp(tables[t].opts[k].name, name) == 0)
				return *(const int *)((const char *)tables[t].base +
				    tables[t].opts[k].offset);
	return def;
}

int
upmon_cli_main(const struct upmon_cli_info *info, int argc, char **argv,
    const struct upmon_config_table *tables, size_t ntables, struct upmon_cli *cli)
{
	struct upmon_config_source src = { 0 };
	int level, format;

	if (upmon_cli_parse(argc, argv, cli, stderr) < 0)
		return 2;
	if (cli->help) {
		print_usage(info, stdout);
		upmon_config_print_help(tables, ntables, stdout);
		return 0;
	}
	if (cli->version) {
		printf("%s %s\n", info->program, upmon_version());
		return 0;
	}
	src.file = cli->config_file;
	src.ignore = info->ignore;
	if (upmon_config_load(tables, ntables, &src) < 0) {
		if (cli->check_config)
			fprintf(stderr, "configuration has errors\n");
		return 1;
	}
	if (cli->check_config) {
		printf("configuration OK\n");
		return 0;
	}
	level = info->log_level != NULL ? *info->log_level :
	    enum_setting(tables, ntables, "UPMON_LOG_LEVEL", UPMON_LOG_INFO);
	format = info->log_format != NULL ? *info->log_format :
	    enum_setting(tables, ntables, "UPMON_LOG_FORMAT", UPMON_LOG_LOGFMT);
	level += cli->verbose;
	if (cli->foreground || level > UPMON_LOG_DEBUG)
		level = UPMON_LOG_DEBUG;
	log_init(info->program, level, format);
	return UPMON_CLI_RUN;
}

const char *
upmon_version(void)
{
	return UPMON_VERSION;
}
