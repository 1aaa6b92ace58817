/*
 * Internal to the msg module: field tables and the generic decode / validate / encode
 * machinery shared by msg.c (tasks) and msg_event.c (status and alert events).
 *
 * A message's flat fields are described by a table of struct mf rows; nested objects and
 * arrays are handled by hand in the message's file.
 */
#ifndef UPMON_MSG_INT_H
#define UPMON_MSG_INT_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_TIME_MIN INT64_C(946684800000)	/* 2000-01-01T00:00:00Z in Unix ms */
#define MSG_TIME_MAX INT64_C(4102444800000)	/* 2100-01-01T00:00:00Z in Unix ms */

enum mf_type {
	MF_ID,		/* char[max + 1]; [A-Za-z0-9_-], min..max bytes */
	MF_KEY,		/* char[max + 1]; [A-Za-z0-9_:-], min..max bytes */
	MF_TASKID,	/* char[max + 1]; "<id>:<digits>:<digits>" */
	MF_STR,		/* char *; text class, min..max bytes */
	MF_INT,		/* int in min..max */
	MF_I64,		/* int64_t in min..max */
	MF_BOOL,	/* bool */
	MF_ENUM,	/* int index into names */
};

enum mf_text {
	TX_ANY,		/* valid UTF-8 */
	TX_NOCTL,	/* valid UTF-8 without control characters */
	TX_TOKEN,	/* HTTP header name (RFC 9110 token) */
	TX_URL,		/* http:// or https:// and no spaces or control characters */
	TX_HOST,	/* [A-Za-z0-9._:-] */
};

#define MF_REQ	0x1	/* must be present */
#define MF_OMIT	0x2	/* encoder leaves it out when it equals def (or is NULL / "") */

struct mf {
	const char *name;
	enum mf_type type;
	int flags;
	int64_t min, max;		/* numbers: bounds; text: length in bytes */
	int64_t def;			/* value when absent and not MF_REQ */
	size_t offset;			/* into the struct being filled */
	enum mf_text text;		/* MF_STR only */
	const char *const *names;	/* MF_ENUM only, NULL-terminated */
};

/* Error context: message name ("task"), field path prefix ("check."), error buffer. */
struct mctx {
	const char *msg;
	char prefix[48];
	char *err;
	size_t errlen;
};

/* Writes `<msg>: field "<prefix><field>": <reason>` to c->err; returns -EINVAL. */
int mfail(struct mctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills base from obj according to the table; absent optional fields get their default. */
int mf_decode(struct mctx *c, json_object *obj, const struct mf *f, size_t n, void *base);
/* Checks the values in base against the table (what the encoder is about to write). */
int mf_validate(struct mctx *c, const struct mf *f, size_t n, const void *base);
/* Adds the fields of base to obj (skipping omitted ones). Returns 0 or -ENOMEM. */
int mf_encode(json_object *obj, const struct mf *f, size_t n, const void *base);
/* Frees the MF_STR strings of base and NULLs them. */
void mf_release(const struct mf *f, size_t n, void *base);
/* Returns 1 if the table has a field called key. */
int mf_has(const struct mf *f, size_t n, const char *key);

/* Returns NULL if key is allowed in the object, else the reason ("unknown field"). */
typedef const char *(*mf_key_fn)(const char *key, const void *arg);
/* Refuses the first key of obj that fn does not allow. */
int mf_check_keys(struct mctx *c, json_object *obj, mf_key_fn fn, const void *arg);

/* Checks a string of len bytes against a text class; returns NULL or the reason. */
const char *mf_text_problem(enum mf_text cls, const char *s, size_t len);
/* Returns 1 if s (len bytes) is valid UTF-8. */
int mf_utf8_valid(const char *s, size_t len);

/* Type name of a JSON value for "got ..." in errors. */
const char *mf_json_type(json_object *v);

/* Parses one message: size cap, NUL bytes, strict JSON without trailing bytes, an object
 * with "v": UPMON_MSG_VERSION. On success *root holds a reference the caller puts. */
int msg_parse(const char *msg, const char *buf, size_t len, json_object **root, char *err,
    size_t errlen);
/* Serialises root into a new heap buffer; -EMSGSIZE over the cap, -ENOMEM. */
int msg_serialize(json_object *root, char **out, size_t *len);
/* Creates an object holding "v": UPMON_MSG_VERSION; NULL on allocation failure. */
json_object *msg_new_root(void);
/* Adds a string of len bytes to obj under key. Returns 0 or -ENOMEM. */
int msg_add_str(json_object *obj, const char *key, const char *s, size_t len);
/* Checks "<id>:<digits>:<digits>"; returns 1 when well-formed. */
int msg_task_id_wellformed(const char *s, size_t len);

/* Shared by the status event and the latest status (msg_event.c): the status names and the
 * check result summary's fields. */
extern const char *const msg_status_names[];
extern const struct mf msg_result_fields[];
extern const size_t msg_result_nfields;
/* mf_key_fn accepting exactly the result summary's fields. */
const char *msg_result_key_ok(const char *key, const void *arg);

#endif
