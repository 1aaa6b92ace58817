#!/usr/bin/env bash
# `upmonctl migrate` against a fresh database ($UPMON_PG_URL):
#   - two migrators started at once both succeed and every file is applied exactly once;
#   - a second run changes nothing (pg_dump --schema-only and a catalog query are identical);
#   - an applied file whose checksum changed is refused (exit 1), and --status shows it;
#   - a failing migration leaves neither its effects nor its bookkeeping row;
#   - a migration that commits by itself is refused; a good new one is applied;
#   - `upmonctl partitions` creates ahead and drops expired partitions;
#   - usage errors exit 2 with one line, runtime errors exit 1 with one line.
set -uo pipefail

: "${UPMON_PG_URL:?}" "${UPMON_BIN_DIR:?}" "${UPMON_SOURCE_DIR:?}"
ctl=$UPMON_BIN_DIR/upmonctl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { checks=$((checks + 1)); if ! eval "$1"; then fail "$1"; fi; }
sql() { psql "$UPMON_PG_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
# Everything a migration can change, in a stable order (besides the schema dump).
catalog() {
  sql "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
         FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2;
       SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2;
       SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2;
       SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2;
       SELECT p.oid::regprocedure, md5(p.prosrc) FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1;
       SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY 1;"
}
# (newer pg_dump releases frame the dump with a random \restrict key: not schema)
# stderr of upmonctl without the config module's warnings about the harness's UPMON_* names
errs() { grep -v '^config: warning: ' "$1"; }
dump() { pg_dump --schema-only --no-owner "$UPMON_PG_URL" | grep -v '^\\\(un\)\?restrict '; }

# A copy of the migrations plus a slow one, so that two runs surely overlap.
mkdir -p "$tmp/sql"
cp "$UPMON_SOURCE_DIR"/sql/*.sql "$tmp/sql/"
cat >"$tmp/sql/0900_slow.sql" <<'EOF'
SELECT pg_sleep(1);
CREATE TABLE migrate_test_marker (id integer PRIMARY KEY);
INSERT INTO migrate_test_marker VALUES (1);
EOF
nfiles=$(ls "$tmp"/sql/*.sql | wc -l)

echo "-- two concurrent runs"
"$ctl" migrate --dir "$tmp/sql" >"$tmp/a.out" 2>"$tmp/a.err" & pa=$!
"$ctl" migrate --dir "$tmp/sql" >"$tmp/b.out" 2>"$tmp/b.err" & pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
cat "$tmp"/a.out "$tmp"/a.err "$tmp"/b.out "$tmp"/b.err >&2
check '[[ $ra -eq 0 && $rb -eq 0 ]]'
check '[[ $(cat "$tmp"/a.out "$tmp"/b.out | grep -c "^applied ") -eq $nfiles ]]'
for f in "$tmp"/sql/*.sql; do
  check "[[ \$(cat \"$tmp\"/a.out \"$tmp\"/b.out | grep -cx \"applied $(basename "$f")\") -eq 1 ]]"
done
check 'grep -q "waiting for another migrate" "$tmp/a.err" "$tmp/b.err"'
check '[[ $(sql "SELECT count(*) FROM schema_migrations") -eq $nfiles ]]'
check '[[ $(sql "SELECT count(*) FROM migrate_test_marker") -eq 1 ]]'

echo "-- a second run changes nothing"
catalog >"$tmp/cat1" && dump >"$tmp/dump1"
check '[[ -s "$tmp/cat1" && -s "$tmp/dump1" ]]'
out=$("$ctl" migrate --dir "$tmp/sql"); rc=$?
check '[[ $rc -eq 0 && "$out" == "schema up to date at version 0900" ]]'
catalog >"$tmp/cat2" && dump >"$tmp/dump2"
check 'diff -u "$tmp/cat1" "$tmp/cat2" >&2'
check 'diff -u "$tmp/dump1" "$tmp/dump2" >&2'
out=$("$ctl" migrate --dir "$tmp/sql" --status); rc=$?
check '[[ $rc -eq 0 && $(grep -c " applied " <<<"$out") -eq $nfiles ]]'

echo "-- a changed applied file is refused"
cp "$tmp/sql/0002_check_results.sql" "$tmp/0002.orig"
echo "-- an innocent-looking edit" >>"$tmp/sql/0002_check_results.sql"
err=$("$ctl" migrate --dir "$tmp/sql" 2>&1 >/dev/null); rc=$?; err=$(grep -v '^config: warning: ' <<<"$err")
echo "$err" >&2
check '[[ $rc -eq 1 ]]'
check '[[ $(wc -l <<<"$err") -eq 1 ]]'
check 'grep -q "checksum mismatch for applied migration 0002_check_results.sql" <<<"$err"'
out=$("$ctl" migrate --dir "$tmp/sql" --status 2>/dev/null); rc=$?
check '[[ $rc -eq 1 ]] && grep -q "0002_check_results.sql *CHANGED" <<<"$out"'
cp "$tmp/0002.orig" "$tmp/sql/0002_check_results.sql"
# the same through a tampered bookkeeping row
sql "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1"
"$ctl" migrate --dir "$tmp/sql" >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 1 ]]'
sql "UPDATE schema_migrations SET checksum = '$(sha256sum "$tmp/sql/0001_users_monitors.sql" | cut -c1-64)' WHERE version = 1"
"$ctl" migrate --dir "$tmp/sql" >/dev/null; rc=$?
check '[[ $rc -eq 0 ]]'

echo "-- a failing migration leaves nothing behind"
cat >"$tmp/sql/0901_broken.sql" <<'EOF'
CREATE TABLE migrate_test_half (id integer);
INSERT INTO migrate_test_marker VALUES (2);
SELECT no_such_function();
EOF
err=$("$ctl" migrate --dir "$tmp/sql" 2>&1 >/dev/null); rc=$?; err=$(grep -v '^config: warning: ' <<<"$err")
echo "$err" >&2
check '[[ $rc -eq 1 && $(wc -l <<<"$err") -eq 1 ]]'
check 'grep -q "0901_broken.sql failed: .*no_such_function.*SQLSTATE 42883" <<<"$err"'
check '[[ $(sql "SELECT to_regclass('"'migrate_test_half'"') IS NULL") == t ]]'
check '[[ $(sql "SELECT count(*) FROM migrate_test_marker") -eq 1 ]]'
check '[[ $(sql "SELECT count(*) FROM schema_migrations WHERE version = 901") -eq 0 ]]'

echo "-- a migration may not end its transaction; a good one is applied"
printf 'CREATE TABLE migrate_test_c (id integer);\nCOMMIT;\n' >"$tmp/sql/0901_broken.sql"
err=$("$ctl" migrate --dir "$tmp/sql" 2>&1 >/dev/null); rc=$?; err=$(grep -v '^config: warning: ' <<<"$err")
echo "$err" >&2
check '[[ $rc -eq 1 ]] && grep -q "BEGIN/COMMIT are not allowed" <<<"$err"'
printf 'ALTER TABLE migrate_test_marker ADD COLUMN note text;\n' >"$tmp/sql/0901_broken.sql"
out=$("$ctl" migrate --dir "$tmp/sql"); rc=$?
check '[[ $rc -eq 0 ]] && grep -qx "applied 0901_broken.sql" <<<"$out"'
# a pending file below an applied one is refused
printf 'SELECT 1;\n' >"$tmp/sql/0800_late.sql"
err=$("$ctl" migrate --dir "$tmp/sql" 2>&1 >/dev/null); rc=$?; err=$(grep -v '^config: warning: ' <<<"$err")
check '[[ $rc -eq 1 ]] && grep -q "0800_late.sql is pending but the later migration 0901" <<<"$err"'
rm "$tmp/sql/0800_late.sql"

echo "-- partitions"
out=$("$ctl" partitions --ahead 10); rc=$?
check '[[ $rc -eq 0 && "$out" == "partitions created: 3" ]]'
check '[[ $(sql "SELECT count(*) FROM pg_inherits WHERE inhparent = '"'check_results'"'::regclass") -eq 12 ]]'
sql "CREATE TABLE check_results_p20000101 PARTITION OF check_results FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2000-01-02 00:00:00+00')"
out=$("$ctl" partitions --retention 30 --rollup-retention 400); rc=$?
check '[[ $rc -eq 0 ]] && grep -qx "partitions dropped: 1" <<<"$out"'
check '[[ $(sql "SELECT count(*) FROM pg_inherits WHERE inhparent = '"'check_results'"'::regclass") -eq 12 ]]'

echo "-- exit statuses"
"$ctl" migrate --ahead x >/dev/null 2>"$tmp/e"; rc=$?
check '[[ $rc -eq 2 && $(errs "$tmp/e" | wc -l) -eq 1 ]] && grep -q "usage: upmonctl migrate" "$tmp/e"'
"$ctl" partitions --retention 0 >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]'
"$ctl" migrate extra >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]'
"$ctl" frobnicate >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]'
"$ctl" migrate --dir "$tmp/nonexistent" >/dev/null 2>"$tmp/e"; rc=$?
check '[[ $rc -eq 1 && $(errs "$tmp/e" | wc -l) -eq 1 ]]'
UPMON_PG_URL=postgresql://nobody@127.0.0.1:1/none "$ctl" migrate >/dev/null 2>"$tmp/e"; rc=$?
cat "$tmp/e" >&2
check '[[ $rc -eq 1 && $(errs "$tmp/e" | wc -l) -eq 1 ]] && grep -q "cannot connect" "$tmp/e"'
UPMON_SQL_DIR=$tmp/sql "$ctl" migrate >/dev/null 2>"$tmp/e"; rc=$?
check '[[ $rc -eq 0 && $(errs "$tmp/e" | wc -l) -eq 0 ]]'
# without it the source tree's sql/ (lacking 0900, 0901) is used: refused
"$ctl" migrate >/dev/null 2>"$tmp/e"; rc=$?
check '[[ $rc -eq 1 ]] && grep -q "applied migration 0900 has no file" "$tmp/e"'

echo "$checks checks, $failures failed" >&2
[[ $failures -eq 0 ]]
