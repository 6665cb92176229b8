#!/usr/bin/env bash
# A multi-node Ray cluster on one machine, for trying tuner's cluster mode (--address) without a cloud:
# one head and N workers, each a separate `ray start --block` process with its own CPU/GPU counts, temp dir
# and ports (nodes on one host must not share ports, and Ray's fixed defaults — 6379, 8265, 10001, 52365 —
# are often taken by another local Ray already).
#
#   cluster/local_cluster.sh start --workers 2 --head-cpus 1 --worker-cpus 1 [--worker-gpus 0]
#   cluster/local_cluster.sh status
#   cluster/local_cluster.sh stop
#
# Everything the cluster writes (node temp dirs, logs, pid files) lives under one state directory,
# ${TMPDIR:-/tmp}/tuner-ray-<port> by default; `stop` ends exactly the processes this script started there
# and removes that directory. `ray stop` is never used: it would kill every Ray process on the machine.
set -euo pipefail

PROG="cluster/local_cluster.sh"
DEFAULT_PORT=26379
MAX_WORKERS=16

usage() {
    cat <<USAGE
usage: $PROG start [--workers N] [--head-cpus N] [--head-gpus N] [--worker-cpus N] [--worker-gpus N]
                   [--object-store-mb MB] [--port PORT] [--dir DIR] [--timeout SECONDS]
       $PROG status [--port PORT] [--dir DIR]
       $PROG stop [--port PORT] [--dir DIR]

start     a head and N workers (default: 1 worker, 1 CPU each, no GPUs) on this machine
status    the cluster's address and its alive nodes with their resources (exit 3 if none runs)
stop      end every process of the cluster and remove its state directory

--port    the head's GCS port (default $DEFAULT_PORT); the dashboard listens on PORT+1, the Ray client server
          on PORT+2, node k (0 = head) on PORT+10+10k .. PORT+15+10k
--dir     state directory (default \${TMPDIR:-/tmp}/tuner-ray-PORT); keep it short: Ray's socket paths under it
          must stay below 107 characters
--object-store-mb
          object store of each node (default 512): every node of this cluster shares this machine's memory
--timeout seconds to wait for the nodes to come up (default 90)

Token authentication is on (RAY_AUTH_MODE=token; set RAY_AUTH_MODE=disabled to turn it off): the token is
~/.ray/auth_token, created if missing; \`ray get-auth-token\` prints it.
USAGE
}

die() {  # a usage error: one line on stderr, exit status 2
    echo "$PROG: $*" >&2
    exit 2
}

fail() {  # a runtime failure: one line on stderr, exit status 1
    echo "$PROG: error: $*" >&2
    exit 1
}

need_uint() {  # need_uint OPTION VALUE
    [[ $2 =~ ^[0-9]+$ ]] || die "$1 expects a non-negative integer, got '$2'"
}

# ---------------------------------------------------------------------------------------------- options
[[ $# -ge 1 ]] || die "missing command (expected start, status or stop; see --help)"
COMMAND=$1
shift
case "$COMMAND" in
    start | status | stop) ;;
    -h | --help | help) usage; exit 0 ;;
    *) die "unknown command '$COMMAND' (expected start, status or stop; see --help)" ;;
esac

WORKERS=1 HEAD_CPUS=1 HEAD_GPUS=0 WORKER_CPUS=1 WORKER_GPUS=0 OBJECT_STORE_MB=512 TIMEOUT=90
PORT=$DEFAULT_PORT STATE_DIR=""
while [[ $# -gt 0 ]]; do
    option=$1
    case "$option" in
        -h | --help) usage; exit 0 ;;
        --port | --dir) ;;
        --workers | --head-cpus | --head-gpus | --worker-cpus | --worker-gpus | --object-store-mb | --timeout)
            [[ $COMMAND == start ]] || die "$option is an option of 'start', not of '$COMMAND'" ;;
        *) die "unknown option '$option' for '$COMMAND' (see --help)" ;;
    esac
    [[ $# -ge 2 ]] || die "$option expects a value"
    value=$2
    shift 2
    case "$option" in
        --port) need_uint "$option" "$value"; PORT=$value ;;
        --dir) [[ -n $value ]] || die "--dir expects a path"; STATE_DIR=$value ;;
        --workers) need_uint "$option" "$value"; WORKERS=$value ;;
        --head-cpus) need_uint "$option" "$value"; HEAD_CPUS=$value ;;
        --head-gpus) need_uint "$option" "$value"; HEAD_GPUS=$value ;;
        --worker-cpus) need_uint "$option" "$value"; WORKER_CPUS=$value ;;
        --worker-gpus) need_uint "$option" "$value"; WORKER_GPUS=$value ;;
        --object-store-mb) need_uint "$option" "$value"; OBJECT_STORE_MB=$value ;;
        --timeout) need_uint "$option" "$value"; TIMEOUT=$value ;;
    esac
done

# 10#: a leading zero must not make bash read a number as octal.
PORT=$((10#$PORT)) WORKERS=$((10#$WORKERS)) HEAD_CPUS=$((10#$HEAD_CPUS)) HEAD_GPUS=$((10#$HEAD_GPUS))
WORKER_CPUS=$((10#$WORKER_CPUS)) WORKER_GPUS=$((10#$WORKER_GPUS))
OBJECT_STORE_MB=$((10#$OBJECT_STORE_MB)) TIMEOUT=$((10#$TIMEOUT))
HIGHEST_PORT=$((65535 - 15 - 10 * MAX_WORKERS))
((PORT >= 1024 && PORT <= HIGHEST_PORT)) || die "--port must be between 1024 and $HIGHEST_PORT, got $PORT"
((WORKERS <= MAX_WORKERS)) || die "--workers must be at most $MAX_WORKERS, got $WORKERS"
((OBJECT_STORE_MB >= 100)) || die "--object-store-mb must be at least 100 (Ray's minimum is about 75 MB)"
((TIMEOUT >= 1)) || die "--timeout must be at least 1 second"
STATE_DIR=${STATE_DIR:-${TMPDIR:-/tmp}/tuner-ray-$PORT}
STATE_DIR=${STATE_DIR%/}
[[ $STATE_DIR == /* ]] || STATE_DIR="$PWD/$STATE_DIR"

DASHBOARD_PORT=$((PORT + 1))
CLIENT_PORT=$((PORT + 2))
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
export RAY_USAGE_STATS_ENABLED=0
# SIGTERM makes `ray start --block` drain its node first (up to 30 s by default, for Ray Serve); a local
# try-out cluster has nothing to drain, so `stop` is immediate.
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}

command -v ray >/dev/null 2>&1 || fail "'ray' is not on PATH (activate the environment where tuner is installed)"
command -v python >/dev/null 2>&1 || fail "'python' is not on PATH"

# ---------------------------------------------------------------------------------------------- helpers
node_names() {  # head, then the workers this state directory knows of
    [[ -d $STATE_DIR ]] || return 0
    local pidfile
    if [[ -f $STATE_DIR/head.pid ]]; then echo head; fi
    for pidfile in "$STATE_DIR"/worker*.pid; do
        [[ -e $pidfile ]] || continue
        pidfile=${pidfile##*/}
        echo "${pidfile%.pid}"
    done
}

node_pid() {  # the pid of a node's `ray start --block`, if it is still running
    local pid
    [[ -f $STATE_DIR/$1.pid ]] || return 1
    pid=$(<"$STATE_DIR/$1.pid")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

descendants() {  # every process below the given pids (Ray's worker processes start their own process groups)
    local frontier=("$@") found=() next pid child
    while [[ ${#frontier[@]} -gt 0 ]]; do
        next=()
        for pid in "${frontier[@]}"; do
            for child in $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do
                found+=("$child")
                next+=("$child")
            done
        done
        frontier=("${next[@]+"${next[@]}"}")
    done
    echo "${found[@]+"${found[@]}"}"
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cluster_address() {
    [[ -f $STATE_DIR/head/ray_current_cluster ]] && tr -d '[:space:]' <"$STATE_DIR/head/ray_current_cluster"
}

alive_nodes() {  # alive_nodes ADDRESS WANT TIMEOUT: wait for WANT alive nodes, print them; exit 1 if fewer
    python - "$@" <<'PY'
import sys
import time

import ray

address, want, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + timeout
while True:
    alive = [n for n in ray.nodes() if n.get("Alive")]
    if len(alive) >= want or time.monotonic() > deadline:
        break
    time.sleep(0.5)
def is_head(node):
    return "node:__internal_head__" in node["Resources"]


for node in sorted(alive, key=lambda n: (not is_head(n), n["NodeManagerPort"])):
    res = node["Resources"]
    role = "head  " if is_head(node) else "worker"
    print(f"  {role} {node['NodeManagerAddress']}:{node['NodeManagerPort']}  "
          f"CPU {res.get('CPU', 0):g}  GPU {res.get('GPU', 0):g}")
ray.shutdown()
sys.exit(0 if len(alive) >= want else 1)
PY
}

stop_cluster() {  # ends every process of the nodes recorded under STATE_DIR; removes STATE_DIR
    local names=() pids=() name pid tree=() ticks=0 left=() i
    mapfile -t names < <(node_names)
    for name in "${names[@]+"${names[@]}"}"; do
        if pid=$(node_pid "$name"); then pids+=("$pid"); fi
    done
    if [[ ${#pids[@]} -gt 0 ]]; then
        read -r -a tree <<<"$(descendants "${pids[@]}")"
        # Workers first, then the head (the order `ray stop` uses: raylets before the GCS).
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
            kill -TERM "${pids[$i]}" 2>/dev/null || true
        done
        while ((ticks < 300)); do  # up to 30 s for each `ray start --block` to end its node's processes
            left=()
            for pid in "${pids[@]}" "${tree[@]+"${tree[@]}"}"; do
                if kill -0 "$pid" 2>/dev/null; then left+=("$pid"); fi
            done
            [[ ${#left[@]} -gt 0 ]] || break
            sleep 0.1
            ticks=$((ticks + 1))
        done
        if [[ ${#left[@]} -gt 0 ]]; then
            echo "$PROG: ${#left[@]} process(es) still running after 30 s; sending SIGKILL" >&2
            kill -KILL "${left[@]}" 2>/dev/null || true
        fi
    fi
    rm -rf -- "$STATE_DIR"
    echo "stopped ${#pids[@]} node(s); removed $STATE_DIR"
}

# ---------------------------------------------------------------------------------------------- start
start_node() {  # start_node NAME ARGS...: `ray start --block` in its own process group, output to a log
    local name=$1
    shift
    mkdir -p "$STATE_DIR/$name"
    # set -m gives the background job its own process group; stdin/stdout/stderr leave the caller's
    # terminal or pipes, so the node outlives this script and a caller reading its output is not held.
    set -m
    nohup ray start --block --disable-usage-stats --temp-dir "$STATE_DIR/$name" \
        --object-store-memory $((OBJECT_STORE_MB * 1024 * 1024)) "$@" \
        </dev/null >"$STATE_DIR/$name.log" 2>&1 &
    echo $! >"$STATE_DIR/$name.pid"
    set +m
}

wait_started() {  # wait_started NAME: until its log says the node runs; a node that died is an error
    local name=$1 deadline=$((SECONDS + TIMEOUT)) problem=""
    while ! grep -q "Ray runtime started" "$STATE_DIR/$name.log" 2>/dev/null; do
        if ! node_pid "$name" >/dev/null; then
            problem="exited while starting"
        elif ((SECONDS >= deadline)); then
            problem="did not start within ${TIMEOUT}s"
        fi
        if [[ -n $problem ]]; then
            # The state directory goes with the failed start: show the end of the node's log now.
            echo "$PROG: error: the $name node $problem; the end of its log:" >&2
            tail -n 15 "$STATE_DIR/$name.log" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

node_ports() {  # node_ports K: the fixed ports of node K (0 = head), as ray start options
    local base=$((PORT + 10 + 10 * $1))
    echo "--node-manager-port $base --object-manager-port $((base + 1))" \
        "--dashboard-agent-listen-port $((base + 2)) --dashboard-agent-grpc-port $((base + 3))" \
        "--runtime-env-agent-port $((base + 4)) --metrics-export-port $((base + 5))"
}

abort_start() {  # a node failed to come up: stop what was started (logs are printed above), exit 1
    stop_cluster >/dev/null 2>&1 || true
    exit 1
}

cmd_start() {
    local name k p address auth_env=""
    for name in $(node_names); do
        if node_pid "$name" >/dev/null; then
            fail "a cluster is already running with state in $STATE_DIR (run: $PROG stop --port $PORT)"
        fi
    done
    rm -rf -- "$STATE_DIR"  # what a crashed earlier run left
    for ((k = 0; k <= WORKERS; k++)); do
        for p in $(seq $((PORT + 10 + 10 * k)) $((PORT + 15 + 10 * k))) "$PORT" "$DASHBOARD_PORT" "$CLIENT_PORT"; do
            if port_in_use "$p"; then fail "port $p is in use; choose another base port with --port"; fi
        done
    done
    mkdir -p "$STATE_DIR"
    if ((${#STATE_DIR} > 40)); then
        echo "$PROG: warning: $STATE_DIR is long; Ray's socket paths under it may exceed 107 characters" >&2
    fi
    if [[ $RAY_AUTH_MODE == token ]]; then
        # `ray start` needs the token to exist; --generate keeps an existing one.
        ray get-auth-token --generate >/dev/null 2>&1 || fail "could not create a Ray token (ray get-auth-token)"
        auth_env="RAY_AUTH_MODE=token "
    fi

    # shellcheck disable=SC2046  # node_ports prints several options
    start_node head --head --port "$PORT" --num-cpus "$HEAD_CPUS" --num-gpus "$HEAD_GPUS" \
        --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$DASHBOARD_PORT" \
        --ray-client-server-port "$CLIENT_PORT" $(node_ports 0)
    wait_started head || abort_start
    address=$(cluster_address) || { echo "$PROG: error: the head wrote no address" >&2; abort_start; }
    for ((k = 1; k <= WORKERS; k++)); do
        # shellcheck disable=SC2046
        start_node "worker$k" --address "$address" --num-cpus "$WORKER_CPUS" --num-gpus "$WORKER_GPUS" \
            $(node_ports "$k")
    done
    for ((k = 1; k <= WORKERS; k++)); do
        wait_started "worker$k" || abort_start
    done
    echo "Ray cluster on this machine: 1 head + $WORKERS worker(s); state and logs in $STATE_DIR"
    if ! alive_nodes "$address" $((WORKERS + 1)) "$TIMEOUT"; then
        echo "$PROG: error: fewer than $((WORKERS + 1)) nodes joined within ${TIMEOUT}s" >&2
        abort_start
    fi
    echo
    echo "address    $address"
    echo "run        ${auth_env}python -m tuner run steel_binary --trials 20 --address $address"
    echo "dashboard  http://127.0.0.1:$DASHBOARD_PORT"
    if [[ $RAY_AUTH_MODE == token ]]; then
        echo "token      \`ray get-auth-token\` prints it: paste it at the dashboard's login prompt; HTTP clients"
        echo "           send 'Authorization: Bearer <token>'. A driver given an explicit --address needs"
        echo "           RAY_AUTH_MODE=token in its environment (Ray enables token auth by itself only for 'auto')."
    fi
    echo "stop       $PROG stop --port $PORT"
}

cmd_status() {
    local name pid address running=0
    for name in $(node_names); do
        if pid=$(node_pid "$name"); then
            echo "  $name: running (pid $pid, log $STATE_DIR/$name.log)"
            running=$((running + 1))
        else
            echo "  $name: not running (log $STATE_DIR/$name.log)"
        fi
    done
    if ((running == 0)); then
        echo "no cluster running with state in $STATE_DIR"
        exit 3
    fi
    address=$(cluster_address) || fail "the head wrote no address under $STATE_DIR/head"
    echo "address $address, dashboard http://127.0.0.1:$DASHBOARD_PORT; alive nodes:"
    alive_nodes "$address" 0 0
}

case "$COMMAND" in
    start) cmd_start ;;
    status) cmd_status ;;
    stop)
        if [[ -d $STATE_DIR ]]; then
            stop_cluster
        else
            echo "no cluster state in $STATE_DIR; nothing to stop"
        fi
        ;;
esac
