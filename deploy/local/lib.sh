# shellcheck shell=bash
# Shared functions of the local stack scripts (deploy/local/{up,down,env,ctl}) and the test
# harness (tests/support/*). Source it; it defines functions and a few variables, starts
# nothing by itself.
#
# Layout of a stack's state directory (UPMON_STATE_DIR, default <repo>/.upmon):
#   stack.env            ports, credentials, node name, bin dir (KEY=value, mode 600)
#   run/<name>.pid       pid of each process we started (each leads its own session)
#   run/lock             flock(1) lock: one up/down/ctl at a time per stack
#   log/<name>.log       stdout+stderr of each process
#   rabbitmq/ postgres/ redis/ mail/   data of each component
#
# Every process we start gets UPMON_STATE_DIR=<state dir> in its environment, which is how a
# recorded pid is recognised as ours (a stale pid file never makes us signal a stranger).

UPMON_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
UPMON_PORT_REGISTRY=${UPMON_PORT_REGISTRY:-/tmp/upmon-ports}
UPMON_START_TIMEOUT=${UPMON_START_TIMEOUT:-120}
UPMON_STOP_TIMEOUT=${UPMON_STOP_TIMEOUT:-30}

PG_BIN=/usr/lib/postgresql/15/bin
RMQ_BIN=/usr/lib/rabbitmq/bin

# Port keys recorded in stack.env as PORT_<key>; the override variable is
# UPMON_LOCAL_<key>_PORT (not UPMON_<key>_PORT: deploy/local/env exports UPMON_SMTP_PORT, and
# a shell that evaluated the env of one stack must not pin the ports of the next one).
PORT_KEYS=(AMQP RABBITMQ_MGMT RABBITMQ_DIST EPMD PG REDIS SMTP GATEWAY
           GATEWAY_ADMIN SCHEDULER_ADMIN PROBE_ADMIN MAILER_ADMIN)
# shellcheck disable=SC2034  # used by the scripts that source this file
INFRA=(rabbitmq postgres redis smtp)
# shellcheck disable=SC2034
SERVICES=(gateway scheduler probe mailer)

die() { echo "upmon: error: $*" >&2; exit 1; }
note() { echo "upmon: $*" >&2; }

is_root() { [[ $(id -u) -eq 0 ]]; }

# Resolves the state directory into S (absolute, symlinks followed) without creating it.
stack_resolve() {
  local dir=${UPMON_STATE_DIR:-$UPMON_REPO/.upmon}
  [[ $dir == /* ]] || dir=$PWD/$dir
  S=$(readlink -m -- "$dir")
}

# Loads stack.env into the shell, or fails with a hint when there is no stack.
stack_load() {
  stack_resolve
  [[ -f $S/stack.env ]] || die "no stack in $S (run deploy/local/up first)"
  # shellcheck disable=SC1091
  source "$S/stack.env"
  BIN=${UPMON_BIN_DIR:-${BIN_DIR:-$UPMON_REPO/build/release/bin}}
}

# Takes the per-stack lock (fd 8) so two commands never work on one stack at once.
stack_lock() {
  mkdir -p "$S/run"
  exec 8>"$S/run/lock"
  flock -w 600 8 || die "another deploy/local command holds $S/run/lock"
}

# Prints a random alphanumeric secret of about 24 characters.
gen_secret() {
  head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24
}

# The system user a component runs as: rabbitmq/postgres when we are root, ourselves otherwise.
svc_user() {
  if is_root; then
    case $1 in rabbitmq|epmd) echo rabbitmq ;; postgres) echo postgres ;; *) echo root ;; esac
  else
    id -un
  fi
}

# as_argv USER HOME: sets the array AS to the command prefix that runs a program as USER
# (through setpriv when we are root and USER is not root) with a clean environment: PATH,
# LANG, HOME, the stack marker, plus any NAME=value words placed after the prefix.
as_argv() {
  AS=(env -i "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" "LANG=C.UTF-8" "HOME=$2"
      "UPMON_STATE_DIR=$S")
  if is_root && [[ $1 != root ]]; then
    AS=(setpriv "--reuid=$1" "--regid=$1" --init-groups -- "${AS[@]}")
  fi
}

# as_user USER HOME [NAME=value...] CMD...: runs CMD as described for as_argv.
as_user() {
  as_argv "$1" "$2"
  shift 2
  "${AS[@]}" "$@"
}

# ---------------------------------------------------------------------------------------
# Ports

# True when something on this host uses TCP port $1 (listening or connected, any address).
port_in_use() {
  [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}

# True when 127.0.0.1:$1 accepts a connection.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the state dir that reserved port $1 in the registry, if that reservation is live
# (the stack's stack.env still records the port).
port_owner() {
  local f=$UPMON_PORT_REGISTRY/$1 owner
  [[ -f $f ]] || return 0
  owner=$(<"$f")
  if [[ -f $owner/stack.env ]] && grep -q "^PORT_[A-Z_]*=$1\$" "$owner/stack.env"; then
    echo "$owner"
  fi
}

# Reserves port $1 for this stack in the registry. Fails when another live stack holds it.
port_claim() {
  local owner
  owner=$(port_owner "$1")
  [[ -z $owner || $owner == "$S" ]] || return 1
  rm -f "$UPMON_PORT_REGISTRY/$1" 2>/dev/null || true
  printf '%s\n' "$S" >"$UPMON_PORT_REGISTRY/$1" 2>/dev/null
}

# Picks a free loopback port below the ephemeral range, not reserved by another stack, not
# already in the list "$taken", and claims it. Prints it.
port_pick() {
  local tries p
  for ((tries = 0; tries < 500; tries++)); do
    p=$((20000 + RANDOM % 12000))
    [[ " $taken " == *" $p "* ]] && continue
    port_in_use "$p" && continue
    port_claim "$p" || continue
    echo "$p"
    return 0
  done
  return 1
}

# Chooses every port this stack needs (UPMON_LOCAL_<key>_PORT overrides), generates credentials
# and writes stack.env. Runs once per state dir; later calls reuse what is recorded and warn
# about overrides that disagree with it.
stack_configure() {
  local key var p taken="" tmp
  if [[ -f $S/stack.env ]]; then
    # shellcheck disable=SC1091
    source "$S/stack.env"
    for key in "${PORT_KEYS[@]}"; do
      var=UPMON_LOCAL_${key}_PORT
      p=PORT_$key
      if [[ -n ${!var:-} && ${!var} != "${!p}" ]]; then
        note "warning: ignoring $var=${!var}: this stack was set up with port ${!p}" \
             "(remove $S to choose again)"
      fi
    done
    return 0
  fi
  mkdir -p "$UPMON_PORT_REGISTRY"
  chmod 1777 "$UPMON_PORT_REGISTRY" 2>/dev/null || true
  exec 7>>"$UPMON_PORT_REGISTRY/.lock"
  flock -w 60 7 || die "cannot lock $UPMON_PORT_REGISTRY/.lock"
  tmp=$S/stack.env.tmp
  umask 077
  {
    echo "# upmon local stack, written by deploy/local/up on $(date -u +%FT%TZ); do not edit"
    for key in "${PORT_KEYS[@]}"; do
      var=UPMON_LOCAL_${key}_PORT
      if [[ -n ${!var:-} ]]; then
        p=${!var}
        if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
          die "$var=$p is not a port number"
        fi
        port_in_use "$p" && die "$var=$p: the port is in use"
        port_claim "$p" || die "$var=$p: the port is reserved by the stack in $(port_owner "$p")"
      else
        p=$(port_pick) || die "no free loopback port found for $key"
      fi
      taken+=" $p"
      echo "PORT_$key=$p"
    done
    echo "RMQ_USER=upmon"
    echo "RMQ_PASS=$(gen_secret)"
    echo "RMQ_NODENAME=upmon-$(printf '%s' "$S" | sha256sum | head -c 12)@localhost"
    echo "RMQ_COOKIE=$(gen_secret)$(gen_secret)"
    echo "PG_USER=upmon"
    echo "PG_PASS=$(gen_secret)"
    echo "PG_DB=upmon"
    echo "PG_SUPERUSER=$(svc_user postgres)"
  } >"$tmp"
  umask 022
  mv -f "$tmp" "$S/stack.env"
  flock -u 7
  exec 7>&-
  # shellcheck disable=SC1091
  source "$S/stack.env"
}

# Records the bin dir in stack.env (so ctl and env know it later). Sets BIN.
stack_set_bin() {
  BIN=$1
  if grep -q '^BIN_DIR=' "$S/stack.env"; then
    sed -i "s|^BIN_DIR=.*|BIN_DIR=$(printf '%q' "$BIN" | sed 's/[|&\\]/\\&/g')|" "$S/stack.env"
  else
    printf 'BIN_DIR=%q\n' "$BIN" >>"$S/stack.env"
  fi
  BIN_DIR=$BIN
}

# Prints NAME=value lines that describe the stack (values never hold a newline).
stack_env_pairs() {
  echo "UPMON_STATE_DIR=$S"
  echo "UPMON_GATEWAY_URL=http://127.0.0.1:$PORT_GATEWAY"
  echo "UPMON_AMQP_URL=amqp://$RMQ_USER:$RMQ_PASS@127.0.0.1:$PORT_AMQP/%2f"
  echo "UPMON_RABBITMQ_MGMT_URL=http://$RMQ_USER:$RMQ_PASS@127.0.0.1:$PORT_RABBITMQ_MGMT"
  echo "UPMON_PG_URL=postgresql://$PG_USER:$PG_PASS@127.0.0.1:$PORT_PG/$PG_DB"
  echo "UPMON_REDIS_URL=redis://127.0.0.1:$PORT_REDIS/0"
  echo "UPMON_SMTP_HOST=127.0.0.1"
  echo "UPMON_SMTP_PORT=$PORT_SMTP"
  echo "UPMON_MAIL_DIR=$S/mail"
  echo "UPMON_BIN_DIR=$BIN"
  echo "UPMON_CTL=$UPMON_REPO/deploy/local/ctl"
}

# Prints the export lines of deploy/local/env, shell-quoted.
stack_env_lines() {
  local k v
  while IFS='=' read -r k v; do
    printf 'export %s=%q\n' "$k" "$v"
  done < <(stack_env_pairs)
}

# ---------------------------------------------------------------------------------------
# Processes

pidfile() { echo "$S/run/$1.pid"; }
logfile() { echo "$S/log/$1.log"; }

# True when pid $1 exists and is not a zombie.
pid_running() {
  local stat st
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${stat##*) }
  [[ ${st%% *} != Z ]]
}

# True when pid $1 runs and belongs to this stack: its environment carries our marker, or
# (for servers that overwrite their environment to retitle themselves, like redis) its
# command line carries the signature $2.
pid_ours() {
  local env cmd nl=$'\n'
  pid_running "$1" || return 1
  env=$(tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null) || env=""
  # (UPMON_STACK_DIR: the marker of the first version of these scripts)
  if [[ $nl$env$nl == *"${nl}UPMON_STATE_DIR=$S$nl"* || $nl$env$nl == *"${nl}UPMON_STACK_DIR=$S$nl"* ]]; then
    return 0
  fi
  [[ -n ${2:-} ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$2"* ]]
}

# The command-line signature of component $1 (see pid_ours).
comp_signature() {
  case $1 in
    redis) echo "redis-server 127.0.0.1:${PORT_REDIS:-0}" ;;
    *) echo "$S/" ;;
  esac
}

# Prints the recorded pid of component $1 when that process is alive and ours.
comp_pid() {
  local f pid
  f=$(pidfile "$1")
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_ours "$pid" "$(comp_signature "$1")" || return 1
  echo "$pid"
}

comp_alive() { comp_pid "$1" >/dev/null; }

# start_bg NAME DIR CMD...: starts CMD in DIR in the background in a new session (so it and
# its children form one process group named by its pid), stdin from /dev/null, output
# appended to log/NAME.log, every other inherited descriptor closed (our locks, a test
# runner's pipes).
start_bg() {
  local name=$1 dir=$2 log
  shift 2
  log=$(logfile "$name")
  mkdir -p "$S/log" "$S/run"
  echo "---- $(date -u +%FT%TZ) starting $name" >>"$log"
  (
    cd "$dir" || exit 1
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$log" 2>&1
  ) &
  echo "$!" >"$(pidfile "$name")"
}

# Prints the last lines of a component's log to stderr (for error messages).
show_log_tail() {
  local log
  log=$(logfile "$1")
  [[ -f $log ]] || return 0
  echo "---- last lines of $log:" >&2
  tail -n 15 "$log" >&2
}

# wait_ready NAME CHECK...: waits until the command CHECK succeeds, failing with a pointer to
# the log when the process exits or UPMON_START_TIMEOUT passes.
wait_ready() {
  local name=$1 pid deadline
  shift
  pid=$(<"$(pidfile "$name")")
  deadline=$((SECONDS + UPMON_START_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! pid_running "$pid"; then
      show_log_tail "$name"
      die "$name exited during start-up; see $(logfile "$name")"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$name"
      die "$name not ready after ${UPMON_START_TIMEOUT}s; see $(logfile "$name")"
    fi
    sleep 0.2
  done
}

# True when process group $1 still has a live (non-zombie) member.
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# stop_comp NAME SIGNAL: stops component NAME with SIGNAL, waits up to UPMON_STOP_TIMEOUT,
# then SIGKILLs its whole process group; also waits for the rest of the group to go.
stop_comp() {
  local name=$1 sig=$2 pid deadline
  if ! pid=$(comp_pid "$name"); then
    rm -f "$(pidfile "$name")"
    return 0
  fi
  kill "-$sig" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + UPMON_STOP_TIMEOUT))
  while pid_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if pid_running "$pid"; then
    note "$name (pid $pid) ignored SIG$sig for ${UPMON_STOP_TIMEOUT}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # Leftover members of its process group (helpers of the server) go too.
  deadline=$((SECONDS + 10))
  while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if group_alive "$pid"; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    while group_alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$(pidfile "$name")"
}

# Stops the named components at the same time (each in a subshell); fails when one failed.
stop_parallel() {
  local c rc=0
  local -a pids=()
  for c in "$@"; do
    comp_stop "$c" &
    pids+=("$!")
  done
  for c in "${pids[@]}"; do
    wait "$c" || rc=1
  done
  return "$rc"
}

# ---------------------------------------------------------------------------------------
# Permissions

# True when the system users the servers run as can traverse directory $1.
users_can_reach() {
  local u
  for u in rabbitmq postgres; do
    setpriv --reuid="$u" --regid="$u" --init-groups -- test -x "$1" 2>/dev/null || return 1
  done
}

# Creates the state dir and makes it reachable for the system users the servers run as.
# When the default .upmon would sit where they cannot go (a clone under /root), the state
# lives in /var/lib/upmon/<hash of the repo path> and .upmon becomes a symlink to it.
stack_prepare_dir() {
  local alt
  if is_root && [[ -z ${UPMON_STATE_DIR:-} && ! -e $UPMON_REPO/.upmon && ! -L $UPMON_REPO/.upmon ]] &&
     ! users_can_reach "$UPMON_REPO"; then
    alt=/var/lib/upmon/$(printf '%s' "$UPMON_REPO" | sha256sum | head -c 12)
    mkdir -p "$alt"
    chmod 755 /var/lib/upmon "$alt"
    ln -s "$alt" "$UPMON_REPO/.upmon"
    note "rabbitmq/postgres cannot reach $UPMON_REPO: state kept in $alt (.upmon links there)"
    stack_resolve
  fi
  mkdir -p "$S" "$S/run" "$S/log" "$S/mail"
  if is_root; then
    chmod go+x "$S"
    users_can_reach "$S" ||
      die "users rabbitmq/postgres cannot reach $S (a parent directory is not searchable);" \
          "set UPMON_STATE_DIR to a directory under /tmp or /var/tmp"
  fi
}

# ---------------------------------------------------------------------------------------
# RabbitMQ (plus its own epmd on PORT_EPMD, so nothing is shared between stacks)

rmq_env() {
  local d=$S/rabbitmq
  echo "RABBITMQ_NODENAME=$RMQ_NODENAME"
  echo "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
  echo "RABBITMQ_NODE_PORT=$PORT_AMQP"
  echo "RABBITMQ_DIST_PORT=$PORT_RABBITMQ_DIST"
  echo "ERL_EPMD_PORT=$PORT_EPMD"
  echo "ERL_EPMD_ADDRESS=127.0.0.1"
  echo "RABBITMQ_MNESIA_BASE=$d/mnesia"
  echo "RABBITMQ_LOG_BASE=$d/log"
  echo "RABBITMQ_LOGS=-"
  echo "RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf"
  echo "RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config"
  echo "RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins"
  echo "RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf"
  echo "RABBITMQ_PID_FILE=$d/rabbitmq.pid"
  echo "RABBITMQ_PLUGINS_EXPAND_DIR=$d/plugins-expand"
  echo "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
}

# Writes RabbitMQ's configuration into the state dir (every start, from stack.env).
rmq_write_config() {
  local d=$S/rabbitmq u
  u=$(svc_user rabbitmq)
  mkdir -p "$d/mnesia" "$d/log" "$d/home" "$d/plugins-expand"
  cat >"$d/rabbitmq.conf" <<EOF
# written by deploy/local/up from $S/stack.env
listeners.tcp.1 = 127.0.0.1:$PORT_AMQP
management.tcp.ip = 127.0.0.1
management.tcp.port = $PORT_RABBITMQ_MGMT
default_vhost = /
default_user = $RMQ_USER
default_pass = $RMQ_PASS
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
log.console = true
log.console.level = info
log.file = false
collect_statistics_interval = 1000
EOF
  echo '[].' >"$d/advanced.config"
  echo '[rabbitmq_management].' >"$d/enabled_plugins"
  : >"$d/rabbitmq-env.conf"
  if [[ ! -f $d/home/.erlang.cookie ]]; then
    printf '%s' "$RMQ_COOKIE" >"$d/home/.erlang.cookie"
  fi
  chmod 400 "$d/home/.erlang.cookie"
  chmod 750 "$d"
  chmod 640 "$d/rabbitmq.conf"
  if is_root; then chown -R "$u:$u" "$d"; fi
}

# Prepares $S/rabbitmq/dist: a copy of RabbitMQ's start scripts whose plugins dir holds only
# the applications our node loads (rabbit, the management plugin and their dependencies),
# so the broker does not scan and load the ~70 bundled plugins: boots take about 7s
# instead of 10s. Prints the rabbitmq-server to run (the system one when this fails).
rmq_prepare_dist() {
  local d=$S/rabbitmq/dist real home app a x
  real=$(readlink -f "$RMQ_BIN/rabbitmq-server") || { echo "$RMQ_BIN/rabbitmq-server"; return; }
  home=$(dirname "$(dirname "$real")")
  if [[ -f $d/stamp && $(<"$d/stamp") == "$home" ]]; then
    echo "$d/sbin/rabbitmq-server"
    return
  fi
  rm -rf "$d"
  mkdir -p "$d/plugins"
  cat >"$d/deps.escript" <<'ERL'
%% Prints the applications needed by the applications named on the command line (closure
%% over the "applications" of their .app files) found in the plugins dir given first.
main([Dir | Roots]) ->
    Apps = closure(Dir, [list_to_atom(R) || R <- Roots], []),
    io:format("~s~n", [lists:join(" ", [atom_to_list(A) || A <- lists:sort(Apps)])]).
closure(_Dir, [], Seen) -> Seen;
closure(Dir, [A | Rest], Seen) ->
    case lists:member(A, Seen) of
        true -> closure(Dir, Rest, Seen);
        false ->
            Pat = filename:join([Dir, atom_to_list(A) ++ "-*", "ebin", atom_to_list(A) ++ ".app"]),
            Deps = case filelib:wildcard(Pat) of
                       [F | _] ->
                           {ok, [{application, _, P}]} = file:consult(F),
                           proplists:get_value(applications, P, []) ++
                               proplists:get_value(included_applications, P, []);
                       [] -> []
                   end,
            closure(Dir, Deps ++ Rest, [A | Seen])
    end.
ERL
  if ! app=$(escript "$d/deps.escript" "$home/plugins" rabbit rabbit_common rabbitmq_prelaunch \
               rabbitmq_management 2>>"$(logfile rabbitmq)"); then
    rm -rf "$d"
    echo "$RMQ_BIN/rabbitmq-server"
    return
  fi
  for a in $app; do
    for x in "$home/plugins/$a"-*; do
      if [[ -d $x ]]; then ln -s "$x" "$d/plugins/"; fi
    done
  done
  cp -r "$home/sbin" "$d/sbin"
  ln -s "$home/escript" "$d/escript"
  echo "$home" >"$d/stamp"
  echo "$d/sbin/rabbitmq-server"
}

# Runs a RabbitMQ CLI tool (rabbitmqctl, rabbitmq-diagnostics...) against this stack's node.
rmq_cli() {
  local tool=$1
  shift
  local -a envs
  mapfile -t envs < <(rmq_env)
  as_user "$(svc_user rabbitmq)" "$S/rabbitmq/home" "${envs[@]}" "$RMQ_BIN/$tool" "$@"
}

rmq_ready() {
  curl -fsS -m 5 -u "$RMQ_USER:$RMQ_PASS" "http://127.0.0.1:$PORT_RABBITMQ_MGMT/api/overview" &&
    port_open "$PORT_AMQP"
}

epmd_ready() { port_open "$PORT_EPMD"; }

# Starts this stack's epmd, then the RabbitMQ node, without waiting for the node.
rmq_start() {
  local -a envs
  local u server
  u=$(svc_user rabbitmq)
  rmq_write_config
  server=$(rmq_prepare_dist)
  if ! comp_alive epmd; then
    as_argv "$u" "$S/rabbitmq/home"
    start_bg epmd "$S/rabbitmq/home" "${AS[@]}" "ERL_EPMD_ADDRESS=127.0.0.1" epmd -port "$PORT_EPMD" \
      -address 127.0.0.1
    wait_ready epmd epmd_ready
  fi
  mapfile -t envs < <(rmq_env)
  as_argv "$u" "$S/rabbitmq/home"
  start_bg rabbitmq "$S/rabbitmq/home" "${AS[@]}" "${envs[@]}" "$server"
}

rmq_wait() { wait_ready rabbitmq rmq_ready; }

# Stops the node (a graceful stop takes about 6s, 5 of them inside the management plugin),
# and its epmd unless UPMON_KEEP_EPMD=1 (ctl restart keeps it).
rmq_stop() {
  stop_comp rabbitmq TERM
  if [[ ${UPMON_KEEP_EPMD:-0} != 1 ]]; then stop_comp epmd TERM; fi
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT_PG" -t 2; }

# Runs psql as the superuser over the stack's unix socket (peer authentication).
pg_admin_psql() {
  as_user "$(svc_user postgres)" "$S/postgres" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$S/postgres/run" -p "$PORT_PG" -U "$PG_SUPERUSER" "$@"
}

# Creates the data directory on first use.
pg_init() {
  local d=$S/postgres u
  u=$(svc_user postgres)
  mkdir -p "$d/run"
  if is_root; then chown "$u:$u" "$d" "$d/run"; fi
  chmod 700 "$d/run"
  [[ -f $d/data/PG_VERSION ]] && return 0
  rm -rf "$d/data"
  as_user "$u" "$d" "$PG_BIN/initdb" -D "$d/data" -U "$PG_SUPERUSER" -E UTF8 --no-locale \
    --auth-local=peer --auth-host=scram-sha-256 --no-sync --no-instructions \
    >>"$(logfile postgres)" 2>&1 || { show_log_tail postgres; die "initdb failed"; }
}

pg_start() {
  pg_init
  as_argv "$(svc_user postgres)" "$S/postgres"
  start_bg postgres "$S/postgres" "${AS[@]}" "$PG_BIN/postgres" \
    -D "$S/postgres/data" -c listen_addresses=127.0.0.1 -c port="$PORT_PG" \
    -c unix_socket_directories="$S/postgres/run" -c max_connections=200 \
    -c logging_collector=off -c log_min_messages=warning
}

# Waits for PostgreSQL, then makes sure role and database exist (idempotent).
pg_wait() {
  wait_ready postgres pg_ready
  pg_admin_psql -d postgres <<EOF || die "could not create the upmon role and database"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASS';
  ELSE
    ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASS';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
EOF
}

pg_stop() { stop_comp postgres INT; }   # SIGINT = fast shutdown

# ---------------------------------------------------------------------------------------
# Redis

redis_ready() { [[ $(redis-cli -h 127.0.0.1 -p "$PORT_REDIS" ping 2>/dev/null) == PONG ]]; }

redis_start() {
  mkdir -p "$S/redis"
  as_argv "$(svc_user redis)" "$S/redis"
  start_bg redis "$S/redis" "${AS[@]}" redis-server --bind 127.0.0.1 \
    --port "$PORT_REDIS" --dir "$S/redis" --daemonize no --appendonly no --save '' \
    --protected-mode yes --logfile ''
}

redis_wait() { wait_ready redis redis_ready; }
redis_stop() { stop_comp redis TERM; }

# ---------------------------------------------------------------------------------------
# SMTP sink

smtp_ready() { port_open "$PORT_SMTP"; }

smtp_start() {
  local sink=$BIN/upmon-smtp-sink
  [[ -x $sink ]] || die "$sink not found: build it (cmake --build --preset release) or set UPMON_BIN_DIR"
  mkdir -p "$S/mail"
  as_argv "$(svc_user smtp)" "$S"
  start_bg smtp "$S" "${AS[@]}" "$sink" -l 127.0.0.1 -p "$PORT_SMTP" -d "$S/mail"
}

smtp_wait() { wait_ready smtp smtp_ready; }
smtp_stop() { stop_comp smtp TERM; }

# ---------------------------------------------------------------------------------------
# upmon services (started when their binary exists in the bin dir)

svc_admin_port() {
  local v="PORT_${1^^}_ADMIN"
  echo "${!v}"
}

svc_ready() { curl -fsS -m 2 "http://127.0.0.1:$(svc_admin_port "$1")/readyz"; }

# Starts upmon-NAME with the caller's environment plus the stack's (URLs, admin port).
svc_start() {
  local name=$1 port
  local -a envs
  port=$(svc_admin_port "$name")
  mapfile -t envs < <(stack_env_pairs)
  envs+=("UPMON_ADMIN_ADDR=127.0.0.1" "UPMON_ADMIN_PORT=$port")
  if [[ $name == gateway ]]; then
    envs+=("UPMON_GATEWAY_ADDR=127.0.0.1" "UPMON_GATEWAY_PORT=$PORT_GATEWAY"
           "UPMON_GATEWAY_JWT_SECRET=$(gateway_jwt_secret)")
  fi
  # The local stack's targets are its own components on loopback, which the SSRF guard
  # blocks by default: allow loopback here (and only here) so the demo works.
  if [[ $name == probe ]]; then
    envs+=("UPMON_PROBE_SSRF_ALLOW=${UPMON_PROBE_SSRF_ALLOW:-127.0.0.0/8,::1/128}")
  fi
  # The mailer sends to the stack's SMTP sink (plain SMTP on loopback), links to the local
  # gateway, and may post webhooks to loopback receivers (same reasoning as the probe's).
  if [[ $name == mailer ]]; then
    envs+=("UPMON_SMTP_TLS=${UPMON_SMTP_TLS:-none}"
           "UPMON_MAILER_DASHBOARD_URL=${UPMON_MAILER_DASHBOARD_URL:-http://127.0.0.1:$PORT_GATEWAY}"
           "UPMON_MAILER_SSRF_ALLOW=${UPMON_MAILER_SSRF_ALLOW:-127.0.0.0/8,::1/128}")
  fi
  start_bg "$name" "$S" env "${envs[@]}" "$BIN/upmon-$name"
}

# Prints the gateway's token signing key: 64 hex characters generated once per stack into
# $S/gateway-jwt-secret (mode 600), so tokens survive gateway restarts.
gateway_jwt_secret() {
  local f=$S/gateway-jwt-secret tmp
  if [[ ! -s $f ]]; then
    tmp=$f.tmp
    (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$tmp") ||
      die "cannot write $tmp"
    mv -f "$tmp" "$f"
  fi
  chmod 600 "$f"
  cat "$f"
}

svc_wait() { wait_ready "$1" svc_ready "$1"; }
svc_stop() { stop_comp "$1" TERM; }
svc_exists() { [[ -x $BIN/upmon-$1 ]]; }

# ---------------------------------------------------------------------------------------
# Dispatch by component name (used by up, down and ctl)

comp_start() {
  case $1 in
    rabbitmq) rmq_start ;; postgres) pg_start ;; redis) redis_start ;; smtp) smtp_start ;;
    *) svc_start "$1" ;;
  esac
}

comp_wait() {
  case $1 in
    rabbitmq) rmq_wait ;; postgres) pg_wait ;; redis) redis_wait ;; smtp) smtp_wait ;;
    *) svc_wait "$1" ;;
  esac
}

comp_stop() {
  case $1 in
    rabbitmq) rmq_stop ;; postgres) pg_stop ;; redis) redis_stop ;; smtp) smtp_stop ;;
    *) svc_stop "$1" ;;
  esac
}

# Starts (if not running) and waits for each named component; starts all first, then waits,
# so slow starters overlap. postgres is followed by the migrations when upmonctl exists.
comps_up() {
  local c
  local -a started=()
  for c in "$@"; do
    if comp_alive "$c"; then
      note "$c already running (pid $(comp_pid "$c"))"
    else
      note "starting $c"
      comp_start "$c"
      started+=("$c")
    fi
  done
  for c in "${started[@]}"; do
    comp_wait "$c"
    note "$c ready"
  done
}

# Applies the schema migrations with upmonctl when it has been built.
run_migrations() {
  local ctl=$BIN/upmonctl
  [[ -x $ctl ]] || { note "no $ctl yet; skipping migrations"; return 0; }
  note "applying migrations (upmonctl migrate)"
  UPMON_PG_URL="postgresql://$PG_USER:$PG_PASS@127.0.0.1:$PORT_PG/$PG_DB" "$ctl" migrate ||
    die "upmonctl migrate failed"
}

# Creates (or refreshes) the self-monitors of deploy/local/selfmon.sql: the stack watches its
# own components. Interval UPMON_LOCAL_SELFMON_INTERVAL seconds (default 30).
SELFMON_OWNER=admin@upmon.local
seed_self_monitors() {
  local with_gateway=false with_mailer=false
  svc_exists gateway && with_gateway=true
  svc_exists mailer && with_mailer=true
  PGPASSWORD=$PG_PASS PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p "$PORT_PG" \
    -U "$PG_USER" -d "$PG_DB" -v owner_email="$SELFMON_OWNER" \
    -v interval="${UPMON_LOCAL_SELFMON_INTERVAL:-30}" \
    -v mgmt_port="$PORT_RABBITMQ_MGMT" -v amqp_port="$PORT_AMQP" -v pg_port="$PORT_PG" \
    -v redis_port="$PORT_REDIS" -v smtp_port="$PORT_SMTP" \
    -v scheduler_admin_port="$PORT_SCHEDULER_ADMIN" -v probe_admin_port="$PORT_PROBE_ADMIN" \
    -v gateway_admin_port="$PORT_GATEWAY_ADMIN" -v mailer_admin_port="$PORT_MAILER_ADMIN" \
    -v with_gateway="$with_gateway" -v with_mailer="$with_mailer" \
    -f "$UPMON_REPO/deploy/local/selfmon.sql" >/dev/null ||
    die "could not create the self-monitors (deploy/local/selfmon.sql)"
}

# The local admin account (the self-monitors' owner, SELFMON_OWNER): on the first start with
# the gateway, gives it a random password (upmonctl user create/set-password) and saves
# "email=...\npassword=..." in $S/admin-credentials (mode 600). Later runs change nothing.
# Sets ADMIN_PASSWORD when it was just created (the banner shows it once), else leaves it
# empty.
ADMIN_CREDENTIALS_FILE=admin-credentials
admin_account_ensure() {
  local f=$S/$ADMIN_CREDENTIALS_FILE tmp ctl=$BIN/upmonctl pw
  local url="postgresql://$PG_USER:$PG_PASS@127.0.0.1:$PORT_PG/$PG_DB"
  ADMIN_PASSWORD=""
  [[ -s $f ]] && return 0
  [[ -x $ctl ]] || die "$ctl not found: cannot create the admin account"
  pw=$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
  ((${#pw} == 20)) || die "cannot generate the admin password"
  tmp=$f.tmp
  (umask 077 && printf 'email=%s\npassword=%s\n' "$SELFMON_OWNER" "$pw" >"$tmp") ||
    die "cannot write $tmp"
  printf '%s\n' "$pw" | UPMON_PG_URL=$url "$ctl" user create --email "$SELFMON_OWNER" \
    --admin --if-missing --password-stdin >/dev/null ||
    die "upmonctl user create failed for $SELFMON_OWNER"
  printf '%s\n' "$pw" | UPMON_PG_URL=$url "$ctl" user set-password --email "$SELFMON_OWNER" \
    --password-stdin >/dev/null ||
    die "upmonctl user set-password failed for $SELFMON_OWNER"
  mv -f "$tmp" "$f"
  chmod 600 "$f"
  # shellcheck disable=SC2034  # read by deploy/local/up's banner
  ADMIN_PASSWORD=$pw
}

# Drops this stack's reservations from the port registry (when its state dir goes away).
ports_release() {
  local f
  for f in "$UPMON_PORT_REGISTRY"/[0-9]*; do
    [[ -f $f && $(<"$f") == "$S" ]] && rm -f "$f"
  done
  return 0
}
