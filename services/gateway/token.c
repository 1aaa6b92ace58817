/*
 * The API's tokens: HS256 JWTs issued at login and checked by the server on every
 * authenticated request (gw_token_issue, gw_token_verify; declared in gw.h). Kept apart from
 * the handlers in auth.c so it is a pure library (the unit test links nothing else).
 *
 * libjwt 1.10 verifies a signature when jwt_decode() is given a key, but it checks no claim
 * and it accepts any HMAC algorithm the header names, so every rule is checked here: the
 * header's alg must be exactly "HS256" (read by us before libjwt sees the token, and again
 * from libjwt after decoding), iss "upmon", sub a lowercase uuid, role user|admin, exp > now.
 * A token over 4096 bytes is refused before any decoding.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <jwt.h>

#include "gw.h"

#define TOKEN_MAX	4096
#define TOKEN_ISS	"upmon"
#define HEADER_MAX	512	/* the base64url of any header we issue is far shorter */

static int
b64url_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes len base64url characters (no padding) into out (NUL-terminated). */
static int
b64url_decode(const char *s, size_t len, char *out, size_t size)
{
	unsigned acc = 0;
	int bits = 0;
	size_t i, n = 0;

	if (len % 4 == 1)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		int v = b64url_val((unsigned char)s[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= size)
				return -ENOSPC;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	if (memchr(out, '\0', n) != NULL)
		return -EINVAL;
	return 0;
}

/* True when the token's own header says {"alg": "HS256", ...} and nothing else for alg. */
static bool
header_is_hs256(const char *token)
{
	char buf[HEADER_MAX];
	const char *dot = strchr(token, '.');
	struct json_object *h = NULL, *alg, *typ;
	bool ok = false;

	if (dot == NULL || (size_t)(dot - token) >= sizeof(buf) / 4 * 3 ||
	    b64url_decode(token, (size_t)(dot - token), buf, sizeof(buf)) != 0)
		return false;
	h = json_tokener_parse(buf);
	if (h == NULL || !json_object_is_type(h, json_type_object))
		goto out;
	if (!json_object_object_get_ex(h, "alg", &alg) ||
	    !json_object_is_type(alg, json_type_string) ||
	    strcmp(json_object_get_string(alg), "HS256") != 0)
		goto out;
	if (json_object_object_get_ex(h, "typ", &typ) &&
	    (!json_object_is_type(typ, json_type_string) ||
	    strcasecmp(json_object_get_string(typ), "JWT") != 0))
		goto out;
	ok = true;
out:
	json_object_put(h);
	return ok;
}

/* A uuid as the API writes them: lowercase only. */
static bool
is_uuid(const char *s)
{
	char low[GW_UUID_LEN + 1];

	return s != NULL && upmon_uuid_parse(s, strlen(s), low) && strcmp(low, s) == 0;
}

int
gw_token_verify(const char *secret, const char *token, int64_t now_s, struct gw_user *user)
{
	jwt_t *jwt = NULL;
	const char *iss, *sub, *email, *role;
	const char *sig;
	long exp;
	size_t tlen, slen;
	int rc = -EACCES;

	memset(user, 0, sizeof(*user));
	if (secret == NULL || token == NULL)
		return -EACCES;
	slen = strlen(secret);
	tlen = strnlen(token, TOKEN_MAX + 1);
	if (slen == 0 || slen > INT32_MAX || tlen == 0 || tlen > TOKEN_MAX)
		return -EACCES;
	/* three non-empty parts: an unsigned token (alg none, "a.b.") never gets to libjwt */
	sig = strrchr(token, '.');
	if (sig == NULL || sig[1] == '\0' || strchr(token, '.') == sig)
		return -EACCES;
	if (!header_is_hs256(token))
		return -EACCES;
	if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)slen) != 0 ||
	    jwt == NULL)
		goto out;
	if (jwt_get_alg(jwt) != JWT_ALG_HS256)
		goto out;
	iss = jwt_get_grant(jwt, "iss");
	sub = jwt_get_grant(jwt, "sub");
	email = jwt_get_grant(jwt, "email");
	role = jwt_get_grant(jwt, "role");
	if (iss == NULL || strcmp(iss, TOKEN_ISS) != 0 || !is_uuid(sub) || email == NULL ||
	    strlen(email) > GW_EMAIL_MAX || role == NULL)
		goto out;
	if (strcmp(role, "admin") == 0)
		user->admin = true;
	else if (strcmp(role, "user") != 0)
		goto out;
	errno = 0;
	exp = jwt_get_grant_int(jwt, "exp");
	if (errno != 0 || exp <= 0 || (int64_t)exp <= now_s)
		goto out;
	memcpy(user->id, sub, GW_UUID_LEN + 1);
	memcpy(user->email, email, strlen(email) + 1);
	rc = 0;
out:
	if (rc != 0)
		memset(user, 0, sizeof(*user));
	jwt_free(jwt);
	return rc;
}

int
gw_token_issue(const char *secret, const struct gw_user *user, int64_t now_s, long ttl_s,
    char **token, int64_t *exp_s)
{
	jwt_t *jwt = NULL;
	char *enc = NULL;
	size_t slen;
	int rc = -EINVAL;

	*token = NULL;
	if (secret == NULL || (slen = strlen(secret)) == 0 || slen > INT32_MAX || ttl_s <= 0 ||
	    !is_uuid(user->id) || now_s <= 0)
		return -EINVAL;
	if (jwt_new(&jwt) != 0)
		return -ENOMEM;
	if (jwt_add_grant(jwt, "iss", TOKEN_ISS) != 0 ||
	    jwt_add_grant(jwt, "sub", user->id) != 0 ||
	    jwt_add_grant(jwt, "email", user->email) != 0 ||
	    jwt_add_grant(jwt, "role", user->admin ? "admin" : "user") != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) != 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)slen) != 0)
		goto out;
	enc = jwt_encode_str(jwt);
	if (enc == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*token = strdup(enc);
	if (*token == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (exp_s != NULL)
		*exp_s = now_s + ttl_s;
	rc = 0;
out:
	free(enc);
	jwt_free(jwt);
	return rc;
}

