-- 0002: check history.
--
-- check_results, partitioned by day (UTC) on scheduled_at, keyed by the task identity
-- (monitor_id, scheduled_at, attempt) so redelivered tasks insert nothing
-- (INSERT ... ON CONFLICT DO NOTHING). There is deliberately no default partition: a row
-- outside every partition fails with SQLSTATE 23514 ("no partition of relation ... found for
-- row") instead of piling up in a default partition that would then block creating the real
-- one. upmon_ensure_partitions() keeps yesterday .. today + N created; `upmonctl migrate`,
-- `upmonctl partitions` and the scheduler call it. upmon_drop_partitions() applies retention.
--
-- check_rollups_hourly holds per monitor and hour the counts and a fixed-bucket latency
-- histogram, so uptime and p50/p95/p99 over 24h/7d/30d read at most 720 rows per monitor.

CREATE TABLE check_results (
	monitor_id      uuid        NOT NULL,
	owner_id        uuid        NOT NULL,
	-- the slot on the monitor's fixed grid (task identity, partition key)
	scheduled_at    timestamptz NOT NULL,
	-- 0 = first probe of the slot, n = n-th confirmation re-probe
	attempt         smallint    NOT NULL DEFAULT 0,
	-- false while a failed attempt is going to be re-probed; the attempt that fed the state
	-- machine has final = true
	final           boolean     NOT NULL DEFAULT true,
	ok              boolean     NOT NULL,
	status_code     smallint,
	latency_ms      integer,
	dns_ms          integer,
	connect_ms      integer,
	tls_ms          integer,
	first_byte_ms   integer,
	total_ms        integer,
	error           text,
	cert_days_left  integer,
	checked_at      timestamptz NOT NULL DEFAULT now(),
	probe_host      text,
	CONSTRAINT check_results_pkey PRIMARY KEY (monitor_id, scheduled_at, attempt),
	CONSTRAINT check_results_monitor_fkey FOREIGN KEY (monitor_id, owner_id)
	    REFERENCES monitors (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT check_results_attempt_check CHECK (attempt BETWEEN 0 AND 100),
	CONSTRAINT check_results_status_code_check CHECK (status_code BETWEEN 100 AND 999),
	CONSTRAINT check_results_timings_check CHECK (latency_ms >= 0 AND dns_ms >= 0
	    AND connect_ms >= 0 AND tls_ms >= 0 AND first_byte_ms >= 0 AND total_ms >= 0),
	CONSTRAINT check_results_error_check CHECK (length(error) <= 1024),
	CONSTRAINT check_results_probe_host_check CHECK (length(probe_host) <= 255)
) PARTITION BY RANGE (scheduled_at);

-- Creates the daily partitions check_results_pYYYYMMDD for yesterday through
-- today + days_ahead (UTC) that do not exist yet; returns how many it created. Idempotent and
-- safe to call concurrently (serialised by a transaction-scoped advisory lock).
CREATE FUNCTION upmon_ensure_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	parent  regclass := 'check_results'::regclass;
	nsp     text;
	today   date := (now() AT TIME ZONE 'UTC')::date;
	d       date;
	part    text;
	created integer := 0;
BEGIN
	IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
		RAISE EXCEPTION 'days_ahead must be between 0 and 366, got %', days_ahead
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM pg_advisory_xact_lock(8462358091345921);
	SELECT n.nspname INTO nsp FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = parent;
	FOR i IN -1 .. days_ahead LOOP
		d := today + i;
		part := 'check_results_p' || to_char(d, 'YYYYMMDD');
		CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n
		    ON n.oid = c.relnamespace WHERE n.nspname = nsp AND c.relname = part);
		EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
		    nsp, part, parent, to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00',
		    to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
		created := created + 1;
	END LOOP;
	RETURN created;
END
$$;

-- Drops the daily partitions whose whole day ended more than retention_days days ago (UTC),
-- so at least retention_days of history is kept; returns how many it dropped. Only tables
-- named check_results_pYYYYMMDD attached to check_results are considered.
CREATE FUNCTION upmon_drop_partitions(retention_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	cutoff  date;
	r       record;
	dropped integer := 0;
BEGIN
	IF retention_days IS NULL OR retention_days < 1 THEN
		RAISE EXCEPTION 'retention_days must be at least 1, got %', retention_days
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM pg_advisory_xact_lock(8462358091345921);
	cutoff := (now() AT TIME ZONE 'UTC')::date - retention_days;
	FOR r IN SELECT n.nspname, c.relname FROM pg_inherits i
	    JOIN pg_class c ON c.oid = i.inhrelid
	    JOIN pg_namespace n ON n.oid = c.relnamespace
	    WHERE i.inhparent = 'check_results'::regclass
	      AND c.relname ~ '^check_results_p[0-9]{8}$'
	    ORDER BY c.relname
	LOOP
		CONTINUE WHEN to_date(substr(r.relname, 16), 'YYYYMMDD') + 1 > cutoff;
		EXECUTE format('DROP TABLE %I.%I', r.nspname, r.relname);
		dropped := dropped + 1;
	END LOOP;
	RETURN dropped;
END
$$;

-- Latency histogram: upper bounds (ms, inclusive) of the buckets; bucket n+1 is "above the
-- last bound". Changing these needs a migration that rewrites check_rollups_hourly.
CREATE FUNCTION upmon_latency_bounds() RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT '{5,10,20,30,40,50,60,80,100,125,150,200,250,300,400,500,600,800,1000,1250,1500,
	         2000,2500,3000,4000,5000,7500,10000,15000,30000}'::integer[]
$$;

-- 1-based bucket index of latency_ms.
CREATE FUNCTION upmon_latency_bucket(latency_ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT coalesce((SELECT min(b.i)::integer
	                   FROM unnest(upmon_latency_bounds()) WITH ORDINALITY AS b(bound, i)
	                  WHERE latency_ms <= b.bound),
	                cardinality(upmon_latency_bounds()) + 1)
$$;

-- A histogram counting one observation of latency_ms (all zeros when latency_ms is NULL).
CREATE FUNCTION upmon_hist_one(latency_ms integer) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT array_agg(CASE WHEN g.i = upmon_latency_bucket(latency_ms) THEN 1 ELSE 0 END
	                 ORDER BY g.i)
	  FROM generate_series(1, cardinality(upmon_latency_bounds()) + 1) AS g(i)
$$;

-- Element-wise sum of two histograms (NULL acts as empty).
CREATE FUNCTION upmon_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
	    ARRAY(SELECT coalesce(t.x, 0) + coalesce(t.y, 0)
	            FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) ORDER BY t.i) END
$$;

-- upmon_hist_sum(latency_hist): adds the histograms of many rows.
CREATE AGGREGATE upmon_hist_sum(integer[]) (
	SFUNC = upmon_hist_add,
	STYPE = integer[],
	COMBINEFUNC = upmon_hist_add,
	PARALLEL = SAFE
);

-- Estimates the q-quantile (0..1) in ms from a histogram, interpolating linearly inside the
-- bucket; NULL for an empty histogram. The overflow bucket answers the last bound.
CREATE FUNCTION upmon_hist_quantile(hist integer[], q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	bounds integer[] := upmon_latency_bounds();
	nb     integer := cardinality(bounds);
	total  bigint := 0;
	cum    bigint := 0;
	rank   double precision;
	c      bigint;
	lo     double precision;
BEGIN
	IF hist IS NULL OR q IS NULL OR q < 0 OR q > 1 THEN
		RETURN NULL;
	END IF;
	FOR i IN 1 .. cardinality(hist) LOOP
		total := total + coalesce(hist[i], 0);
	END LOOP;
	IF total = 0 THEN
		RETURN NULL;
	END IF;
	rank := q * total;
	FOR i IN 1 .. cardinality(hist) LOOP
		c := coalesce(hist[i], 0);
		IF c > 0 AND cum + c >= rank THEN
			IF i > nb THEN
				RETURN bounds[nb];
			END IF;
			lo := CASE WHEN i = 1 THEN 0 ELSE bounds[i - 1] END;
			RETURN lo + (bounds[i] - lo) * greatest(rank - cum, 0) / c;
		END IF;
		cum := cum + c;
	END LOOP;
	RETURN bounds[nb];
END
$$;

CREATE TABLE check_rollups_hourly (
	monitor_id         uuid        NOT NULL,
	owner_id           uuid        NOT NULL,
	-- start of the UTC hour
	hour               timestamptz NOT NULL,
	-- final check outcomes outside maintenance windows
	checks             integer     NOT NULL DEFAULT 0,
	failures           integer     NOT NULL DEFAULT 0,
	-- checks that fell in a maintenance window: left out of checks/failures (uptime)
	maintenance_checks integer     NOT NULL DEFAULT 0,
	latency_count      integer     NOT NULL DEFAULT 0,
	latency_sum_ms     bigint      NOT NULL DEFAULT 0,
	latency_max_ms     integer     NOT NULL DEFAULT 0,
	latency_hist       integer[]   NOT NULL DEFAULT upmon_hist_one(NULL),
	downtime_seconds   integer     NOT NULL DEFAULT 0,
	CONSTRAINT check_rollups_hourly_pkey PRIMARY KEY (monitor_id, hour),
	CONSTRAINT check_rollups_hourly_monitor_fkey FOREIGN KEY (monitor_id, owner_id)
	    REFERENCES monitors (id, owner_id) ON DELETE CASCADE,
	CONSTRAINT check_rollups_hourly_hour_check CHECK (
	    extract(epoch FROM hour)::bigint % 3600 = 0),
	CONSTRAINT check_rollups_hourly_counts_check CHECK (checks >= 0 AND failures >= 0
	    AND failures <= checks AND maintenance_checks >= 0 AND latency_count >= 0
	    AND latency_sum_ms >= 0 AND latency_max_ms >= 0),
	CONSTRAINT check_rollups_hourly_hist_check CHECK (
	    cardinality(latency_hist) = cardinality(upmon_latency_bounds()) + 1),
	CONSTRAINT check_rollups_hourly_downtime_check CHECK (downtime_seconds BETWEEN 0 AND 3600)
);
CREATE INDEX check_rollups_hourly_owner_hour_idx ON check_rollups_hourly (owner_id, hour);

-- Adds one final check outcome to its hour's rollup (upsert). Call it in the transaction that
-- inserted the result, and only when that INSERT ... ON CONFLICT DO NOTHING inserted a row, so
-- a redelivered task is not counted twice. latency_ms may be NULL (no latency measured).
CREATE FUNCTION upmon_rollup_add(p_monitor_id uuid, p_owner_id uuid, p_at timestamptz,
    p_ok boolean, p_latency_ms integer, p_downtime_seconds integer,
    p_in_maintenance boolean) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO check_rollups_hourly AS r (monitor_id, owner_id, hour, checks, failures,
	    maintenance_checks, latency_count, latency_sum_ms, latency_max_ms, latency_hist,
	    downtime_seconds)
	VALUES (p_monitor_id, p_owner_id,
	    date_trunc('hour', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
	    CASE WHEN p_in_maintenance THEN 0 ELSE 1 END,
	    CASE WHEN p_in_maintenance OR p_ok THEN 0 ELSE 1 END,
	    CASE WHEN p_in_maintenance THEN 1 ELSE 0 END,
	    CASE WHEN p_latency_ms IS NULL THEN 0 ELSE 1 END,
	    coalesce(p_latency_ms, 0), coalesce(p_latency_ms, 0), upmon_hist_one(p_latency_ms),
	    least(coalesce(p_downtime_seconds, 0), 3600))
	ON CONFLICT (monitor_id, hour) DO UPDATE SET
	    checks = r.checks + EXCLUDED.checks,
	    failures = r.failures + EXCLUDED.failures,
	    maintenance_checks = r.maintenance_checks + EXCLUDED.maintenance_checks,
	    latency_count = r.latency_count + EXCLUDED.latency_count,
	    latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
	    latency_max_ms = greatest(r.latency_max_ms, EXCLUDED.latency_max_ms),
	    latency_hist = upmon_hist_add(r.latency_hist, EXCLUDED.latency_hist),
	    downtime_seconds = least(r.downtime_seconds + EXCLUDED.downtime_seconds, 3600)
$$;

-- Deletes rollups older than retention_days; returns how many rows it deleted.
CREATE FUNCTION upmon_prune_rollups(retention_days integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF retention_days IS NULL OR retention_days < 1 THEN
		RAISE EXCEPTION 'retention_days must be at least 1, got %', retention_days
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM check_rollups_hourly WHERE hour < now() - make_interval(days => retention_days);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
