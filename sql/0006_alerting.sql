-- 0006: alerting on the probe side: TLS-expiry alerts and DOWN reminders.
--
-- upmon_probe_apply(items jsonb) is 0005's function (same semantics, same per-item rows) plus:
--   - items may carry "cert_not_after_ms" (the leaf certificate's notAfter, Unix ms);
--   - a stored final result whose certificate expires within monitors.cert_expiry_days
--     (> 0) days, outside maintenance, raises a 'tls_expiry' alert, dedup_key
--     tls_expiry:<monitor>:<not_after_ms>:<threshold_days>: once per certificate and
--     threshold (a renewed certificate alerts again when it too gets close; changing the
--     threshold alerts once more); returned in tls_alert_id with cert_days_left, so one
--     result may raise both a down/recovery and a tls_expiry alert;
--   - a final, applied result that leaves a DOWN monitor DOWN, with
--     monitors.reminder_minutes set, outside maintenance, reminder_minutes or more after
--     greatest(last_alert_at, down_since), raises a 'down' alert marked as a reminder
--     (dedup_key reminder:<monitor>:<slot>, details {"reminder": true, "down_seconds"}),
--     sets last_alert_at, and returns alert_kind 'down', reminder true, outage_s = seconds
--     down so far;
--   - an outage nobody was told of (the monitor went down inside a maintenance window, so
--     its DOWN was suppressed): if it is still down at the first final result outside the
--     window, that result raises the DOWN (dedup_key down:<monitor>:<slot>); if it recovers
--     first, no RECOVERY is raised (a RECOVERY always follows a DOWN its owner received).
-- The return type changes, so the function is dropped and created again.

-- A duration in seconds as short text: "45 s", "12 min", "3 h 5 min", "2 d 4 h".
CREATE FUNCTION upmon_duration_text(p_seconds bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT CASE
	    WHEN p_seconds < 60 THEN greatest(p_seconds, 0) || ' s'
	    WHEN p_seconds < 3600 THEN p_seconds / 60 || ' min'
	    WHEN p_seconds < 86400 THEN p_seconds / 3600 || ' h'
	        || CASE WHEN p_seconds % 3600 >= 60 THEN ' ' || p_seconds % 3600 / 60 || ' min'
	            ELSE '' END
	    ELSE p_seconds / 86400 || ' d'
	        || CASE WHEN p_seconds % 86400 >= 3600 THEN ' ' || p_seconds % 86400 / 3600 || ' h'
	            ELSE '' END
	    END
$$;

DROP FUNCTION upmon_probe_apply(jsonb);

-- items: a JSON array, sorted by (monitor_id, slot, attempt) by the caller so that
-- concurrent batches lock monitor_state rows in one order. Each element:
--   {"monitor_id": uuid, "owner_id": uuid, "slot": ms, "attempt": n, "retries": n,
--    "interval_s": n, "ok": bool, "status_code": n|null, "latency_ms": n|null,
--    "dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms": n|null,
--    "error": text|null, "cert_days_left": n|null, "cert_not_after_ms": ms|null,
--    "probe_host": text|null}
-- Returned per element (n = 1-based position in items):
--   outcome 1 = stored, 2 = duplicate (row existed: nothing changed), 3 = gone (monitor
--   deleted, paused, or of another owner: nothing stored);
--   final (fed, or would have fed, the state machine), applied (changed counters: not an
--   older result), status / previous (after / before), since_ms (last status change),
--   at_ms (now), alert_kind ('down' | 'recovery' | NULL), alert_id (NULL when no alert or
--   when its dedup_key existed), outage_s (recovery: the outage; reminder: down so far),
--   name, target; tls_alert_id (a tls_expiry alert raised by this result, NULL when none or
--   when its dedup_key existed) and cert_days_left (of this final result); reminder (the
--   alert is a DOWN reminder: alert_kind 'down', dedup_key reminder:<monitor>:<slot>).
-- Set-based where it can be: one statement locks and reads every state row, one inserts
-- every result, one updates every changed state row, one upserts the rollups; the state
-- machine itself runs per item in memory (items of one monitor in order).
CREATE FUNCTION upmon_probe_apply(items jsonb)
RETURNS TABLE (n integer, outcome smallint, final boolean, applied boolean, status text,
    previous text, since_ms bigint, at_ms bigint, alert_kind text, alert_id uuid,
    outage_s bigint, name text, target text, tls_alert_id uuid, cert_days_left integer,
    reminder boolean)
LANGUAGE plpgsql AS $$
DECLARE
	bounds   integer[] := upmon_latency_bounds();
	pos      jsonb;
	ins      jsonb;
	-- the state rows, by position k (pos: monitor id -> k)
	s_id     uuid[];
	s_own    uuid[];
	s_status text[];
	s_fail   integer[];
	s_succ   integer[];
	s_slot   timestamptz[];
	s_att    integer[];
	s_change timestamptz[];
	s_down   timestamptz[];
	s_alert  timestamptz[];
	s_cert   integer[];
	s_gone   boolean[];
	s_name   text[];
	s_target text[];
	s_fth    integer[];
	s_cexp   integer[];
	s_remind integer[];
	s_rth    integer[];
	s_dirty  boolean[];
	s_ok     boolean[];
	s_code   integer[];
	s_lat    integer[];
	s_err    text[];
	-- rollup rows
	r_mon    uuid[] := '{}';
	r_own    uuid[] := '{}';
	r_hour   timestamptz[] := '{}';
	r_ok     boolean[] := '{}';
	r_lat    integer[] := '{}';
	r_b      integer[] := '{}';
	r_down   integer[] := '{}';
	r_maint  boolean[] := '{}';
	e        jsonb;
	ord      bigint;
	k        integer;
	v_key    text;
	v_mon    uuid;
	v_own    uuid;
	v_slot   bigint;
	v_ts     timestamptz;
	v_att    integer;
	v_ok     boolean;
	v_err    text;
	v_lat    integer;
	v_cert   integer;
	v_after  bigint;
	v_down_s bigint;
	v_maint  boolean;
	v_told   boolean;
	v_new    text;
	v_now    timestamptz := now();
BEGIN
	at_ms := upmon_ts_to_ms(v_now);

	-- 1. lock and read the state of every monitor of the batch, in monitor order
	SELECT array_agg(x.monitor_id ORDER BY x.monitor_id),
	       array_agg(x.owner_id ORDER BY x.monitor_id),
	       array_agg(x.status ORDER BY x.monitor_id),
	       array_agg(x.consecutive_failures ORDER BY x.monitor_id),
	       array_agg(x.consecutive_successes ORDER BY x.monitor_id),
	       array_agg(x.last_slot ORDER BY x.monitor_id),
	       array_agg(x.last_attempt ORDER BY x.monitor_id),
	       array_agg(x.last_change_at ORDER BY x.monitor_id),
	       array_agg(x.down_since ORDER BY x.monitor_id),
	       array_agg(x.last_alert_at ORDER BY x.monitor_id),
	       array_agg(x.cert_days_left ORDER BY x.monitor_id),
	       array_agg(x.gone ORDER BY x.monitor_id),
	       array_agg(x.m_name ORDER BY x.monitor_id),
	       array_agg(x.m_target ORDER BY x.monitor_id),
	       array_agg(x.failure_threshold ORDER BY x.monitor_id),
	       array_agg(x.recovery_threshold ORDER BY x.monitor_id),
	       array_agg(x.cert_expiry_days ORDER BY x.monitor_id),
	       array_agg(x.reminder_minutes ORDER BY x.monitor_id),
	       array_agg(false ORDER BY x.monitor_id),
	       array_agg(x.last_ok ORDER BY x.monitor_id),
	       array_agg(x.last_status_code ORDER BY x.monitor_id),
	       array_agg(x.last_latency_ms ORDER BY x.monitor_id),
	       array_agg(x.last_error ORDER BY x.monitor_id)
	  INTO s_id, s_own, s_status, s_fail, s_succ, s_slot, s_att, s_change, s_down, s_alert,
	       s_cert, s_gone, s_name, s_target, s_fth, s_rth, s_cexp, s_remind, s_dirty, s_ok,
	       s_code, s_lat, s_err
	  FROM (SELECT s.monitor_id, s.owner_id, s.status, s.consecutive_failures,
	               s.consecutive_successes, s.last_slot, s.last_attempt, s.last_change_at,
	               s.down_since, s.last_alert_at, s.cert_days_left, s.last_ok,
	               s.last_status_code, s.last_latency_ms, s.last_error,
	               (s.status = 'paused' OR m.paused) AS gone, m.name AS m_name,
	               CASE WHEN m.type = 'http' THEN m.url ELSE m.host || ':' || m.port END
	                   AS m_target,
	               m.failure_threshold, m.recovery_threshold, m.cert_expiry_days,
	               m.reminder_minutes
	          FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id
	               AND m.owner_id = s.owner_id
	         WHERE s.monitor_id IN (SELECT DISTINCT (j->>'monitor_id')::uuid
	                                  FROM jsonb_array_elements(items) AS j)
	         ORDER BY s.monitor_id
	           FOR UPDATE OF s) AS x;
	SELECT coalesce(jsonb_object_agg(u.id::text, u.k), '{}') INTO pos
	  FROM unnest(s_id) WITH ORDINALITY AS u(id, k);

	-- 2. every result row of a live monitor, idempotent on the task identity
	WITH inserted AS (
		INSERT INTO check_results (monitor_id, owner_id, scheduled_at, attempt, final, ok,
		    status_code, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms,
		    error, cert_days_left, probe_host)
		SELECT (j->>'monitor_id')::uuid, (j->>'owner_id')::uuid,
		    upmon_ms_to_ts((j->>'slot')::bigint), (j->>'attempt')::integer,
		    (j->>'ok')::boolean OR (j->>'attempt')::integer > (j->>'retries')::integer,
		    (j->>'ok')::boolean, (j->>'status_code')::smallint,
		    (j->>'latency_ms')::integer, (j->>'dns_ms')::integer,
		    (j->>'connect_ms')::integer, (j->>'tls_ms')::integer,
		    (j->>'first_byte_ms')::integer, (j->>'total_ms')::integer, j->>'error',
		    (j->>'cert_days_left')::integer, j->>'probe_host'
		  FROM jsonb_array_elements(items) AS j
		 WHERE pos ? (j->>'monitor_id')
		   AND s_own[(pos->>(j->>'monitor_id'))::integer] = (j->>'owner_id')::uuid
		   AND NOT s_gone[(pos->>(j->>'monitor_id'))::integer]
		ON CONFLICT DO NOTHING
		RETURNING check_results.monitor_id, check_results.scheduled_at,
		    check_results.attempt)
	SELECT coalesce(jsonb_object_agg(i.monitor_id::text || ':' ||
	    upmon_ts_to_ms(i.scheduled_at) || ':' || i.attempt, true), '{}')
	  INTO ins FROM inserted AS i;

	-- 3, 4. per item, in order
	FOR e, ord IN SELECT x.e, x.o FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, o)
	    ORDER BY x.o
	LOOP
		n := ord::integer;
		v_mon := (e->>'monitor_id')::uuid;
		v_own := (e->>'owner_id')::uuid;
		v_slot := (e->>'slot')::bigint;
		v_att := (e->>'attempt')::integer;
		v_ok := (e->>'ok')::boolean;
		final := v_ok OR v_att > (e->>'retries')::integer;
		applied := false;
		status := NULL; previous := NULL; since_ms := NULL; alert_kind := NULL;
		alert_id := NULL; outage_s := NULL; name := NULL; target := NULL;
		tls_alert_id := NULL; cert_days_left := NULL; reminder := false;
		k := (pos->>(v_mon::text))::integer;
		IF k IS NULL OR s_own[k] <> v_own OR s_gone[k] THEN
			outcome := 3;
			RETURN NEXT;
			CONTINUE;
		END IF;
		name := s_name[k];
		target := s_target[k];
		status := s_status[k];
		previous := s_status[k];
		since_ms := upmon_ts_to_ms(s_change[k]);
		v_key := v_mon::text || ':' || v_slot || ':' || v_att;
		IF NOT ins ? v_key THEN
			outcome := 2;
			RETURN NEXT;
			CONTINUE;
		END IF;
		ins := ins - v_key;	/* the same task twice in one batch: once stored */
		outcome := 1;
		IF NOT final THEN
			RETURN NEXT;
			CONTINUE;
		END IF;

		v_ts := upmon_ms_to_ts(v_slot);
		v_err := e->>'error';
		v_lat := (e->>'latency_ms')::integer;
		v_cert := (e->>'cert_days_left')::integer;
		v_after := (e->>'cert_not_after_ms')::bigint;
		cert_days_left := v_cert;
		-- (most owners have no window: skip the costlier exact test for them)
		v_maint := EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.owner_id = v_own)
		    AND upmon_in_maintenance(v_mon, v_own, v_ts);
		IF s_slot[k] IS NULL OR (v_ts, v_att) > (s_slot[k], s_att[k]) THEN
			applied := true;
			IF v_ok THEN
				s_succ[k] := s_succ[k] + 1;
				s_fail[k] := 0;
			ELSE
				s_succ[k] := 0;
				s_fail[k] := s_fail[k] + 1;
			END IF;
			v_new := s_status[k];
			-- the owner was told of the current outage (a DOWN or a reminder since it began;
			-- a DOWN raised with the state change has last_alert_at = down_since)
			v_told := s_status[k] = 'down' AND s_alert[k] IS NOT NULL
			    AND s_down[k] IS NOT NULL AND s_alert[k] >= s_down[k];
			IF s_status[k] = 'pending' AND v_ok THEN
				v_new := 'up';
			ELSIF s_status[k] IN ('pending', 'up') AND NOT v_ok
			    AND s_fail[k] >= s_fth[k] THEN
				v_new := 'down';
				alert_kind := 'down';
			ELSIF s_status[k] = 'down' AND v_ok AND s_succ[k] >= s_rth[k] THEN
				v_new := 'up';
				-- a RECOVERY only for an outage its owner was told about
				IF v_told THEN
					alert_kind := 'recovery';
					outage_s := greatest(0, floor(extract(epoch FROM
					    v_now - coalesce(s_down[k], v_now))))::bigint;
				END IF;
			END IF;
			IF v_maint THEN
				alert_kind := NULL;
			END IF;
			-- went down in a maintenance window and still down after it: the DOWN now
			IF s_status[k] = 'down' AND v_new = 'down' AND alert_kind IS NULL
			    AND NOT v_maint AND NOT v_told THEN
				alert_kind := 'down';
			END IF;
			-- still down: a reminder every reminder_minutes since the last alert
			IF s_status[k] = 'down' AND v_new = 'down' AND alert_kind IS NULL
			    AND NOT v_maint AND s_remind[k] IS NOT NULL
			    AND v_now - greatest(s_alert[k], s_down[k])
			        >= make_interval(mins => s_remind[k]) THEN
				alert_kind := 'down';
				reminder := true;
				outage_s := greatest(0, floor(extract(epoch FROM
				    v_now - coalesce(s_down[k], v_now))))::bigint;
			END IF;
			IF v_new <> s_status[k] THEN
				s_change[k] := v_now;
				since_ms := at_ms;
				IF v_new = 'down' THEN
					s_down[k] := v_now;
				END IF;
			END IF;
			IF v_new <> 'down' THEN
				s_down[k] := NULL;
			END IF;
			IF alert_kind IS NOT NULL THEN
				s_alert[k] := v_now;
			END IF;
			s_status[k] := v_new;
			s_slot[k] := v_ts;
			s_att[k] := v_att;
			s_ok[k] := v_ok;
			s_code[k] := (e->>'status_code')::integer;
			s_lat[k] := v_lat;
			s_err[k] := v_err;
			s_cert[k] := coalesce(v_cert, s_cert[k]);
			s_dirty[k] := true;
			status := v_new;
		END IF;

		-- the rollup row (summed per monitor and hour below), as upmon_rollup_add counts
		r_mon := r_mon || v_mon;
		r_own := r_own || v_own;
		r_hour := r_hour || (date_trunc('hour', v_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
		r_ok := r_ok || v_ok;
		r_lat := r_lat || CASE WHEN v_ok THEN v_lat END;
		r_b := r_b || CASE WHEN v_ok AND v_lat IS NOT NULL
		    THEN width_bucket(v_lat - 1, bounds) + 1 END;
		r_down := r_down || CASE WHEN s_status[k] = 'down'
		    THEN (e->>'interval_s')::integer ELSE 0 END;
		r_maint := r_maint || v_maint;

		IF alert_kind IS NOT NULL THEN
			v_down_s := CASE WHEN reminder THEN outage_s END;
			INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, details)
			VALUES (v_own, v_mon, alert_kind,
			    CASE WHEN reminder THEN 'reminder' ELSE alert_kind END
			        || ':' || v_mon || ':' || v_slot,
			    left(CASE WHEN reminder
			        THEN s_name[k] || ' is still down (for '
			            || upmon_duration_text(v_down_s) || ')'
			            || coalesce(': ' || v_err, '')
			        WHEN alert_kind = 'down'
			        THEN s_name[k] || ' is down' || coalesce(': ' || v_err, '')
			        ELSE s_name[k] || ' is up again after ' || outage_s || ' s' END, 4096),
			    jsonb_strip_nulls(jsonb_build_object(
			        'task_id', v_key, 'target', s_target[k], 'error', v_err,
			        'status_code', (e->>'status_code')::integer,
			        'outage_seconds', CASE WHEN NOT reminder THEN outage_s END,
			        'reminder', CASE WHEN reminder THEN true END,
			        'down_seconds', v_down_s)))
			ON CONFLICT (dedup_key) DO NOTHING
			RETURNING id INTO alert_id;
		END IF;

		-- the certificate expires within the monitor's threshold: once per certificate
		-- (its not-after time) and threshold value
		IF v_cert IS NOT NULL AND v_after IS NOT NULL AND s_cexp[k] > 0
		    AND v_cert <= s_cexp[k] AND NOT v_maint THEN
			INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, details)
			VALUES (v_own, v_mon, 'tls_expiry',
			    'tls_expiry:' || v_mon || ':' || v_after || ':' || s_cexp[k],
			    left(s_name[k] || ': certificate ' || CASE WHEN v_cert >= 0
			        THEN 'expires in ' || v_cert || CASE WHEN v_cert = 1 THEN ' day'
			            ELSE ' days' END
			        ELSE 'expired ' || -v_cert || CASE WHEN v_cert = -1 THEN ' day'
			            ELSE ' days' END || ' ago' END, 4096),
			    jsonb_build_object('task_id', v_key, 'target', s_target[k],
			        'not_after', upmon_ms_to_ts(v_after), 'not_after_ms', v_after,
			        'cert_days_left', v_cert, 'threshold_days', s_cexp[k]))
			ON CONFLICT (dedup_key) DO NOTHING
			RETURNING id INTO tls_alert_id;
		END IF;
		RETURN NEXT;
	END LOOP;

	-- 5. the changed state rows, in one statement
	UPDATE monitor_state AS s SET
	    status = u.status,
	    consecutive_failures = u.fail,
	    consecutive_successes = u.succ,
	    last_slot = u.slot,
	    last_attempt = u.att,
	    last_checked_at = v_now,
	    last_ok = u.ok,
	    last_status_code = u.code,
	    last_latency_ms = u.lat,
	    last_error = u.err,
	    last_change_at = u.change,
	    down_since = u.down,
	    last_alert_at = u.alert,
	    cert_days_left = u.cert
	  FROM unnest(s_id, s_dirty, s_status, s_fail, s_succ, s_slot, s_att, s_ok, s_code, s_lat,
	       s_err, s_change, s_down, s_alert, s_cert)
	       AS u(id, dirty, status, fail, succ, slot, att, ok, code, lat, err, change, down,
	       alert, cert)
	 WHERE s.monitor_id = u.id AND u.dirty;

	-- 6. the rollups: every final result counted once, summed per monitor and hour
	IF cardinality(r_mon) > 0 THEN
		INSERT INTO check_rollups_hourly AS r (monitor_id, owner_id, hour, checks, failures,
		    maintenance_checks, latency_count, latency_sum_ms, latency_max_ms, latency_hist,
		    downtime_seconds)
		SELECT x.mon, x.own, x.hour,
		    count(*) FILTER (WHERE NOT x.maint),
		    count(*) FILTER (WHERE NOT x.maint AND NOT x.ok),
		    count(*) FILTER (WHERE x.maint),
		    count(x.lat), coalesce(sum(x.lat), 0), coalesce(max(x.lat), 0),
		    upmon_probe_hist(array_agg(x.b) FILTER (WHERE x.b IS NOT NULL)),
		    least(sum(x.down), 3600)
		  FROM unnest(r_mon, r_own, r_hour, r_ok, r_lat, r_b, r_down, r_maint)
		       AS x(mon, own, hour, ok, lat, b, down, maint)
		 GROUP BY x.mon, x.own, x.hour
		ON CONFLICT (monitor_id, hour) DO UPDATE SET
		    checks = r.checks + EXCLUDED.checks,
		    failures = r.failures + EXCLUDED.failures,
		    maintenance_checks = r.maintenance_checks + EXCLUDED.maintenance_checks,
		    latency_count = r.latency_count + EXCLUDED.latency_count,
		    latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
		    latency_max_ms = greatest(r.latency_max_ms, EXCLUDED.latency_max_ms),
		    latency_hist = upmon_probe_hist_add(r.latency_hist, EXCLUDED.latency_hist),
		    downtime_seconds = least(r.downtime_seconds + EXCLUDED.downtime_seconds, 3600);
	END IF;
END
$$;
