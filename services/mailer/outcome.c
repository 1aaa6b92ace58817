/*
 * Small shared pieces of the mailer: delivery outcomes, delivery ids, channel release.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailer.h"

void
mailer_outcome_init(struct mailer_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->result = MAILER_SENT;
}

void
mailer_outcome_set(struct mailer_outcome *out, enum mailer_result result, int code,
    const char *fmt, ...)
{
	va_list ap;

	out->result = result;
	out->code = code;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
}

void
mailer_delivery_id(char *buf, size_t size, const char *alert_id, const char *channel_id)
{
	snprintf(buf, size, "%s.%s", alert_id, channel_id);
}

void
mailer_channel_release(struct mailer_channel *ch)
{
	size_t i;

	free(ch->name);
	for (i = 0; i < ch->nto; i++)
		free(ch->to[i]);
	free(ch->url);
	free(ch->secret);
	memset(ch, 0, sizeof(*ch));
}
