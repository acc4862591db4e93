#!/usr/bin/env bash
# Makes sure the services Shardcast's tests run against are up on this machine:
#   PostgreSQL    127.0.0.1:5432 (trust auth, database `test`)
#   Redis         127.0.0.1:6379 (nothing kept on disk)
#   Redis Cluster 127.0.0.1:7001 7002 7003 (3 masters, no replicas, cluster bus on
#                 17001-17003, nothing kept on disk): for the Redis Cluster tests
#   RabbitMQ      127.0.0.1:5672 (guest/guest, plugin rabbitmq_consistent_hash_exchange)
# A service that answers is left alone: it is never stopped, restarted or
# reconfigured, because other people and test runs may be using it right now.
# A service that does not answer is installed from Debian's packages if absent,
# started, and waited for (bounded). Silent when everything is already up.
#
# The Redis Cluster is a test-only fixture that this script owns: three
# `redis-server --cluster-enabled yes` processes (the standalone Redis's binary),
# daemonized, running as the user who runs this script, with their cluster
# configs (nodes-PORT.conf), logs (redis-PORT.log) and pid files in
#   /var/lib/shardcast-redis-cluster                  when run as root (CI),
#   $XDG_STATE_HOME (~/.local/state)/shardcast-redis-cluster  otherwise.
# Nothing on these nodes is precious. When all three report cluster_state:ok the
# cluster is left alone. Otherwise the nodes that do not answer are started (with
# their nodes-PORT.conf, so a restarted node rejoins its cluster); fresh nodes are
# joined with `redis-cli --cluster create`. A half-formed cluster (nodes that know
# other nodes, or not all slots assigned) is reported, and repaired by restarting
# its nodes empty and creating the cluster again -- but only if none of them holds
# a working cluster (cluster_state:ok). A Redis without cluster support, or
# anything else on one of these ports, is reported and never touched.
# A node the others marked as failed is readmitted by them only 2 x
# cluster-node-timeout (30 s) after it failed, so restarting one crashed node can
# take that long; starting the cluster from nothing takes about 5 s.
#
# Usage: deploy/services.sh [--check] [--verbose]
#   --check    only report; install and start nothing (exit 1 if something is down)
#   --verbose  say what was found even when all is well
# Environment:
#   SHARDCAST_SERVICES_WAIT_S       seconds to wait for each service (default 60)
#   SHARDCAST_REDIS_CLUSTER_PORTS   the cluster's ports, at least 3 (default "7001 7002 7003");
#                                   each node's bus port is its port + 10000
#   SHARDCAST_REDIS_CLUSTER_DIR     where the cluster nodes keep their files (default above)
#
# Exit status: 0 when all four answer, 1 otherwise (the messages say which and why),
# 2 on a usage error.
set -euo pipefail

readonly WAIT_S="${SHARDCAST_SERVICES_WAIT_S:-60}"
readonly PG_HOST=127.0.0.1 PG_PORT=5432 PG_DB=test PG_SUPERUSER=postgres
readonly REDIS_HOST=127.0.0.1 REDIS_PORT=6379
readonly AMQP_HOST=127.0.0.1 AMQP_PORT=5672
readonly RABBIT_PLUGINS=(rabbitmq_consistent_hash_exchange)
readonly CLUSTER_HOST=127.0.0.1
read -r -a CLUSTER_PORTS <<<"$(tr ',' ' ' <<<"${SHARDCAST_REDIS_CLUSTER_PORTS:-7001 7002 7003}")"
readonly CLUSTER_PORTS

check_only=false
verbose=false
for arg in "$@"; do
  case "$arg" in
    --check) check_only=true ;;
    --verbose|-v) verbose=true ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) printf 'services: unknown argument %s (try --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

say() { printf 'services: %s\n' "$*" >&2; }
note() { if $verbose; then say "$@"; fi; }

# Bus ports are port + 10000, and `redis-cli --cluster create` needs 3 masters.
if [ "$(printf '%s\n' "${CLUSTER_PORTS[@]}" | sort -u | grep -cE '^[1-9][0-9]{0,4}$')" -ne "${#CLUSTER_PORTS[@]}" ] ||
   [ "${#CLUSTER_PORTS[@]}" -lt 3 ] || [ "$(printf '%s\n' "${CLUSTER_PORTS[@]}" | sort -n | tail -n 1)" -gt 55535 ]; then
  say "SHARDCAST_REDIS_CLUSTER_PORTS must list at least 3 distinct ports up to 55535, got '${SHARDCAST_REDIS_CLUSTER_PORTS:-}'"
  exit 2
fi

failures=()
# fail_service NAME MESSAGE
fail_service() { say "ERROR: $2"; failures+=("$1"); }

have() { command -v "$1" >/dev/null 2>&1; }

# Installing and starting system services needs root; fall back to passwordless
# sudo, never to a prompt (CI has no stdin).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif have sudo && sudo -n true 2>/dev/null; then sudo -n "$@"
  else say "ERROR: need root (or passwordless sudo) to run: $*"; return 1
  fi
}

# Polls a check function every INTERVAL seconds (default 1) until it succeeds or
# WAIT_S runs out.
wait_for() {
  local check="$1" interval="${2:-1}" deadline=$((SECONDS + WAIT_S))
  until "$check"; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep "$interval"
  done
}

# Runs a start/install command with its output in a temporary log that is shown
# only if the command fails, so a healthy run stays quiet. A file, not a pipe:
# daemons started here inherit it, and must not hold the caller's output open.
run_logged() {
  local what="$1"; shift
  local log rc=0 shown="$*"
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "ERROR: $what failed (exit $rc): ${shown#as_root }"
    sed 's/^/    /' "$log" | tail -n 30 >&2
  fi
  rm -f "$log"
  return "$rc"
}

tcp_open() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# ---------------------------------------------------------------- checks

pg_answers() {
  if have pg_isready; then pg_isready -q -t 3 -h "$PG_HOST" -p "$PG_PORT"
  else tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

redis_answers() {
  if have redis-cli; then
    [ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
  else
    # RESP inline command; a healthy server answers "+PONG".
    timeout 3 bash -c "exec 3<>/dev/tcp/$REDIS_HOST/$REDIS_PORT && printf 'PING\r\n' >&3 && read -r line <&3 && [ \"\${line%\$'\r'}\" = '+PONG' ]" 2>/dev/null
  fi
}

# An open port is not enough: RabbitMQ binds 5672 before it can serve. Send the
# AMQP 0-9-1 protocol header; a broker that is ready answers with a method frame
# (connection.start), whose first byte is the frame type 1.
amqp_answers() {
  timeout 5 bash -c "
    exec 3<>/dev/tcp/$AMQP_HOST/$AMQP_PORT || exit 1
    printf 'AMQP\x00\x00\x09\x01' >&3
    IFS= read -r -N 1 -t 4 byte <&3 || exit 1
    [ \"\$byte\" = \$'\x01' ]" 2>/dev/null
}

psql_as_superuser() {
  # -w: never prompt for a password; trust auth is what we are checking.
  env -u PGPASSWORD -u PGSERVICE psql -X -w -q -A -t -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

# ---------------------------------------------------------------- install

installed_now=()

install_packages() {
  local pkgs=("$@")
  if $check_only; then return 1; fi
  if ! have apt-get; then
    say "ERROR: ${pkgs[*]} not installed and apt-get is not available: install them by hand"
    return 1
  fi
  say "installing ${pkgs[*]} from Debian packages (this takes a few minutes)"
  run_logged "apt-get update" as_root apt-get -q -o DPkg::Lock::Timeout=300 update || return 1
  run_logged "apt-get install" as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q -o DPkg::Lock::Timeout=300 "${pkgs[@]}" || return 1
  installed_now+=("${pkgs[@]}")
}

pg_version() {
  # Several clusters may exist after an upgrade: take the newest.
  { ls /etc/postgresql 2>/dev/null || true; } | sort -V | tail -n 1
}

# ---------------------------------------------------------------- postgres

ensure_postgres() {
  if pg_answers; then
    note "postgres: up on $PG_HOST:$PG_PORT"
  else
    if $check_only; then fail_service postgres "postgres does not answer on $PG_HOST:$PG_PORT"; return; fi
    if ! have pg_ctlcluster || [ -z "$(pg_version)" ]; then
      fail_service postgres "postgresql is not installed (see above)"; return
    fi
    local ver; ver="$(pg_version)"
    if ! pg_answers; then
      say "starting postgres $ver/main"
      # The cluster may already be starting (e.g. by the package's postinst):
      # a failed start is reported only if it then does not answer.
      run_logged "pg_ctlcluster start" as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    fi
    wait_for pg_answers || { fail_service postgres "postgres $ver/main does not answer on $PG_HOST:$PG_PORT after ${WAIT_S}s (see /var/log/postgresql/postgresql-$ver-main.log)"; return; }
  fi
  ensure_postgres_trust_and_db
}

ensure_postgres_trust_and_db() {
  if ! have psql; then
    say "WARNING: psql not found: cannot check trust auth and database '$PG_DB' (apt-get install postgresql-client)"
    return
  fi
  local err
  if ! err="$(psql_as_superuser -d postgres -c 'select 1' 2>&1 >/dev/null)"; then
    case "$err" in
      *password*|*authentication*|*pg_hba.conf*) ;;
      *) fail_service postgres "cannot connect as $PG_SUPERUSER to $PG_HOST:$PG_PORT: $err"; return ;;
    esac
    if $check_only; then fail_service postgres "postgres does not let $PG_SUPERUSER in without a password from $PG_HOST (trust auth missing): $err"; return; fi
    enable_postgres_trust || return
  fi
  if ! psql_as_superuser -d "$PG_DB" -c 'select 1' >/dev/null 2>&1; then
    if $check_only; then fail_service postgres "database '$PG_DB' does not exist"; return; fi
    say "creating database '$PG_DB'"
    # A concurrent run may have created it meanwhile; only its absence afterwards is an error.
    psql_as_superuser -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null 2>&1 || true
    psql_as_superuser -d "$PG_DB" -c 'select 1' >/dev/null 2>&1 ||
      fail_service postgres "could not create database '$PG_DB'"
  fi
}

# A fresh Debian cluster uses peer/scram auth. Development and CI machines use
# trust on loopback (see docs/architecture.md, "Development and CI services"),
# so prepend trust rules (pg_hba.conf is
# first-match) and reload. Reload does not drop connections.
enable_postgres_trust() {
  local ver hba
  ver="$(pg_version)"
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  if [ -z "$ver" ] || ! as_root test -f "$hba"; then
    fail_service postgres "trust auth missing and no Debian cluster config to fix it (expected $hba): set 'host all all 127.0.0.1/32 trust' by hand"
    return 1
  fi
  if as_root grep -q '^# Added by shardcast deploy/services.sh' "$hba"; then
    fail_service postgres "trust auth refused although $hba has shardcast's trust rules: check it by hand"
    return 1
  fi
  say "enabling trust auth on loopback in $hba (backup: $hba.before-shardcast)"
  as_root cp -n "$hba" "$hba.before-shardcast" || true
  local tmp; tmp="$(mktemp)"
  {
    echo '# Added by shardcast deploy/services.sh: development/CI machines use trust auth on loopback.'
    echo 'local   all   all                 trust'
    echo 'host    all   all   127.0.0.1/32  trust'
    echo 'host    all   all   ::1/128       trust'
    as_root cat "$hba"
  } >"$tmp"
  as_root cp "$tmp" "$hba"
  rm -f "$tmp"
  run_logged "pg_ctlcluster reload" as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload ||
    { fail_service postgres "could not reload postgres $ver/main"; return 1; }
  local deadline=$((SECONDS + 10))
  until psql_as_superuser -d postgres -c 'select 1' >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail_service postgres "trust auth still refused after editing $hba"
      return 1
    fi
    sleep 1
  done
}

# ---------------------------------------------------------------- redis

ensure_redis() {
  if redis_answers; then note "redis: up on $REDIS_HOST:$REDIS_PORT"; return; fi
  if $check_only; then fail_service redis "redis does not answer on $REDIS_HOST:$REDIS_PORT"; return; fi
  if ! have redis-server; then fail_service redis "redis-server is not installed (see above)"; return; fi
  # A freshly installed package may have started its own instance meanwhile.
  if redis_answers; then return; fi
  say "starting redis on $REDIS_HOST:$REDIS_PORT"
  as_root mkdir -p /var/lib/redis /var/log/redis
  run_logged "redis-server" as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_for redis_answers || fail_service redis "redis does not answer on $REDIS_HOST:$REDIS_PORT after ${WAIT_S}s (see /var/log/redis/ci.log)"
}

# ---------------------------------------------------------------- redis cluster

# Where the nodes keep their files: root's in /var/lib, anyone else's in their
# own state directory (a private directory in /tmp when there is no home).
cluster_dir() {
  if [ -n "${SHARDCAST_REDIS_CLUSTER_DIR:-}" ]; then printf '%s\n' "$SHARDCAST_REDIS_CLUSTER_DIR"
  elif [ "$(id -u)" -eq 0 ] || [ -w /var/lib/shardcast-redis-cluster ]; then printf '%s\n' /var/lib/shardcast-redis-cluster
  elif [ -n "${HOME:-}" ] && [ -d "$HOME" ] && [ -w "$HOME" ]; then printf '%s\n' "${XDG_STATE_HOME:-$HOME/.local/state}/shardcast-redis-cluster"
  else printf '%s\n' "${TMPDIR:-/tmp}/shardcast-redis-cluster-$(id -u)"
  fi
}
CLUSTER_DIR="$(cluster_dir)"
readonly CLUSTER_DIR

# redis-cli against one node; its reply with the CRs of bulk strings removed.
# Fails when the node does not answer (redis-cli prints error replies and exits 0).
cluster_cli() {
  local port="$1" out; shift
  out="$(timeout 3 redis-cli -h "$CLUSTER_HOST" -p "$port" "$@" </dev/null 2>/dev/null)" || return 1
  printf '%s\n' "${out//$'\r'/}"
}

# info_field INFO NAME: the value of NAME in a CLUSTER INFO reply.
info_field() { sed -n "s/^$2://p" <<<"$1"; }

# What listens on PORT: down, cluster (a Redis cluster node), standalone (a Redis
# without cluster support) or other.
cluster_node_kind() {
  local info
  info="$(cluster_cli "$1" cluster info)" || info=""
  case "$info" in
    cluster_state:*) echo cluster ;;
    *'cluster support disabled'*) echo standalone ;;
    *) if tcp_open "$CLUSTER_HOST" "$1"; then echo other; else echo down; fi ;;
  esac
}

# True when the ports' nodes form one cluster (each node knows the same set of
# node ids, so each knows the others) with all 16384 slots assigned. With `ok`,
# each node must also report cluster_state:ok.
cluster_formed() {
  local port info ids first=""
  for port in "${CLUSTER_PORTS[@]}"; do
    info="$(cluster_cli "$port" cluster info)" || return 1
    [ "$(info_field "$info" cluster_slots_assigned)" = 16384 ] || return 1
    if [ "${1:-}" = ok ] && [ "$(info_field "$info" cluster_state)" != ok ]; then return 1; fi
    ids="$(cluster_cli "$port" cluster nodes | awk 'NF { print $1 }' | sort)" || return 1
    if [ -z "$first" ]; then first="$ids"; elif [ "$ids" != "$first" ]; then return 1; fi
  done
}

# True when some node has marked another as failed (flag `fail`, not `fail?`).
cluster_has_failed_nodes() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    cluster_cli "$port" cluster nodes | awk '$3 ~ /(^|,)fail(,|$)/ { found = 1 } END { exit !found }' && return 0
  done
  return 1
}

cluster_healthy() { have redis-cli && cluster_formed ok; }
cluster_nodes_answer() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do [ "$(cluster_node_kind "$port")" = cluster ] || return 1; done
}

# A node `redis-cli --cluster create` accepts: knows only itself, no slots, no keys.
cluster_node_empty() {
  local info
  info="$(cluster_cli "$1" cluster info)" || return 1
  [ "$(info_field "$info" cluster_known_nodes)" = 1 ] && [ "$(info_field "$info" cluster_slots_assigned)" = 0 ] &&
    [ "$(cluster_cli "$1" dbsize)" = 0 ]
}

# One line saying what each node is, for messages.
cluster_describe() {
  local port info what out=""
  for port in "${CLUSTER_PORTS[@]}"; do
    case "$(cluster_node_kind "$port")" in
      down) what=down ;;
      other) what="open, but no Redis answers there (another program, a password, or a hung node)" ;;
      standalone) what="a Redis without cluster support" ;;
      cluster)
        info="$(cluster_cli "$port" cluster info)" || info=""
        what="cluster_state:$(info_field "$info" cluster_state), knows $(info_field "$info" cluster_known_nodes) node(s), $(info_field "$info" cluster_slots_assigned)/16384 slots assigned" ;;
    esac
    out+="${out:+; }$port $what"
  done
  printf '%s\n' "$out"
}

# start_cluster_node PORT [fresh]: starts a daemonized node; `fresh` first removes
# its cluster config, so it starts knowing no cluster. fd 9 (the lock) is closed
# for it: a daemon holding it would block every later run.
start_cluster_node() {
  local port="$1"
  if [ "${2:-}" = fresh ]; then rm -f "$CLUSTER_DIR/nodes-$port.conf"; fi
  run_logged "redis-server on port $port" redis-server --daemonize yes --bind "$CLUSTER_HOST" --port "$port" \
    --cluster-enabled yes --cluster-config-file "$CLUSTER_DIR/nodes-$port.conf" \
    --save "" --appendonly no --dir "$CLUSTER_DIR" \
    --pidfile "$CLUSTER_DIR/redis-$port.pid" --logfile "$CLUSTER_DIR/redis-$port.log" 9>&-
}

cluster_port_down() { ! tcp_open "$CLUSTER_HOST" "$stopping_port"; }
stopping_port=""

cluster_logs() {
  local port logs=""
  for port in "${CLUSTER_PORTS[@]}"; do logs+="${logs:+ }$CLUSTER_DIR/redis-$port.log"; done
  printf '%s\n' "$logs"
}

ensure_redis_cluster() {
  local addrs="${CLUSTER_PORTS[*]}"
  if ! have redis-cli; then fail_service redis-cluster "redis-cli is not installed: cannot check the redis cluster on $CLUSTER_HOST:$addrs"; return; fi
  if cluster_healthy; then note "redis cluster: up on $CLUSTER_HOST:$addrs"; return; fi
  if $check_only; then fail_service redis-cluster "redis cluster on $CLUSTER_HOST:$addrs is not up: $(cluster_describe)"; return; fi
  if ! have redis-server; then fail_service redis-cluster "redis-server is not installed (see above)"; return; fi

  if ! { mkdir -p "$CLUSTER_DIR" && chmod 700 "$CLUSTER_DIR" && [ -O "$CLUSTER_DIR" ]; } 2>/dev/null; then
    fail_service redis-cluster "cannot keep the redis cluster's files in $CLUSTER_DIR (not creatable or not ours): set SHARDCAST_REDIS_CLUSTER_DIR"
    return
  fi
  # One run at a time repairs the cluster; a run that waited finds it up.
  exec 9>"$CLUSTER_DIR/lock"
  if have flock && ! flock -w "$WAIT_S" 9; then
    exec 9>&-
    fail_service redis-cluster "another run has been setting up the redis cluster for ${WAIT_S}s (lock $CLUSTER_DIR/lock)"
    return
  fi
  repair_redis_cluster || true
  exec 9>&-
}

repair_redis_cluster() {
  local port kind addrs="${CLUSTER_PORTS[*]}" started=() foreign=()
  if cluster_healthy; then return; fi

  for port in "${CLUSTER_PORTS[@]}"; do
    kind="$(cluster_node_kind "$port")"
    case "$kind" in
      down) started+=("$port") ;;
      standalone|other) foreign+=("$port") ;;
    esac
  done
  if [ "${#foreign[@]}" -gt 0 ]; then
    fail_service redis-cluster "redis cluster: port(s) ${foreign[*]} taken by something this script did not start ($(cluster_describe)); stop it, e.g. redis-cli -p ${foreign[0]} shutdown nosave, and rerun"
    return 1
  fi

  # Nodes that are down start with their cluster config: a node that crashed
  # rejoins its cluster, and three restarted nodes form their cluster again.
  if [ "${#started[@]}" -gt 0 ]; then
    say "starting redis cluster node(s) $CLUSTER_HOST:${started[*]} (files in $CLUSTER_DIR)"
    for port in "${started[@]}"; do start_cluster_node "$port" || true; done
    wait_for cluster_nodes_answer 0.1 || {
      fail_service redis-cluster "redis cluster nodes do not answer after ${WAIT_S}s: $(cluster_describe) (see $(cluster_logs))"
      return 1
    }
  fi

  if ! cluster_formed; then
    local not_empty=()
    for port in "${CLUSTER_PORTS[@]}"; do cluster_node_empty "$port" || not_empty+=("$port"); done
    if [ "${#not_empty[@]}" -gt 0 ]; then
      for port in "${CLUSTER_PORTS[@]}"; do
        if [ "$(info_field "$(cluster_cli "$port" cluster info || true)" cluster_state)" = ok ]; then
          fail_service redis-cluster "redis cluster on $CLUSTER_HOST:$addrs is half-formed and $port holds a working cluster, so it is left alone: $(cluster_describe). Stop the nodes by hand (redis-cli -p PORT shutdown nosave) and rerun"
          return 1
        fi
      done
      # Test-only nodes, nothing on them is kept: restart them empty.
      say "redis cluster on $CLUSTER_HOST:$addrs is half-formed ($(cluster_describe)); restarting ${not_empty[*]} empty"
      for port in "${not_empty[@]}"; do
        cluster_cli "$port" shutdown nosave >/dev/null || true
        stopping_port="$port"
        wait_for cluster_port_down 0.1 || { fail_service redis-cluster "redis cluster node $port does not stop"; return 1; }
        start_cluster_node "$port" fresh || true
      done
      wait_for cluster_nodes_answer 0.1 || {
        fail_service redis-cluster "redis cluster nodes do not answer after ${WAIT_S}s: $(cluster_describe) (see $(cluster_logs))"
        return 1
      }
    fi
    say "creating redis cluster on $CLUSTER_HOST:$addrs"
    local nodes=("${CLUSTER_PORTS[@]/#/$CLUSTER_HOST:}")
    run_logged "redis-cli --cluster create" redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes </dev/null || {
      fail_service redis-cluster "could not create the redis cluster on $CLUSTER_HOST:$addrs: $(cluster_describe)"
      return 1
    }
  fi
  if ! cluster_healthy && cluster_has_failed_nodes; then
    say "redis cluster: nodes marked failed are readmitted 2 x cluster-node-timeout (30 s) after they failed: waiting up to ${WAIT_S}s"
  fi
  wait_for cluster_healthy 0.2 ||
    fail_service redis-cluster "redis cluster on $CLUSTER_HOST:$addrs is not ok after ${WAIT_S}s: $(cluster_describe) (see $(cluster_logs))"
}

# ---------------------------------------------------------------- rabbitmq

ensure_rabbitmq() {
  if amqp_answers; then
    note "rabbitmq: up on $AMQP_HOST:$AMQP_PORT"
  else
    if $check_only; then fail_service rabbitmq "rabbitmq does not answer AMQP on $AMQP_HOST:$AMQP_PORT"; return; fi
    if ! have rabbitmq-server; then fail_service rabbitmq "rabbitmq-server is not installed (see above)"; return; fi
    # The broker may be booting already (package postinst, another run):
    # starting a second node would fail, so give it a moment first.
    if ! amqp_answers && ! { have rabbitmq-diagnostics && timeout 10 rabbitmq-diagnostics -q ping >/dev/null 2>&1; }; then
      say "starting rabbitmq"
      run_logged "rabbitmq-server -detached" as_root rabbitmq-server -detached || true
    fi
    wait_for amqp_answers || { fail_service rabbitmq "rabbitmq does not answer AMQP on $AMQP_HOST:$AMQP_PORT after ${WAIT_S}s (see /var/log/rabbitmq/)"; return; }
  fi
  ensure_rabbitmq_plugins
}

# Enabling a plugin on a running node activates it online: no restart.
ensure_rabbitmq_plugins() {
  if ! have rabbitmq-plugins; then
    say "WARNING: rabbitmq-plugins not found: cannot check that ${RABBIT_PLUGINS[*]} is enabled on the broker"
    return
  fi
  local plugin
  for plugin in "${RABBIT_PLUGINS[@]}"; do
    if as_root rabbitmq-plugins -q is_enabled "$plugin" >/dev/null 2>&1; then
      note "rabbitmq: plugin $plugin enabled"
      continue
    fi
    if $check_only; then fail_service rabbitmq "rabbitmq plugin $plugin is not enabled"; continue; fi
    say "enabling rabbitmq plugin $plugin"
    run_logged "rabbitmq-plugins enable $plugin" as_root rabbitmq-plugins -q enable "$plugin" ||
      fail_service rabbitmq "could not enable rabbitmq plugin $plugin"
  done
}

# Installs, in one apt-get run, the packages of every service that is down and
# absent. A service that answers is never installed over.
install_missing() {
  if $check_only; then return; fi
  local pkgs=()
  if ! pg_answers && ! { have pg_ctlcluster && [ -n "$(pg_version)" ]; }; then pkgs+=(postgresql); fi
  # The cluster nodes run the standalone Redis's binary; redis-cli comes with it.
  if ! have redis-server && { ! redis_answers || ! cluster_healthy; }; then pkgs+=(redis-server)
  elif ! have redis-cli; then pkgs+=(redis-tools)
  fi
  if ! amqp_answers && ! have rabbitmq-server; then pkgs+=(rabbitmq-server); fi
  if [ ! -x /usr/bin/chromium ]; then pkgs+=(chromium); fi  # the SDK's browser tests (test/browser/) drive it headless
  if [ "${#pkgs[@]}" -gt 0 ]; then install_packages "${pkgs[@]}" || true; fi
}

# ---------------------------------------------------------------- main

install_missing
ensure_postgres
ensure_redis
ensure_redis_cluster
ensure_rabbitmq

if [ "${#installed_now[@]}" -gt 0 ]; then say "installed: ${installed_now[*]}"; fi
if [ "${#failures[@]}" -gt 0 ]; then
  say "FAILED: $(printf '%s\n' "${failures[@]}" | sort -u | tr '\n' ' ')(the tests need all of them)"
  exit 1
fi
note "all services up"
