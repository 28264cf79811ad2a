#!/usr/bin/env bash
# Several `liverclick serve` replicas behind nginx on this machine, sharing one PostgreSQL feedback store.
#
#   deploy/replicas.sh N POSTGRES_URL AUTH_FILE [more `liverclick serve` options, e.g. --model model.onnx]
#
# Replica i listens on 127.0.0.1:$((FIRST_PORT + i - 1)) (FIRST_PORT, default 7861); nginx on $PORT (default
# 8080; LISTEN sets its whole address, e.g. 0.0.0.0:8080); logs, pid files and nginx's files go to $RUN_DIR
# (default deploy/run). Ctrl-C (or SIGTERM) stops them all. See docs/deploy.md.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,9p' "$0"
  exit 2
fi
n=$1 db=$2 auth=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
first=${FIRST_PORT:-7861}
listen=${LISTEN:-${PORT:-8080}}
run=${RUN_DIR:-$here/run}
mkdir -p "$run/logs" "$run/temp"

# nginx.conf with this run's replicas and address.
servers=""
for i in $(seq 1 "$n"); do
  servers+="        server 127.0.0.1:$((first + i - 1)) max_fails=1 fail_timeout=10s;"$'\n'
done
awk -v servers="$servers" -v listen="$listen" '
  /# replicas: begin/ { print; printf "%s", servers; skip = 1; next }
  /# replicas: end/ { skip = 0 }
  /^ *listen / { sub(/listen [^;]*;/, "listen " listen ";") }
  !skip' "$here/nginx.conf" > "$run/nginx.conf"

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
for i in $(seq 1 "$n"); do
  # Under $run/uploads each replica makes a folder of its own (webapp/tempdir.py) and removes it when it stops
  # (SIGTERM included); a replica starting later removes those that killed replicas left.
  GRADIO_TEMP_DIR="$run/uploads" liverclick serve --host 127.0.0.1 --port $((first + i - 1)) \
    --feedback-db "$db" --auth-file "$auth" --audit-log "$run/logs/audit-$i.log" "$@" \
    > "$run/logs/replica-$i.log" 2>&1 &
  pids+=($!)
  echo $! > "$run/replica-$i.pid"
done
nginx -p "$run" -c "$run/nginx.conf" -g 'daemon off;' &
pids+=($!)
echo "liverclick: $n replicas behind http://$listen/ (logs in $run/logs)"
wait "${pids[-1]}"  # as long as nginx runs: a replica that stops is skipped by nginx, not fatal
