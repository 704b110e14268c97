#!/usr/bin/env bash
# Live capture benchmark (root): the highest offered rate each receiver takes with zero loss, on one veth pair,
# one generator and one XDP program, in one run:
#   reference  Benchmarks/reference/xsk_rx.c: a minimal C AF_XDP receiver (counts and recycles, decodes nothing)
#   inline     statetap capture --pipeline inline (decode + flow tracking on the capture thread)
#   threads    statetap capture --pipeline threads (capture thread -> ring -> decode worker)
# The generator (`statetap send --rate`, its fastest engine the kernel allows: live frames paced by its XDP program,
# else AF_XDP TX, else AF_PACKET, paced in user space; the run prints which) runs on CPU 0; every receiver is pinned
# to CPU 1. Without live frames the generator's ceiling (~0.3 Mpps here, Benchmarks/scripts/generator-engines.sh)
# is below every receiver's: the zero-loss rates are then lower bounds, and the script says so. The receiving veth's NAPI (the XDP program, the copy into the UMEM) runs in softirq
# on the sender's CPU, as the kernel schedules it: on this 2-core machine that core is the limit (~1-1.2 Mpps).
# --napi receiver moves it (threaded NAPI, kthread pinned) to the receiver's core, as on a NIC whose queue
# interrupt is on the capture core; there, on 2 cores, scheduling latency makes every receiver lose a few frames
# at any rate (the veth ring holds only 256), so it shows throughput under contention rather than a zero-loss rate. For each rate, each receiver gets the same
# frames (rates ascending, receivers alternating, --trials times each); loss = frames sent - frames the receiver
# got. A receiver's zero-loss rate is the highest rate below which none of its trials lost a frame. Offered rate =
# the generator's paced rate (its XDP program spaces frames exactly; between frames of the file it pauses ~20 ms for
# the kernel's per-call setup, so the average is a little lower: the table shows both).
# Where frames are lost tells who was too slow: veth xdp_xmit_errors (the receiving veth's NAPI, softirq work that
# both receivers share) or the socket's rx ring (the receiver's user space).
# CPU ns/packet: the receiver's CPU time during a trial minus its CPU time in an idle trial of the same length,
# divided by the packets it got, at the highest rate every receiver took without loss.
#
#   sudo bash Benchmarks/scripts/live-capture.sh [--rates "0.25 0.5 1 1.5 2"] [--seconds 2] [--trials 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=""
SECONDS_PER_TRIAL=2
TRIALS=2
NAPI=sender
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rates) RATES="$2"; shift 2 ;;
    --seconds) SECONDS_PER_TRIAL="$2"; shift 2 ;;
    --trials) TRIALS="$2"; shift 2 ;;
    --napi) NAPI="$2"; shift 2 ;;
    *) echo "usage: $0 [--rates \"Mpps ...\"] [--seconds S]" >&2; exit 64 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "error: needs root (network namespaces, XDP, AF_XDP)" >&2; exit 1; }

swift build -c release --product statetap >/dev/null
BIN=$(swift build -c release --show-bin-path)
ST="$BIN/statetap"
OBJ="$BIN/statetap_XDPPrograms.resources/steer.bpf.o"
WORK=$(mktemp -d)
REF="$WORK/xsk_rx"
cc -O2 -Wall -o "$REF" Benchmarks/reference/xsk_rx.c $(pkg-config --cflags --libs libxdp libbpf)

NS_A="stbench-$$-a"; NS_B="stbench-$$-b"
source scripts/veth-pair.sh
cleanup() {
  pkill -P $$ 2>/dev/null || true
  veth_pair_delete "$NS_A" "$NS_B"
  rm -rf "$WORK"
}
trap cleanup EXIT
veth_pair "$NS_A" "$NS_B" sba0 sbb0

# Frames: one generated HTTP/TLS/QUIC/GTP-U session mix; the ones statetap steers (all of them, checked below).
"$ST" generate "$WORK/frames.pcap" --packets 1 --seed 11 2>/dev/null
# The engine `send --engine auto` picks (the fastest the kernel allows), used for every trial.
ENGINE=$(ip netns exec "$NS_A" "$ST" send -i sba0 "$WORK/frames.pcap" --count 1 --json 2>"$WORK/engine.err" \
  | python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['engine'])") \
  || { cat "$WORK/engine.err" >&2; exit 1; }
echo "generator engine: $ENGINE ($(grep -o "not using the .*" "$WORK/engine.err" | head -1 || true))"
# Rates up to what the engine can offer (a rate above it only makes trials longer).
if [[ -z "$RATES" ]]; then
  if [[ "$ENGINE" == "live-frames" ]]; then RATES="0.2 0.4 0.6 0.8 1.0 1.2 1.4 1.6 1.8 2.0 2.4"; else RATES="0.05 0.1 0.15 0.2 0.25 0.3"; fi
fi
DISTINCT=$(python3 -c "
import struct,sys
d=open('$WORK/frames.pcap','rb').read(); o=24; n=0
while o < len(d): l=struct.unpack('<I',d[o+8:o+12])[0]; o+=16+l; n+=1
print(n)")

start_receiver() {  # $1 = reference|inline|threads; output in $WORK/$1.json
  case "$1" in
    reference) ip netns exec "$NS_B" taskset -c 1 "$REF" sbb0 "$OBJ" >"$WORK/$1.json" 2>"$WORK/$1.err" & ;;
    inline|threads)
      ip netns exec "$NS_B" taskset -c 1 "$ST" capture -i sbb0 --xdp-mode native --pipeline "$1" --stats-interval 0 \
        --json >"$WORK/$1.json" 2>"$WORK/$1.err" & ;;
  esac
  RPID=$!
  for _ in $(seq 100); do grep -q "capturing on" "$WORK/$1.err" 2>/dev/null && { place_napi; return 0; }; sleep 0.05; done
  echo "error: $1 did not start:" >&2; cat "$WORK/$1.err" >&2; exit 1
}

place_napi() {  # the veth's NAPI exists while an XDP program is attached
  [[ "$NAPI" == "receiver" ]] || return 0
  ip netns exec "$NS_B" sh -c 'echo 1 > /sys/class/net/sbb0/threaded'
  for p in $(pgrep '^napi/sbb0'); do taskset -pc 1 "$p" >/dev/null; done
}

veth_errors() { ip netns exec "$NS_A" ethtool -S sba0 | awk '/xdp_xmit_errors/ {s += $2} END {print s + 0}'; }

trial() {  # $1 receiver, $2 rate in Mpps (0: idle) -> prints "sent received avg_rate cpu_s veth_drops ring_full"
  start_receiver "$1"
  local pps total repeat out before
  before=$(veth_errors)
  if [[ "$2" == "0" ]]; then
    sleep "$SECONDS_PER_TRIAL"
    out='{"frames_sent":0,"frames_per_second":0}'
  else
    pps=$(python3 -c "print(int($2*1e6))")
    total=$(python3 -c "print(int($2*1e6*$SECONDS_PER_TRIAL))")
    repeat=$(( total / DISTINCT + 1 ))
    out=$(ip netns exec "$NS_A" taskset -c 0 "$ST" send -i sba0 "$WORK/frames.pcap" --engine "$ENGINE" --repeat "$repeat" --rate "$pps" --json 2>>"$WORK/send.err")
  fi
  sleep 0.5
  kill -INT "$RPID"; wait "$RPID" || true
  python3 - "$WORK/$1.json" "$out" "$(( $(veth_errors) - before ))" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); s = json.loads(sys.argv[2])
q = r.get("live", {}).get("queues", {}).get("0", r)
print(s["frames_sent"], r["packets"], s["frames_per_second"], r["cpu_s"], sys.argv[3], q.get("kernel_rx_ring_full", 0),
      q.get("ring_full_drops", 0))
PY
}

tool() { command -v ethtool >/dev/null || apt-get install -y -qq ethtool >/dev/null; }
tool
declare -A IDLE ZERO LOST CPU_AT
ANYLOSS=
for rx in reference inline threads; do
  read -r _ _ _ cpu _ _ _ < <(trial "$rx" 0)
  IDLE[$rx]=$cpu
done
echo "frames: $DISTINCT distinct, ${SECONDS_PER_TRIAL} s per trial, $TRIALS trials per rate; idle CPU s: reference ${IDLE[reference]}, inline ${IDLE[inline]}, threads ${IDLE[threads]}"
echo "NAPI of the receiving veth: on the $NAPI's CPU"
printf "%-10s %6s %10s %10s %10s %8s %10s %9s %9s %8s\n" receiver Mpps avg_rate sent received loss veth_drops rx_full pipe_full ns/pkt
for rate in $RATES; do
  for t in $(seq "$TRIALS"); do
    for rx in reference inline threads; do
      read -r sent got offered cpu vdrop rfull pfull < <(trial "$rx" "$rate")
      loss=$((sent - got))
      ns=$(python3 -c "print(int(max($cpu-${IDLE[$rx]},0)*1e9/max($got,1)))")
      printf "%-10s %6s %10s %10s %10s %8s %10s %9s %9s %8s\n" "$rx" "$rate" "$offered" "$sent" "$got" "$loss" "$vdrop" "$rfull" "$pfull" "$ns"
      if [[ $loss -ne 0 ]]; then LOST[$rx]=1; fi
      if [[ $loss -ne 0 ]]; then ANYLOSS=1; fi
      if [[ $loss -eq 0 && -z "${LOST[$rx]:-}" ]]; then
        # The zero-loss rate is what was really offered (the average), the highest seen before any loss.
        if (( offered > ${ZERO[$rx]:-0} )); then ZERO[$rx]=$offered; fi
        CPU_AT[$rx@$rate]=$ns
      fi
    done
  done
done
echo
ref=${ZERO[reference]:-0}
for rx in reference inline threads; do
  z=${ZERO[$rx]:-0}
  ratio=$(python3 -c "print(f'{($z/$ref if $ref else 0):.3f}')")
  echo "zero-loss rate: $rx ${z} frames/s offered on average (ratio to reference $ratio)"
done
if [[ -z "${ANYLOSS:-}" ]]; then
  echo "note: no receiver lost a frame at any rate: the generator was the limit, the zero-loss rates are lower bounds"
fi
# CPU per packet at the highest rate every receiver took without loss.
for rate in $RATES; do
  if [[ -n "${CPU_AT[reference@$rate]:-}" && -n "${CPU_AT[inline@$rate]:-}" && -n "${CPU_AT[threads@$rate]:-}" ]]; then common=$rate; fi
done
if [[ -n "${common:-}" ]]; then
  echo "CPU ns/packet at $common Mpps (whole receiver process, idle polling included): reference ${CPU_AT[reference@$common]}, inline ${CPU_AT[inline@$common]}, threads ${CPU_AT[threads@$common]}"
fi
