/*
 * YAML <-> JSON values for `upmonctl monitors` (libyaml). Only what a monitors file needs:
 * mappings with string keys, sequences and scalars, resolved as YAML 1.1 (PyYAML) does for
 * plain scalars (null, booleans, integers, floats; everything else is a string; quoted
 * scalars are always strings). Anchors, aliases and several documents are refused.
 */
#ifndef CTL_MONITORS_YAML_H
#define CTL_MONITORS_YAML_H

#include <stddef.h>

#include <json-c/json.h>

/* Parses len bytes of YAML into a new JSON value (*out; an empty document is null). Returns
 * 0, or -EINVAL with one line in err ("line 3: mapping values are not allowed here"). */
int ctl_yaml_parse(const char *buf, size_t len, struct json_object **out, char *err,
    size_t errlen);

/* Writes value as a block-style YAML document; strings that would read back as anything
 * but the same string are double-quoted. *out is malloc'd (caller frees), NUL-terminated,
 * *len its length. Returns 0 or -ENOMEM. */
int ctl_yaml_emit(struct json_object *value, char **out, size_t *len);

#endif
