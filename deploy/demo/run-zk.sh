#!/usr/bin/env bash
# shellcheck disable=SC2317,SC2016  # functions called from traps; a script for bash -c
# One-command local deployment with ZooKeeper, on loopback: builds if needed, starts a
# throwaway ZooKeeper (data in a temp dir), creates the tree /lb with deploy/zk-tree,
# starts N zkworkers in ZooKeeper mode running deploy/demo/demo_app.py and one zkresumelb
# that finds them through ZooKeeper, prints the URL and things to try, and stops
# everything on Ctrl-C (or SIGTERM).
#   deploy/demo/run-zk.sh [--workers N] [--port PORT] [--zk-port PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
workers=3
port=8080
zk_port=
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --zk-port) zk_port="$2"; shift 2 ;;
    -h|--help) sed -n '3,8p' "$0"; exit 0 ;;
    *) echo "run-zk: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$workers$port$zk_port" in *[!0-9]*) echo "run-zk: numbers expected" >&2; exit 2 ;; esac

bash deploy/install-deps.sh
if [ ! -x build/zklb/zkresumelb ] || [ ! -x build/zkworker/zkworker ]; then
  cmake -S . -B build -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3
  cmake --build build -j "$(nproc)"
fi
PY=/usr/bin/python3
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
[ -n "$zk_port" ] || zk_port=$(free_port)
ZK="127.0.0.1:$zk_port"

run=$(mktemp -d /tmp/resumelb-zkdemo.XXXXXX)
pids=()       # everything we started, in start order
names=()
stopping=0

alive() {  # alive PID: running and not a zombie (kill -0 is true for zombies)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
stop_pid() {  # stop_pid PID NAME SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL
  local pid=$1 name=$2 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $3 * 20; i++)); do alive "$pid" || return 0; sleep 0.05; done
  echo "  $name (pid $pid) did not stop within $3 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  [ "$stopping" = 1 ] && return
  stopping=1
  echo; echo "stopping..."
  # Reverse order: the load balancer, then the workers (they drain), then ZooKeeper.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${pids[$i]}" "${names[$i]}" 70
  done
  wait 2>/dev/null || true
  echo "logs kept in $run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "run-zk: $*" >&2; exit 1; }

wait_log() {  # wait_log LOGFILE REGEX PID -> prints the first match's port
  local i p
  for ((i = 0; i < 600; i++)); do
    p=$(grep -o -m1 -E "$2" "$1" 2>/dev/null | sed 's/.*://') || true
    [ -n "$p" ] && { echo "$p"; return 0; }
    alive "$3" || { tail -n 20 "$1" >&2; fail "pid $3 exited; see $1"; }
    sleep 0.05
  done
  tail -n 20 "$1" >&2; fail "timed out waiting for /$2/ in $1"
}

# --- ZooKeeper: standalone, loopback only, throwaway data dir ---------------------------
mkdir -p "$run/zk/conf" "$run/zk/data"
cat >"$run/zk/conf/zoo.cfg" <<CFG
tickTime=2000
dataDir=$run/zk/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,cons
forceSync=no
CFG
cat >"$run/zk/conf/log4j.properties" <<'CFG'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
CFG
# setsid: its own session, so a terminal's Ctrl-C reaches only this script (which then
# stops it in order); every fd redirected so nothing waits on an inherited pipe.
setsid java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Djava.net.preferIPv4Stack=true -Dzookeeper.log.dir="$run/zk" \
  -cp "$run/zk/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar" \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$run/zk/conf/zoo.cfg" \
  </dev/null >"$run/zookeeper.log" 2>&1 &
pids+=($!); names+=(zookeeper)
zk_pid=$!
# Ready when `srvr` says "Mode: standalone" (`ruok` says imok too early). Every probe has
# a timeout: ZooKeeper 3.8.0 can leave a four-letter-word connection open forever.
srvr() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3' _ "$zk_port" 2>/dev/null || true; }
for ((i = 0; ; i++)); do
  srvr | grep -q "Mode: standalone" && break
  alive "$zk_pid" || { tail -n 20 "$run/zookeeper.log" >&2; fail "ZooKeeper exited; see $run/zookeeper.log"; }
  [ "$i" -lt 300 ] || fail "ZooKeeper not serving after 30 s; see $run/zookeeper.log"
  sleep 0.1
done
echo "ZooKeeper serving on $ZK (pid $zk_pid)"

# --- the tree: /lb (LB settings), /lb/providers, /lb/workers (worker settings), ... -----
"$PY" deploy/zk-tree --zookeeper "$ZK" --path /lb --worker-setting history=50

# --- workers: ZooKeeper mode, each on a free loopback port, registered under /lb/workers/providers
for i in $(seq 1 "$workers"); do
  cat >"$run/worker$i.ini" <<INI
[app:main]
use = call:demo_app:app_factory

[server:main]
use = egg:zc.resumelb#zk
zookeeper = $ZK
path = /lb/workers
address = 127.0.0.1:0
threads = 2
description = demo worker $i
version = 1
resume_file = $run/worker$i.resume.json
pythonpath = $PWD/deploy/demo
INI
  build/zkworker/zkworker "$run/worker$i.ini" </dev/null >"$run/worker$i.log" 2>&1 &
  pids+=($!); names+=("worker$i")
done
addrs=()
for i in $(seq 1 "$workers"); do
  p=$(wait_log "$run/worker$i.log" 'zkworker listening on [^ ]*' "${pids[$i]}")
  addrs+=("127.0.0.1:$p")
done

# --- the load balancer ------------------------------------------------------------------
build/zklb/zkresumelb -LINFO -a "127.0.0.1:$port" -s "$run/lb.sock" "$ZK" /lb </dev/null >"$run/lb.log" 2>&1 &
pids+=($!); names+=(zkresumelb)
lb_pid=$!
wait_log "$run/lb.log" 'zkresumelb listening on [^ ]*' "$lb_pid" >/dev/null
url="http://127.0.0.1:$port/"
for ((i = 0; ; i++)); do  # answers once it has connected to a worker
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Host: a.example' "$url" || true)
  [ "$code" = 200 ] && break
  alive "$lb_pid" || { tail -n 20 "$run/lb.log" >&2; fail "zkresumelb exited; see $run/lb.log"; }
  [ "$i" -lt 100 ] || fail "$url does not answer 200 (last: $code); see $run/lb.log"
  sleep 0.2
done

zt="deploy/zk-tree --zookeeper $ZK"
cat <<MSG

resumelb (ZooKeeper mode) is running: $url
  ZooKeeper: $ZK   tree: /lb   workers: ${addrs[*]}
  try:       for s in a b c d e f; do curl -s -H "Host: \$s.example" $url; done
  status:    build/status/get-lb-status $run/lb.sock
  resumes:   build/zkworker/get-worker-resume ${addrs[*]}
  the tree:  $zt --show
  live settings (applied at once by the running processes):
             $zt --lb-setting variance=2 backlog_history=20
             $zt --worker-setting history=100
             $zt --lb-setting variance=        # back to the default
  a worker leaves: kill -TERM ${pids[1]}     (its node vanishes; the LB drops it)
  another one:     build/zkworker/zkworker $run/worker1.ini   (registers itself)
  logs:      $run
Press Ctrl-C to stop.
MSG
# Workers may come and go (that is the point); the demo ends if ZooKeeper or the LB does.
set +e
wait -n "$zk_pid" "$lb_pid"
for p in "$zk_pid" "$lb_pid"; do
  alive "$p" || echo "run-zk: $( [ "$p" = "$zk_pid" ] && echo ZooKeeper || echo zkresumelb ) (pid $p) exited; see the logs in $run" >&2
done
exit 1
