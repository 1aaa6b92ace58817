/* PLACEHOLDER until its owner lands the real handlers: every route answers 501. */
#include "gw.h"

void
gw_auth_register(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_auth_login(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

void
gw_auth_me(struct gw_req *r)
{
	gw_reply_error(r, 501, "not_implemented", "not implemented yet");
}

