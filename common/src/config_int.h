/* Internal to the config module (config.c, config_print.c, config_cli.c). */
#ifndef UPMON_CONFIG_INT_H
#define UPMON_CONFIG_INT_H

/* Returns the index of text in values "a|b|c", or -1. */
int config_enum_index(const char *values, const char *text);

#endif
