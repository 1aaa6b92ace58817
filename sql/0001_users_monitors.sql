-- 0001: tenants and what they monitor.
--
-- users, monitors (the check definition), monitor_state (the alert state machine's row, one per
-- monitor, locked FOR UPDATE by the probe), the updated_at trigger, the trigger that keeps
-- monitor_state in step with monitors, and the NOTIFY monitor_changed trigger the scheduler
-- follows. Applied by `upmonctl migrate` inside one transaction; see sql/README.md.

CREATE FUNCTION upmon_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

CREATE TABLE users (
	id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
	email         text        NOT NULL,
	password_hash text        NOT NULL,
	role          text        NOT NULL DEFAULT 'user',
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT users_email_check CHECK (length(email) BETWEEN 3 AND 254
	    AND position('@' IN email) > 1 AND email !~ '[[:space:][:cntrl:]]'),
	CONSTRAINT users_password_hash_check CHECK (length(password_hash) BETWEEN 1 AND 512),
	CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'))
);
-- Case-insensitive uniqueness: look users up with lower(email) = lower($1).
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TRIGGER users_touch BEFORE UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION upmon_touch_updated_at();

CREATE TABLE monitors (
	id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
	owner_id           uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name               text        NOT NULL,
	type               text        NOT NULL,
	-- http: url; tcp: host + port
	url                text,
	host               text,
	port               integer,
	method             text        NOT NULL DEFAULT 'GET',
	headers            jsonb       NOT NULL DEFAULT '{}',
	body               text,
	-- comma-separated codes and inclusive ranges: "200-299,301,404"
	expected_status    text        NOT NULL DEFAULT '200-299',
	keyword            text,
	keyword_absent     boolean     NOT NULL DEFAULT false,
	max_latency_ms     integer,
	follow_redirects   boolean     NOT NULL DEFAULT true,
	max_redirects      integer     NOT NULL DEFAULT 5,
	verify_tls         boolean     NOT NULL DEFAULT true,
	-- raise tls_expiry this many days before the certificate expires; 0 = off
	cert_expiry_days   integer     NOT NULL DEFAULT 14,
	timeout_ms         integer     NOT NULL DEFAULT 10000,
	interval_seconds   integer     NOT NULL DEFAULT 60,
	-- confirmation re-probes of a failed check before it counts
	retries            integer     NOT NULL DEFAULT 2,
	failure_threshold  integer     NOT NULL DEFAULT 1,
	recovery_threshold integer     NOT NULL DEFAULT 1,
	-- re-send the DOWN alert every N minutes while down; NULL = never
	reminder_minutes   integer,
	paused             boolean     NOT NULL DEFAULT false,
	tags               text[]      NOT NULL DEFAULT '{}',
	created_at         timestamptz NOT NULL DEFAULT now(),
	updated_at         timestamptz NOT NULL DEFAULT now(),
	-- target of the composite foreign keys that keep child rows in their monitor's tenant
	CONSTRAINT monitors_id_owner_key UNIQUE (id, owner_id),
	-- `upmonctl monitors import` is idempotent by name
	CONSTRAINT monitors_owner_name_key UNIQUE (owner_id, name),
	CONSTRAINT monitors_name_check CHECK (length(name) BETWEEN 1 AND 200
	    AND name !~ '[[:cntrl:]]'),
	CONSTRAINT monitors_type_check CHECK (type IN ('http', 'tcp')),
	CONSTRAINT monitors_target_check CHECK (
	    (type = 'http' AND url IS NOT NULL AND url ~* '^https?://[^[:space:][:cntrl:]]+$'
	        AND length(url) <= 2048 AND host IS NULL AND port IS NULL)
	    OR (type = 'tcp' AND url IS NULL AND host IS NOT NULL AND port IS NOT NULL
	        AND length(host) BETWEEN 1 AND 253 AND host !~ '[[:space:][:cntrl:]/]')),
	CONSTRAINT monitors_port_check CHECK (port BETWEEN 1 AND 65535),
	CONSTRAINT monitors_method_check CHECK (method IN ('GET', 'HEAD', 'POST', 'PUT', 'PATCH',
	    'DELETE', 'OPTIONS')),
	CONSTRAINT monitors_headers_check CHECK (jsonb_typeof(headers) = 'object'
	    AND length(headers::text) <= 8192),
	CONSTRAINT monitors_body_check CHECK (length(body) <= 65536),
	CONSTRAINT monitors_expected_status_check CHECK (expected_status
	    ~ '^[1-5][0-9]{2}(-[1-5][0-9]{2})?(,[1-5][0-9]{2}(-[1-5][0-9]{2})?)*$'),
	CONSTRAINT monitors_keyword_check CHECK (length(keyword) BETWEEN 1 AND 1024),
	CONSTRAINT monitors_keyword_absent_check CHECK (NOT keyword_absent OR keyword IS NOT NULL),
	CONSTRAINT monitors_max_latency_check CHECK (max_latency_ms BETWEEN 1 AND 600000),
	CONSTRAINT monitors_max_redirects_check CHECK (max_redirects BETWEEN 0 AND 20),
	CONSTRAINT monitors_cert_expiry_days_check CHECK (cert_expiry_days BETWEEN 0 AND 365),
	CONSTRAINT monitors_timeout_check CHECK (timeout_ms BETWEEN 100 AND 60000
	    AND timeout_ms <= interval_seconds * 1000),
	CONSTRAINT monitors_interval_check CHECK (interval_seconds BETWEEN 10 AND 86400),
	CONSTRAINT monitors_retries_check CHECK (retries BETWEEN 0 AND 10),
	CONSTRAINT monitors_failure_threshold_check CHECK (failure_threshold BETWEEN 1 AND 100),
	CONSTRAINT monitors_recovery_threshold_check CHECK (recovery_threshold BETWEEN 1 AND 100),
	CONSTRAINT monitors_reminder_check CHECK (reminder_minutes BETWEEN 1 AND 10080),
	CONSTRAINT monitors_tags_check CHECK (cardinality(tags) <= 32
	    AND array_position(tags, NULL) IS NULL)
);
CREATE INDEX monitors_owner_created_idx ON monitors (owner_id, created_at, id);
CREATE INDEX monitors_tags_idx ON monitors USING gin (tags);
-- the scheduler loads every active monitor
CREATE INDEX monitors_active_idx ON monitors (id) WHERE NOT paused;

CREATE TRIGGER monitors_touch BEFORE UPDATE ON monitors
	FOR EACH ROW EXECUTE FUNCTION upmon_touch_updated_at();

-- One row per monitor, created with it. The probe locks it (SELECT ... FOR UPDATE) to apply a
-- result; last_slot/last_attempt order results so an older one changes no state.
CREATE TABLE monitor_state (
	monitor_id           uuid        PRIMARY KEY,
	owner_id             uuid        NOT NULL,
	status               text        NOT NULL DEFAULT 'pending',
	consecutive_failures integer     NOT NULL DEFAULT 0,
	consecutive_successes integer    NOT NULL DEFAULT 0,
	last_slot            timestamptz,
	last_attempt         integer,
	last_checked_at      timestamptz,
	last_ok              boolean,
	last_status_code     integer,
	last_latency_ms      integer,
	last_error           text,
	last_change_at       timestamptz NOT NULL DEFAULT now(),
	down_since           timestamptz,
	last_alert_at        timestamptz,
	cert_days_left       integer,
	updated_at           timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT monitor_state_monitor_fkey FOREIGN KEY (monitor_id, owner_id)
	    REFERENCES monitors (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT monitor_state_status_check CHECK (status IN ('pending', 'up', 'down', 'paused')),
	CONSTRAINT monitor_state_counters_check CHECK (consecutive_failures >= 0
	    AND consecutive_successes >= 0),
	CONSTRAINT monitor_state_error_check CHECK (length(last_error) <= 1024)
);
CREATE INDEX monitor_state_owner_status_idx ON monitor_state (owner_id, status);

CREATE TRIGGER monitor_state_touch BEFORE UPDATE ON monitor_state
	FOR EACH ROW EXECUTE FUNCTION upmon_touch_updated_at();

-- Creates the state row with a new monitor, and moves it to 'paused' on pause and back to
-- 'pending' (counters reset) on resume, so nobody has to remember to.
CREATE FUNCTION upmon_monitor_state_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO monitor_state (monitor_id, owner_id, status)
		VALUES (NEW.id, NEW.owner_id, CASE WHEN NEW.paused THEN 'paused' ELSE 'pending' END);
	ELSIF NEW.paused AND NOT OLD.paused THEN
		UPDATE monitor_state SET status = 'paused', last_change_at = now(),
		    consecutive_failures = 0, consecutive_successes = 0, down_since = NULL
		WHERE monitor_id = NEW.id;
	ELSIF OLD.paused AND NOT NEW.paused THEN
		UPDATE monitor_state SET status = 'pending', last_change_at = now(),
		    consecutive_failures = 0, consecutive_successes = 0, down_since = NULL
		WHERE monitor_id = NEW.id;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER monitors_state_sync AFTER INSERT OR UPDATE OF paused ON monitors
	FOR EACH ROW EXECUTE FUNCTION upmon_monitor_state_sync();

-- NOTIFY monitor_changed, payload {"op": "insert"|"update"|"delete", "id": "<monitor uuid>"}.
-- Delivered at commit; the scheduler LISTENs and reloads that one monitor.
CREATE FUNCTION upmon_monitor_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	mid uuid;
BEGIN
	IF TG_OP = 'DELETE' THEN
		mid := OLD.id;
	ELSE
		mid := NEW.id;
	END IF;
	PERFORM pg_notify('monitor_changed',
	    json_build_object('op', lower(TG_OP), 'id', mid)::text);
	RETURN NULL;
END
$$;

CREATE TRIGGER monitors_notify AFTER INSERT OR UPDATE OR DELETE ON monitors
	FOR EACH ROW EXECUTE FUNCTION upmon_monitor_notify();
