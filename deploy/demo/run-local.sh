#!/usr/bin/env bash
# One-command local deployment on loopback, no ZooKeeper: builds if needed, starts N
# zkworkers running deploy/demo/demo_app.py and a resumelb in front of them, prints the
# URL, and stops everything on Ctrl-C (or SIGTERM).
#   deploy/demo/run-local.sh [--workers N] [--port PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
workers=3
port=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "run-local: unknown option $1" >&2; exit 2 ;;
  esac
done

bash deploy/install-deps.sh
if [ ! -x build/zklb/resumelb ] || [ ! -x build/zkworker/zkworker ]; then
  cmake -S . -B build -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3
  cmake --build build -j "$(nproc)"
fi

run=$(mktemp -d /tmp/resumelb-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "logs kept in $run"
}
trap cleanup EXIT INT TERM

wait_port() {  # wait_port LOGFILE -> prints the port from the "listening on" line
  for _ in $(seq 1 200); do
    if p=$(grep -o 'listening on [^ ]*' "$1" 2>/dev/null | head -1 | sed 's/.*://'); then
      [ -n "$p" ] && { echo "$p"; return 0; }
    fi
    sleep 0.05
  done
  echo "timed out; see $1" >&2; return 1
}

addrs=()
for i in $(seq 1 "$workers"); do
  build/zkworker/zkworker --app=demo_app:application --pythonpath=deploy/demo \
    --address=127.0.0.1:0 --threads=2 --history=50 \
    --resume_file="$run/worker$i.resume.json" >"$run/worker$i.log" 2>&1 &
  pids+=($!)
  addrs+=("127.0.0.1:$(wait_port "$run/worker$i.log")")
done
build/zklb/resumelb -LINFO -a "127.0.0.1:$port" -s "$run/lb.sock" -l "$run/access.log" \
  "${addrs[@]}" >"$run/lb.log" 2>&1 &
pids+=($!)
wait_port "$run/lb.log" >/dev/null

cat <<MSG
resumelb is running: http://127.0.0.1:$port/
  workers: ${addrs[*]}
  try:     for s in a b c d e f; do curl -s -H "Host: \$s.example" http://127.0.0.1:$port/; done
  status:  build/status/get-lb-status $run/lb.sock
  résumés: build/zkworker/get-worker-resume ${addrs[*]}
  logs:    $run
Press Ctrl-C to stop.
MSG
wait "${pids[@]}"
