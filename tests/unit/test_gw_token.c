/*
 * gw_token_issue / gw_token_verify: the round trip, and every way a token must be refused
 * (expired, no exp, tampered payload or signature, wrong secret, alg none, HS384/HS512 with
 * the same secret, wrong iss, sub not a uuid, bad role, garbage, over-long).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "test.h"

#include "gw.h"

#define SECRET	"upmon-test-secret-0123456789-abcdefghij"
#define NOW	1795000000LL
#define UID	"0b5e8f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
#define TOKEN_BUF	8192

static void
user_fill(struct gw_user *u, bool admin)
{
	memset(u, 0, sizeof(*u));
	memcpy(u->id, UID, sizeof(UID));
	memcpy(u->email, "a@example.test", sizeof("a@example.test"));
	u->admin = admin;
}

/* A token built with libjwt directly, so each claim and the algorithm can be chosen. */
static char *
forge(jwt_alg_t alg, const char *key, const char *iss, const char *sub, const char *role,
    long exp)
{
	jwt_t *jwt = NULL;
	char *enc, *out;

	REQUIRE(jwt_new(&jwt) == 0);
	if (iss != NULL)
		REQUIRE(jwt_add_grant(jwt, "iss", iss) == 0);
	if (sub != NULL)
		REQUIRE(jwt_add_grant(jwt, "sub", sub) == 0);
	REQUIRE(jwt_add_grant(jwt, "email", "a@example.test") == 0);
	if (role != NULL)
		REQUIRE(jwt_add_grant(jwt, "role", role) == 0);
	REQUIRE(jwt_add_grant_int(jwt, "iat", (long)NOW) == 0);
	if (exp != 0)
		REQUIRE(jwt_add_grant_int(jwt, "exp", exp) == 0);
	REQUIRE(jwt_set_alg(jwt, alg, (const unsigned char *)key,
	    key != NULL ? (int)strlen(key) : 0) == 0);
	enc = jwt_encode_str(jwt);
	REQUIRE(enc != NULL);
	out = strdup(enc);
	free(enc);
	jwt_free(jwt);
	return out;
}

static int
verify(const char *token)
{
	struct gw_user u;

	return gw_token_verify(SECRET, token, NOW, &u);
}

static void
test_round_trip(void)
{
	struct gw_user in, out;
	char *tok = NULL;
	int64_t exp = 0;

	user_fill(&in, false);
	CHECK_EQ(gw_token_issue(SECRET, &in, NOW, 3600, &tok, &exp), 0);
	REQUIRE(tok != NULL);
	CHECK_EQ(exp, NOW + 3600);
	CHECK_EQ(gw_token_verify(SECRET, tok, NOW, &out), 0);
	CHECK_STR(out.id, UID);
	CHECK_STR(out.email, "a@example.test");
	CHECK(!out.admin);
	/* valid until the second before exp */
	CHECK_EQ(gw_token_verify(SECRET, tok, NOW + 3599, &out), 0);
	free(tok);

	user_fill(&in, true);
	CHECK_EQ(gw_token_issue(SECRET, &in, NOW, 60, &tok, &exp), 0);
	CHECK_EQ(gw_token_verify(SECRET, tok, NOW, &out), 0);
	CHECK(out.admin);
	free(tok);

	/* issue refuses what it cannot sign properly */
	CHECK_EQ(gw_token_issue("", &in, NOW, 60, &tok, &exp), -EINVAL);
	CHECK_EQ(gw_token_issue(SECRET, &in, NOW, 0, &tok, &exp), -EINVAL);
	memcpy(in.id, "not-a-uuid", sizeof("not-a-uuid"));
	CHECK_EQ(gw_token_issue(SECRET, &in, NOW, 60, &tok, &exp), -EINVAL);
}

static void
test_expired(void)
{
	struct gw_user in, out;
	char *tok = NULL, *t;

	user_fill(&in, false);
	REQUIRE(gw_token_issue(SECRET, &in, NOW, 60, &tok, NULL) == 0);
	CHECK_EQ(gw_token_verify(SECRET, tok, NOW + 60, &out), -EACCES);
	CHECK_EQ(gw_token_verify(SECRET, tok, NOW + 86400, &out), -EACCES);
	CHECK_STR(out.id, "");		/* nothing left behind on failure */
	free(tok);

	t = forge(JWT_ALG_HS256, SECRET, "upmon", UID, "user", 0);	/* no exp */
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, "upmon", UID, "user", (long)NOW + 60);
	CHECK_EQ(verify(t), 0);				/* the forge itself is right */
	free(t);
}

/* Flips one character of part (0 header, 1 payload, 2 signature) of a copy of tok. */
static char *
tamper(const char *tok, int part)
{
	char *t = strdup(tok), *p = t;
	int i;

	REQUIRE(t != NULL);
	for (i = 0; i < part; i++)
		p = strchr(p, '.') + 1;
	p[2] = p[2] == 'A' ? 'B' : 'A';
	return t;
}

static void
test_tampered(void)
{
	struct gw_user in;
	char *tok = NULL, *t;
	char buf[TOKEN_BUF];

	user_fill(&in, false);
	REQUIRE(gw_token_issue(SECRET, &in, NOW, 60, &tok, NULL) == 0);
	t = tamper(tok, 1);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = tamper(tok, 2);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = tamper(tok, 0);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	/* signature removed, or the payload swapped for an admin one of another token */
	snprintf(buf, sizeof(buf), "%.*s.", (int)(strrchr(tok, '.') - tok), tok);
	CHECK_EQ(verify(buf), -EACCES);
	{
		struct gw_user adm;
		char *atok = NULL;
		const char *p1, *p2, *a1, *a2;

		user_fill(&adm, true);
		REQUIRE(gw_token_issue("another-secret-0123456789-abcdefghij", &adm, NOW, 60,
		    &atok, NULL) == 0);
		p1 = strchr(tok, '.');
		p2 = strrchr(tok, '.');
		a1 = strchr(atok, '.');
		a2 = strrchr(atok, '.');
		snprintf(buf, sizeof(buf), "%.*s%.*s%s", (int)(p1 - tok), tok, (int)(a2 - a1), a1,
		    p2);
		CHECK_EQ(verify(buf), -EACCES);
		free(atok);
	}
	CHECK_EQ(gw_token_verify("another-secret-0123456789-abcdefghij", tok, NOW, &in),
	    -EACCES);
	CHECK_EQ(verify(tok), 0);
	free(tok);
}

static void
test_alg_none(void)
{
	/* {"alg":"none"} . {"iss":"upmon","sub":UID,"email":"a@example.test","role":"admin",
	 * "exp":4102444800} . (empty) */
	const char *none = "eyJhbGciOiJub25lIn0."
	    "eyJpc3MiOiJ1cG1vbiIsInN1YiI6IjBiNWU4ZjdhLTFjMmQtNGUzZi04YTliLTBjMWQyZTNmNGE1YiIsImVt"
	    "YWlsIjoiYUBleGFtcGxlLnRlc3QiLCJyb2xlIjoiYWRtaW4iLCJleHAiOjQxMDI0NDQ4MDB9.";
	char buf[TOKEN_BUF];
	char *t;

	CHECK_EQ(verify(none), -EACCES);
	/* the same with a made-up signature, and with "None"/"NONE" spellings */
	snprintf(buf, sizeof(buf), "%sAAAA", none);
	CHECK_EQ(verify(buf), -EACCES);
	t = forge(JWT_ALG_NONE, NULL, "upmon", UID, "admin", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	CHECK_EQ(verify("eyJhbGciOiJOT05FIn0.e30."), -EACCES);
}

static void
test_other_algs(void)
{
	char *t;

	t = forge(JWT_ALG_HS384, SECRET, "upmon", UID, "user", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS512, SECRET, "upmon", UID, "user", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
}

static void
test_claims(void)
{
	char *t;

	t = forge(JWT_ALG_HS256, SECRET, "someone-else", UID, "user", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, NULL, UID, "user", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, "upmon", "12345", "user", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, "upmon", "0B5E8F7A-1C2D-4E3F-8A9B-0C1D2E3F4A5B", "user",
	    (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, "upmon", NULL, "user", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, "upmon", UID, "root", (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
	t = forge(JWT_ALG_HS256, SECRET, "upmon", UID, NULL, (long)NOW + 60);
	CHECK_EQ(verify(t), -EACCES);
	free(t);
}

static void
test_garbage(void)
{
	struct gw_user in;
	char *tok = NULL, *big;
	size_t n, len;

	CHECK_EQ(verify(""), -EACCES);
	CHECK_EQ(verify("."), -EACCES);
	CHECK_EQ(verify(".."), -EACCES);
	CHECK_EQ(verify("abc"), -EACCES);
	CHECK_EQ(verify("a.b.c"), -EACCES);
	CHECK_EQ(verify("!!!.@@@.###"), -EACCES);
	CHECK_EQ(verify("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"), -EACCES);
	CHECK_EQ(gw_token_verify(SECRET, NULL, NOW, &in), -EACCES);
	CHECK_EQ(gw_token_verify(NULL, "a.b.c", NOW, &in), -EACCES);

	/* over 4096 bytes: refused before decoding, even when correctly signed */
	user_fill(&in, false);
	n = 4000;
	big = malloc(n + 1);
	REQUIRE(big != NULL);
	memset(big, 'x', n);
	big[n] = '\0';
	memcpy(in.email, big, GW_EMAIL_MAX);	/* long claim (the issuer does not check it) */
	in.email[GW_EMAIL_MAX] = '\0';
	REQUIRE(gw_token_issue(SECRET, &in, NOW, 60, &tok, NULL) == 0);
	len = strlen(tok);
	CHECK_INT(len, <=, 4096);
	CHECK_EQ(verify(tok), 0);
	free(tok);
	{
		jwt_t *jwt = NULL;
		char *enc;

		REQUIRE(jwt_new(&jwt) == 0);
		jwt_add_grant(jwt, "iss", "upmon");
		jwt_add_grant(jwt, "sub", UID);
		jwt_add_grant(jwt, "email", "a@example.test");
		jwt_add_grant(jwt, "role", "user");
		jwt_add_grant(jwt, "pad", big);
		jwt_add_grant_int(jwt, "exp", (long)NOW + 60);
		jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET,
		    (int)strlen(SECRET));
		enc = jwt_encode_str(jwt);
		REQUIRE(enc != NULL);
		CHECK_INT(strlen(enc), >, 4096);
		CHECK_EQ(verify(enc), -EACCES);
		free(enc);
		jwt_free(jwt);
	}
	free(big);
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_expired);
	RUN(test_tampered);
	RUN(test_alg_none);
	RUN(test_other_algs);
	RUN(test_claims);
	RUN(test_garbage);
	return test_finish();
}
