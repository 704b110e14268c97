#!/usr/bin/env bash
# Traffic generator engines (root): each engine of `statetap send` that the kernel allows sends the same frames
# unpaced out of one end of a veth pair (pinned to CPU 0) into a statetap AF_XDP capture on the other end (pinned
# to CPU 1, release build); prints per engine and trial the rate the engine sent at, the frames the socket got,
# and the loss (and where: the socket's rx ring, or the veth). An engine the kernel refuses is listed with the reason.
#   sudo bash Benchmarks/scripts/generator-engines.sh [--frames 1000000] [--trials 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
FRAMES=1000000
TRIALS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --frames) FRAMES="$2"; shift 2 ;;
    --trials) TRIALS="$2"; shift 2 ;;
    *) echo "usage: $0 [--frames N] [--trials N]" >&2; exit 64 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "error: needs root (network namespaces, XDP, AF_XDP)" >&2; exit 1; }
swift build -c release --product statetap >/dev/null
ST="$(swift build -c release --show-bin-path)/statetap"
WORK=$(mktemp -d); NS_A="stgen-$$-a"; NS_B="stgen-$$-b"
source scripts/veth-pair.sh
cleanup() {
  pkill -P $$ 2>/dev/null || true
  veth_pair_delete "$NS_A" "$NS_B"
  rm -rf "$WORK"
}
trap cleanup EXIT
veth_pair "$NS_A" "$NS_B" sga0 sgb0
# One generated session mix, every frame of which the steering program sends to the socket.
"$ST" generate "$WORK/frames.pcap" --packets 1 --seed 11 2>/dev/null

printf "%-12s %5s %12s %10s %10s %8s %8s\n" engine trial sent_pps sent received rx_full veth_drop
for engine in live-frames xsk packet; do
  for t in $(seq "$TRIALS"); do
    ip netns exec "$NS_B" taskset -c 1 "$ST" capture -i sgb0 --xdp-mode native --stats-interval 0 --json \
      >"$WORK/rx.json" 2>"$WORK/rx.err" &
    RPID=$!
    for _ in $(seq 100); do grep -q "capturing on" "$WORK/rx.err" && break; sleep 0.05; done
    drops_before=$(ip netns exec "$NS_A" ip -s -j link show sga0 | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['tx']['dropped'])")
    if ! out=$(ip netns exec "$NS_A" taskset -c 0 "$ST" send -i sga0 "$WORK/frames.pcap" --engine "$engine" \
                 --count "$FRAMES" --json 2>"$WORK/tx.err"); then
      kill -INT "$RPID"; wait "$RPID" || true
      echo "$engine: not available here: $(grep -m1 -o 'error.*' "$WORK/tx.err")"
      break
    fi
    sleep 0.5
    kill -INT "$RPID"; wait "$RPID" || true
    drops=$(( $(ip netns exec "$NS_A" ip -s -j link show sga0 | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['tx']['dropped'])") - drops_before ))
    python3 - "$WORK/rx.json" "$out" "$engine" "$t" "$drops" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); s = json.loads(sys.argv[2])
q = r["live"]["queues"]["0"]
print(f"{sys.argv[3]:<12} {sys.argv[4]:>5} {s['frames_per_second']:>12} {s['frames_sent']:>10} {q['rx_packets']:>10} "
      f"{q['kernel_rx_ring_full']:>8} {sys.argv[5]:>8}")
PY
  done
done
