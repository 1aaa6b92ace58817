/*
 * The API's route table: every route of docs/openapi.yaml, and nothing else
 * (test_gateway_openapi compares the two). Paths are relative to /api/v1.
 */
#include "gw.h"

const struct gw_route gw_routes[] = {
	{ "POST", "/auth/register", gw_auth_register, GW_R_PUBLIC | GW_R_AUTHRATE | GW_R_BODY },
	{ "POST", "/auth/login", gw_auth_login, GW_R_PUBLIC | GW_R_AUTHRATE | GW_R_BODY },
	{ "GET", "/auth/me", gw_auth_me, 0 },

	{ "GET", "/monitors", gw_monitors_list, 0 },
	{ "POST", "/monitors", gw_monitors_create, GW_R_BODY },
	{ "GET", "/monitors/{id}", gw_monitors_get, 0 },
	{ "PUT", "/monitors/{id}", gw_monitors_put, GW_R_BODY },
	{ "PATCH", "/monitors/{id}", gw_monitors_patch, GW_R_BODY },
	{ "DELETE", "/monitors/{id}", gw_monitors_delete, 0 },
	{ "POST", "/monitors/{id}/pause", gw_monitors_pause, 0 },
	{ "POST", "/monitors/{id}/resume", gw_monitors_resume, 0 },
	{ "GET", "/monitors/{id}/checks", gw_history_checks, 0 },
	{ "GET", "/monitors/{id}/status", gw_history_status, 0 },
	{ "GET", "/monitors/{id}/summary", gw_history_summary, 0 },
	{ "GET", "/monitors/{id}/incidents", gw_history_incidents, 0 },
	{ "GET", "/monitors/{id}/channels", gw_monitor_channels_get, 0 },
	{ "PUT", "/monitors/{id}/channels", gw_monitor_channels_put, GW_R_BODY },

	{ "GET", "/alerts", gw_alerts_list, 0 },
	{ "POST", "/alerts/{id}/ack", gw_alerts_ack, 0 },
	{ "GET", "/dashboard/summary", gw_dashboard_summary, 0 },

	{ "GET", "/channels", gw_channels_list, 0 },
	{ "POST", "/channels", gw_channels_create, GW_R_BODY },
	{ "GET", "/channels/{id}", gw_channels_get, 0 },
	{ "PUT", "/channels/{id}", gw_channels_put, GW_R_BODY },
	{ "PATCH", "/channels/{id}", gw_channels_patch, GW_R_BODY },
	{ "DELETE", "/channels/{id}", gw_channels_delete, 0 },
	{ "POST", "/channels/{id}/test", gw_channels_test, 0 },

	{ "GET", "/maintenance-windows", gw_maintenance_list, 0 },
	{ "POST", "/maintenance-windows", gw_maintenance_create, GW_R_BODY },
	{ "GET", "/maintenance-windows/{id}", gw_maintenance_get, 0 },
	{ "PUT", "/maintenance-windows/{id}", gw_maintenance_put, GW_R_BODY },
	{ "PATCH", "/maintenance-windows/{id}", gw_maintenance_patch, GW_R_BODY },
	{ "DELETE", "/maintenance-windows/{id}", gw_maintenance_delete, 0 },

	{ "GET", "/admin/queues", gw_admin_queues, GW_R_ADMIN },
	{ "GET", "/admin/dlq", gw_admin_dlq_list, GW_R_ADMIN },
	{ "POST", "/admin/dlq/replay", gw_admin_dlq_replay, GW_R_ADMIN | GW_R_BODY },
	{ "DELETE", "/admin/dlq", gw_admin_dlq_purge, GW_R_ADMIN },
	{ "GET", "/admin/users", gw_admin_users, GW_R_ADMIN },
};

const size_t gw_nroutes = sizeof(gw_routes) / sizeof(gw_routes[0]);
