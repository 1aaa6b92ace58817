/*
 * Printing configuration: the effective values (secrets masked), the option tables as
 * Markdown for the README and as plain text for --help.
 */
#include "upmon/config.h"

#include <errno.h>
#include <string.h>

#include "config_int.h"

/* A bounded string builder; overflow is sticky. */
struct sbuf {
	char *buf;
	size_t size, len;
	int overflow;
};

static void
sb_add(struct sbuf *sb, const char *s, size_t n)
{
	if (sb->overflow || sb->len + n + 1 > sb->size) {
		sb->overflow = 1;
		return;
	}
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

/* Appends the query part q ("?a=b&password=x#f") with password values masked. */
static void
mask_query(struct sbuf *sb, const char *q)
{
	while (*q != '\0') {
		size_t n = strcspn(q + 1, "&#") + 1;

		if (strncmp(q + 1, "password=", 9) == 0) {
			sb_add(sb, q, 10);
			sb_add(sb, "***", 3);
		} else {
			sb_add(sb, q, n);
		}
		q += n;
		if (*q == '#') {
			sb_add(sb, q, strlen(q));
			return;
		}
	}
}

int
upmon_config_mask_url(const char *url, char *buf, size_t size)
{
	struct sbuf sb = { buf, size, 0, 0 };
	const char *sep = strstr(url, "://"), *auth, *at = NULL, *colon, *p, *q;
	size_t alen;

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	if (sep == NULL) {
		sb_add(&sb, url, strlen(url));
		goto out;
	}
	auth = sep + 3;
	alen = strcspn(auth, "/?#");
	for (p = auth; p < auth + alen; p++)
		if (*p == '@')
			at = p;
	sb_add(&sb, url, (size_t)(auth - url));
	if (at != NULL && (colon = memchr(auth, ':', (size_t)(at - auth))) != NULL) {
		sb_add(&sb, auth, (size_t)(colon - auth) + 1);
		sb_add(&sb, "***", 3);
		sb_add(&sb, at, (size_t)(auth + alen - at));
	} else {
		sb_add(&sb, auth, alen);
	}
	q = auth + alen;
	p = strchr(q, '?');
	if (p != NULL && (strchr(q, '#') == NULL || p < strchr(q, '#'))) {
		sb_add(&sb, q, (size_t)(p - q));
		mask_query(&sb, p);
	} else {
		sb_add(&sb, q, strlen(q));
	}
out:
	if (sb.overflow) {
		snprintf(buf, size, "***");
		return -ENOSPC;
	}
	return 0;
}

/* Copies the index-th value of "a|b|c" into buf. */
static void
enum_name(const char *values, int index, char *buf, size_t size)
{
	const char *p = values;
	int i;

	for (i = 0; p != NULL && i < index; i++) {
		p = strchr(p, '|');
		if (p != NULL)
			p++;
	}
	if (p == NULL) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, "%.*s", (int)strcspn(p, "|"), p);
}

/* Formats the current value of opt in the settings struct at base, masked. */
static void
format_value(const struct upmon_config_opt *opt, const void *base, char *buf, size_t size)
{
	const char *field = (const char *)base + opt->offset;
	const char *s;

	switch (opt->type) {
	case UPMON_CFG_INT:
		snprintf(buf, size, "%ld", *(const long *)field);
		return;
	case UPMON_CFG_BOOL:
		snprintf(buf, size, "%s", *(const bool *)field ? "true" : "false");
		return;
	case UPMON_CFG_ENUM:
		enum_name(opt->enum_values, *(const int *)field, buf, size);
		return;
	case UPMON_CFG_STRING:
	case UPMON_CFG_URL:
		s = *(char *const *)field;
		if (s == NULL)
			s = "";
		if (opt->flags & UPMON_CFG_SECRET)
			snprintf(buf, size, "%s", *s != '\0' ? "(set)" : "(unset)");
		else if (opt->type == UPMON_CFG_URL)
			upmon_config_mask_url(s, buf, size);
		else
			snprintf(buf, size, "%s", s);
		return;
	}
	snprintf(buf, size, "?");
}

void
upmon_config_print(const struct upmon_config_table *tables, size_t ntables, FILE *out)
{
	char value[4200];
	size_t t, k;

	for (t = 0; t < ntables; t++) {
		for (k = 0; k < tables[t].nopts; k++) {
			format_value(&tables[t].opts[k], tables[t].base, value, sizeof(value));
			fprintf(out, "%s=%s\n", tables[t].opts[k].name, value);
		}
	}
}

/* Describes the type and bounds: "integer 0..600 s", "one of quorum|classic". */
static void
describe_type(const struct upmon_config_opt *opt, char *buf, size_t size, int markdown)
{
	const char *unit = opt->unit != NULL ? opt->unit : "";
	const char *sp = opt->unit != NULL ? " " : "";

	switch (opt->type) {
	case UPMON_CFG_INT:
		snprintf(buf, size, "integer %ld..%ld%s%s", opt->min, opt->max, sp, unit);
		return;
	case UPMON_CFG_BOOL:
		snprintf(buf, size, "boolean");
		return;
	case UPMON_CFG_ENUM:
		snprintf(buf, size, markdown ? "one of `%s`" : "one of %s", opt->enum_values);
		return;
	case UPMON_CFG_URL:
		snprintf(buf, size, "URL (%s)", opt->enum_values ? opt->enum_values : "any");
		return;
	case UPMON_CFG_STRING:
		snprintf(buf, size, "%sstring", (opt->flags & UPMON_CFG_SECRET) ? "secret " : "");
		return;
	}
	snprintf(buf, size, "?");
}

/* Writes s with '|' escaped for a Markdown table cell. */
static void
md_cell(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s, out);
	}
}

void
upmon_config_print_markdown(const struct upmon_config_table *tables, size_t ntables,
    FILE *out)
{
	char type[256];
	size_t t, k;

	fprintf(out, "| Variable | Type | Default | Description |\n");
	fprintf(out, "|---|---|---|---|\n");
	for (t = 0; t < ntables; t++) {
		for (k = 0; k < tables[t].nopts; k++) {
			const struct upmon_config_opt *opt = &tables[t].opts[k];

			describe_type(opt, type, sizeof(type), 1);
			fprintf(out, "| `%s` | ", opt->name);
			md_cell(out, type);
			if (opt->def != NULL && *opt->def != '\0')
				fprintf(out, " | `%s` | ", opt->def);
			else
				fprintf(out, " | %s | ", (opt->flags & UPMON_CFG_REQUIRED) ?
				    "(required)" : "(empty)");
			md_cell(out, opt->help != NULL ? opt->help : "");
			fprintf(out, " |\n");
		}
	}
}

void
upmon_config_print_help(const struct upmon_config_table *tables, size_t ntables, FILE *out)
{
	char type[256];
	size_t t, k;

	fprintf(out, "Configuration (environment variables, or NAME=value lines in the file "
	    "given by -c or UPMON_CONFIG_FILE):\n");
	for (t = 0; t < ntables; t++) {
		for (k = 0; k < tables[t].nopts; k++) {
			const struct upmon_config_opt *opt = &tables[t].opts[k];

			describe_type(opt, type, sizeof(type), 0);
			fprintf(out, "  %-32s %s, default %s\n      %s\n", opt->name, type,
			    opt->def != NULL && *opt->def != '\0' ? opt->def : "(empty)",
			    opt->help != NULL ? opt->help : "");
		}
	}
}
