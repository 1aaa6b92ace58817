/*
 * `upmonctl migrate`: applies the numbered files of sql/ in order, each in its own transaction
 * together with its schema_migrations row, under a session advisory lock so that two
 * migrators never interleave. Applied files must not change (SHA-256 checked).
 */
#include "upmonctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

/* pg_advisory_lock key of a migrate run ("upmon" in ASCII, then 0); upmon_ensure_partitions
 * uses the next number. */
#define CTL_MIGRATE_LOCK "8462358091345920"

static const char bookkeeping_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY CHECK (version > 0),"
    " name text NOT NULL,"
    " checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
    " applied_at timestamptz NOT NULL DEFAULT now())";

const struct ctl_cmd ctl_migrate_cmd = {
	"migrate", ctl_cmd_migrate,
	"[--dir DIR] [--status] [--ahead DAYS] [--wait SECONDS]",
	"apply pending schema migrations (or list them with --status)",
};

int
ctl_migration_parse_name(const char *file, int *version, char *name, size_t namesize)
{
	size_t len = strlen(file), i, nlen;
	int v = 0;

	if (len < 4 || strcmp(file + len - 4, ".sql") != 0)
		return 1;
	if (len < 10 || file[4] != '_')
		return -1;
	for (i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)file[i]))
			return -1;
		v = v * 10 + (file[i] - '0');
	}
	nlen = len - 9;
	if (v < 1 || nlen >= namesize || nlen > 100)
		return -1;
	for (i = 5; i < len - 4; i++) {
		char c = file[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return -1;
	}
	memcpy(name, file + 5, nlen);
	name[nlen] = '\0';
	*version = v;
	return 0;
}

int
ctl_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
	return 0;
}

/* Reads a whole migration file; refuses oversized files and NUL bytes. */
static int
read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	FILE *f = NULL;
	struct stat st;
	char *buf = NULL;
	size_t n;
	int rc = -1;

	*out = NULL;
	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CTL_MIGRATION_MAX_BYTES) {
		snprintf(err, errlen, "%s is not a regular file of at most %d bytes", path,
		    CTL_MIGRATION_MAX_BYTES);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size || ferror(f)) {
		snprintf(err, errlen, "cannot read %s", path);
		goto out;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n) != NULL) {
		snprintf(err, errlen, "%s contains a NUL byte", path);
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

static int
cmp_version(const void *a, const void *b)
{
	const struct ctl_migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

void
ctl_migration_set_release(struct ctl_migration_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->v[i].sql);
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

/* Adds one file of dir to set. */
static int
load_one(const char *dir, const char *file, int version, const char *name,
    struct ctl_migration_set *set, char *err, size_t errlen)
{
	struct ctl_migration *grown, *m;
	char path[4096];
	size_t len;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "path too long: %s", dir);
		return -1;
	}
	if ((grown = realloc(set->v, (set->n + 1) * sizeof(*grown))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	set->v = grown;
	m = &set->v[set->n];
	memset(m, 0, sizeof(*m));
	m->version = version;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->file, sizeof(m->file), "%s", file);
	if (read_file(path, &m->sql, &len, err, errlen) != 0)
		return -1;
	set->n++;
	if (ctl_sha256_hex(m->sql, len, m->checksum) != 0) {
		snprintf(err, errlen, "cannot compute the checksum of %s", file);
		return -1;
	}
	return 0;
}

int
ctl_migration_load_dir(const char *dir, struct ctl_migration_set *set, char *err,
    size_t errlen)
{
	DIR *d;
	struct dirent *de;
	char name[101];
	size_t i;
	int version, rc = 0;

	set->v = NULL;
	set->n = 0;
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "cannot open migration directory %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		switch (ctl_migration_parse_name(de->d_name, &version, name, sizeof(name))) {
		case 1:
			continue;
		case -1:
			snprintf(err, errlen, "bad migration file name %s (want NNNN_name.sql, "
			    "name of a-z 0-9 _)", de->d_name);
			rc = -1;
			continue;
		}
		rc = load_one(dir, de->d_name, version, name, set, err, errlen);
	}
	closedir(d);
	if (rc != 0)
		return rc;
	qsort(set->v, set->n, sizeof(*set->v), cmp_version);
	for (i = 1; i < set->n; i++) {
		if (set->v[i].version == set->v[i - 1].version) {
			snprintf(err, errlen, "%s and %s have the same version", set->v[i - 1].file,
			    set->v[i].file);
			return -1;
		}
	}
	return 0;
}

static struct ctl_migration *
find_version(struct ctl_migration_set *set, int version)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->v[i].version == version)
			return &set->v[i];
	return NULL;
}

/*
 * Reads schema_migrations (if it exists) into set and checks it against the files: every
 * applied version must have its file, unchanged, and no pending file may sit below an applied
 * one. Returns 0, or CTL_EXIT_FAIL after printing the first problem.
 */
static int
check_applied(struct upmon_db *db, struct ctl_migration_set *set, int *latest)
{
	struct upmon_db_error err;
	struct ctl_migration *m;
	PGresult *res = NULL;
	int64_t v;
	int i, rc = CTL_EXIT_FAIL;
	size_t k;

	*latest = 0;
	if (upmon_db_query(db, UPMON_DB_IDEMPOTENT, "SELECT version, checksum, "
	    "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"') "
	    "FROM schema_migrations ORDER BY version", 0, NULL, &res, &err) != 0) {
		if (strcmp(err.sqlstate, "42P01") == 0)
			return 0;	/* never migrated */
		return ctl_fail("migrate", "cannot read schema_migrations: %s", err.message);
	}
	for (i = 0; i < PQntuples(res); i++) {
		if (upmon_db_int64(res, i, 0, &v) != 0 || v < 1 || v > 9999) {
			ctl_fail("migrate", "schema_migrations holds a bad version");
			goto out;
		}
		if ((m = find_version(set, (int)v)) == NULL) {
			ctl_fail("migrate", "applied migration %04d has no file in the migration "
			    "directory (is this upmonctl older than the database?)", (int)v);
			goto out;
		}
		m->applied = 1;
		snprintf(m->applied_checksum, sizeof(m->applied_checksum), "%s",
		    upmon_db_value(res, i, 1) != NULL ? upmon_db_value(res, i, 1) : "");
		snprintf(m->applied_at, sizeof(m->applied_at), "%s",
		    upmon_db_value(res, i, 2) != NULL ? upmon_db_value(res, i, 2) : "");
		if ((int)v > *latest)
			*latest = (int)v;
	}
	rc = 0;
out:
	PQclear(res);
	for (k = 0; rc == 0 && k < set->n; k++) {
		m = &set->v[k];
		if (m->applied && strcmp(m->applied_checksum, m->checksum) != 0)
			rc = ctl_fail("migrate", "checksum mismatch for applied migration %s "
			    "(applied %.12s, file %.12s): applied migrations must not change; "
			    "add a new one instead", m->file, m->applied_checksum, m->checksum);
		else if (!m->applied && m->version < *latest)
			rc = ctl_fail("migrate", "%s is pending but the later migration %04d is "
			    "already applied", m->file, *latest);
	}
	return rc;
}

/* Waits up to wait_s seconds for the migrate lock of this database. */
static int
take_lock(struct upmon_db *db, int wait_s)
{
	const char *params[1] = { CTL_MIGRATE_LOCK };
	struct upmon_db_error err;
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	PGresult *res = NULL;
	long waited_ms = 0;
	int got, said = 0;

	for (;;) {
		if (upmon_db_query(db, 0, "SELECT pg_try_advisory_lock($1::bigint)", 1, params,
		    &res, &err) != 0)
			return ctl_fail("migrate", "cannot take the migration lock: %s",
			    err.message);
		got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got)
			return 0;
		if (waited_ms >= (long)wait_s * 1000)
			return ctl_fail("migrate", "another migrate has held the lock for %d s; "
			    "giving up", wait_s);
		if (!said++)
			fprintf(stderr, "upmonctl migrate: waiting for another migrate to finish\n");
		nanosleep(&pause, NULL);
		waited_ms += 100;
	}
}

/* Runs one migration and records it, in one transaction. */
static int
apply_one(struct upmon_db *db, const struct ctl_migration *m, struct upmon_db_error *err)
{
	char ver[16];
	const char *params[3] = { ver, m->name, m->checksum };
	int rc;

	snprintf(ver, sizeof(ver), "%d", m->version);
	if ((rc = upmon_db_begin(db, err)) != 0)
		return rc;
	if ((rc = upmon_db_exec_script(db, m->sql, err)) != 0)
		goto rollback;
	if (PQtransactionStatus(upmon_db_pgconn(db)) != PQTRANS_INTRANS) {
		snprintf(err->message, sizeof(err->message), "the file ends the transaction "
		    "itself (BEGIN/COMMIT are not allowed in migrations)");
		err->sqlstate[0] = '\0';
		rc = UPMON_DB_E_INVALID;
		goto rollback;
	}
	if ((rc = upmon_db_query(db, 0, "INSERT INTO schema_migrations (version, name, checksum) "
	    "VALUES ($1, $2, $3)", 3, params, NULL, err)) != 0)
		goto rollback;
	return upmon_db_commit(db, err);
rollback:
	upmon_db_rollback(db, NULL);
	return rc;
}

static int
ensure_partitions(struct upmon_db *db, int ahead, int *created)
{
	char n[16];
	const char *params[1] = { n };
	struct upmon_db_error err;
	PGresult *res = NULL;
	int64_t v = 0;

	*created = -1;
	snprintf(n, sizeof(n), "%d", ahead);
	if (upmon_db_query(db, 0, "SELECT CASE WHEN to_regprocedure("
	    "'upmon_ensure_partitions(integer)') IS NULL THEN -1 "
	    "ELSE upmon_ensure_partitions($1::integer) END", 1, params, &res, &err) != 0)
		return ctl_fail("migrate", "creating partitions failed: %s", err.message);
	if (upmon_db_int64(res, 0, 0, &v) == 0)
		*created = (int)v;
	PQclear(res);
	return 0;
}

static int
migrate_status(struct ctl_migration_set *set, int rc)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		const struct ctl_migration *m = &set->v[i];

		if (!m->applied)
			printf("%-40s pending\n", m->file);
		else if (strcmp(m->applied_checksum, m->checksum) != 0)
			printf("%-40s CHANGED since applied %s\n", m->file, m->applied_at);
		else
			printf("%-40s applied %s\n", m->file, m->applied_at);
	}
	return rc;
}

static int
migrate_run(struct upmon_db *db, struct ctl_migration_set *set, int ahead)
{
	struct upmon_db_error err;
	uint64_t gen;
	size_t i;
	int rc, latest, applied = 0, created;

	if ((rc = upmon_db_query(db, UPMON_DB_IDEMPOTENT, bookkeeping_sql, 0, NULL, NULL,
	    &err)) != 0)
		return ctl_fail("migrate", "cannot create schema_migrations: %s", err.message);
	if ((rc = check_applied(db, set, &latest)) != 0)
		return rc;
	/* the advisory lock belongs to this connection: a reconnect would lose it */
	gen = upmon_db_generation(db);
	for (i = 0; i < set->n; i++) {
		struct ctl_migration *m = &set->v[i];

		if (m->applied)
			continue;
		if (upmon_db_generation(db) != gen || !upmon_db_connected(db))
			return ctl_fail("migrate", "lost the database connection before %s; "
			    "run migrate again", m->file);
		if ((rc = apply_one(db, m, &err)) != 0)
			return ctl_fail("migrate", "%s failed: %s%s%s%s", m->file, err.message,
			    err.sqlstate[0] ? " (SQLSTATE " : "", err.sqlstate,
			    err.sqlstate[0] ? ")" : "");
		m->applied = 1;
		latest = m->version;
		applied++;
		printf("applied %s\n", m->file);
	}
	if (ahead >= 0 && (rc = ensure_partitions(db, ahead, &created)) != 0)
		return rc;
	if (applied == 0)
		printf("schema up to date at version %04d\n", latest);
	else
		printf("schema migrated to version %04d (%d applied)\n", latest, applied);
	return CTL_EXIT_OK;
}

int
ctl_cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "status", no_argument, NULL, 's' },
		{ "ahead", required_argument, NULL, 'a' },
		{ "wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_migration_set set = { NULL, 0 };
	struct upmon_db *db = NULL;
	const char *dir = NULL;
	char err[512];
	int c, status = 0, ahead = 7, wait_s = 300, latest, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":D:sa:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 's':
			status = 1;
			break;
		case 'a':
			if (ctl_parse_int(optarg, 0, 366, &ahead) != 0)
				return ctl_usage(&ctl_migrate_cmd, "--ahead wants 0..366 days");
			break;
		case 'w':
			if (ctl_parse_int(optarg, 0, 86400, &wait_s) != 0)
				return ctl_usage(&ctl_migrate_cmd, "--wait wants 0..86400 seconds");
			break;
		case 'h':
			printf("usage: upmonctl migrate %s\n", ctl_migrate_cmd.usage);
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage(&ctl_migrate_cmd, "%s needs a value", argv[optind - 1]);
		default:
			return ctl_usage(&ctl_migrate_cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage(&ctl_migrate_cmd, "unexpected argument %s", argv[optind]);
	dir = ctl_sql_dir(ctl, dir);
	if (ctl_migration_load_dir(dir, &set, err, sizeof(err)) != 0) {
		rc = ctl_fail("migrate", "%s", err);
		goto out;
	}
	if (set.n == 0) {
		rc = ctl_fail("migrate", "no migrations in %s", dir);
		goto out;
	}
	/* migrations may run long: no statement timeout for this session */
	if ((rc = ctl_db_open(ctl, "migrate", 0, &db)) != 0)
		goto out;
	if (status) {
		rc = check_applied(db, &set, &latest);
		rc = migrate_status(&set, rc);
		goto out;
	}
	if ((rc = take_lock(db, wait_s)) != 0)
		goto out;
	rc = migrate_run(db, &set, ahead);
out:
	/* closing the session releases the advisory lock */
	upmon_db_free(db);
	ctl_migration_set_release(&set);
	return rc;
}
