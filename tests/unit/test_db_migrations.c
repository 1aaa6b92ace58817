/* upmonctl's migration file rules: names, ordering, checksums, refusals. No server. */
#include "test.h"
#include "upmonctl.h"

#include <stdlib.h>
#include <unistd.h>

static void
test_parse_name(void)
{
	char name[101];
	int v = 0;

	CHECK_EQ(ctl_migration_parse_name("0001_users.sql", &v, name, sizeof(name)), 0);
	CHECK_EQ(v, 1);
	CHECK_STR(name, "users");
	CHECK_EQ(ctl_migration_parse_name("0042_a_b_9.sql", &v, name, sizeof(name)), 0);
	CHECK_EQ(v, 42);
	CHECK_STR(name, "a_b_9");
	CHECK_EQ(ctl_migration_parse_name("README.md", &v, name, sizeof(name)), 1);
	CHECK_EQ(ctl_migration_parse_name(".", &v, name, sizeof(name)), 1);
	CHECK_EQ(ctl_migration_parse_name("0001_x.sql.orig", &v, name, sizeof(name)), 1);
	CHECK_EQ(ctl_migration_parse_name("1_users.sql", &v, name, sizeof(name)), -1);
	CHECK_EQ(ctl_migration_parse_name("0000_zero.sql", &v, name, sizeof(name)), -1);
	CHECK_EQ(ctl_migration_parse_name("0001_Users.sql", &v, name, sizeof(name)), -1);
	CHECK_EQ(ctl_migration_parse_name("0001-users.sql", &v, name, sizeof(name)), -1);
	CHECK_EQ(ctl_migration_parse_name("0001_.sql", &v, name, sizeof(name)), -1);
	CHECK_EQ(ctl_migration_parse_name("00a1_x.sql", &v, name, sizeof(name)), -1);
	CHECK_EQ(ctl_migration_parse_name("0001_a b.sql", &v, name, sizeof(name)), -1);
}

static void
test_sha256(void)
{
	char hex[65];

	REQUIRE(ctl_sha256_hex("abc", 3, hex) == 0);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	REQUIRE(ctl_sha256_hex("", 0, hex) == 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void
test_load_dir(void)
{
	char dir[] = "/tmp/upmon-test-migrations-XXXXXX";
	struct ctl_migration_set set;
	char err[512];

	REQUIRE(mkdtemp(dir) != NULL);
	write_file(dir, "0002_second.sql", "SELECT 2;\n");
	write_file(dir, "0001_first.sql", "SELECT 1;\n");
	write_file(dir, "0010_tenth.sql", "SELECT 10;\n");
	write_file(dir, "README.md", "not a migration\n");
	REQUIRE(ctl_migration_load_dir(dir, &set, err, sizeof(err)) == 0);
	REQUIRE(set.n == 3);
	CHECK_EQ(set.v[0].version, 1);
	CHECK_EQ(set.v[1].version, 2);
	CHECK_EQ(set.v[2].version, 10);
	CHECK_STR(set.v[2].file, "0010_tenth.sql");
	CHECK_STR(set.v[2].name, "tenth");
	CHECK_STR(set.v[0].sql, "SELECT 1;\n");
	CHECK_EQ((long long)strlen(set.v[0].checksum), 64);
	CHECK(strcmp(set.v[0].checksum, set.v[1].checksum) != 0);
	ctl_migration_set_release(&set);

	write_file(dir, "0002_again.sql", "SELECT 22;\n");
	CHECK_EQ(ctl_migration_load_dir(dir, &set, err, sizeof(err)), -1);
	CHECK_CONTAINS(err, "same version");
	ctl_migration_set_release(&set);
	test_sh("rm -f %s/0002_again.sql", dir);

	write_file(dir, "3_bad.sql", "SELECT 3;\n");
	CHECK_EQ(ctl_migration_load_dir(dir, &set, err, sizeof(err)), -1);
	CHECK_CONTAINS(err, "bad migration file name 3_bad.sql");
	ctl_migration_set_release(&set);

	CHECK_EQ(ctl_migration_load_dir("/nonexistent/upmon", &set, err, sizeof(err)), -1);
	CHECK_CONTAINS(err, "cannot open migration directory");
	ctl_migration_set_release(&set);
	test_sh("rm -rf %s", dir);
}

static void
test_sql_dir(void)
{
	char *env[] = { "UPMON_SQL_DIR=/from/env", NULL };
	struct upmon_config_source src = { NULL, env, NULL, NULL };
	struct ctl_settings s = { NULL };
	struct upmon_config_table t = ctl_settings_table(&s);
	struct ctl ctl = { NULL, NULL };

	CHECK_STR(ctl_sql_dir(&ctl, "/flag"), "/flag");
	CHECK_CONTAINS(ctl_sql_dir(&ctl, NULL), "/sql");
	/* UPMON_SQL_DIR is a setting of upmonctl's table, loaded like any other */
	REQUIRE(upmon_config_load(&t, 1, &src) == 0);
	ctl.ctl_settings = &s;
	CHECK_STR(ctl_sql_dir(&ctl, NULL), "/from/env");
	CHECK_STR(ctl_sql_dir(&ctl, "/flag"), "/flag");
	upmon_config_release(&t, 1);
}

/* The repository's own migrations obey the rules. */
static void
test_repo_migrations(void)
{
	struct ctl_migration_set set;
	char err[512], dir[1024];

	snprintf(dir, sizeof(dir), "%s/sql", test_env("UPMON_SOURCE_DIR"));
	CHECK_EQ(ctl_migration_load_dir(dir, &set, err, sizeof(err)), 0);
	CHECK_INT(set.n, >=, 3);
	CHECK(set.n > 0 && set.v[0].version == 1);
	ctl_migration_set_release(&set);
}

int
main(void)
{
	RUN(test_parse_name);
	RUN(test_sha256);
	RUN(test_load_dir);
	RUN(test_sql_dir);
	RUN(test_repo_migrations);
	return test_finish();
}
