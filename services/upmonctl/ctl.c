/*
 * Helpers every upmonctl subcommand shares: one-line errors, integer flags, the database.
 */
#include "upmonctl.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const struct upmon_config_opt ctl_opts[] = {
	{ "UPMON_SQL_DIR", UPMON_CFG_STRING, 0, 4096, UPMON_SQL_DIR_DEFAULT, NULL, NULL,
	  "Directory of the numbered schema migrations applied by upmonctl migrate.",
	  offsetof(struct ctl_settings, sql_dir), 0, NULL },
};

struct upmon_config_table
ctl_settings_table(struct ctl_settings *s)
{
	struct upmon_config_table t = { ctl_opts, sizeof(ctl_opts) / sizeof(ctl_opts[0]), s,
	    NULL };

	return t;
}

const char *
ctl_sql_dir(const struct ctl *ctl, const char *flag)
{
	if (flag != NULL)
		return flag;
	if (ctl->ctl_settings != NULL && ctl->ctl_settings->sql_dir != NULL &&
	    ctl->ctl_settings->sql_dir[0] != '\0')
		return ctl->ctl_settings->sql_dir;
	return UPMON_SQL_DIR_DEFAULT;
}

int
ctl_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "upmonctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_FAIL;
}

int
ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "upmonctl %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (usage: upmonctl %s %s)\n", cmd->name, cmd->usage);
	return CTL_EXIT_USAGE;
}

int
ctl_parse_int(const char *text, int min, int max, int *out)
{
	long v;

	if (text == NULL || upmon_parse_long(text, min, max, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

int
ctl_db_open(struct ctl *ctl, const char *cmd, int statement_timeout_ms,
    struct upmon_db **out)
{
	struct upmon_db_config cfg;
	struct upmon_db_error err;
	const struct upmon_common_settings *s = ctl->settings;

	*out = NULL;
	if (s->pg_url == NULL || s->pg_url[0] == '\0')
		return ctl_fail(cmd, "UPMON_PG_URL is not set");
	upmon_db_config_init(&cfg);
	cfg.url = s->pg_url;
	cfg.application_name = "upmonctl";
	cfg.connect_timeout_s = (int)s->pg_connect_timeout;
	cfg.statement_timeout_ms = statement_timeout_ms;
	if (upmon_db_new(&cfg, out) != 0)
		return ctl_fail(cmd, "invalid database settings");
	if (upmon_db_connect(*out, &err) != 0)
		return ctl_fail(cmd, "cannot connect to the database: %s", err.message);
	return CTL_EXIT_OK;
}
