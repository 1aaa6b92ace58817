/*
 * Configuration: UPMON_* environment variables described by tables, one row per option, in
 * the spirit of Redis's config.c.
 *
 * A table row names a variable, its type, bounds, default and help text, and the offset of
 * the field it fills in a settings struct. upmon_config_load() applies, in order, every
 * default, then an optional file of NAME=value lines, then the environment (the environment
 * wins over the file), and validates every value. Each bad setting is reported as one line
 * on the diagnostics stream ("config: UPMON_AMQP_HEARTBEAT: 99999 is above the maximum 600")
 * and the load fails only after all of them have been reported. Unknown UPMON_* variables
 * produce a warning line (typo detection), never an error.
 *
 * Field types by option type: STRING and URL fill a char * (heap copy, freed by
 * upmon_config_release), INT fills a long, BOOL a bool, ENUM an int holding the index of the
 * value in enum_values ("error|warn|info|debug": "warn" -> 1).
 *
 * Every daemon and upmonctl starts with upmon_cli_main(), which parses the shared flags
 * (-d -v -n -c -h --version), loads the configuration and applies the log settings.
 */
#ifndef UPMON_CONFIG_H
#define UPMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum upmon_config_type {
	UPMON_CFG_STRING = 0,	/* char *; max = maximum length (0: 4096) */
	UPMON_CFG_INT,		/* long in [min, max] */
	UPMON_CFG_BOOL,		/* bool: true/false, 1/0, yes/no, on/off */
	UPMON_CFG_ENUM,		/* int: index into enum_values "a|b|c" */
	UPMON_CFG_URL,		/* char *; scheme one of enum_values "amqp|amqps"; the
				 * password is masked whenever the value is printed */
};

enum upmon_config_flags {
	UPMON_CFG_SECRET = 1 << 0,	/* never printed, only "(set)" or "(unset)" */
	UPMON_CFG_REQUIRED = 1 << 1,	/* an empty value is an error */
};

/* Extra validation of one raw value; returns 0, or -1 and a short reason in err. */
typedef int (*upmon_config_check_fn)(const char *value, char *err, size_t errlen);

struct upmon_config_opt {
	const char *name;		/* "UPMON_AMQP_URL" */
	enum upmon_config_type type;
	long min, max;			/* INT: bounds; STRING/URL: max length (0 = 4096) */
	const char *def;		/* default as text, NULL = empty */
	const char *enum_values;	/* ENUM: "quorum|classic"; URL: allowed schemes */
	const char *unit;		/* "s", "ms", "bytes" or NULL; shown in help */
	const char *help;		/* one sentence */
	size_t offset;			/* offsetof(settings struct, field) */
	int flags;			/* UPMON_CFG_SECRET | UPMON_CFG_REQUIRED */
	upmon_config_check_fn check;	/* optional extra validation, NULL = none */
};

/*
 * One table of options and the settings struct its offsets point into. validate, if not
 * NULL, runs after every option of the table parsed cleanly, for cross-field rules; it
 * writes one "config: ..." line per problem to diag and returns the number of problems.
 */
struct upmon_config_table {
	const struct upmon_config_opt *opts;
	size_t nopts;
	void *base;
	int (*validate)(const void *base, FILE *diag);
};

/*
 * Where values come from. Every member may be zero: file NULL means "$UPMON_CONFIG_FILE if
 * set, else no file"; envp NULL means the process environment; diag NULL means stderr.
 * ignore lists further names that are not this program's settings but must not be warned
 * about (an entry ending in '*' is a prefix), NULL-terminated; a built-in list already
 * covers UPMON_CONFIG_FILE, UPMON_STATE_DIR, UPMON_TEST_* and the deploy/local/env names.
 */
struct upmon_config_source {
	const char *file;
	char *const *envp;
	FILE *diag;
	const char *const *ignore;
};

/*
 * Fills every table's settings struct: defaults, then the file, then the environment, and
 * validates. Reports every bad setting as one line on src->diag. The settings structs must
 * start zeroed; strings they already hold are freed first, so loading twice is safe.
 * Returns 0; -EINVAL if any setting was bad (the structs then hold defaults or partly
 * parsed values and must still be released); -ENOENT or -EIO if the file could not be read;
 * -ENOMEM.
 */
int upmon_config_load(const struct upmon_config_table *tables, size_t ntables,
    const struct upmon_config_source *src);

/* Frees the strings upmon_config_load() stored in the settings structs (and NULLs them). */
void upmon_config_release(const struct upmon_config_table *tables, size_t ntables);

/* Writes NAME=value lines of the effective configuration; secrets print as "(set)" or
 * "(unset)" and URL passwords as "***". */
void upmon_config_print(const struct upmon_config_table *tables, size_t ntables, FILE *out);

/* Writes the option tables as one Markdown table (variable, type, default, description),
 * for the README's configuration section. */
void upmon_config_print_markdown(const struct upmon_config_table *tables, size_t ntables,
    FILE *out);

/* Writes the option tables as plain text for --help. */
void upmon_config_print_help(const struct upmon_config_table *tables, size_t ntables,
    FILE *out);

/* Copies url into buf with the password of its user-info and any "password=" query
 * parameter replaced by "***". Returns 0, or -ENOSPC if buf is too small (buf then holds
 * "***" so nothing secret leaks). */
int upmon_config_mask_url(const char *url, char *buf, size_t size);

/* Parses a whole decimal integer in [min, max] (no trailing characters, no overflow).
 * Returns 0, -EINVAL if text is not an integer, -ERANGE if it is out of bounds. */
int upmon_parse_long(const char *text, long min, long max, long *out);

/* ---- settings every service shares (config_common.c) ---------------------------------- */

enum upmon_queue_type {
	UPMON_QUEUE_QUORUM = 0,
	UPMON_QUEUE_CLASSIC = 1,
};

struct upmon_common_settings {
	int log_level;			/* UPMON_LOG_LEVEL: enum upmon_log_level */
	int log_format;			/* UPMON_LOG_FORMAT: enum upmon_log_format */
	char *admin_addr;		/* UPMON_ADMIN_ADDR: IPv4 address */
	long admin_port;		/* UPMON_ADMIN_PORT: 0 = any free port */
	char *amqp_url;			/* UPMON_AMQP_URL */
	long amqp_heartbeat;		/* UPMON_AMQP_HEARTBEAT: seconds, 0 = off */
	int amqp_queue_type;		/* UPMON_AMQP_QUEUE_TYPE: enum upmon_queue_type */
	long amqp_prefetch;		/* UPMON_AMQP_PREFETCH: per consumer channel */
	long amqp_confirm_timeout_ms;	/* UPMON_AMQP_CONFIRM_TIMEOUT_MS */
	long retry_levels;		/* UPMON_RETRY_LEVELS: number of retry queues */
	long retry_base_ms;		/* UPMON_RETRY_BASE_MS: TTL of retry queue 1 */
	long retry_max_ms;		/* UPMON_RETRY_MAX_MS: cap of any retry TTL */
	long max_message_bytes;		/* UPMON_MAX_MESSAGE_BYTES: AMQP payload cap */
	char *pg_url;			/* UPMON_PG_URL */
	long pg_connect_timeout;	/* UPMON_PG_CONNECT_TIMEOUT: seconds */
	long pg_statement_timeout_ms;	/* UPMON_PG_STATEMENT_TIMEOUT_MS: 0 = none */
	char *redis_url;		/* UPMON_REDIS_URL */
	long redis_timeout_ms;		/* UPMON_REDIS_TIMEOUT_MS */
	long reconnect_max_ms;		/* UPMON_RECONNECT_MAX_MS: backoff cap, all clients */
	long shutdown_timeout_ms;	/* UPMON_SHUTDOWN_TIMEOUT_MS: SIGTERM grace */
};

/* The common option table; upmon_common_table() binds it to a settings struct. */
extern const struct upmon_config_opt upmon_common_opts[];
extern const size_t upmon_common_nopts;

/* Returns a table describing s (the common options, with cross-field validation:
 * UPMON_RETRY_BASE_MS <= UPMON_RETRY_MAX_MS). */
struct upmon_config_table upmon_common_table(struct upmon_common_settings *s);

/* ---- command line shared by every daemon and upmonctl -------------------------------- */

struct upmon_cli {
	bool foreground;		/* -d: stay in foreground, log at debug to stderr */
	int verbose;			/* -v, repeatable: one log level more each */
	bool check_config;		/* -n, --check-config */
	bool help;			/* -h, --help */
	bool version;			/* --version */
	const char *config_file;	/* -c FILE, --config FILE (points into argv) */
	int argc;			/* what is left after the flags (subcommands) */
	char **argv;
};

/*
 * Parses the shared flags. Stops at the first non-flag argument or after "--"; the rest is
 * left in cli->argc/argv. Short flags combine ("-dv", "-vvv", "-cFILE").
 * Returns 0, or -EINVAL after writing one line naming the bad flag to err (NULL = stderr);
 * the caller should then exit 2.
 */
int upmon_cli_parse(int argc, char **argv, struct upmon_cli *cli, FILE *err);

/* What upmon_cli_main() needs to know about the program. */
struct upmon_cli_info {
	const char *program;		/* "upmon-probe": log service name and usage line */
	const char *usage;		/* after the program name, e.g. "[-dnv] [-c file]" */
	const char *summary;		/* one line for --help */
	int *log_level;			/* NULL: the tables' UPMON_LOG_LEVEL (else info) */
	int *log_format;		/* NULL: the tables' UPMON_LOG_FORMAT (else logfmt) */
	const char *const *ignore;	/* other programs' UPMON_* names not to warn about
					 * (see upmon_config_source.ignore), or NULL */
};

/* The project's version ("0.1.0"), as --version prints it and the User-Agent carries it. */
const char *upmon_version(void);

/* Returned by upmon_cli_main() when the program should go on running. */
#define UPMON_CLI_RUN (-1)

/*
 * The start of every main(): parses the flags, prints --help (with the option tables) or
 * --version, loads the configuration (-c FILE or UPMON_CONFIG_FILE, then the environment),
 * answers --check-config ("configuration OK", or one line per bad setting), and initialises
 * logging from the loaded level and format, raised by -v and set to debug by -d.
 * Returns UPMON_CLI_RUN to continue, or an exit status the caller should return at once:
 * 0 after --help, --version or a good --check-config; 1 for a bad configuration; 2 for a
 * bad flag. Tables are released by the caller (upmon_config_release) in every case.
 */
int upmon_cli_main(const struct upmon_cli_info *info, int argc, char **argv,
    const struct upmon_config_table *tables, size_t ntables, struct upmon_cli *cli);

#endif
