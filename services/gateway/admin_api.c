/* PLACEHOLDER until its owner lands the real handlers: every route answers 501. */
#include "gw.h"

void
gw_admin_queues(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_admin_dlq_list(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_admin_dlq_replay(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_admin_dlq_purge(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_admin_users(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

