/* PLACEHOLDER until its owner lands the real handlers: every route answers 501. */
#include "gw.h"

void
gw_history_checks(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_history_status(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_history_summary(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_history_incidents(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

