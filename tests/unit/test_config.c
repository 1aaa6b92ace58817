/*
 * config: defaults, file and environment precedence, one line per bad setting, typo
 * warnings, masking of secrets, Markdown output and the shared command line.
 */
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

#include "upmon/config.h"
#include "upmon/log.h"

struct svc_settings {
	bool flag;
	char *token;
	char *name;
	long workers;
	int mode;
};

static const struct upmon_config_opt svc_opts[] = {
	{ "UPMON_TEST_SVC_FLAG", UPMON_CFG_BOOL, 0, 0, "false", NULL, NULL, "A flag.",
	  offsetof(struct svc_settings, flag), 0, NULL },
	{ "UPMON_SVC_TOKEN", UPMON_CFG_STRING, 0, 64, NULL, NULL, NULL, "A secret | token.",
	  offsetof(struct svc_settings, token), UPMON_CFG_SECRET, NULL },
	{ "UPMON_SVC_NAME", UPMON_CFG_STRING, 0, 16, "svc", NULL, NULL, "A name.",
	  offsetof(struct svc_settings, name), UPMON_CFG_REQUIRED, NULL },
	{ "UPMON_SVC_WORKERS", UPMON_CFG_INT, 1, 512, "8", NULL, NULL, "Workers.",
	  offsetof(struct svc_settings, workers), 0, NULL },
	{ "UPMON_SVC_MODE", UPMON_CFG_ENUM, 0, 0, "fast", "fast|safe|slow", NULL, "Mode.",
	  offsetof(struct svc_settings, mode), 0, NULL },
};

struct fixture {
	struct upmon_common_settings common;
	struct svc_settings svc;
	struct upmon_config_table tables[2];
	char *diag;
	size_t diaglen;
};

static void
fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->tables[0] = upmon_common_table(&f->common);
	f->tables[1] = (struct upmon_config_table){ svc_opts,
	    sizeof(svc_opts) / sizeof(svc_opts[0]), &f->svc, NULL };
}

/* Loads from envp (and file), capturing diagnostics in f->diag. */
static int
fixture_load(struct fixture *f, char **envp, const char *file)
{
	struct upmon_config_source src = { 0 };
	FILE *diag;
	int rc;

	free(f->diag);
	f->diag = NULL;
	diag = open_memstream(&f->diag, &f->diaglen);
	REQUIRE(diag != NULL);
	src.envp = envp;
	src.file = file;
	src.diag = diag;
	rc = upmon_config_load(f->tables, 2, &src);
	fclose(diag);
	return rc;
}

static void
fixture_release(struct fixture *f)
{
	upmon_config_release(f->tables, 2);
	free(f->diag);
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; s != NULL && *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
test_defaults(void)
{
	char *env[] = { "PATH=/bin", NULL };
	struct fixture f;

	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, NULL), 0);
	CHECK_STR(f.diag, "");
	CHECK_EQ(f.common.log_level, UPMON_LOG_INFO);
	CHECK_EQ(f.common.log_format, UPMON_LOG_LOGFMT);
	CHECK_STR(f.common.admin_addr, "127.0.0.1");
	CHECK_EQ(f.common.amqp_heartbeat, 30);
	CHECK_EQ(f.common.amqp_queue_type, UPMON_QUEUE_QUORUM);
	CHECK_EQ(f.common.max_message_bytes, 65536);
	CHECK_CONTAINS(f.common.pg_url, "postgresql://");
	CHECK_EQ(f.svc.flag, false);
	CHECK_STR(f.svc.token, "");
	CHECK_STR(f.svc.name, "svc");
	CHECK_EQ(f.svc.workers, 8);
	fixture_release(&f);
}

static void
test_environment(void)
{
	char *env[] = { "UPMON_LOG_LEVEL=debug", "UPMON_LOG_FORMAT=json",
		"UPMON_AMQP_HEARTBEAT=600", "UPMON_AMQP_QUEUE_TYPE=classic",
		"UPMON_TEST_SVC_FLAG=yes", "UPMON_SVC_TOKEN=s3cret", "UPMON_SVC_WORKERS=-0",
		"UPMON_SVC_MODE=slow", "UPMON_ADMIN_PORT=", NULL };
	struct fixture f;

	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, NULL), -EINVAL);
	CHECK_STR(f.diag, "config: UPMON_SVC_WORKERS: -0 is below the minimum 1\n");
	fixture_release(&f);

	env[6] = "UPMON_SVC_WORKERS=512";
	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, NULL), 0);
	CHECK_STR(f.diag, "");
	CHECK_EQ(f.common.log_level, UPMON_LOG_DEBUG);
	CHECK_EQ(f.common.log_format, UPMON_LOG_JSON);
	CHECK_EQ(f.common.amqp_heartbeat, 600);
	CHECK_EQ(f.common.amqp_queue_type, UPMON_QUEUE_CLASSIC);
	CHECK_EQ(f.common.admin_port, 0); /* empty means default */
	CHECK_EQ(f.svc.flag, true);
	CHECK_STR(f.svc.token, "s3cret");
	CHECK_EQ(f.svc.workers, 512);
	CHECK_EQ(f.svc.mode, 2);
	/* loading again replaces the strings without leaking them */
	CHECK_EQ(fixture_load(&f, env, NULL), 0);
	CHECK_STR(f.svc.token, "s3cret");
	fixture_release(&f);
}

static void
test_every_bad_setting_reported(void)
{
	char *env[] = { "UPMON_AMQP_HEARTBEAT=99999", "UPMON_LOG_LEVEL=verbose",
		"UPMON_ADMIN_PORT=80x", "UPMON_AMQP_URL=http://user:pw@host/",
		"UPMON_REDIS_TIMEOUT_MS=1.5", "UPMON_PG_CONNECT_TIMEOUT=0",
		"UPMON_TEST_SVC_FLAG=maybe", "UPMON_SVC_TOKEN=0123456789012345678901234567890"
		"12345678901234567890123456789012345", "UPMON_SVC_NAME=a\tb",
		"UPMON_ADMIN_ADDR=localhost", "UPMON_PG_URL=nourl",
		"UPMON_SVC_WORKERS=99999999999999999999999", NULL };
	struct fixture f;

	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, NULL), -EINVAL);
	CHECK_CONTAINS(f.diag,
	    "config: UPMON_AMQP_HEARTBEAT: 99999 is above the maximum 600\n");
	CHECK_CONTAINS(f.diag,
	    "config: UPMON_LOG_LEVEL: \"verbose\" is not one of error|warn|info|debug\n");
	CHECK_CONTAINS(f.diag, "config: UPMON_ADMIN_PORT: \"80x\" is not an integer\n");
	CHECK_CONTAINS(f.diag, "config: UPMON_AMQP_URL: \"http://user:***@host/\" has "
	    "scheme \"http\", expected amqp|amqps\n");
	CHECK_CONTAINS(f.diag, "config: UPMON_REDIS_TIMEOUT_MS: \"1.5\" is not an integer\n");
	CHECK_CONTAINS(f.diag, "config: UPMON_PG_CONNECT_TIMEOUT: 0 is below the minimum 1\n");
	CHECK_CONTAINS(f.diag,
	    "config: UPMON_TEST_SVC_FLAG: \"maybe\" is not a boolean (true|false)\n");
	CHECK_CONTAINS(f.diag, "config: UPMON_SVC_TOKEN: value is 66 characters long, "
	    "the maximum is 64\n");
	CHECK_CONTAINS(f.diag,
	    "config: UPMON_SVC_NAME: \"a?b\" contains control characters\n");
	CHECK_CONTAINS(f.diag,
	    "config: UPMON_ADMIN_ADDR: \"localhost\" is not an IPv4 address\n");
	CHECK_CONTAINS(f.diag,
	    "config: UPMON_PG_URL: \"nourl\" is not a URL (expected scheme://...)\n");
	CHECK_CONTAINS(f.diag, "config: UPMON_SVC_WORKERS: 99999999999999999999999 is above "
	    "the maximum 512\n");
	CHECK_EQ(count_lines(f.diag), 12);
	/* no secret ever appears in a diagnostic */
	CHECK(strstr(f.diag, "0123456789") == NULL);
	CHECK(strstr(f.diag, "pw") == NULL);
	fixture_release(&f);
}

static void
test_cross_field_and_required(void)
{
	char *env[] = { "UPMON_RETRY_BASE_MS=5000", "UPMON_RETRY_MAX_MS=1000", NULL };
	char *env2[] = { "UPMON_SVC_NAME=", NULL };
	struct upmon_config_opt req = svc_opts[2];
	struct fixture f;

	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, NULL), -EINVAL);
	CHECK_STR(f.diag, "config: UPMON_RETRY_BASE_MS: 5000 is above UPMON_RETRY_MAX_MS 1000\n");
	fixture_release(&f);

	/* a required option without a default */
	req.def = NULL;
	fixture_init(&f);
	f.tables[1].opts = &req;
	f.tables[1].nopts = 1;
	CHECK_EQ(fixture_load(&f, env2, NULL), -EINVAL);
	CHECK_STR(f.diag, "config: UPMON_SVC_NAME: not set (required)\n");
	fixture_release(&f);
}

static void
test_unknown_variables_warn(void)
{
	char *env[] = { "UPMON_AMQP_HEARTBEAD=10", "UPMON_ENTIRELY_ELSE=1",
		"UPMON_STATE_DIR=/tmp/x", "UPMON_TEST_STACK_FILE=/x", "UPMON_OTHER_SVC_X=1",
		"NOT_UPMON=1", NULL };
	const char *ignore[] = { "UPMON_OTHER_SVC_*", NULL };
	struct upmon_config_source src = { 0 };
	struct fixture f;
	FILE *diag;

	fixture_init(&f);
	diag = open_memstream(&f.diag, &f.diaglen);
	src.envp = env;
	src.diag = diag;
	src.ignore = ignore;
	CHECK_EQ(upmon_config_load(f.tables, 2, &src), 0);
	fclose(diag);
	CHECK_CONTAINS(f.diag, "config: warning: UPMON_AMQP_HEARTBEAD is not a known setting "
	    "(did you mean UPMON_AMQP_HEARTBEAT?)\n");
	CHECK_CONTAINS(f.diag, "config: warning: UPMON_ENTIRELY_ELSE is not a known setting\n");
	CHECK_EQ(count_lines(f.diag), 2);
	CHECK_EQ(f.common.amqp_heartbeat, 30);
	fixture_release(&f);
}

/* Another service's UPMON_<SERVICE>_* names are not warned about; a program's own prefix is. */
static void
test_other_services_prefixes(void)
{
	char *env[] = { "UPMON_PROBE_THREADS=4", "UPMON_GATEWAY_PORT=1", "UPMON_MAILER_X=1",
		"UPMON_SCHEDULER_RECONCILE_S=5", NULL };
	static const struct upmon_config_opt own = { "UPMON_SCHEDULER_RECONCILE", UPMON_CFG_INT,
		0, 10, "1", NULL, NULL, "x", 0, 0, NULL };
	struct upmon_config_source src = { 0 };
	struct upmon_config_table t[2];
	struct fixture f;
	long value = 0;
	FILE *diag;

	fixture_init(&f);
	diag = open_memstream(&f.diag, &f.diaglen);
	src.envp = env;
	src.diag = diag;
	t[0] = f.tables[0];
	t[1].opts = &own;
	t[1].nopts = 1;
	t[1].base = &value;
	t[1].validate = NULL;
	CHECK_EQ(upmon_config_load(t, 2, &src), 0);
	fclose(diag);
	CHECK_STR(f.diag, "config: warning: UPMON_SCHEDULER_RECONCILE_S is not a known setting "
	    "(did you mean UPMON_SCHEDULER_RECONCILE?)\n");
	fixture_release(&f);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	REQUIRE(fp != NULL);
	fputs(text, fp);
	fclose(fp);
}

static void
test_file(void)
{
	char path[] = "/tmp/upmon-test-config-XXXXXX";
	char *env[] = { "UPMON_LOG_LEVEL=warn", NULL };
	char *env_file[] = { NULL, NULL };
	char envbuf[128];
	struct fixture f;
	int fd = mkstemp(path);

	REQUIRE(fd >= 0);
	close(fd);
	write_file(path, "# comment\n\n  UPMON_LOG_LEVEL = debug\r\n"
	    "export UPMON_AMQP_HEARTBEAT=45\n"
	    "UPMON_SVC_TOKEN=\"with # hash\"\n"
	    "UPMON_SVC_NAME='quoted'\n"
	    "UPMON_SVC_WORKERS=9\n");
	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, path), 0);
	CHECK_STR(f.diag, "");
	CHECK_EQ(f.common.log_level, UPMON_LOG_WARN); /* the environment wins */
	CHECK_EQ(f.common.amqp_heartbeat, 45);
	CHECK_STR(f.svc.token, "with # hash");
	CHECK_STR(f.svc.name, "quoted");
	CHECK_EQ(f.svc.workers, 9);
	fixture_release(&f);

	/* the file named by UPMON_CONFIG_FILE, with errors naming file and line */
	write_file(path, "UPMON_AMQP_HEARTBEAT=601\nthis is not a setting\nUPMON_SVC_NAMEE=x\n");
	snprintf(envbuf, sizeof(envbuf), "UPMON_CONFIG_FILE=%s", path);
	env_file[0] = envbuf;
	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env_file, NULL), -EINVAL);
	CHECK_CONTAINS(f.diag, "config: UPMON_AMQP_HEARTBEAT: 601 is above the maximum 600 (in ");
	CHECK_CONTAINS(f.diag, " line 1)\n");
	CHECK_CONTAINS(f.diag, " line 2: expected NAME=value\n");
	CHECK_CONTAINS(f.diag, "config: warning: UPMON_SVC_NAMEE is not a known setting "
	    "(did you mean UPMON_SVC_NAME?)");
	CHECK_EQ(count_lines(f.diag), 3);
	fixture_release(&f);

	unlink(path);
	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, path), -ENOENT);
	CHECK_CONTAINS(f.diag, "config: cannot read /tmp/upmon-test-config-");
	fixture_release(&f);
}

static void
test_print_masks_secrets(void)
{
	char *env[] = { "UPMON_AMQP_URL=amqp://upmon:hunter2@mq:5672/%2f",
		"UPMON_PG_URL=postgresql://u:pgpass@db/upmon?sslmode=require&password=qp#x",
		"UPMON_SVC_TOKEN=tok3n", NULL };
	struct fixture f;
	char *out = NULL;
	size_t len;
	FILE *fp;

	fixture_init(&f);
	CHECK_EQ(fixture_load(&f, env, NULL), 0);
	fp = open_memstream(&out, &len);
	upmon_config_print(f.tables, 2, fp);
	fclose(fp);
	CHECK_CONTAINS(out, "UPMON_AMQP_URL=amqp://upmon:***@mq:5672/%2f\n");
	CHECK_CONTAINS(out, "UPMON_PG_URL=postgresql://u:***@db/upmon?sslmode=require"
	    "&password=***#x\n");
	CHECK_CONTAINS(out, "UPMON_SVC_TOKEN=(set)\n");
	CHECK_CONTAINS(out, "UPMON_LOG_LEVEL=info\n");
	CHECK_CONTAINS(out, "UPMON_AMQP_QUEUE_TYPE=quorum\n");
	CHECK_CONTAINS(out, "UPMON_TEST_SVC_FLAG=false\n");
	CHECK(strstr(out, "hunter2") == NULL && strstr(out, "pgpass") == NULL);
	CHECK(strstr(out, "tok3n") == NULL && strstr(out, "=qp") == NULL);
	free(out);
	fixture_release(&f);
}

static void
test_mask_url(void)
{
	char buf[64];

	CHECK_EQ(upmon_config_mask_url("redis://:pw@h:6379/0", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "redis://:***@h:6379/0");
	CHECK_EQ(upmon_config_mask_url("amqp://user@h/", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "amqp://user@h/");
	CHECK_EQ(upmon_config_mask_url("amqp://u:p@ss@h/x@y", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "amqp://u:***@h/x@y");
	CHECK_EQ(upmon_config_mask_url("plain", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "plain");
	CHECK_EQ(upmon_config_mask_url("amqp://u:secret@host-with-a-very-long-name-indeed/",
	    buf, 16), -ENOSPC);
	CHECK_STR(buf, "***");
}

static void
test_parse_long(void)
{
	long v;

	CHECK_EQ(upmon_parse_long("42", 0, 100, &v), 0);
	CHECK_EQ(v, 42);
	CHECK_EQ(upmon_parse_long("-7", -10, 10, &v), 0);
	CHECK_EQ(v, -7);
	CHECK_EQ(upmon_parse_long("", 0, 100, &v), -EINVAL);
	CHECK_EQ(upmon_parse_long(" 1", 0, 100, &v), -EINVAL);
	CHECK_EQ(upmon_parse_long("1 ", 0, 100, &v), -EINVAL);
	CHECK_EQ(upmon_parse_long("0x10", 0, 100, &v), -EINVAL);
	CHECK_EQ(upmon_parse_long("101", 0, 100, &v), -ERANGE);
	CHECK_EQ(upmon_parse_long("-99999999999999999999", 0, 100, &v), -ERANGE);
	CHECK_EQ(upmon_parse_long(NULL, 0, 100, &v), -EINVAL);
}

static void
test_markdown(void)
{
	struct fixture f;
	char *out = NULL;
	size_t len;
	FILE *fp;

	fixture_init(&f);
	fp = open_memstream(&out, &len);
	upmon_config_print_markdown(f.tables, 2, fp);
	fclose(fp);
	CHECK_CONTAINS(out, "| Variable | Type | Default | Description |\n|---|---|---|---|\n");
	CHECK_CONTAINS(out, "| `UPMON_AMQP_HEARTBEAT` | integer 0..600 s | `30` | ");
	CHECK_CONTAINS(out, "| `UPMON_LOG_LEVEL` | one of `error\\|warn\\|info\\|debug` | "
	    "`info` | ");
	CHECK_CONTAINS(out, "| `UPMON_SVC_TOKEN` | secret string | (empty) | A secret \\| "
	    "token. |\n");
	CHECK_EQ(count_lines(out), 2 + (int)upmon_common_nopts + 5);
	free(out);
}

static void
test_cli_parse(void)
{
	char *argv1[] = { "prog", "-dvv", "-c", "/etc/u.conf", "dlq", "list", "-v", NULL };
	char *argv2[] = { "prog", "--check-config", "--config=/x", "-v", "--", "-n", NULL };
	char *argv3[] = { "prog", "-x", NULL };
	char *argv4[] = { "prog", "--bogus", NULL };
	char *argv5[] = { "prog", "-c", NULL };
	char *argv6[] = { "prog", "-nc/y", "--version", "-h", NULL };
	struct upmon_cli cli;
	char *err = NULL;
	size_t len;
	FILE *fp;

	CHECK_EQ(upmon_cli_parse(7, argv1, &cli, NULL), 0);
	CHECK(cli.foreground);
	CHECK_EQ(cli.verbose, 2);
	CHECK_STR(cli.config_file, "/etc/u.conf");
	CHECK_EQ(cli.argc, 3);
	CHECK_STR(cli.argv[0], "dlq");

	CHECK_EQ(upmon_cli_parse(6, argv2, &cli, NULL), 0);
	CHECK(cli.check_config);
	CHECK_STR(cli.config_file, "/x");
	CHECK_EQ(cli.argc, 1);
	CHECK_STR(cli.argv[0], "-n");

	CHECK_EQ(upmon_cli_parse(4, argv6, &cli, NULL), 0);
	CHECK(cli.check_config && cli.version && cli.help);
	CHECK_STR(cli.config_file, "/y");

	fp = open_memstream(&err, &len);
	CHECK_EQ(upmon_cli_parse(2, argv3, &cli, fp), -EINVAL);
	CHECK_EQ(upmon_cli_parse(2, argv4, &cli, fp), -EINVAL);
	CHECK_EQ(upmon_cli_parse(2, argv5, &cli, fp), -EINVAL);
	fclose(fp);
	CHECK_STR(err, "unknown option -x (try --help)\nunknown option --bogus (try --help)\n"
	    "option -c needs a file name\n");
	free(err);
}

static void
test_cli_main(void)
{
	struct upmon_common_settings common = { 0 };
	struct upmon_config_table t = upmon_common_table(&common);
	static const char *const ignore[] = { "UPMON_SMTP_*", NULL };
	struct upmon_cli_info info = { "upmon-test", NULL, "test program", &common.log_level,
		&common.log_format, ignore };
	char *check[] = { "upmon-test", "-n", NULL };
	char *run[] = { "upmon-test", "-v", "sub", NULL };
	char *bad[] = { "upmon-test", "-q", NULL };
	struct upmon_cli cli;

	CHECK_EQ(upmon_cli_main(&info, 2, bad, &t, 1, &cli), 2);

	setenv("UPMON_SMTP_HOST", "127.0.0.1", 1);	/* another program's: ignored */
	setenv("UPMON_AMQP_HEARTBEAT", "99999", 1);
	CHECK_EQ(upmon_cli_main(&info, 2, check, &t, 1, &cli), 1);
	unsetenv("UPMON_AMQP_HEARTBEAT");
	CHECK_EQ(upmon_cli_main(&info, 2, check, &t, 1, &cli), 0);

	setenv("UPMON_LOG_LEVEL", "warn", 1);
	CHECK_EQ(upmon_cli_main(&info, 3, run, &t, 1, &cli), UPMON_CLI_RUN);
	CHECK_EQ(upmon_log_level, UPMON_LOG_INFO); /* warn raised one level by -v */
	CHECK_EQ(cli.argc, 1);
	/* without pointers, the level comes from the tables' UPMON_LOG_LEVEL */
	info.log_level = NULL;
	setenv("UPMON_LOG_LEVEL", "error", 1);
	CHECK_EQ(upmon_cli_main(&info, 1, run, &t, 1, &cli), UPMON_CLI_RUN);
	CHECK_EQ(upmon_log_level, UPMON_LOG_ERROR);
	unsetenv("UPMON_LOG_LEVEL");
	unsetenv("UPMON_SMTP_HOST");
	upmon_config_release(&t, 1);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_environment);
	RUN(test_every_bad_setting_reported);
	RUN(test_cross_field_and_required);
	RUN(test_unknown_variables_warn);
	RUN(test_other_services_prefixes);
	RUN(test_file);
	RUN(test_print_masks_secrets);
	RUN(test_mask_url);
	RUN(test_parse_long);
	RUN(test_markdown);
	RUN(test_cli_parse);
	RUN(test_cli_main);
	return test_finish();
}
