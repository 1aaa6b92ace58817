/*
 * upmon-gateway's own settings (UPMON_GATEWAY_*), besides the common ones (config.h). One
 * table row per option in settings.c; `upmon-gateway --help` lists them. The struct they fill,
 * struct gw_settings, is in gw.h because handlers read it.
 */
#ifndef GW_SETTINGS_H
#define GW_SETTINGS_H

#include "gw.h"
#include "upmon/config.h"

/* Returns the table describing s (which must start zeroed; strings are freed by
 * upmon_config_release). Its validation refuses a JWT secret under 32 bytes unless
 * UPMON_GATEWAY_DEV_MODE is on. */
struct upmon_config_table gw_settings_table(struct gw_settings *s);

/*
 * Completes loaded settings: in dev mode without a secret, generates one (32 random bytes
 * from /dev/urandom as hex, one warning line: tokens die with the process); an empty
 * UPMON_GATEWAY_PUBLIC_URL becomes http://<addr>:<port>. Returns 0, -EIO (no randomness) or
 * -ENOMEM.
 */
int gw_settings_finish(struct gw_settings *s);

#endif
