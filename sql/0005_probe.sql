-- 0005: the probe's store.
--
-- upmon_probe_apply(items jsonb) applies a batch of check results in the caller's
-- transaction, in one round trip: per item the pause/delete check, the idempotent result
-- insert, and for a final attempt the alert state machine under the monitor_state row lock,
-- the hourly rollup and the alerts row. It returns one row per item; the probe then encodes
-- the wire messages (status events, alert events, re-probe tasks) in C (common/src/msg*.c is
-- the one place that builds wire JSON) and writes them to the outbox in the same transaction.
-- services/probe/README-store.md describes the semantics.

COMMENT ON COLUMN check_results.attempt IS
    '1 = first probe of the slot, n = (n-1)-th confirmation re-probe (the task''s attempt)';

-- The relay retries a row it could not publish (nacked, lost, returned) after a backoff.
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;

-- Unix milliseconds <-> timestamptz, exact (no floating point).
CREATE FUNCTION upmon_ms_to_ts(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT timestamptz 'epoch' + ms * interval '1 millisecond'
$$;

CREATE FUNCTION upmon_ts_to_ms(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT floor(extract(epoch FROM ts) * 1000)::bigint
$$;

-- upmon_rollup_add (0002) again, same signature and meaning, in plpgsql: the SQL version
-- is re-planned on every call together with the histogram helpers it calls (about 2 ms per
-- result on the reference machine, the store's bottleneck); this one keeps its plan and
-- computes the histogram bucket in place.
CREATE OR REPLACE FUNCTION upmon_rollup_add(p_monitor_id uuid, p_owner_id uuid,
    p_at timestamptz, p_ok boolean, p_latency_ms integer, p_downtime_seconds integer,
    p_in_maintenance boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	bounds integer[] := upmon_latency_bounds();
	nb     integer := cardinality(bounds);
	b      integer := NULL;
	h      integer[];
	lat    integer := coalesce(p_latency_ms, 0);
	maint  integer := CASE WHEN p_in_maintenance THEN 1 ELSE 0 END;
BEGIN
	h := array_fill(0, ARRAY[nb + 1]);
	IF p_latency_ms IS NOT NULL THEN
		b := nb + 1;
		FOR i IN 1 .. nb LOOP
			IF p_latency_ms <= bounds[i] THEN
				b := i;
				EXIT;
			END IF;
		END LOOP;
		h[b] := 1;
	END IF;
	INSERT INTO check_rollups_hourly AS r (monitor_id, owner_id, hour, checks, failures,
	    maintenance_checks, latency_count, latency_sum_ms, latency_max_ms, latency_hist,
	    downtime_seconds)
	VALUES (p_monitor_id, p_owner_id,
	    date_trunc('hour', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
	    1 - maint,
	    CASE WHEN p_in_maintenance OR p_ok THEN 0 ELSE 1 END,
	    maint,
	    CASE WHEN p_latency_ms IS NULL THEN 0 ELSE 1 END,
	    lat, lat, h,
	    least(coalesce(p_downtime_seconds, 0), 3600))
	ON CONFLICT (monitor_id, hour) DO UPDATE SET
	    checks = r.checks + EXCLUDED.checks,
	    failures = r.failures + EXCLUDED.failures,
	    maintenance_checks = r.maintenance_checks + EXCLUDED.maintenance_checks,
	    latency_count = r.latency_count + EXCLUDED.latency_count,
	    latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
	    latency_max_ms = greatest(r.latency_max_ms, EXCLUDED.latency_max_ms),
	    latency_hist[coalesce(b, 1)] = r.latency_hist[coalesce(b, 1)]
	        + CASE WHEN b IS NULL THEN 0 ELSE 1 END,
	    downtime_seconds = least(r.downtime_seconds + EXCLUDED.downtime_seconds, 3600);
END
$$;

-- items: a JSON array, sorted by (monitor_id, slot, attempt) by the caller so that
-- concurrent batches lock monitor_state rows in one order. Each element:
--   {"monitor_id": uuid, "owner_id": uuid, "slot": ms, "attempt": n, "retries": n,
--    "interval_s": n, "ok": bool, "status_code": n|null, "latency_ms": n|null,
--    "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms": n|null,
--    "error": text|null, "cert_days_left": n|null, "probe_host": text|null}
-- Returned per element (n = 1-based position in items):
--   outcome 1 = stored, 2 = duplicate (row existed: nothing changed), 3 = gone (monitor
--   deleted, paused, or of another owner: nothing stored);
--   final (fed, or would have fed, the state machine), applied (changed counters: not an
--   older result), status / previous (after / before), since_ms (last status change),
--   at_ms (now), alert_kind ('down' | 'recovery' | NULL), alert_id (NULL when no alert or
--   when its dedup_key existed), outage_s (recovery), name, target.
CREATE FUNCTION upmon_probe_apply(items jsonb)
RETURNS TABLE (n integer, outcome smallint, final boolean, applied boolean, status text,
    previous text, since_ms bigint, at_ms bigint, alert_kind text, alert_id uuid,
    outage_s bigint, name text, target text)
LANGUAGE plpgsql AS $$
DECLARE
	e        jsonb;
	ord      bigint;
	v_mon    uuid;
	v_own    uuid;
	v_slot   bigint;
	v_ts     timestamptz;
	v_att    integer;
	v_ok     boolean;
	v_err    text;
	v_lat    integer;
	v_cert   integer;
	v_rows   integer;
	v_maint  boolean;
	v_new    text;
	v_succ   integer;
	v_fail   integer;
	v_dedup  text;
	st       record;
BEGIN
	FOR e, ord IN SELECT x.e, x.o FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, o)
	    ORDER BY x.o
	LOOP
		n := ord::integer;
		v_mon := (e->>'monitor_id')::uuid;
		v_own := (e->>'owner_id')::uuid;
		v_slot := (e->>'slot')::bigint;
		v_ts := upmon_ms_to_ts(v_slot);
		v_att := (e->>'attempt')::integer;
		v_ok := (e->>'ok')::boolean;
		v_err := e->>'error';
		v_lat := (e->>'latency_ms')::integer;
		v_cert := (e->>'cert_days_left')::integer;
		final := v_ok OR v_att > (e->>'retries')::integer;
		applied := false;
		status := NULL; previous := NULL; since_ms := NULL; alert_kind := NULL;
		alert_id := NULL; outage_s := NULL; name := NULL; target := NULL;
		at_ms := upmon_ts_to_ms(now());

		-- 1. deleted, paused or not this owner's: gone
		SELECT s.status AS s_status, s.consecutive_failures, s.consecutive_successes,
		    s.last_slot, s.last_attempt, s.last_change_at, s.down_since,
		    m.name AS m_name, m.paused, m.failure_threshold, m.recovery_threshold,
		    CASE WHEN m.type = 'http' THEN m.url ELSE m.host || ':' || m.port END AS m_target
		  INTO st
		  FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id
		 WHERE s.monitor_id = v_mon AND s.owner_id = v_own AND m.owner_id = v_own
		   FOR UPDATE OF s;
		IF NOT FOUND OR st.s_status = 'paused' OR st.paused THEN
			outcome := 3;
			RETURN NEXT;
			CONTINUE;
		END IF;
		name := st.m_name;
		target := st.m_target;
		status := st.s_status;
		previous := st.s_status;
		since_ms := upmon_ts_to_ms(st.last_change_at);

		-- 2. the result row, idempotent on the task identity
		INSERT INTO check_results (monitor_id, owner_id, scheduled_at, attempt, final, ok,
		    status_code, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms,
		    error, cert_days_left, probe_host)
		VALUES (v_mon, v_own, v_ts, v_att, final, v_ok,
		    (e->>'status_code')::smallint, v_lat, (e->>'dns_ms')::integer,
		    (e->>'connect_ms')::integer, (e->>'tls_ms')::integer,
		    (e->>'first_byte_ms')::integer, (e->>'total_ms')::integer,
		    v_err, v_cert, e->>'probe_host')
		ON CONFLICT DO NOTHING;
		GET DIAGNOSTICS v_rows = ROW_COUNT;
		IF v_rows = 0 THEN
			outcome := 2;
			RETURN NEXT;
			CONTINUE;
		END IF;
		outcome := 1;

		-- 3. not final: the caller queues the re-probe; state untouched
		IF NOT final THEN
			RETURN NEXT;
			CONTINUE;
		END IF;

		-- 4. final: the state machine, unless an older result than the last applied
		-- (most owners have no window: skip the costlier exact test for them)
		v_maint := EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.owner_id = v_own)
		    AND upmon_in_maintenance(v_mon, v_own, v_ts);
		v_new := st.s_status;
		IF st.last_slot IS NULL OR (v_ts, v_att) > (st.last_slot, st.last_attempt) THEN
			applied := true;
			IF v_ok THEN
				v_succ := st.consecutive_successes + 1;
				v_fail := 0;
			ELSE
				v_succ := 0;
				v_fail := st.consecutive_failures + 1;
			END IF;
			IF st.s_status = 'pending' AND v_ok THEN
				v_new := 'up';
			ELSIF st.s_status IN ('pending', 'up') AND NOT v_ok
			    AND v_fail >= st.failure_threshold THEN
				v_new := 'down';
				alert_kind := 'down';
			ELSIF st.s_status = 'down' AND v_ok AND v_succ >= st.recovery_threshold THEN
				v_new := 'up';
				alert_kind := 'recovery';
				outage_s := greatest(0, floor(extract(epoch FROM
				    now() - coalesce(st.down_since, now()))))::bigint;
			END IF;
			IF v_maint THEN
				alert_kind := NULL;
			END IF;
			status := v_new;
			IF v_new <> st.s_status THEN
				since_ms := at_ms;
			END IF;
			UPDATE monitor_state SET
			    status = v_new,
			    consecutive_failures = v_fail,
			    consecutive_successes = v_succ,
			    last_slot = v_ts,
			    last_attempt = v_att,
			    last_checked_at = now(),
			    last_ok = v_ok,
			    last_status_code = (e->>'status_code')::integer,
			    last_latency_ms = v_lat,
			    last_error = v_err,
			    last_change_at = CASE WHEN v_new <> st.s_status THEN now()
			        ELSE last_change_at END,
			    down_since = CASE WHEN v_new = 'down' AND st.s_status <> 'down' THEN now()
			        WHEN v_new = 'down' THEN down_since ELSE NULL END,
			    last_alert_at = CASE WHEN alert_kind IS NOT NULL THEN now()
			        ELSE last_alert_at END,
			    cert_days_left = coalesce(v_cert, cert_days_left)
			WHERE monitor_id = v_mon;
		END IF;

		PERFORM upmon_rollup_add(v_mon, v_own, v_ts, v_ok,
		    CASE WHEN v_ok THEN v_lat END,
		    CASE WHEN status = 'down' THEN (e->>'interval_s')::integer ELSE 0 END,
		    v_maint);

		IF alert_kind IS NOT NULL THEN
			v_dedup := alert_kind || ':' || v_mon || ':' || v_slot;
			INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, details)
			VALUES (v_own, v_mon, alert_kind, v_dedup,
			    left(CASE WHEN alert_kind = 'down'
			        THEN st.m_name || ' is down' || coalesce(': ' || v_err, '')
			        ELSE st.m_name || ' is up again after ' || outage_s || ' s' END, 4096),
			    jsonb_strip_nulls(jsonb_build_object(
			        'task_id', v_mon || ':' || v_slot || ':' || v_att,
			        'target', st.m_target, 'error', v_err,
			        'status_code', (e->>'status_code')::integer,
			        'outage_seconds', outage_s)))
			ON CONFLICT (dedup_key) DO NOTHING
			RETURNING id INTO alert_id;
		END IF;
		RETURN NEXT;
	END LOOP;
END
$$;

-- A SYSTEM_ERROR alert for a task the probe gave up on; returns the new alert's id, or NULL
-- when the monitor is gone (deleted or of another owner) or the alert existed already.
CREATE FUNCTION upmon_probe_system_error(p_monitor_id uuid, p_owner_id uuid, p_slot bigint,
    p_attempt integer, p_attempts integer, p_error text)
RETURNS TABLE (alert_id uuid, name text, target text, at_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
	v_task text := p_monitor_id || ':' || p_slot || ':' || p_attempt;
BEGIN
	SELECT m.name, CASE WHEN m.type = 'http' THEN m.url ELSE m.host || ':' || m.port END
	  INTO name, target
	  FROM monitors m WHERE m.id = p_monitor_id AND m.owner_id = p_owner_id;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	at_ms := upmon_ts_to_ms(now());
	INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, details)
	VALUES (p_owner_id, p_monitor_id, 'system_error', 'system_error:' || v_task,
	    left(name || ': check not processed after ' || p_attempts || ' attempts: '
	        || p_error, 4096),
	    jsonb_build_object('task_id', v_task, 'attempts', p_attempts, 'error', p_error))
	ON CONFLICT (dedup_key) DO NOTHING
	RETURNING id INTO alert_id;
	RETURN NEXT;
END
$$;
