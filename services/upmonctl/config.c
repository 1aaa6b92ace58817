/*
 * `upmonctl config`: prints the effective configuration (secrets masked), or with --markdown
 * the table of settings every service shares, which is the README's configuration section.
 */
#include "upmonctl.h"

#include <stdio.h>
#include <string.h>

static int ctl_cmd_config(struct ctl *ctl, int argc, char **argv);

const struct ctl_cmd ctl_config_cmd = {
	"config", ctl_cmd_config, "[--markdown]",
	"print the effective configuration, or the shared settings as Markdown",
};

static int
ctl_cmd_config(struct ctl *ctl, int argc, char **argv)
{
	struct upmon_common_settings *common;
	struct ctl_settings *own;
	struct upmon_config_table tables[2];

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--markdown") != 0))
		return ctl_usage(&ctl_config_cmd, "unexpected argument %s", argv[argc - 1]);
	/* The tables only describe the settings structs; nothing is written through them. */
	common = (struct upmon_common_settings *)ctl->settings;
	tables[0] = upmon_common_table(common);
	if (argc == 2) {
		upmon_config_print_markdown(tables, 1, stdout);
		return CTL_EXIT_OK;
	}
	own = (struct ctl_settings *)ctl->ctl_settings;
	tables[1] = ctl_settings_table(own);
	upmon_config_print(tables, own != NULL ? 2 : 1, stdout);
	return CTL_EXIT_OK;
}
