#!/usr/bin/env bash
# upmonctl monitors export|import against a real PostgreSQL: empty export; a YAML file of 3
# monitors is created, then unchanged on the second run (updated_at untouched), a changed
# entry is updated; export -> import -> export is byte-identical in YAML and JSON; a bad file
# exits 1 naming monitors[i].field and writes nothing; --dry-run writes nothing; --prune
# deletes what the file lacks; another owner's monitors are never touched; the imported
# monitors are what upmon-gateway answers on GET /api/v1/monitors.
set -euo pipefail
ctl=${UPMON_BIN_DIR:?}/upmonctl
pg=${UPMON_PG_URL:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$pg" -c "$1"; }

"$ctl" migrate >/dev/null

# the owner registers through the gateway (so it can log in at the end); a second user
# owns a monitor that no import of the first may touch
gw_env=$(python3 - <<'EOF'
import upmon_gw as g
gw = g.Gateway.start()
try:
    c = gw.client()
    c.register("ctl-mon-a@example.test", "correct horse battery")
finally:
    gw.stop()
EOF
) || fail "could not register the owner through the gateway"
sql "INSERT INTO users (email, password_hash) VALUES ('ctl-mon-b@example.test', 'x')"
sql "INSERT INTO monitors (owner_id, name, type, url) SELECT id, 'web', 'http',
     'https://other.test/' FROM users WHERE email = 'ctl-mon-b@example.test'"
owner=ctl-mon-a@example.test

out=$("$ctl" monitors export --owner "$owner") || fail "export of nothing failed"
[[ $out == "monitors: []" ]] || fail "empty export: $out"

cat >"$tmp/m.yaml" <<'EOF'
# three monitors as code
monitors:
  - name: web
    type: http
    url: https://example.test/health
    interval_seconds: 60
    tags: [prod, web]
    headers:
      X-Token: "abc"
  - name: "db: primary"
    type: tcp
    host: db.internal
    port: 5432
    interval_seconds: 30
    timeout_ms: 5000
  - name: "Überwachung ✓ 監視 🚀 '; DROP TABLE monitors; --"
    type: http
    url: "https://example.test/監視?x=';DROP--%_"
    interval_seconds: 300
    keyword: "ok \"yes\" \\ %_"
    body: "line1\nline2\ttab"
    expected_status: "200-299,301"
    paused: true
EOF

gen_key="upmon:gw:mongen:$(sql "SELECT id FROM users WHERE email = '$owner'")"
gen() { redis-cli -u "$UPMON_REDIS_URL" --no-auth-warning GET "$gen_key"; }
gen0=$(gen)
out=$("$ctl" monitors import --owner "$owner" --file "$tmp/m.yaml") || fail "import failed"
[[ $out == "created 3, updated 0, unchanged 0" ]] || fail "first import: $out"
# a committed import bumps the gateway's list generation, so no cached list page is served
[[ $(gen) == $((${gen0:-0} + 1)) ]] || fail "import did not bump $gen_key: ${gen0:-none} -> $(gen)"
n=$(sql "SELECT count(*) FROM monitors m JOIN users u ON u.id = m.owner_id
         WHERE u.email = '$owner'")
[[ $n == 3 ]] || fail "3 monitors expected, got $n"
[[ $(sql "SELECT keyword || '|' || body || '|' || url FROM monitors WHERE interval_seconds = 300") == \
   'ok "yes" \ %_|line1'$'\n''line2'$'\t''tab|https://example.test/監視?x='"'"';DROP--%_' ]] ||
  fail "strings not stored verbatim: $(sql "SELECT keyword, body, url FROM monitors WHERE interval_seconds = 300")"
[[ $(sql "SELECT status FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id
          WHERE m.interval_seconds = 300") == paused ]] || fail "paused: true not applied"
before=$(sql "SELECT string_agg(name || '@' || updated_at, ',' ORDER BY name) FROM monitors")

out=$("$ctl" monitors import --owner "$owner" --file "$tmp/m.yaml") || fail "re-import failed"
[[ $out == "created 0, updated 0, unchanged 3" ]] || fail "second import: $out"
after=$(sql "SELECT string_agg(name || '@' || updated_at, ',' ORDER BY name) FROM monitors")
[[ $before == "$after" ]] || fail "an unchanged import touched rows: $before vs $after"

sed -i 's/interval_seconds: 30$/interval_seconds: 45/' "$tmp/m.yaml"
out=$("$ctl" monitors import --owner "$owner" --file "$tmp/m.yaml") || fail "import 3 failed"
[[ $out == "created 0, updated 1, unchanged 2" ]] || fail "changed import: $out"
[[ $(sql "SELECT interval_seconds FROM monitors WHERE name = 'db: primary'") == 45 ]] ||
  fail "the change did not land"

# export -> import -> export: the same bytes, YAML and JSON; both parse to the same document
"$ctl" monitors export --owner "$owner" --output "$tmp/e1.yaml" || fail "export failed"
grep -q '^  timeout_ms: 5000$' "$tmp/e1.yaml" || fail "export lacks fields: $(cat "$tmp/e1.yaml")"
grep -q '^  reminder_minutes: null$' "$tmp/e1.yaml" || fail "export must write null fields"
out=$("$ctl" monitors import --owner "$owner" --file "$tmp/e1.yaml") || fail "import of export"
[[ $out == "created 0, updated 0, unchanged 3" ]] || fail "import of the export: $out"
"$ctl" monitors export --owner "$owner" >"$tmp/e2.yaml" || fail "export 2 failed"
cmp -s "$tmp/e1.yaml" "$tmp/e2.yaml" || fail "export -> import -> export differs: $(diff "$tmp/e1.yaml" "$tmp/e2.yaml")"
"$ctl" monitors export --owner "$owner" --format json --output "$tmp/e1.json" || fail "json export"
out=$("$ctl" monitors import --owner "$owner" --file "$tmp/e1.json") || fail "json import"
[[ $out == "created 0, updated 0, unchanged 3" ]] || fail "import of the JSON export: $out"
"$ctl" monitors export --owner "$owner" --format json >"$tmp/e2.json" || fail "json export 2"
cmp -s "$tmp/e1.json" "$tmp/e2.json" || fail "JSON export -> import -> export differs"
# JSON from stdin, detected from the content
out=$("$ctl" monitors import --owner "$owner" <"$tmp/e1.json") || fail "json import from stdin"
[[ $out == "created 0, updated 0, unchanged 3" ]] || fail "stdin import: $out"
python3 - "$tmp/e1.yaml" "$tmp/e1.json" <<'EOF' || fail "YAML and JSON exports disagree"
import json, sys, yaml
a = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
b = json.load(open(sys.argv[2], encoding="utf-8"))
assert a == b, (a, b)
names = [m["name"] for m in a["monitors"]]
assert names == sorted(names, key=lambda s: s.encode()), names
assert len(a["monitors"][0]) == 24, sorted(a["monitors"][0])
EOF

# a bad file: every bad field named, exit 1, nothing written
before=$(sql "SELECT string_agg(name || '@' || updated_at, ',' ORDER BY name) FROM monitors")
cat >"$tmp/bad.yaml" <<'EOF'
monitors:
  - name: fine
    type: http
    url: https://fine.test/
    interval_seconds: 60
  - name: no-url
    type: http
    interval_seconds: 60
  - name: bad-port
    type: tcp
    host: h
    port: 70000
    interval_seconds: 60
    colour: blue
  - name: fine
    type: http
    url: https://fine.test/
    interval_seconds: 60
EOF
set +e
err=$("$ctl" monitors import --owner "$owner" --file "$tmp/bad.yaml" 2>&1 >/dev/null); rc=$?
set -e
[[ $rc == 1 ]] || fail "bad file: exit $rc, want 1"
[[ $err == *"monitors[1].url: is required"* ]] || fail "bad file, url: $err"
[[ $err == *"monitors[2].port: must be between 1 and 65535"* ]] || fail "bad file, port: $err"
[[ $err == *"monitors[2].colour: unknown field"* ]] || fail "bad file, unknown: $err"
[[ $err == *"monitors[3].name: is already used by an earlier entry"* ]] || fail "dup: $err"
[[ $err == *"4 errors, nothing imported"* ]] || fail "bad file summary: $err"
after=$(sql "SELECT string_agg(name || '@' || updated_at, ',' ORDER BY name) FROM monitors")
[[ $before == "$after" ]] || fail "a bad file changed the database"
set +e
"$ctl" monitors import --owner "$owner" --file - <<<'monitors: [ {name: x' 2>"$tmp/err"; rc=$?
set -e
[[ $rc == 1 ]] && grep -q "invalid YAML: line" "$tmp/err" || fail "broken YAML: rc $rc $(cat "$tmp/err")"
set +e
"$ctl" monitors import --owner nobody@example.test --file "$tmp/m.yaml" 2>"$tmp/err"; rc=$?
set -e
[[ $rc == 1 ]] && grep -q "no user with email nobody@example.test" "$tmp/err" ||
  fail "unknown owner: rc $rc $(cat "$tmp/err")"
set +e
"$ctl" monitors import 2>/dev/null; rc=$?
set -e
[[ $rc == 2 ]] || fail "missing --owner: exit $rc, want 2"

# --dry-run and --prune: the file now has only "web" (changed) and a new one
cat >"$tmp/small.json" <<'EOF'
{"monitors": [
  {"name": "web", "type": "http", "url": "https://example.test/health", "interval_seconds": 120},
  {"name": "new", "type": "tcp", "host": "10.0.0.7", "port": 22, "interval_seconds": 60}
]}
EOF
out=$("$ctl" monitors import --owner "$owner" --file "$tmp/small.json" --prune --dry-run) ||
  fail "dry run failed"
[[ $out == "created 1, updated 1, unchanged 0, deleted 2 (dry run: nothing written)" ]] ||
  fail "dry run: $out"
after=$(sql "SELECT string_agg(name || '@' || updated_at, ',' ORDER BY name) FROM monitors")
[[ $before == "$after" ]] || fail "--dry-run changed the database"
out=$("$ctl" monitors import --owner "$owner" --file "$tmp/small.json" --prune) || fail "prune"
[[ $out == "created 1, updated 1, unchanged 0, deleted 2" ]] || fail "prune: $out"
names=$(sql "SELECT string_agg(m.name, ',' ORDER BY m.name) FROM monitors m JOIN users u
             ON u.id = m.owner_id WHERE u.email = '$owner'")
[[ $names == "new,web" ]] || fail "after prune: $names"
[[ $(sql "SELECT count(*) FROM monitors m JOIN users u ON u.id = m.owner_id
          WHERE u.email = 'ctl-mon-b@example.test'") == 1 ]] || fail "prune touched another owner"

# what the gateway answers is what was imported
python3 - <<'EOF' || fail "gateway view"
import upmon_gw as g
gw = g.Gateway.start()
try:
    c = gw.client()
    c.login("ctl-mon-a@example.test", "correct horse battery")
    items = c.ok("GET", "/monitors")["items"]
    got = sorted((m["name"], m["type"], m["interval_seconds"], m["url"], m["host"], m["port"])
                 for m in items)
    g.check(got == [("new", "tcp", 60, None, "10.0.0.7", 22),
                    ("web", "http", 120, "https://example.test/health", None, None)],
            "gateway list: %r" % (got,))
finally:
    gw.stop()
EOF
echo "ok"
