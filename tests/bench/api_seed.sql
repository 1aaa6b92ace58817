-- Seed of tests/bench/api.sh (P5, P6): run with psql -v owner=<users.id> -v monitors=<n>.
--
-- n http monitors of one owner ("bench-1" .. "bench-<n>", interval 30 s; nothing checks
-- them: no scheduler or probe runs), and for bench-1 30 days of 30-second history: 86,400
-- final check_results rows (1 in 500 failed; latencies 5..304 ms, spread) in 31 daily
-- partitions, created here for the days upmon_ensure_partitions() does not cover, plus the
-- matching hourly rollups (about 721 rows), built the way upmon_probe_apply() counts them:
-- failures' latencies are left out of the histogram, downtime is 30 s per failed check.
\set ON_ERROR_STOP 1

INSERT INTO monitors (owner_id, name, type, url, interval_seconds)
SELECT :'owner', 'bench-' || g, 'http', 'http://127.0.0.1:9/', 30
  FROM generate_series(1, :monitors) g;

DO $$
DECLARE
	d    date;
	part text;
BEGIN
	FOR i IN 0 .. 31 LOOP
		d := (now() AT TIME ZONE 'UTC')::date - i;
		part := 'check_results_p' || to_char(d, 'YYYYMMDD');
		CONTINUE WHEN to_regclass(part) IS NOT NULL;
		EXECUTE format('CREATE TABLE %I PARTITION OF check_results FOR VALUES FROM (%L) '
		    'TO (%L)', part, to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00',
		    to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
	END LOOP;
END
$$;

INSERT INTO check_results (monitor_id, owner_id, scheduled_at, attempt, final, ok,
    status_code, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms, error,
    checked_at, probe_host)
SELECT m.id, m.owner_id, x.t, 1, true, x.ok, CASE WHEN x.ok THEN 200 ELSE 500 END, x.lat,
    1, 2, NULL, x.lat - 1, x.lat, CASE WHEN x.ok THEN NULL ELSE 'status 500' END,
    x.t + interval '120 ms', 'bench'
  FROM (SELECT id, owner_id FROM monitors WHERE owner_id = :'owner' AND name = 'bench-1') m,
       LATERAL (SELECT to_timestamp(floor(extract(epoch FROM now()) / 30) * 30)
                       - g * interval '30 seconds' AS t,
                       g % 500 <> 0 AS ok, 5 + (g * 7919) % 300 AS lat
                  FROM generate_series(0, 86399) g) x;

INSERT INTO check_rollups_hourly (monitor_id, owner_id, hour, checks, failures,
    maintenance_checks, latency_count, latency_sum_ms, latency_max_ms, latency_hist,
    downtime_seconds)
SELECT c.monitor_id, c.owner_id,
    date_trunc('hour', c.scheduled_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
    count(*), count(*) FILTER (WHERE NOT c.ok), 0,
    count(*) FILTER (WHERE c.ok), coalesce(sum(c.latency_ms) FILTER (WHERE c.ok), 0),
    coalesce(max(c.latency_ms) FILTER (WHERE c.ok), 0),
    upmon_probe_hist(array_agg(width_bucket(c.latency_ms - 1, upmon_latency_bounds()) + 1)
        FILTER (WHERE c.ok)),
    least(30 * count(*) FILTER (WHERE NOT c.ok), 3600)
  FROM check_results c
  JOIN monitors m ON m.id = c.monitor_id AND m.name = 'bench-1'
 WHERE c.owner_id = :'owner'
 GROUP BY 1, 2, 3;

-- the state machine's rows say up (the PostgreSQL fallback of /status)
UPDATE monitor_state SET status = 'up', last_slot = date_trunc('minute', now()),
    last_attempt = 1, last_checked_at = now(), last_ok = true, last_status_code = 200,
    last_latency_ms = 12
 WHERE owner_id = :'owner';

ANALYZE check_results;
ANALYZE check_rollups_hourly;
ANALYZE monitors;
ANALYZE monitor_state;
