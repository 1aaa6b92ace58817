/*
 * libFuzzer target: upmon_msg_task_decode() on arbitrary bytes. A task that decodes must
 * re-encode, the encoding must decode again, and the second encoding must equal the first
 * (the codec loses nothing it accepted).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upmon_task t, t2;
	char err[256], *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (upmon_msg_task_decode((const char *)data, size, &t, err, sizeof(err)) != 0) {
		upmon_task_release(&t);
		return 0;
	}
	if (upmon_msg_task_encode(&t, &e1, &l1) != 0)
		abort();		/* a decoded task must encode */
	if (upmon_msg_task_decode(e1, l1, &t2, err, sizeof(err)) != 0)
		abort();		/* and its encoding must decode */
	if (upmon_msg_task_encode(&t2, &e2, &l2) != 0)
		abort();
	if (l1 != l2 || memcmp(e1, e2, l1) != 0)
		abort();		/* round trip not stable */
	free(e1);
	free(e2);
	upmon_task_release(&t);
	upmon_task_release(&t2);
	return 0;
}
