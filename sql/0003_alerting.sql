-- 0003: alerts and their delivery.
--
-- alerts (one row per alert, idempotent through dedup_key), the outbox the relay publishes
-- from, notification channels and which monitors use them, deliveries (one per alert and
-- channel, the mailer's idempotency key), and maintenance windows with
-- upmon_in_maintenance() for the state machine.

CREATE TABLE alerts (
	id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
	owner_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	-- NULL once the monitor is deleted: the alert history stays with its owner
	monitor_id  uuid,
	kind        text        NOT NULL,
	-- idempotency key chosen by whoever raises the alert, e.g.
	--   down:<monitor>:<slot>   recovery:<monitor>:<slot>
	--   system_error:<monitor>:<slot>:<attempt>   tls_expiry:<monitor>:<not_after>:<days>
	-- INSERT ... ON CONFLICT (dedup_key) DO NOTHING makes raising an alert idempotent.
	dedup_key   text        NOT NULL,
	message     text        NOT NULL DEFAULT '',
	details     jsonb       NOT NULL DEFAULT '{}',
	created_at  timestamptz NOT NULL DEFAULT now(),
	acked_at    timestamptz,
	acked_by    uuid        REFERENCES users (id) ON DELETE SET NULL,
	CONSTRAINT alerts_dedup_key UNIQUE (dedup_key),
	CONSTRAINT alerts_id_owner_key UNIQUE (id, owner_id),
	CONSTRAINT alerts_monitor_fkey FOREIGN KEY (monitor_id, owner_id)
	    REFERENCES monitors (id, owner_id) ON DELETE SET NULL (monitor_id),
	CONSTRAINT alerts_kind_check CHECK (kind IN ('down', 'recovery', 'system_error',
	    'tls_expiry')),
	CONSTRAINT alerts_dedup_key_check CHECK (length(dedup_key) BETWEEN 1 AND 512),
	CONSTRAINT alerts_message_check CHECK (length(message) <= 4096),
	CONSTRAINT alerts_details_check CHECK (jsonb_typeof(details) = 'object'),
	CONSTRAINT alerts_ack_check CHECK (acked_by IS NULL OR acked_at IS NOT NULL)
);
CREATE INDEX alerts_owner_created_idx ON alerts (owner_id, created_at DESC, id);
CREATE INDEX alerts_monitor_created_idx ON alerts (monitor_id, created_at DESC)
	WHERE monitor_id IS NOT NULL;

-- Transactional outbox: written in the transaction that decides an event, published by the
-- relay (SELECT ... WHERE sent_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED), then marked
-- sent. message_id is the AMQP message_id, so consumers can drop duplicates.
CREATE TABLE outbox (
	id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	exchange    text        NOT NULL,
	routing_key text        NOT NULL,
	message_id  text        NOT NULL,
	payload     jsonb       NOT NULL,
	headers     jsonb       NOT NULL DEFAULT '{}',
	created_at  timestamptz NOT NULL DEFAULT now(),
	sent_at     timestamptz,
	attempts    integer     NOT NULL DEFAULT 0,
	last_error  text,
	CONSTRAINT outbox_message_id_key UNIQUE (message_id),
	CONSTRAINT outbox_exchange_check CHECK (length(exchange) BETWEEN 1 AND 255),
	CONSTRAINT outbox_routing_key_check CHECK (length(routing_key) <= 255),
	CONSTRAINT outbox_message_id_check CHECK (length(message_id) BETWEEN 1 AND 255),
	CONSTRAINT outbox_headers_check CHECK (jsonb_typeof(headers) = 'object'),
	CONSTRAINT outbox_attempts_check CHECK (attempts >= 0),
	CONSTRAINT outbox_last_error_check CHECK (length(last_error) <= 1024)
);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE notification_channels (
	id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
	owner_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        text        NOT NULL,
	kind        text        NOT NULL,
	-- email: {"to": ["a@example.org"]}; webhook: {"url": "https://..."}
	config      jsonb       NOT NULL DEFAULT '{}',
	-- webhook HMAC-SHA256 key; never returned by the API
	secret      text,
	enabled     boolean     NOT NULL DEFAULT true,
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT notification_channels_id_owner_key UNIQUE (id, owner_id),
	CONSTRAINT notification_channels_name_check CHECK (length(name) BETWEEN 1 AND 200
	    AND name !~ '[[:cntrl:]]'),
	CONSTRAINT notification_channels_kind_check CHECK (kind IN ('email', 'webhook')),
	CONSTRAINT notification_channels_config_check CHECK (jsonb_typeof(config) = 'object'
	    AND length(config::text) <= 8192),
	CONSTRAINT notification_channels_secret_check CHECK (length(secret) BETWEEN 1 AND 512)
);
CREATE INDEX notification_channels_owner_idx ON notification_channels (owner_id, created_at);

CREATE TRIGGER notification_channels_touch BEFORE UPDATE ON notification_channels
	FOR EACH ROW EXECUTE FUNCTION upmon_touch_updated_at();

-- Which channels a monitor notifies. The composite keys make a link between two tenants
-- impossible.
CREATE TABLE monitor_channels (
	monitor_id  uuid        NOT NULL,
	channel_id  uuid        NOT NULL,
	owner_id    uuid        NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT monitor_channels_pkey PRIMARY KEY (monitor_id, channel_id),
	CONSTRAINT monitor_channels_monitor_fkey FOREIGN KEY (monitor_id, owner_id)
	    REFERENCES monitors (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT monitor_channels_channel_fkey FOREIGN KEY (channel_id, owner_id)
	    REFERENCES notification_channels (id, owner_id) ON DELETE CASCADE
);
CREATE INDEX monitor_channels_channel_idx ON monitor_channels (channel_id);

-- One row per (alert, channel): the mailer inserts it ON CONFLICT DO NOTHING before sending
-- and skips alerts whose delivery is already 'delivered' or 'failed' (permanent).
CREATE TABLE deliveries (
	id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	alert_id     uuid        NOT NULL,
	channel_id   uuid        NOT NULL,
	owner_id     uuid        NOT NULL,
	status       text        NOT NULL DEFAULT 'pending',
	attempts     integer     NOT NULL DEFAULT 0,
	last_error   text,
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	delivered_at timestamptz,
	CONSTRAINT deliveries_alert_channel_key UNIQUE (alert_id, channel_id),
	CONSTRAINT deliveries_alert_fkey FOREIGN KEY (alert_id, owner_id)
	    REFERENCES alerts (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT deliveries_channel_fkey FOREIGN KEY (channel_id, owner_id)
	    REFERENCES notification_channels (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
	CONSTRAINT deliveries_attempts_check CHECK (attempts >= 0),
	CONSTRAINT deliveries_last_error_check CHECK (length(last_error) <= 1024),
	CONSTRAINT deliveries_delivered_check CHECK ((status = 'delivered') =
	    (delivered_at IS NOT NULL))
);
CREATE INDEX deliveries_channel_idx ON deliveries (channel_id, created_at);
CREATE INDEX deliveries_owner_idx ON deliveries (owner_id, created_at);

CREATE TRIGGER deliveries_touch BEFORE UPDATE ON deliveries
	FOR EACH ROW EXECUTE FUNCTION upmon_touch_updated_at();

-- Maintenance windows suppress alerts and are left out of uptime. monitor_id NULL = all of
-- the owner's monitors. 'once': [starts_at, ends_at). 'weekly': on each ISO weekday in
-- weekdays (1 = Monday .. 7 = Sunday) from start_time for duration_minutes, in time_zone.
CREATE TABLE maintenance_windows (
	id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
	owner_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	monitor_id       uuid,
	name             text        NOT NULL DEFAULT '',
	kind             text        NOT NULL,
	starts_at        timestamptz,
	ends_at          timestamptz,
	weekdays         smallint[],
	start_time       time,
	duration_minutes integer,
	time_zone        text        NOT NULL DEFAULT 'UTC',
	created_at       timestamptz NOT NULL DEFAULT now(),
	updated_at       timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT maintenance_windows_monitor_fkey FOREIGN KEY (monitor_id, owner_id)
	    REFERENCES monitors (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT maintenance_windows_name_check CHECK (length(name) <= 200),
	CONSTRAINT maintenance_windows_kind_check CHECK (
	    (kind = 'once' AND starts_at IS NOT NULL AND ends_at > starts_at
	        AND weekdays IS NULL AND start_time IS NULL AND duration_minutes IS NULL)
	    OR (kind = 'weekly' AND starts_at IS NULL AND ends_at IS NULL
	        AND cardinality(weekdays) BETWEEN 1 AND 7
	        AND weekdays <@ '{1,2,3,4,5,6,7}'::smallint[]
	        AND start_time IS NOT NULL AND duration_minutes BETWEEN 1 AND 10080)),
	CONSTRAINT maintenance_windows_time_zone_check CHECK (length(time_zone) BETWEEN 1 AND 64)
);
CREATE INDEX maintenance_windows_owner_idx ON maintenance_windows (owner_id);
CREATE INDEX maintenance_windows_monitor_idx ON maintenance_windows (monitor_id)
	WHERE monitor_id IS NOT NULL;

CREATE TRIGGER maintenance_windows_touch BEFORE UPDATE ON maintenance_windows
	FOR EACH ROW EXECUTE FUNCTION upmon_touch_updated_at();

-- True when monitor p_monitor_id of p_owner_id is inside a maintenance window at p_at.
-- Weekly windows are evaluated in local time of their time_zone (a window may run past
-- midnight and across the week boundary).
CREATE FUNCTION upmon_in_maintenance(p_monitor_id uuid, p_owner_id uuid, p_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (
	    SELECT 1 FROM maintenance_windows w
	     WHERE w.owner_id = p_owner_id
	       AND (w.monitor_id IS NULL OR w.monitor_id = p_monitor_id)
	       AND ((w.kind = 'once' AND p_at >= w.starts_at AND p_at < w.ends_at)
	         OR (w.kind = 'weekly' AND EXISTS (
	             SELECT 1
	               FROM unnest(w.weekdays) AS wd(d),
	                    LATERAL (SELECT p_at AT TIME ZONE w.time_zone AS t) AS l,
	                    LATERAL (SELECT (l.t::date
	                        - ((extract(isodow FROM l.t)::integer - wd.d + 7) % 7))
	                        + w.start_time AS s) AS s0,
	                    LATERAL (SELECT CASE WHEN s0.s > l.t THEN s0.s - interval '7 days'
	                        ELSE s0.s END AS s) AS st
	              WHERE l.t < st.s + make_interval(mins => w.duration_minutes)))))
$$;
