#!/usr/bin/env bash
# A rate-limited link for `bitrelay bench cluster`: one network namespace joined to the root namespace by a
# veth pair, with a token-bucket filter (tc tbf) on both ends so both directions are shaped.
#
#   shaped-link.sh setup RATE [BURST] [LIMIT]   e.g. setup 400kbit 4kb 256kb   (tc units: kbit, mbit, kb, mb)
#   shaped-link.sh teardown
#   shaped-link.sh stats                         bytes/packets/drops each shaper has seen
#
# Layout (a /29, so the root side can hold two addresses):
#
#   root namespace                                      namespace $BITRELAY_SHAPED_NS
#   $ROOT_DEV: 10.213.7.1/29 (coordinator, workers before) ── veth ── $NS_DEV: 10.213.7.2/29 (the shaped worker)
#              10.213.7.3/29 (workers after)
#
# Why two root addresses: the coordinator orders stages by host name, so the namespaced worker is a middle
# stage only if the workers before it advertise a host that sorts before its own and those after one that
# sorts after it (10.213.7.1 < 10.213.7.2 < 10.213.7.3).
#
# BURST is the bucket (bytes sent back to back at line rate); LIMIT the queue in bytes before tbf drops.
# The queue must hold an Aeron receiver window (128 KiB) or a prefill burst is dropped and re-sent by NAK.
#
# Every name and address can be overridden through the environment (the bench passes its own). Setup
# first removes any leftover of an earlier run, so both commands are idempotent.
set -euo pipefail

NS="${BITRELAY_SHAPED_NS:-bitrelay-shaped}"
ROOT_DEV="${BITRELAY_SHAPED_ROOT_DEV:-brl-root}"
NS_DEV="${BITRELAY_SHAPED_NS_DEV:-brl-ns}"
ROOT_ADDRS="${BITRELAY_SHAPED_ROOT_ADDRS:-10.213.7.1 10.213.7.3}"
NS_ADDR="${BITRELAY_SHAPED_NS_ADDR:-10.213.7.2}"
PREFIX="${BITRELAY_SHAPED_PREFIX:-29}"

die() {
  echo "shaped-link.sh: $*" >&2
  exit 1
}

preflight() {
  [ "$(id -u)" = 0 ] || die "must run as root: network namespaces, veth pairs and tc need CAP_NET_ADMIN (try sudo)"
  command -v ip >/dev/null 2>&1 || die "'ip' not found on PATH (install iproute2)"
  command -v tc >/dev/null 2>&1 || die "'tc' not found on PATH (install iproute2)"
}

teardown() {
  if ip netns list | awk '{print $1}' | grep -qx "$NS"; then
    # Only our own workers run in this namespace: a crashed bench can leave one behind.
    pids="$(ip netns pids "$NS" || true)"
    if [ -n "$pids" ]; then
      echo "shaped-link.sh: stopping leftover processes in $NS: $pids" >&2
      # shellcheck disable=SC2086
      kill $pids 2>/dev/null || true
      sleep 2
      # shellcheck disable=SC2086
      kill -9 $(ip netns pids "$NS" 2>/dev/null) 2>/dev/null || true
    fi
    ip netns delete "$NS" # takes its end of the veth pair, and so the pair, with it
  fi
  # Deleting the namespace removes the pair asynchronously: delete the root end too, and wait until it is gone.
  ip link delete "$ROOT_DEV" >/dev/null 2>&1 || true
  for _ in $(seq 50); do
    ip link show "$ROOT_DEV" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  die "$ROOT_DEV is still there 5 s after teardown"
}

# The namespace reaches a root address when a TCP connect to a closed port is refused (no ping needed).
reachable() {
  local out
  out="$(ip netns exec "$NS" timeout 3 bash -c "exec 3<>/dev/tcp/$1/9" 2>&1)" && return 0
  [[ "$out" == *refused* ]]
}

setup() {
  local rate="${1:-}" burst="${2:-4kb}" limit="${3:-256kb}"
  [ -n "$rate" ] || die "usage: shaped-link.sh setup RATE [BURST] [LIMIT], e.g. setup 400kbit 4kb 256kb"
  teardown
  ip netns add "$NS" || die "could not create network namespace $NS"
  ip link add "$ROOT_DEV" type veth peer name "$NS_DEV" netns "$NS" || { teardown; die "could not create veth pair $ROOT_DEV/$NS_DEV"; }
  for addr in $ROOT_ADDRS; do
    ip addr add "$addr/$PREFIX" dev "$ROOT_DEV"
  done
  ip link set "$ROOT_DEV" up
  ip -n "$NS" addr add "$NS_ADDR/$PREFIX" dev "$NS_DEV"
  ip -n "$NS" link set "$NS_DEV" up
  ip -n "$NS" link set lo up
  # tbf shapes what a device sends: the root end shapes root → namespace, the namespace end the way back.
  if ! tc qdisc replace dev "$ROOT_DEV" root tbf rate "$rate" burst "$burst" limit "$limit" \
      || ! tc -n "$NS" qdisc replace dev "$NS_DEV" root tbf rate "$rate" burst "$burst" limit "$limit"; then
    teardown
    die "tc could not install tbf (rate $rate, burst $burst, limit $limit): see tc's message above"
  fi
  local first_root="${ROOT_ADDRS%% *}"
  if ! reachable "$first_root"; then
    teardown
    die "the namespace cannot reach $first_root over the veth pair"
  fi
  echo "shaped-link.sh: $NS ($NS_ADDR) ↔ root ($ROOT_ADDRS) over $ROOT_DEV/$NS_DEV, tbf rate $rate burst $burst limit $limit each way"
}

stats() {
  echo "$ROOT_DEV (root → $NS):"
  tc -s qdisc show dev "$ROOT_DEV"
  echo "$NS_DEV ($NS → root):"
  tc -n "$NS" -s qdisc show dev "$NS_DEV"
}

preflight
case "${1:-}" in
  setup) shift; setup "$@" ;;
  teardown) teardown ;;
  stats) stats ;;
  *) die "usage: shaped-link.sh setup RATE [BURST] [LIMIT] | teardown | stats" ;;
esac
