-- The local stack's self-monitors: upmon watches its own components out of the box.
-- Run by deploy/local/up with psql variables (quoted by psql, never spliced by the shell):
--   owner_email, interval, mgmt_port, amqp_port, pg_port, redis_port, smtp_port,
--   scheduler_admin_port, probe_admin_port, gateway_admin_port, mailer_admin_port,
--   with_gateway, with_mailer (true when that service is built and started)
-- The owner is a local admin account whose password is not set here (password_hash '!'
-- matches no password): deploy/local/up gives it one with `upmonctl user set-password` on
-- the first start with the gateway and saves it in $UPMON_STATE_DIR/admin-credentials.
-- Idempotent: monitors are matched by (owner, name) and their targets refreshed, since the
-- stack's ports are chosen at first start and kept.
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO users (email, password_hash, role)
VALUES (:'owner_email', '!', 'admin')
ON CONFLICT (lower(email)) DO NOTHING;

WITH owner AS (SELECT id FROM users WHERE lower(email) = lower(:'owner_email')),
targets (name, type, url, host, port, keyword, wanted) AS (VALUES
	('RabbitMQ management UI', 'http', 'http://127.0.0.1:' || :'mgmt_port' || '/', NULL, NULL::integer, NULL, true),
	('RabbitMQ AMQP', 'tcp', NULL, '127.0.0.1', :'amqp_port'::integer, NULL, true),
	('PostgreSQL', 'tcp', NULL, '127.0.0.1', :'pg_port'::integer, NULL, true),
	('Redis', 'tcp', NULL, '127.0.0.1', :'redis_port'::integer, NULL, true),
	('SMTP sink', 'tcp', NULL, '127.0.0.1', :'smtp_port'::integer, NULL, true),
	('upmon-scheduler health', 'http', 'http://127.0.0.1:' || :'scheduler_admin_port' || '/healthz', NULL, NULL, 'ok', true),
	('upmon-probe health', 'http', 'http://127.0.0.1:' || :'probe_admin_port' || '/healthz', NULL, NULL, 'ok', true),
	('upmon-gateway health', 'http', 'http://127.0.0.1:' || :'gateway_admin_port' || '/healthz', NULL, NULL, 'ok', :'with_gateway'::boolean),
	('upmon-mailer health', 'http', 'http://127.0.0.1:' || :'mailer_admin_port' || '/healthz', NULL, NULL, 'ok', :'with_mailer'::boolean))
INSERT INTO monitors (owner_id, name, type, url, host, port, keyword, interval_seconds,
    timeout_ms, retries, tags)
SELECT owner.id, t.name, t.type, t.url, t.host, t.port, t.keyword, :'interval'::integer,
    5000, 1, '{self}'
FROM owner, targets t
WHERE t.wanted
ON CONFLICT (owner_id, name) DO UPDATE SET url = EXCLUDED.url, host = EXCLUDED.host,
    port = EXCLUDED.port, keyword = EXCLUDED.keyword,
    interval_seconds = EXCLUDED.interval_seconds
WHERE (monitors.url, monitors.host, monitors.port, monitors.keyword, monitors.interval_seconds)
    IS DISTINCT FROM (EXCLUDED.url, EXCLUDED.host, EXCLUDED.port, EXCLUDED.keyword,
    EXCLUDED.interval_seconds);
COMMIT;
