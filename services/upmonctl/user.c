/*
 * `upmonctl user`: API accounts.
 *
 *   user create --email E [--admin] [--password-file F | --password-stdin] [--if-missing]
 *   user set-password --email E (--password-file F | --password-stdin)
 *
 * Passwords follow the API's rules (8..1024 characters) and are stored as argon2id hashes
 * (upmon/password.h). Without a password option, create generates a random 20-character
 * password and prints it once on stdout. A password file or stdin gives its first line.
 */
#include "upmonctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "upmon/jsonv.h"
#include "upmon/password.h"

#define PW_MIN		8
#define PW_MAX		1024
#define PW_BYTES	(PW_MAX * 4)	/* UTF-8 */
#define PW_GENERATED	20
#define EMAIL_MAX	254

static int ctl_cmd_user(struct ctl *ctl, int argc, char **argv);

const struct ctl_cmd ctl_user_cmd = {
	"user", ctl_cmd_user,
	"create --email E [--admin] [--password-file F | --password-stdin] [--if-missing]\n"
	"      upmonctl user set-password --email E (--password-file F | --password-stdin)",
	"create API accounts, set their passwords",
};

struct user_opts {
	const char *email;
	const char *password_file;
	bool password_stdin;
	bool admin;
	bool if_missing;
};

/* Reads the first line of f (without its CR/LF) into buf. 0, or -1 with why. */
static int
read_line(FILE *f, char *buf, size_t size, const char **why)
{
	size_t n;

	if (fgets(buf, (int)size, f) == NULL) {
		*why = "no password given";
		return -1;
	}
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n == size - 1 && !feof(f)) {
		*why = "password is longer than 1024 characters";
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/* The password from the options, checked. 0 or CTL_EXIT_FAIL (printed). *given false when
 * none was asked for. */
static int
get_password(const char *cmd, const struct user_opts *o, char *buf, size_t size, bool *given)
{
	const char *why = NULL;
	FILE *f;
	int rc;

	*given = false;
	if (o->password_file != NULL) {
		f = fopen(o->password_file, "r");
		if (f == NULL)
			return ctl_fail(cmd, "cannot read %s: %s", o->password_file,
			    strerror(errno));
		rc = read_line(f, buf, size, &why);
		fclose(f);
	} else if (o->password_stdin)
		rc = read_line(stdin, buf, size, &why);
	else
		return 0;
	if (rc == 0 && upmon_jv_check_text(buf, strlen(buf), PW_MIN, PW_MAX, 0, &why) != 0)
		rc = -1;
	if (rc != 0)
		return ctl_fail(cmd, "password %s (8..1024 characters)",
		    why != NULL ? why : "is invalid");
	*given = true;
	return 0;
}

static int
check_email(const char *cmd, const char *email)
{
	const char *why = NULL, *at = strchr(email, '@');

	if (upmon_jv_check_text(email, strlen(email), 3, EMAIL_MAX,
	    UPMON_JV_NO_CTRL, &why) != 0)
		return ctl_fail(cmd, "email %s", why);
	if (strpbrk(email, " \t") != NULL || at == NULL || at == email || at[1] == '\0')
		return ctl_fail(cmd, "email must be an address without spaces");
	return 0;
}

static int
hash_password(const char *cmd, const char *pw, char *hash, size_t size)
{
	if (upmon_password_hash(pw, strlen(pw), hash, size) != 0)
		return ctl_fail(cmd, "cannot hash the password");
	return 0;
}

static int
user_create(struct ctl *ctl, const struct user_opts *o)
{
	char pw[PW_BYTES + 2], hash[UPMON_PASSWORD_HASH_MAX];
	const char *params[3];
	struct upmon_db_error err;
	struct upmon_db *db = NULL;
	PGresult *res = NULL;
	bool given;
	int rc;

	if ((rc = check_email("user create", o->email)) != 0 ||
	    (rc = get_password("user create", o, pw, sizeof(pw), &given)) != 0)
		goto out;
	if (!given && upmon_password_generate(pw, sizeof(pw), PW_GENERATED) != 0) {
		rc = ctl_fail("user create", "cannot generate a password");
		goto out;
	}
	if ((rc = ctl_db_open(ctl, "user create", 30000, &db)) != 0)
		goto out;
	params[0] = o->email;
	if (upmon_db_query(db, 0, "SELECT id FROM users WHERE lower(email) = lower($1)", 1,
	    params, &res, &err) != 0) {
		rc = ctl_fail("user create", "%s", err.message);
		goto out;
	}
	if (PQntuples(res) > 0)
		goto exists;
	PQclear(res);
	res = NULL;
	if ((rc = hash_password("user create", pw, hash, sizeof(hash))) != 0)
		goto out;
	params[1] = hash;
	params[2] = o->admin ? "admin" : "user";
	if (upmon_db_query(db, 0, "INSERT INTO users (email, password_hash, role) "
	    "VALUES ($1, $2, $3) ON CONFLICT ((lower(email))) DO NOTHING RETURNING id", 3,
	    params, &res, &err) != 0) {
		rc = ctl_fail("user create", "%s", err.message);
		goto out;
	}
	if (PQntuples(res) == 0)
		goto exists;
	printf("created user %s (%s, role %s)\n", o->email, PQgetvalue(res, 0, 0), params[2]);
	if (!given)
		printf("password: %s\n", pw);
	rc = CTL_EXIT_OK;
	goto out;
exists:
	if (o->if_missing) {
		printf("user %s exists, unchanged\n", o->email);
		rc = CTL_EXIT_OK;
	} else
		rc = ctl_fail("user create", "user %s already exists", o->email);
out:
	explicit_bzero(pw, sizeof(pw));
	PQclear(res);
	upmon_db_free(db);
	return rc;
}

static int
user_set_password(struct ctl *ctl, const struct user_opts *o)
{
	char pw[PW_BYTES + 2], hash[UPMON_PASSWORD_HASH_MAX];
	const char *params[2];
	struct upmon_db_error err;
	struct upmon_db *db = NULL;
	PGresult *res = NULL;
	bool given;
	int rc;

	if (o->password_file == NULL && !o->password_stdin)
		return ctl_usage(&ctl_user_cmd, "%s needs --password-file or --password-stdin", "set-password");
	if ((rc = get_password("user set-password", o, pw, sizeof(pw), &given)) != 0 ||
	    (rc = hash_password("user set-password", pw, hash, sizeof(hash))) != 0 ||
	    (rc = ctl_db_open(ctl, "user set-password", 30000, &db)) != 0)
		goto out;
	params[0] = o->email;
	params[1] = hash;
	if (upmon_db_query(db, 0, "UPDATE users SET password_hash = $2 "
	    "WHERE lower(email) = lower($1) RETURNING id", 2, params, &res, &err) != 0) {
		rc = ctl_fail("user set-password", "%s", err.message);
		goto out;
	}
	if (PQntuples(res) == 0) {
		rc = ctl_fail("user set-password", "no user %s", o->email);
		goto out;
	}
	printf("password set for %s\n", o->email);
	rc = CTL_EXIT_OK;
out:
	explicit_bzero(pw, sizeof(pw));
	PQclear(res);
	upmon_db_free(db);
	return rc;
}

static int
ctl_cmd_user(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "email", required_argument, NULL, 'e' },
		{ "admin", no_argument, NULL, 'a' },
		{ "password-file", required_argument, NULL, 'f' },
		{ "password-stdin", no_argument, NULL, 's' },
		{ "if-missing", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct user_opts o;
	const char *sub;
	int c;

	memset(&o, 0, sizeof(o));
	if (argc < 2)
		return ctl_usage(&ctl_user_cmd, "missing %s", "create or set-password");
	sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		printf("usage: upmonctl user %s\n", ctl_user_cmd.usage);
		return CTL_EXIT_OK;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, ":e:af:smh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o.email = optarg;
			break;
		case 'a':
			o.admin = true;
			break;
		case 'f':
			o.password_file = optarg;
			break;
		case 's':
			o.password_stdin = true;
			break;
		case 'm':
			o.if_missing = true;
			break;
		case 'h':
			printf("usage: upmonctl user %s\n", ctl_user_cmd.usage);
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage(&ctl_user_cmd, "%s needs a value", argv[optind]);
		default:
			return ctl_usage(&ctl_user_cmd, "unknown option %s", argv[optind]);
		}
	}
	if (optind + 1 < argc)
		return ctl_usage(&ctl_user_cmd, "unexpected argument %s", argv[optind + 1]);
	if (o.email == NULL)
		return ctl_usage(&ctl_user_cmd, "%s is required", "--email");
	if (o.password_file != NULL && o.password_stdin)
		return ctl_usage(&ctl_user_cmd, "%s: give one of --password-file and --password-stdin", sub);
	if (strcmp(sub, "create") == 0)
		return user_create(ctl, &o);
	if (strcmp(sub, "set-password") == 0) {
		if (o.admin || o.if_missing)
			return ctl_usage(&ctl_user_cmd, "%s takes no --admin or --if-missing", "set-password");
		return user_set_password(ctl, &o);
	}
	return ctl_usage(&ctl_user_cmd, "unknown subcommand %s (create, set-password)", sub);
}
