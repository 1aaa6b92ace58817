/*
 * Accounts: POST /auth/register, POST /auth/login, GET /auth/me (the tokens: token.c).
 *
 * Passwords are argon2id hashes (upmon/password.h). A login for an unknown email still runs
 * one verify (against a dummy hash made once per process) so both failures take about the
 * same time and answer the same body. The per-account limit (UPMON_GATEWAY_RATE_LOGIN_*)
 * counts FAILED logins with gw_rate_hit() on "login:<lowercased email>", and is checked
 * before the password: once the account has used up its failures, even the right password
 * answers 429 until the window ends (gw_rate_check reads the counter without counting).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "upmon/jsonv.h"
#include "upmon/log.h"
#include "upmon/password.h"

#define PASSWORD_MIN	8
#define PASSWORD_MAX	1024

static const char *const auth_keys[] = { "email", "password", NULL };

#define USER_COLS "id::text, email, role, upmon_ts_to_ms(created_at)"

/* ---- helpers --------------------------------------------------------------------------- */

static struct json_object *
user_json(PGresult *res, int row)
{
	struct json_object *u = json_object_new_object();

	json_object_object_add(u, "id", json_object_new_string(PQgetvalue(res, row, 0)));
	json_object_object_add(u, "email", json_object_new_string(PQgetvalue(res, row, 1)));
	json_object_object_add(u, "role", json_object_new_string(PQgetvalue(res, row, 2)));
	json_object_object_add(u, "created_at",
	    upmon_json_time(strtoll(PQgetvalue(res, row, 3), NULL, 10)));
	return u;
}

/* An email as the API accepts it: 3..254 characters, an '@' after the first, no spaces or
 * control characters. Returns 0, or -EINVAL with why. */
static int
email_check(const char *s, const char **why)
{
	const char *at = strchr(s, '@');
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p == ' ' || *p == '\t' || *p == '\v' || *p == '\f' || *p == '\r' ||
		    *p == '\n') {
			*why = "must not contain spaces";
			return -EINVAL;
		}
	if (at == NULL || at == s || at[1] == '\0') {
		*why = "must be an email address";
		return -EINVAL;
	}
	return 0;
}

/* The body's email and password, validated (400 already answered on -EINVAL). minimum
 * lengths apply to registration; a login only needs non-empty strings. */
static int
read_credentials(struct gw_req *r, bool registering, const char **email, const char **pw)
{
	struct upmon_jv v;
	const char *why;
	int rc = 0;

	upmon_jv_init(&v, r->body);
	upmon_jv_allow(&v, auth_keys);
	if (upmon_jv_string(&v, "email", registering ? 3 : 1, GW_EMAIL_MAX,
	    UPMON_JV_REQUIRED | UPMON_JV_NO_CTRL, email) == 0 && registering &&
	    email_check(*email, &why) != 0)
		upmon_jv_fail(&v, "email", "%s", why);
	upmon_jv_string(&v, "password", registering ? PASSWORD_MIN : 1, PASSWORD_MAX,
	    UPMON_JV_REQUIRED, pw);
	if (!upmon_jv_ok(&v)) {
		gw_reply_fields(r, upmon_jv_take_fields(&v));
		rc = -EINVAL;
	}
	upmon_jv_release(&v);
	return rc;
}

static char dummy_hash[UPMON_PASSWORD_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_init(void)
{
	char pw[21];

	if (upmon_password_generate(pw, sizeof(pw), 20) != 0 ||
	    upmon_password_hash(pw, strlen(pw), dummy_hash, sizeof(dummy_hash)) != 0)
		dummy_hash[0] = '\0';
}

/* Same work as checking a real account's password, for an email that has none. */
static void
verify_dummy(const char *pw)
{
	pthread_once(&dummy_once, dummy_init);
	if (dummy_hash[0] != '\0')
		(void)upmon_password_verify(dummy_hash, pw, strlen(pw));
}

/* Counts a failed login, then answers 401 (or 429 when this failure went over the limit). */
static void
reply_bad_login(struct gw_req *r, const char *key)
{
	const struct gw_settings *s = gw_settings(r);

	if (gw_rate_hit(r, key, s->rate_login_account, s->rate_login_window_s) != 0)
		return;
	gw_reply_error(r, 401, "unauthorized", "invalid email or password");
}

/* ---- handlers ---------------------------------------------------------------------------- */

void
gw_auth_register(struct gw_req *r)
{
	char hash[UPMON_PASSWORD_HASH_MAX];
	const char *email, *pw, *params[2];
	struct json_object *out, *err, *fields;
	PGresult *res = NULL;

	if (read_credentials(r, true, &email, &pw) != 0)
		return;
	if (upmon_password_hash(pw, strlen(pw), hash, sizeof(hash)) != 0) {
		log_warnx("register: cannot hash a password");
		gw_reply_error(r, 500, "internal", "internal error");
		return;
	}
	params[0] = email;
	params[1] = hash;
	if (gw_sql(r, 0, "INSERT INTO users (email, password_hash) VALUES ($1, $2) "
	    "ON CONFLICT ((lower(email))) DO NOTHING RETURNING " USER_COLS, 2, params, &res) != 0)
		goto out;
	if (PQntuples(res) == 0) {
		fields = json_object_new_object();
		json_object_object_add(fields, "email",
		    json_object_new_string("is already registered"));
		err = json_object_new_object();
		json_object_object_add(err, "code", json_object_new_string("conflict"));
		json_object_object_add(err, "message",
		    json_object_new_string("email is already registered"));
		json_object_object_add(err, "fields", fields);
		out = json_object_new_object();
		json_object_object_add(out, "error", err);
		gw_reply_json(r, 409, out);
		goto out;
	}
	log_info("registered user %s", PQgetvalue(res, 0, 0));
	out = json_object_new_object();
	json_object_object_add(out, "user", user_json(res, 0));
	gw_reply_json(r, 201, out);
out:
	explicit_bzero(hash, sizeof(hash));
	PQclear(res);
}

void
gw_auth_login(struct gw_req *r)
{
	const struct gw_settings *s = gw_settings(r);
	char key[sizeof("login:") + GW_EMAIL_MAX], *token = NULL;
	const char *email, *pw, *params[1];
	struct json_object *out;
	struct gw_user u;
	PGresult *res = NULL;
	int64_t exp_s;
	size_t i, n;
	int rc;

	if (read_credentials(r, false, &email, &pw) != 0)
		return;
	n = (size_t)snprintf(key, sizeof(key), "login:%s", email);
	for (i = sizeof("login:") - 1; i < n && i < sizeof(key) - 1; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] - 'A' + 'a');
	if (gw_rate_check(r, key, s->rate_login_account, s->rate_login_window_s,
	    "failed logins") != 0)
		return;
	params[0] = email;
	if (gw_sql(r, UPMON_DB_IDEMPOTENT, "SELECT " USER_COLS ", password_hash FROM users "
	    "WHERE lower(email) = lower($1)", 1, params, &res) != 0)
		return;
	gw_db_release(r);	/* argon2 takes ~50 ms: keep the pool free meanwhile */
	if (PQntuples(res) != 1) {
		verify_dummy(pw);
		reply_bad_login(r, key);
		goto out;
	}
	rc = upmon_password_verify(PQgetvalue(res, 0, 4), pw, strlen(pw));
	if (rc == -ENOMEM) {
		gw_reply_error(r, 503, "unavailable", "try again later");
		goto out;
	}
	if (rc == -EINVAL)	/* '!': an account that cannot log in */
		verify_dummy(pw);
	if (rc != 0) {
		log_info("failed login for user %s", PQgetvalue(res, 0, 0));
		reply_bad_login(r, key);
		goto out;
	}
	memset(&u, 0, sizeof(u));
	memcpy(u.id, PQgetvalue(res, 0, 0), GW_UUID_LEN);
	n = strlen(PQgetvalue(res, 0, 1));
	memcpy(u.email, PQgetvalue(res, 0, 1), n < GW_EMAIL_MAX ? n : GW_EMAIL_MAX);
	u.admin = strcmp(PQgetvalue(res, 0, 2), "admin") == 0;
	if (gw_token_issue(s->jwt_secret, &u, (int64_t)time(NULL), s->jwt_ttl_s, &token,
	    &exp_s) != 0) {
		log_warnx("login: cannot issue a token");
		gw_reply_error(r, 500, "internal", "internal error");
		goto out;
	}
	out = json_object_new_object();
	json_object_object_add(out, "token", json_object_new_string(token));
	json_object_object_add(out, "token_type", json_object_new_string("Bearer"));
	json_object_object_add(out, "expires_at", upmon_json_time(exp_s * 1000));
	json_object_object_add(out, "user", user_json(res, 0));
	gw_reply_json(r, 200, out);
out:
	free(token);
	PQclear(res);
}

void
gw_auth_me(struct gw_req *r)
{
	const char *params[1] = { r->user.id };
	PGresult *res = NULL;

	if (gw_sql(r, UPMON_DB_IDEMPOTENT, "SELECT " USER_COLS " FROM users WHERE id = $1", 1,
	    params, &res) != 0)
		return;
	if (PQntuples(res) != 1)
		gw_reply_error(r, 401, "unauthorized", "the account no longer exists");
	else
		gw_reply_json(r, 200, user_json(res, 0));
	PQclear(res);
}
