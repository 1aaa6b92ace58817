/*
 * Configuration loading: defaults, then an optional NAME=value file, then UPMON_* variables
 * of the environment; every value is parsed and checked against its table row, and every
 * problem is reported as one "config: ..." line before the load fails.
 */
#include "upmon/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

extern char **environ;

#define CONFIG_FILE_MAX (1024 * 1024)	/* a configuration file is small */
#define CONFIG_NAME_MAX 64		/* longest name the typo finder considers */

/* Where an option's raw text came from. */
struct raw_value {
	const char *text;	/* NULL: not set, use the default */
	const char *file;	/* NULL: the environment or the default */
	int line;
};

/* One option with the table it belongs to. */
struct opt_ref {
	const struct upmon_config_opt *opt;
	void *base;
};

/* State of one load. */
struct loader {
	struct opt_ref *refs;
	struct raw_value *raw;
	size_t n;
	FILE *diag;
	int errors;
	const char *const *ignore;
};

static const char *const builtin_ignore[] = {
	"UPMON_CONFIG_FILE", "UPMON_STATE_DIR", "UPMON_SOURCE_DIR", "UPMON_BIN_DIR",
	"UPMON_TEST_*", "UPMON_LOCAL_*", "UPMON_GATEWAY_URL", "UPMON_RABBITMQ_MGMT_URL",
	"UPMON_MAIL_DIR",
	/* the rest of what deploy/local/env and tests/support/with-stack export */
	"UPMON_CTL", "UPMON_PG_DB", "UPMON_RABBITMQ_VHOST", "UPMON_SMTP_HOST", "UPMON_SMTP_PORT",
	NULL,
};

int
upmon_parse_long(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	if (text == NULL || *text == '\0' || isspace((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtol(text, &end, 10);
	if (end == text || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max) {
		*out = v;
		return -ERANGE;
	}
	*out = v;
	return 0;
}

/* Writes one diagnostic line "config: NAME: <what> (in FILE line N)". */
static void
report(struct loader *ld, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
report(struct loader *ld, size_t i, const char *fmt, ...)
{
	va_list ap;

	ld->errors++;
	fprintf(ld->diag, "config: %s: ", ld->refs[i].opt->name);
	va_start(ap, fmt);
	vfprintf(ld->diag, fmt, ap);
	va_end(ap);
	if (ld->raw[i].file != NULL)
		fprintf(ld->diag, " (in %s line %d)", ld->raw[i].file, ld->raw[i].line);
	fputc('\n', ld->diag);
}

/* Copies text for an error line: control characters become '?', long text is cut. */
static void
printable(const char *text, char *buf, size_t size)
{
	size_t i, lim, n = strlen(text);
	int cut = n + 1 > size;

	if (size < 8) {
		if (size > 0)
			buf[0] = '\0';
		return;
	}
	lim = cut ? size - 4 : n;
	for (i = 0; i < lim; i++)
		buf[i] = isprint((unsigned char)text[i]) ? text[i] : '?';
	if (cut)
		memcpy(buf + lim, "...", 4);
	else
		buf[lim] = '\0';
}

/* The text of a value as it may appear in an error line: never a secret or a password. */
static void
shown_value(const struct upmon_config_opt *opt, const char *text, char *buf, size_t size)
{
	char masked[512];

	if (opt->flags & UPMON_CFG_SECRET) {
		snprintf(buf, size, "(secret)");
		return;
	}
	if (opt->type == UPMON_CFG_URL) {
		upmon_config_mask_url(text, masked, sizeof(masked));
		printable(masked, buf, size);
		return;
	}
	printable(text, buf, size);
}

/* Stores a heap copy of text in the char * field at base + offset. */
static int
store_string(void *base, size_t offset, const char *text)
{
	char **field = (char **)((char *)base + offset);
	char *copy = strdup(text);

	if (copy == NULL)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static int
has_control(const char *text)
{
	for (; *text != '\0'; text++)
		if (iscntrl((unsigned char)*text))
			return 1;
	return 0;
}

static void
parse_int(struct loader *ld, size_t i, const char *text, const char *shown)
{
	const struct upmon_config_opt *opt = ld->refs[i].opt;
	long v = 0;
	int rc = upmon_parse_long(text, opt->min, opt->max, &v);

	if (rc == -EINVAL) {
		report(ld, i, "\"%s\" is not an integer", shown);
	} else if (rc == -ERANGE && v < opt->min) {
		report(ld, i, "%s is below the minimum %ld", shown, opt->min);
	} else if (rc == -ERANGE) {
		report(ld, i, "%s is above the maximum %ld", shown, opt->max);
	} else {
		*(long *)((char *)ld->refs[i].base + opt->offset) = v;
	}
}

static void
parse_bool(struct loader *ld, size_t i, const char *text, const char *shown)
{
	static const char *const yes[] = { "true", "1", "yes", "on", NULL };
	static const char *const no[] = { "false", "0", "no", "off", NULL };
	bool *field = (bool *)((char *)ld->refs[i].base + ld->refs[i].opt->offset);
	size_t k;

	for (k = 0; yes[k] != NULL; k++) {
		if (strcasecmp(text, yes[k]) == 0) {
			*field = true;
			return;
		}
		if (strcasecmp(text, no[k]) == 0) {
			*field = false;
			return;
		}
	}
	report(ld, i, "\"%s\" is not a boolean (true|false)", shown);
}

int
config_enum_index(const char *values, const char *text)
{
	size_t len = strlen(text);
	const char *p = values;
	int idx = 0;

	while (p != NULL && *p != '\0') {
		const char *bar = strchr(p, '|');
		size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (n == len && strncmp(p, text, n) == 0)
			return idx;
		idx++;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return -1;
}

static void
parse_enum(struct loader *ld, size_t i, const char *text, const char *shown)
{
	const struct upmon_config_opt *opt = ld->refs[i].opt;
	int idx = config_enum_index(opt->enum_values, text);

	if (idx < 0) {
		report(ld, i, "\"%s\" is not one of %s", shown, opt->enum_values);
		return;
	}
	*(int *)((char *)ld->refs[i].base + opt->offset) = idx;
}

/* Checks the length and characters of a STRING or URL; returns 0 or -1 (reported). */
static int
check_text(struct loader *ld, size_t i, const char *text, const char *shown)
{
	const struct upmon_config_opt *opt = ld->refs[i].opt;
	size_t max = opt->max > 0 ? (size_t)opt->max : 4096;
	size_t len = strlen(text);

	if (len > max) {
		report(ld, i, "value is %zu characters long, the maximum is %zu", len, max);
		return -1;
	}
	if (has_control(text)) {
		report(ld, i, "\"%s\" contains control characters", shown);
		return -1;
	}
	if ((opt->flags & UPMON_CFG_REQUIRED) && len == 0) {
		report(ld, i, "not set (required)");
		return -1;
	}
	return 0;
}

static int
check_url(struct loader *ld, size_t i, const char *text, const char *shown)
{
	const struct upmon_config_opt *opt = ld->refs[i].opt;
	const char *sep = strstr(text, "://");
	char scheme[32];
	size_t n;

	if (*text == '\0')
		return 0;
	if (strchr(text, ' ') != NULL) {
		report(ld, i, "\"%s\" contains spaces", shown);
		return -1;
	}
	n = sep != NULL ? (size_t)(sep - text) : 0;
	if (sep == NULL || n == 0 || n >= sizeof(scheme) || sep[3] == '\0') {
		report(ld, i, "\"%s\" is not a URL (expected scheme://...)", shown);
		return -1;
	}
	memcpy(scheme, text, n);
	scheme[n] = '\0';
	if (opt->enum_values != NULL && config_enum_index(opt->enum_values, scheme) < 0) {
		report(ld, i, "\"%s\" has scheme \"%s\", expected %s", shown, scheme,
		    opt->enum_values);
		return -1;
	}
	return 0;
}

/* Parses the final raw text of option i into its field. */
static int
parse_one(struct loader *ld, size_t i)
{
	const struct upmon_config_opt *opt = ld->refs[i].opt;
	const char *text = ld->raw[i].text;
	char shown[96], reason[160];

	if (text == NULL || *text == '\0') {
		text = opt->def != NULL ? opt->def : "";
		ld->raw[i].file = NULL;
	}
	shown_value(opt, text, shown, sizeof(shown));
	switch (opt->type) {
	case UPMON_CFG_INT:
		parse_int(ld, i, text, shown);
		return 0;
	case UPMON_CFG_BOOL:
		parse_bool(ld, i, text, shown);
		return 0;
	case UPMON_CFG_ENUM:
		parse_enum(ld, i, text, shown);
		return 0;
	case UPMON_CFG_URL:
	case UPMON_CFG_STRING:
		if (check_text(ld, i, text, shown) < 0)
			break;
		if (opt->type == UPMON_CFG_URL && check_url(ld, i, text, shown) < 0)
			break;
		if (opt->check != NULL && *text != '\0' &&
		    opt->check(text, reason, sizeof(reason)) < 0) {
			report(ld, i, "\"%s\" %s", shown, reason);
			break;
		}
		return store_string(ld->refs[i].base, opt->offset, text);
	}
	/* A bad string still leaves a valid (default or empty) string in the field. */
	return store_string(ld->refs[i].base, opt->offset, "");
}

static size_t
find_opt(const struct loader *ld, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ld->n; i++)
		if (strlen(ld->refs[i].opt->name) == len &&
		    strncmp(ld->refs[i].opt->name, name, len) == 0)
			return i;
	return SIZE_MAX;
}

static int
ignored(const char *const *list, const char *name, size_t len)
{
	size_t k, n;

	for (k = 0; list != NULL && list[k] != NULL; k++) {
		n = strlen(list[k]);
		if (n > 0 && list[k][n - 1] == '*') {
			if (len >= n - 1 && strncmp(name, list[k], n - 1) == 0)
				return 1;
		} else if (n == len && strncmp(name, list[k], n) == 0) {
			return 1;
		}
	}
	return 0;
}

/* Edit distance between a (length la) and b, both at most CONFIG_NAME_MAX long. */
static size_t
edit_distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b), prev[CONFIG_NAME_MAX + 1], cur[CONFIG_NAME_MAX + 1];
	size_t x, y;

	if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
		return SIZE_MAX;
	for (y = 0; y <= lb; y++)
		prev[y] = y;
	for (x = 1; x <= la; x++) {
		cur[0] = x;
		for (y = 1; y <= lb; y++) {
			size_t del = prev[y] + 1, ins = cur[y - 1] + 1;
			size_t sub = prev[y - 1] + (a[x - 1] != b[y - 1]);

			cur[y] = del < ins ? del : ins;
			if (sub < cur[y])
				cur[y] = sub;
		}
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb];
}

/*
 * Every UPMON_<SERVICE>_* name belongs to that service. Services share one environment (the
 * local stack, a Kubernetes ConfigMap), so a program ignores the prefixes of services whose
 * options it does not load; names under its own prefixes are still checked for typos there.
 */
static const char *const service_prefixes[] = {
	"UPMON_SCHEDULER_", "UPMON_PROBE_", "UPMON_GATEWAY_", "UPMON_MAILER_", "UPMON_CTL_",
	NULL,
};

static int
other_service(const struct loader *ld, const char *name, size_t len)
{
	size_t k, i, n;

	for (k = 0; service_prefixes[k] != NULL; k++) {
		n = strlen(service_prefixes[k]);
		if (len < n || strncmp(name, service_prefixes[k], n) != 0)
			continue;
		for (i = 0; i < ld->n; i++)
			if (strncmp(ld->refs[i].opt->name, service_prefixes[k], n) == 0)
				return 0;
		return 1;
	}
	return 0;
}

/* Warns about a name no table knows, suggesting the closest known name. */
static void
warn_unknown(struct loader *ld, const char *name, size_t len, const char *where, int line)
{
	size_t i, best = SIZE_MAX, best_d = 3;
	char shown[96], copy[CONFIG_NAME_MAX + 1];

	if (ignored(builtin_ignore, name, len) || ignored(ld->ignore, name, len) ||
	    other_service(ld, name, len))
		return;
	for (i = 0; i < ld->n; i++) {
		size_t d = edit_distance(name, len, ld->refs[i].opt->name);

		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	snprintf(copy, sizeof(copy), "%.*s", (int)(len < CONFIG_NAME_MAX ? len : CONFIG_NAME_MAX),
	    name);
	printable(copy, shown, sizeof(shown));
	fprintf(ld->diag, "config: warning: %s is not a known setting", shown);
	if (best != SIZE_MAX)
		fprintf(ld->diag, " (did you mean %s?)", ld->refs[best].opt->name);
	if (where != NULL)
		fprintf(ld->diag, " (in %s line %d)", where, line);
	fputc('\n', ld->diag);
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Handles one line of the file (modified in place; raw values point into it). */
static void
file_line(struct loader *ld, const char *path, int lineno, char *line)
{
	char *eq, *name, *value;
	size_t i, vlen;

	line = trim(line);
	if (*line == '\0' || *line == '#')
		return;
	if (strncmp(line, "export ", 7) == 0)
		line = trim(line + 7);
	eq = strchr(line, '=');
	if (eq == NULL || eq == line) {
		fprintf(ld->diag, "config: %s line %d: expected NAME=value\n", path, lineno);
		ld->errors++;
		return;
	}
	*eq = '\0';
	name = trim(line);
	value = trim(eq + 1);
	vlen = strlen(value);
	if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
		value[vlen - 1] = '\0';
		value++;
	}
	i = find_opt(ld, name, strlen(name));
	if (i == SIZE_MAX) {
		warn_unknown(ld, name, strlen(name), path, lineno);
		return;
	}
	ld->raw[i].text = value;
	ld->raw[i].file = path;
	ld->raw[i].line = lineno;
}

/* Reads the whole file into a heap buffer (caller frees) and applies its lines. */
static int
load_file(struct loader *ld, const char *path, char **bufp)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL, *line, *nl;
	size_t n;
	int lineno = 0, rc = 0;

	if (f == NULL) {
		rc = errno == ENOENT ? -ENOENT : -EIO;
		fprintf(ld->diag, "config: cannot read %s: %s\n", path, strerror(errno));
		goto out;
	}
	if ((buf = malloc(CONFIG_FILE_MAX + 1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f) || n > CONFIG_FILE_MAX || memchr(buf, '\0', n) != NULL) {
		fprintf(ld->diag, "config: cannot read %s: %s\n", path, ferror(f) ?
		    "read error" : n > CONFIG_FILE_MAX ? "larger than 1 MiB" : "binary file");
		rc = -EIO;
		goto out;
	}
	buf[n] = '\0';
	for (line = buf; line != NULL; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		file_line(ld, path, ++lineno, line);
	}
out:
	if (f != NULL)
		fclose(f);
	*bufp = buf;
	return rc;
}

static const char *
env_get(char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

static void
load_env(struct loader *ld, char *const *envp)
{
	for (; *envp != NULL; envp++) {
		const char *eq = strchr(*envp, '=');
		size_t i;

		if (strncmp(*envp, "UPMON_", 6) != 0 || eq == NULL)
			continue;
		i = find_opt(ld, *envp, (size_t)(eq - *envp));
		if (i == SIZE_MAX) {
			warn_unknown(ld, *envp, (size_t)(eq - *envp), NULL, 0);
			continue;
		}
		ld->raw[i].text = eq + 1;
		ld->raw[i].file = NULL;
	}
}

/* Builds the flat list of options; a name defined twice is a programming error. */
static int
collect(struct loader *ld, const struct upmon_config_table *tables, size_t ntables)
{
	size_t t, k, total = 0;

	for (t = 0; t < ntables; t++)
		total += tables[t].nopts;
	ld->refs = calloc(total ? total : 1, sizeof(*ld->refs));
	ld->raw = calloc(total ? total : 1, sizeof(*ld->raw));
	if (ld->refs == NULL || ld->raw == NULL)
		return -ENOMEM;
	for (t = 0; t < ntables; t++) {
		for (k = 0; k < tables[t].nopts; k++) {
			const char *name = tables[t].opts[k].name;

			if (find_opt(ld, name, strlen(name)) != SIZE_MAX) {
				fprintf(ld->diag, "config: %s: defined twice\n", name);
				ld->errors++;
				continue;
			}
			ld->refs[ld->n].opt = &tables[t].opts[k];
			ld->refs[ld->n].base = tables[t].base;
			ld->n++;
		}
	}
	return 0;
}

int
upmon_config_load(const struct upmon_config_table *tables, size_t ntables,
    const struct upmon_config_source *src)
{
	static const struct upmon_config_source none = { 0 };
	struct loader ld = { 0 };
	char *const *envp;
	const char *file;
	char *filebuf = NULL;
	size_t i, t;
	int rc;

	if (src == NULL)
		src = &none;
	envp = src->envp != NULL ? src->envp : environ;
	ld.diag = src->diag != NULL ? src->diag : stderr;
	ld.ignore = src->ignore;
	if ((rc = collect(&ld, tables, ntables)) < 0)
		goto out;
	file = src->file != NULL ? src->file : env_get(envp, "UPMON_CONFIG_FILE");
	if (file != NULL && *file != '\0' && (rc = load_file(&ld, file, &filebuf)) < 0)
		goto out;
	load_env(&ld, envp);
	for (i = 0; i < ld.n; i++)
		if ((rc = parse_one(&ld, i)) < 0)
			goto out;
	for (t = 0; t < ntables && ld.errors == 0; t++)
		if (tables[t].validate != NULL)
			ld.errors += tables[t].validate(tables[t].base, ld.diag);
	rc = ld.errors > 0 ? -EINVAL : 0;
out:
	free(filebuf);
	free(ld.refs);
	free(ld.raw);
	return rc;
}

void
upmon_config_release(const struct upmon_config_table *tables, size_t ntables)
{
	size_t t, k;

	for (t = 0; t < ntables; t++) {
		for (k = 0; k < tables[t].nopts; k++) {
			const struct upmon_config_opt *opt = &tables[t].opts[k];
			char **field;

			if (opt->type != UPMON_CFG_STRING && opt->type != UPMON_CFG_URL)
				continue;
			field = (char **)((char *)tables[t].base + opt->offset);
			free(*field);
			*field = NULL;
		}
	}
}
