/* PLACEHOLDER until its owner lands the real handlers: every route answers 501. */
#include "gw.h"

void
gw_alerts_list(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_alerts_ack(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_dashboard_summary(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

