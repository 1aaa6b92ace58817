/* PLACEHOLDER until its owner lands the real handlers: every route answers 501. */
#include "gw.h"

void
gw_channels_list(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_channels_create(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_channels_get(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_channels_put(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_channels_patch(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_channels_delete(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_channels_test(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

