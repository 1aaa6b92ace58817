-- 0004: the scheduler.
--
-- scheduler_state: one row the leading upmon-scheduler keeps current (about every 500 ms):
-- who leads, and published_through, the newest slot time such that every slot at or before
-- it was published. A new leader counts the slots in (published_through, now) as missed
-- instead of replaying them. Leadership itself is a session advisory lock, not this row.
--
-- monitors: the CHECK constraints are tightened to the wire limits of the task message
-- (common/include/upmon/msg.h), so a definition the scheduler could not publish is refused
-- by the database (and the gateway gets that error) instead of being skipped later:
-- max_latency_ms <= 60000, max_redirects <= 10, body <= 16384 bytes, headers at most 32
-- entries with string values. Added NOT VALID and then validated, so existing rows are
-- checked once without holding the strongest lock for the scan.

CREATE TABLE scheduler_state (
	id                smallint    PRIMARY KEY CHECK (id = 1),
	leader            text,
	published_through timestamptz,
	heartbeat_at      timestamptz
);

-- true when headers is a JSON object of at most 32 string values (msg.h UPMON_HEADERS_MAX)
CREATE FUNCTION upmon_monitor_headers_ok(h jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT jsonb_typeof(h) = 'object'
	    AND (SELECT count(*) FROM jsonb_each(h)) <= 32
	    AND NOT EXISTS (SELECT 1 FROM jsonb_each(h) e WHERE jsonb_typeof(e.value) <> 'string')
$$;

ALTER TABLE monitors
	DROP CONSTRAINT monitors_max_latency_check,
	ADD CONSTRAINT monitors_max_latency_check CHECK (max_latency_ms BETWEEN 1 AND 60000)
	    NOT VALID,
	DROP CONSTRAINT monitors_max_redirects_check,
	ADD CONSTRAINT monitors_max_redirects_check CHECK (max_redirects BETWEEN 0 AND 10)
	    NOT VALID,
	DROP CONSTRAINT monitors_body_check,
	ADD CONSTRAINT monitors_body_check CHECK (length(body) <= 16384) NOT VALID,
	DROP CONSTRAINT monitors_headers_check,
	ADD CONSTRAINT monitors_headers_check CHECK (upmon_monitor_headers_ok(headers)
	    AND length(headers::text) <= 8192) NOT VALID;

ALTER TABLE monitors VALIDATE CONSTRAINT monitors_max_latency_check;
ALTER TABLE monitors VALIDATE CONSTRAINT monitors_max_redirects_check;
ALTER TABLE monitors VALIDATE CONSTRAINT monitors_body_check;
ALTER TABLE monitors VALIDATE CONSTRAINT monitors_headers_check;
