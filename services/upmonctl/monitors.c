/*
 * `upmonctl monitors export|import`: a user's monitors as code.
 *
 *   export  writes {"monitors": [...]} with every input field of every monitor of --owner,
 *           sorted by name (bytewise), as YAML (default) or JSON, to --output or stdout; so
 *           export -> import -> export gives the same bytes
 *   import  reads such a document (YAML or JSON: by --format, else the file extension, else
 *           the content) from --file or stdin, validates EVERY entry as the API does
 *           (monitor.c; one line per bad field: "monitors[3].url: is required", exit 1,
 *           nothing written), then upserts by (owner, name) in ONE transaction, touching
 *           only rows that differ, and prints "created N, updated M, unchanged K" (plus
 *           ", deleted D" with --prune, which deletes the owner's monitors not in the file).
 *           --dry-run does all of it and rolls back.
 *
 * Writes go through the monitors table, whose trigger NOTIFYs the scheduler.
 */
#include "upmonctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitors_yaml.h"
#include "upmon/cache.h"
#include "upmon/clients.h"
#include "upmon/monitor.h"

static int ctl_cmd_monitors(struct ctl *ctl, int argc, char **argv);

const struct ctl_cmd ctl_monitors_cmd = {
	"monitors", ctl_cmd_monitors,
	"export --owner EMAIL [--format yaml|json] [--output FILE]\n"
	"      upmonctl monitors import --owner EMAIL [--file FILE|-] [--format yaml|json] "
	"[--dry-run] [--prune]",
	"export or import a user's monitors as code (YAML or JSON)",
};

#define CMD "monitors"
#define MON_FILE_MAX ((size_t)16 << 20)
#define MON_MAX_ERRORS 100	/* validation lines printed */

enum mon_format { FMT_AUTO, FMT_YAML, FMT_JSON };

struct mon_opts {
	const char *owner;
	const char *output;
	const char *file;
	enum mon_format format;
	int dry_run, prune;
};

/* ---- input and output --------------------------------------------------------------------- */

/* Reads all of f, at most MON_FILE_MAX bytes, NUL-terminated. */
static int
read_all(FILE *f, const char *name, char **out, size_t *outlen)
{
	size_t len = 0, cap = 65536, n;
	char *buf = malloc(cap), *nb;

	*out = NULL;
	if (buf == NULL)
		return ctl_fail(CMD, "out of memory");
	for (;;) {
		if (len + 1 == cap) {
			if (cap > MON_FILE_MAX) {
				free(buf);
				return ctl_fail(CMD, "%s: larger than %zu MiB", name,
				    MON_FILE_MAX >> 20);
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return ctl_fail(CMD, "out of memory");
			}
			buf = nb;
			cap *= 2;
		}
		n = fread(buf + len, 1, cap - 1 - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return ctl_fail(CMD, "cannot read %s", name);
	}
	if (len > MON_FILE_MAX) {
		free(buf);
		return ctl_fail(CMD, "%s: larger than %zu MiB", name, MON_FILE_MAX >> 20);
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return CTL_EXIT_OK;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* --format, else the extension, else the first non-blank character. */
static enum mon_format
detect_format(const struct mon_opts *o, const char *buf)
{
	if (o->format != FMT_AUTO)
		return o->format;
	if (o->file != NULL && strcmp(o->file, "-") != 0) {
		if (ends_with(o->file, ".json"))
			return FMT_JSON;
		if (ends_with(o->file, ".yaml") || ends_with(o->file, ".yml"))
			return FMT_YAML;
	}
	buf += strspn(buf, " \t\r\n");
	return *buf == '{' || *buf == '[' ? FMT_JSON : FMT_YAML;
}

static int
parse_document(const struct mon_opts *o, const char *buf, size_t len, struct json_object **doc)
{
	struct json_tokener *tok;
	char err[256];

	*doc = NULL;
	if (detect_format(o, buf) == FMT_YAML) {
		if (ctl_yaml_parse(buf, len, doc, err, sizeof(err)) != 0)
			return ctl_fail(CMD, "invalid YAML: %s", err);
		return CTL_EXIT_OK;
	}
	if ((tok = json_tokener_new_ex(64)) == NULL)
		return ctl_fail(CMD, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	*doc = json_tokener_parse_ex(tok, buf, (int)len);
	if (*doc == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    (size_t)json_tokener_get_parse_end(tok) != len) {
		/* trailing blanks are fine */
		size_t end = json_tokener_get_parse_end(tok);

		if (*doc == NULL || end > len || buf[end + strspn(buf + end, " \t\r\n")] != '\0') {
			snprintf(err, sizeof(err), "%s", json_tokener_get_error(tok) ==
			    json_tokener_continue ? "unexpected end of input" :
			    json_tokener_error_desc(json_tokener_get_error(tok)));
			json_tokener_free(tok);
			json_object_put(*doc);
			*doc = NULL;
			return ctl_fail(CMD, "invalid JSON: %s", err);
		}
	}
	json_tokener_free(tok);
	return CTL_EXIT_OK;
}

static int
write_output(const struct mon_opts *o, const char *data, size_t len)
{
	FILE *f = stdout;

	if (o->output != NULL && strcmp(o->output, "-") != 0 &&
	    (f = fopen(o->output, "w")) == NULL)
		return ctl_fail(CMD, "cannot write %s: %s", o->output, strerror(errno));
	if (fwrite(data, 1, len, f) != len || fflush(f) != 0) {
		if (f != stdout)
			fclose(f);
		return ctl_fail(CMD, "cannot write %s", o->output ? o->output : "stdout");
	}
	if (f != stdout && fclose(f) != 0)
		return ctl_fail(CMD, "cannot write %s: %s", o->output, strerror(errno));
	return CTL_EXIT_OK;
}

/* ---- database ----------------------------------------------------------------------------- */

/* The id of the user with email (case-insensitive) into id[37]. */
static int
owner_lookup(struct upmon_db *db, const char *email, char *id)
{
	struct upmon_db_error err;
	const char *p[1] = { email };
	PGresult *res;
	const char *v;

	if (upmon_db_query(db, UPMON_DB_IDEMPOTENT, "SELECT id FROM users WHERE lower(email) = "
	    "lower($1)", 1, p, &res, &err) != 0)
		return ctl_fail(CMD, "cannot look up the owner: %s", err.message);
	v = PQntuples(res) == 1 ? upmon_db_value(res, 0, 0) : NULL;
	if (v == NULL || strlen(v) != 36) {
		PQclear(res);
		return ctl_fail(CMD, "no user with email %s", email);
	}
	memcpy(id, v, 37);
	PQclear(res);
	return CTL_EXIT_OK;
}

static int
do_export(struct upmon_db *db, const struct mon_opts *o, const char *owner)
{
	struct upmon_db_error err;
	struct json_object *doc, *arr, *item;
	struct upmon_monitor m;
	const char *p[1] = { owner }, *text;
	PGresult *res;
	char *yaml = NULL;
	size_t len;
	int i, rc;

	if (upmon_db_query(db, UPMON_DB_IDEMPOTENT, "SELECT " UPMON_MONITOR_SELECT
	    " FROM monitors m WHERE m.owner_id = $1 ORDER BY m.name COLLATE \"C\"", 1, p, &res,
	    &err) != 0)
		return ctl_fail(CMD, "cannot read the monitors: %s", err.message);
	doc = json_object_new_object();
	arr = json_object_new_array();
	json_object_object_add(doc, "monitors", arr);
	for (i = 0; i < PQntuples(res); i++) {
		if (upmon_monitor_from_row(res, i, 0, &m) != 0 ||
		    upmon_monitor_to_json(&m, UPMON_MONITOR_JSON_DEFINITION, &item) != 0) {
			upmon_monitor_release(&m);
			PQclear(res);
			json_object_put(doc);
			return ctl_fail(CMD, "cannot read monitor row %d", i);
		}
		json_object_array_add(arr, item);
		upmon_monitor_release(&m);
	}
	PQclear(res);
	if (o->format == FMT_JSON) {
		text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
		    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
		if ((yaml = malloc(strlen(text) + 2)) != NULL) {
			len = strlen(text);
			memcpy(yaml, text, len);
			yaml[len++] = '\n';
			yaml[len] = '\0';
		}
		rc = yaml != NULL ? 0 : -ENOMEM;
	} else {
		rc = ctl_yaml_emit(doc, &yaml, &len);
	}
	json_object_put(doc);
	if (rc != 0)
		return ctl_fail(CMD, "out of memory");
	rc = write_output(o, yaml, len);
	free(yaml);
	return rc;
}

/*
 * Validates every entry of doc into mons (n of them). Prints one line per bad field and
 * returns CTL_EXIT_FAIL if any; the caller releases mons[0..*n-1] either way.
 */
static int
validate_all(struct json_object *doc, struct upmon_monitor **mons, size_t *n)
{
	struct json_object *arr, *fields;
	size_t i, j, count, errors = 0;

	*mons = NULL;
	*n = 0;
	if (doc == NULL || !json_object_is_type(doc, json_type_object) ||
	    !json_object_object_get_ex(doc, "monitors", &arr) ||
	    json_object_object_length(doc) != 1)
		return ctl_fail(CMD, "the document must be {\"monitors\": [...]}");
	if (arr == NULL)
		return CTL_EXIT_OK;	/* "monitors:" with nothing: an empty list */
	if (!json_object_is_type(arr, json_type_array))
		return ctl_fail(CMD, "monitors: must be a list");
	count = json_object_array_length(arr);
	if (count == 0)
		return CTL_EXIT_OK;
	if ((*mons = calloc(count, sizeof(**mons))) == NULL)
		return ctl_fail(CMD, "out of memory");
	for (i = 0; i < count; i++) {
		if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_object)) {
			if (++errors <= MON_MAX_ERRORS)
				fprintf(stderr, "upmonctl %s: monitors[%zu]: must be a mapping of "
				    "fields\n", CMD, i);
			continue;
		}
		if (upmon_monitor_from_json(json_object_array_get_idx(arr, i),
		    UPMON_MONITOR_CREATE, NULL, &(*mons)[*n], &fields) != 0) {
			if (fields == NULL)
				return ctl_fail(CMD, "out of memory");
			json_object_object_foreach(fields, key, msg) {
				if (++errors <= MON_MAX_ERRORS)
					fprintf(stderr, "upmonctl %s: monitors[%zu].%s: %s\n", CMD,
					    i, key, json_object_get_string(msg));
			}
			json_object_put(fields);
			continue;
		}
		for (j = 0; j < *n; j++) {
			if (strcmp((*mons)[j].name, (*mons)[*n].name) == 0) {
				if (++errors <= MON_MAX_ERRORS)
					fprintf(stderr, "upmonctl %s: monitors[%zu].name: is "
					    "already used by an earlier entry\n", CMD, i);
				break;
			}
		}
		(*n)++;
	}
	if (errors > 0)
		return ctl_fail(CMD, "%zu error%s, nothing imported", errors,
		    errors == 1 ? "" : "s");
	return CTL_EXIT_OK;
}

/* The upsert: insert, or update the row of the same (owner, name) only when it differs. */
static int
upsert_sql(char *sql, size_t size)
{
	char values[512], set[1200], differs[1200];

	if (upmon_monitor_sql_list(UPMON_MONITOR_SQL_VALUES, 2, values, sizeof(values)) != 0 ||
	    upmon_monitor_sql_list(UPMON_MONITOR_SQL_SET_EXCLUDED, 0, set, sizeof(set)) != 0 ||
	    upmon_monitor_sql_list(UPMON_MONITOR_SQL_DIFFERS, 0, differs, sizeof(differs)) != 0)
		return -ENOSPC;
	if ((size_t)snprintf(sql, size, "INSERT INTO monitors AS m (owner_id, "
	    UPMON_MONITOR_COLUMNS ") VALUES ($1, %s) ON CONFLICT (owner_id, name) DO UPDATE "
	    "SET %s WHERE %s RETURNING (m.xmax = 0)", values, set, differs) >= size)
		return -ENOSPC;
	return 0;
}

struct counts {
	size_t created, updated, unchanged, deleted;
};

static int
upsert_one(struct upmon_db *db, const char *sql, const char *owner,
    const struct upmon_monitor *m, struct counts *c)
{
	struct upmon_monitor_params mp;
	struct upmon_db_error err;
	const char *p[1 + UPMON_MONITOR_NCOLS];
	PGresult *res;
	const char *v;
	int i;

	if (upmon_monitor_params(m, &mp) != 0) {
		upmon_monitor_params_release(&mp);
		return ctl_fail(CMD, "out of memory");
	}
	p[0] = owner;
	for (i = 0; i < UPMON_MONITOR_NCOLS; i++)
		p[1 + i] = mp.v[i];
	if (upmon_db_query(db, 0, sql, 1 + UPMON_MONITOR_NCOLS, p, &res, &err) != 0) {
		upmon_monitor_params_release(&mp);
		return ctl_fail(CMD, "monitor \"%s\": %s", m->name, err.message);
	}
	upmon_monitor_params_release(&mp);
	if (PQntuples(res) == 0)
		c->unchanged++;
	else if ((v = upmon_db_value(res, 0, 0)) != NULL && v[0] == 't')
		c->created++;
	else
		c->updated++;
	PQclear(res);
	return CTL_EXIT_OK;
}

/* Deletes the owner's monitors whose names are not in mons. */
static int
prune(struct upmon_db *db, const char *owner, const struct upmon_monitor *mons, size_t n,
    struct counts *c)
{
	struct json_object *names = json_object_new_array();
	struct upmon_db_error err;
	const char *p[2] = { owner, NULL };
	PGresult *res;
	size_t i;
	int rc;

	if (names == NULL)
		return ctl_fail(CMD, "out of memory");
	for (i = 0; i < n; i++)
		json_object_array_add(names, json_object_new_string(mons[i].name));
	p[1] = json_object_to_json_string_ext(names, JSON_C_TO_STRING_PLAIN);
	rc = upmon_db_query(db, 0, "DELETE FROM monitors WHERE owner_id = $1 AND name NOT IN "
	    "(SELECT jsonb_array_elements_text($2::jsonb))", 2, p, &res, &err);
	json_object_put(names);
	if (rc != 0)
		return ctl_fail(CMD, "cannot prune: %s", err.message);
	c->deleted = strtoul(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return CTL_EXIT_OK;
}

static int
do_import(struct upmon_db *db, const struct mon_opts *o, const char *owner,
    const struct upmon_monitor *mons, size_t n)
{
	struct upmon_db_error err;
	struct counts c = { 0, 0, 0, 0 };
	char sql[4096];
	size_t i;
	int rc;

	if (upsert_sql(sql, sizeof(sql)) != 0)
		return ctl_fail(CMD, "statement too long");
	if (upmon_db_begin(db, &err) != 0)
		return ctl_fail(CMD, "cannot begin: %s", err.message);
	for (i = 0; i < n; i++)
		if ((rc = upsert_one(db, sql, owner, &mons[i], &c)) != CTL_EXIT_OK)
			goto rollback;
	if (o->prune && (rc = prune(db, owner, mons, n, &c)) != CTL_EXIT_OK)
		goto rollback;
	if (o->dry_run) {
		upmon_db_rollback(db, NULL);
	} else if (upmon_db_commit(db, &err) != 0) {
		rc = ctl_fail(CMD, "cannot commit: %s", err.message);
		goto rollback;
	}
	printf("created %zu, updated %zu, unchanged %zu", c.created, c.updated, c.unchanged);
	if (o->prune)
		printf(", deleted %zu", c.deleted);
	printf("%s\n", o->dry_run ? " (dry run: nothing written)" : "");
	return CTL_EXIT_OK;
rollback:
	upmon_db_rollback(db, NULL);
	return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static int
parse_opts(int argc, char **argv, struct mon_opts *o)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'O' },
		{ "file", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "prune", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 2;
	while ((c = getopt_long(argc, argv, ":o:F:O:f:np", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->owner = optarg;
			break;
		case 'F':
			if (strcmp(optarg, "yaml") == 0)
				o->format = FMT_YAML;
			else if (strcmp(optarg, "json") == 0)
				o->format = FMT_JSON;
			else
				return ctl_usage(&ctl_monitors_cmd, "--format wants yaml or json");
			break;
		case 'O':
			o->output = optarg;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'n':
			o->dry_run = 1;
			break;
		case 'p':
			o->prune = 1;
			break;
		case ':':
			return ctl_usage(&ctl_monitors_cmd, "%s needs a value", argv[optind - 1]);
		default:
			return ctl_usage(&ctl_monitors_cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage(&ctl_monitors_cmd, "unexpected argument %s", argv[optind]);
	if (o->owner == NULL)
		return ctl_usage(&ctl_monitors_cmd, "--owner is required");
	return CTL_EXIT_OK;
}

/* After a committed import: the gateway's cached list pages of owner are out of date, so
 * bump their generation (upmon/cache.h). Best effort: without Redis they expire within
 * UPMON_GATEWAY_LIST_CACHE_TTL_MS anyway. */
static void
forget_cached_lists(struct ctl *ctl, const char *owner)
{
	struct upmon_cache_config cfg;
	struct upmon_cache *c = NULL;

	upmon_cache_config_from(&cfg, ctl->settings);
	if (upmon_cache_new(&cfg, &c) != 0)
		return;
	if (upmon_cache_monitors_changed(c, owner) != 0)
		fprintf(stderr, "upmonctl %s: note: redis not reachable (%s): the gateway's cached "
		    "monitor lists expire within their TTL\n", CMD, upmon_cache_errstr(c));
	upmon_cache_free(c);
}

static int
run_import(struct ctl *ctl, const struct mon_opts *o)
{
	struct upmon_monitor *mons = NULL;
	struct json_object *doc = NULL;
	struct upmon_db *db = NULL;
	char owner[37], *buf = NULL;
	const char *name = o->file != NULL && strcmp(o->file, "-") != 0 ? o->file : "stdin";
	FILE *f = stdin;
	size_t len = 0, n = 0, i;
	int rc;

	if (f != NULL && strcmp(name, "stdin") != 0 && (f = fopen(o->file, "r")) == NULL)
		return ctl_fail(CMD, "cannot open %s: %s", o->file, strerror(errno));
	rc = read_all(f, name, &buf, &len);
	if (f != stdin)
		fclose(f);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (strlen(buf) != len) {
		rc = ctl_fail(CMD, "%s: contains NUL bytes", name);
		goto out;
	}
	if ((rc = parse_document(o, buf, len, &doc)) != CTL_EXIT_OK ||
	    (rc = validate_all(doc, &mons, &n)) != CTL_EXIT_OK)
		goto out;
	if ((rc = ctl_db_open(ctl, CMD, 0, &db)) != CTL_EXIT_OK ||
	    (rc = owner_lookup(db, o->owner, owner)) != CTL_EXIT_OK)
		goto out;
	rc = do_import(db, o, owner, mons, n);
	if (rc == CTL_EXIT_OK && !o->dry_run)
		forget_cached_lists(ctl, owner);
out:
	if (mons != NULL) {
		for (i = 0; i < n; i++)
			upmon_monitor_release(&mons[i]);
		free(mons);
	}
	upmon_db_free(db);
	json_object_put(doc);
	free(buf);
	return rc;
}

static int
ctl_cmd_monitors(struct ctl *ctl, int argc, char **argv)
{
	struct upmon_db *db = NULL;
	struct mon_opts o;
	char owner[37];
	int rc;

	if (argc < 2)
		return ctl_usage(&ctl_monitors_cmd, "missing action (export or import)");
	if (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "import") != 0)
		return ctl_usage(&ctl_monitors_cmd, "unknown action %s", argv[1]);
	if ((rc = parse_opts(argc, argv, &o)) != CTL_EXIT_OK)
		return rc;
	if (strcmp(argv[1], "import") == 0) {
		if (o.output != NULL)
			return ctl_usage(&ctl_monitors_cmd, "--output is for export");
		return run_import(ctl, &o);
	}
	if (o.file != NULL || o.dry_run || o.prune)
		return ctl_usage(&ctl_monitors_cmd, "--file, --dry-run and --prune are for import");
	if ((rc = ctl_db_open(ctl, CMD, 0, &db)) == CTL_EXIT_OK &&
	    (rc = owner_lookup(db, o.owner, owner)) == CTL_EXIT_OK)
		rc = do_export(db, &o, owner);
	upmon_db_free(db);
	return rc;
}
