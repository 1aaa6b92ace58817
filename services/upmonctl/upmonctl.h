/*
 * upmonctl internals: the subcommand contract, shared helpers (ctl.c) and the migration
 * engine (migrate.c). Every symbol is prefixed ctl_ because tests link upmonctl_core together
 * with the other services' core libraries.
 */
#ifndef UPMONCTL_H
#define UPMONCTL_H

#include <stddef.h>

#include "upmon/config.h"
#include "upmon/db.h"

/* Exit statuses of every subcommand. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1		/* runtime error: one line on stderr */
#define CTL_EXIT_USAGE 2	/* bad command line: one line on stderr */

/* upmonctl's own settings (besides the common ones), described by ctl_settings_table(). */
struct ctl_settings {
	char *sql_dir;		/* UPMON_SQL_DIR: migrations; default the source tree's sql/ */
};

/* Binds upmonctl's option table to s, for upmon_cli_main() next to the common table. */
struct upmon_config_table ctl_settings_table(struct ctl_settings *s);

/* What a subcommand gets besides its arguments. */
struct ctl {
	const struct upmon_common_settings *settings;	/* loaded configuration */
	const struct ctl_settings *ctl_settings;	/* NULL = all defaults */
};

/*
 * A subcommand: run gets argc/argv with argv[0] = the subcommand name and returns a CTL_EXIT_*
 * status after printing at most one error line.
 */
struct ctl_cmd {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage;	/* arguments after the name, e.g. "[--dir DIR] [--status]" */
	const char *summary;	/* one line for `upmonctl help` */
};

/* ---- ctl.c ------------------------------------------------------------------------------ */

/* Prints "upmonctl CMD: MESSAGE" on stderr and returns CTL_EXIT_FAIL. */
int ctl_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "upmonctl CMD: MESSAGE (usage: upmonctl CMD USAGE)" and returns CTL_EXIT_USAGE. */
int ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer in [min, max]; 0 or -1. */
int ctl_parse_int(const char *text, int min, int max, int *out);

/*
 * Opens and connects a database handle from the configuration (UPMON_PG_URL, connect timeout)
 * with application_name "upmonctl" and the given statement timeout (0 = none). On failure
 * prints one line for cmd and returns CTL_EXIT_FAIL; the caller frees *out with
 * upmon_db_free() either way (it may be NULL).
 */
int ctl_db_open(struct ctl *ctl, const char *cmd, int statement_timeout_ms,
    struct upmon_db **out);

/* ---- migrate.c -------------------------------------------------------------------------- */

struct ctl_migration {
	int version;		/* 1 .. 9999, from the file name */
	char name[101];		/* "users_monitors" */
	char file[112];		/* "0001_users_monitors.sql" */
	char checksum[65];	/* SHA-256 of the file, lowercase hex */
	char *sql;		/* the file's contents */
	/* filled from schema_migrations */
	int applied;
	char applied_checksum[65];
	char applied_at[40];
};

struct ctl_migration_set {
	struct ctl_migration *v;	/* sorted by version */
	size_t n;
};

/* Largest migration file accepted. */
#define CTL_MIGRATION_MAX_BYTES (4 * 1024 * 1024)

/*
 * Parses a migration file name "NNNN_name.sql" (four digits, version >= 1, name of [a-z0-9_]).
 * Returns 0 and fills version and name (namesize bytes); 1 when the file is not a .sql file
 * (ignored); -1 for a .sql file whose name breaks the rule (an error: it would be skipped).
 */
int ctl_migration_parse_name(const char *file, int *version, char *name, size_t namesize);

/* SHA-256 of data as 64 lowercase hex digits plus NUL; 0 or -1. */
int ctl_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * Reads every migration of dir, sorted by version. Refuses (returns -1, one line in err) a
 * bad .sql name, two files with one version, an unreadable, oversized or NUL-holding file.
 * The caller releases set with ctl_migration_set_release() in every case.
 */
int ctl_migration_load_dir(const char *dir, struct ctl_migration_set *set, char *err,
    size_t errlen);
void ctl_migration_set_release(struct ctl_migration_set *set);

/* The migration directory: --dir if given, else UPMON_SQL_DIR, else the build's sql/. */
const char *ctl_sql_dir(const struct ctl *ctl, const char *flag);

/* ---- subcommands ------------------------------------------------------------------------- */

int ctl_cmd_migrate(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_partitions(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_dlq(struct ctl *ctl, int argc, char **argv);

extern const struct ctl_cmd ctl_migrate_cmd;
extern const struct ctl_cmd ctl_partitions_cmd;
extern const struct ctl_cmd ctl_dlq_cmd;	/* dlq.c */
extern const struct ctl_cmd ctl_config_cmd;	/* config.c */
extern const struct ctl_cmd ctl_user_cmd;	/* user.c */
extern const struct ctl_cmd ctl_monitors_cmd;	/* monitors.c */

#endif
