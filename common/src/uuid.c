/*
 * UUIDs as text (upmon/uuid.h).
 */
#include <string.h>

#include "upmon/uuid.h"

bool
upmon_uuid_parse(const char *s, size_t n, char out[UPMON_UUID_LEN + 1])
{
	size_t i;
	char c;

	if (n != UPMON_UUID_LEN)
		return false;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (c >= '0' && c <= '9') {
			;
		} else if (c >= 'a' && c <= 'f') {
			;
		} else if (c >= 'A' && c <= 'F') {
			c = (char)(c - 'A' + 'a');
		} else {
			return false;
		}
		out[i] = c;
	}
	out[n] = '\0';
	return true;
}

bool
upmon_uuid_valid(const char *s)
{
	char buf[UPMON_UUID_LEN + 1];

	return s != NULL && upmon_uuid_parse(s, strlen(s), buf);
}
