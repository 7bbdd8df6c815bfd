#!/usr/bin/env bash
# Starts bitrelay on one host of a multi-node cluster: the host's shared Aeron media driver, one worker
# JVM per GPU, and (with --coordinator) the coordinator + gateway node. Run it on every host, seed host first.
#
#   deploy/multinode/start-node.sh --host node-a --seed node-a:25520 --gpus 8 --config configs/layouts/opt-175b-2x8.conf --coordinator
#   deploy/multinode/start-node.sh --host node-b --seed node-a:25520 --gpus 8 --config configs/layouts/opt-175b-2x8.conf
#
# Nodes talk over mutual TLS (docs/security.md): --tls-dir DIR holds truststore.p12 and HOST.p12 from
# `bitrelay certs --out DIR --nodes node-a,node-b` (default $BITRELAY_TLS_DIR or ./bitrelay-tls), and
# $BITRELAY_TLS_PASSWORD their password. --plain-tcp switches TLS off (a network nobody else reaches).
# Logs and pid files go to $BITRELAY_LOGS (default ./bitrelay-logs); stop everything with --stop.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bitrelay="${BITRELAY_BIN:-$here/../bin/bitrelay}"
host=""; seed=""; gpus=1; config=""; coordinator=0; stop=0; model=""; device_kind="cuda"; wait_all=0
aeron_dir="${BITRELAY_AERON_DIR:-/dev/shm/bitrelay-aeron}"
tls_dir="${BITRELAY_TLS_DIR:-$PWD/bitrelay-tls}"; plain_tcp=0
logs="${BITRELAY_LOGS:-$PWD/bitrelay-logs}"
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    --cpu-workers) gpus="$2"; device_kind="cpu"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --coordinator) coordinator=1; shift ;;
    --stop) stop=1; shift ;;
    --wait) wait_all=1; shift ;;   # stay in the foreground until every process exits (containers)
    --tls-dir) tls_dir="$2"; shift 2 ;;
    --plain-tcp) plain_tcp=1; shift ;;
    *) echo "start-node.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
mkdir -p "$logs"
if [ "$stop" = 1 ]; then
  for pid in "$logs"/*.pid; do
    [ -f "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
  echo "stopped bitrelay processes listed in $logs"
  exit 0
fi
[ -n "$host" ] || { echo "start-node.sh: --host is required (the name other hosts reach this one by)" >&2; exit 2; }
[ -n "$seed" ] || { echo "start-node.sh: --seed host:port is required" >&2; exit 2; }
common=(--host "$host" --seed "$seed")
if [ "$plain_tcp" = 1 ]; then
  common+=(--set bitrelay.security.tls=off)
else
  [ -f "$tls_dir/$host.p12" ] && [ -f "$tls_dir/truststore.p12" ] || {
    echo "start-node.sh: mutual TLS needs $tls_dir/$host.p12 and $tls_dir/truststore.p12:" >&2
    echo "  BITRELAY_TLS_PASSWORD=... bitrelay certs --out $tls_dir --nodes $host[,other hosts]  (or --plain-tcp)" >&2
    exit 2; }
  [ -n "${BITRELAY_TLS_PASSWORD:-}" ] || { echo "start-node.sh: set BITRELAY_TLS_PASSWORD (the stores' password)" >&2; exit 2; }
  common+=(--set "bitrelay.security.key-store=$tls_dir/$host.p12" --set "bitrelay.security.trust-store=$tls_dir/truststore.p12")
fi
[ -n "$config" ] && common+=(--config "$config")
[ -n "$model" ] && common+=(--model "$model")

start() { # name, then the bitrelay arguments
  local name="$1"; shift
  nohup "$bitrelay" "$@" >"$logs/$name.log" 2>&1 &
  echo $! >"$logs/$name.pid"
  echo "started $name (pid $!, log $logs/$name.log)"
}

start driver driver --aeron-dir "$aeron_dir"
sleep 2
if [ "$coordinator" = 1 ]; then
  start coordinator node --roles coordinator,gateway --port 25520 "${common[@]}"
  sleep 5
fi
for ((i = 0; i < gpus; i++)); do
  device="cpu"; [ "$device_kind" = cuda ] && device="cuda:$i"
  start "worker-$i" node --roles worker --port $((25521 + i)) --worker-id "$host-gpu$i" --device "$device" "${common[@]}" \
    --set "bitrelay.worker.data-port=$((40450 + i))" --set "bitrelay.dataplane.aeron-dir=$aeron_dir" \
    --set "bitrelay.dataplane.driver=external" --set "bitrelay.worker.workers-per-host=$gpus"
done
if [ "$wait_all" = 1 ]; then
  trap 'kill $(jobs -p) 2>/dev/null' TERM INT
  wait
fi
