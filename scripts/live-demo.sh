#!/usr/bin/env bash
# Live capture on a veth pair, end to end (root): builds statetap, makes two network namespaces joined by a veth
# pair, captures on one end with AF_XDP while the other end sends a generated capture of mobile-edge traffic
# (statetap send, the fastest engine the kernel allows: live frames, else AF_XDP TX, else AF_PACKET; it says which)
# and pings across, then stops the capture with SIGINT and checks that
# every frame the XDP program steered was decoded exactly once, the kernel dropped nothing, ping worked, and no XDP
# program is left. Everything it made is removed on exit, whatever happens.
#   sudo scripts/live-demo.sh [PACKETS]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "error: live capture needs root (network namespaces, XDP, AF_XDP); try: sudo $0" >&2; exit 1; }
PACKETS="${1:-20000}"
scripts/install-deps.sh --live
swift build -c release --product statetap >/dev/null
ST="$(swift build -c release --show-bin-path)/statetap"

A="statetap-demo-$$-a"; B="statetap-demo-$$-b"; WORK=$(mktemp -d)
source scripts/veth-pair.sh
cleanup() {
  [[ -n "${CAPTURE:-}" ]] && kill "$CAPTURE" 2>/dev/null || true
  veth_pair_delete "$A" "$B"
  rm -rf "$WORK"
}
trap cleanup EXIT
veth_pair "$A" "$B" va vb
ip -n "$A" addr add 10.66.0.1/24 dev va; ip -n "$B" addr add 10.66.0.2/24 dev vb

"$ST" generate "$WORK/traffic.pcap" --packets "$PACKETS" 2>&1
ip netns exec "$B" "$ST" capture -i vb --xdp-mode native --stats-interval 1 --json --journal "$WORK/journal" \
  >"$WORK/summary.json" 2>"$WORK/capture.log" &
CAPTURE=$!
for _ in $(seq 200); do grep -q "capturing on" "$WORK/capture.log" && break; sleep 0.05; done
grep -q "capturing on" "$WORK/capture.log" || { cat "$WORK/capture.log" >&2; exit 1; }
grep -q "XDP native mode" "$WORK/capture.log" || { echo "FAILED: the program is not reported in native mode" >&2; cat "$WORK/capture.log" >&2; exit 1; }
echo "== ping across the pair while capturing (ARP and ICMP go to the kernel)"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.66.0.2 | tail -2
echo "== sending $PACKETS generated frames"
ip netns exec "$A" "$ST" send -i va "$WORK/traffic.pcap"
sleep 1.5
kill -INT "$CAPTURE"; wait "$CAPTURE"; CAPTURE=""
cat "$WORK/capture.log" >&2
echo "== summary"
python3 - "$WORK/summary.json" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
live, q = s["live"], s["live"]["queues"]["0"]
p = live["program"]
print(f"captured {s['packets']} frames ({s['bytes']} bytes), {s['flows']['total']} flows, {s['devices']} devices")
print(f"XDP program: steered {p['steered']}, passed to the kernel {p['passed']}, malformed {p['malformed']}")
print(f"layers: " + ", ".join(f"{k} {v}" for k, v in s["layers"].items() if v))
problems = []
if s["packets"] != p["steered"]: problems.append(f"decoded {s['packets']} != steered {p['steered']}")
for k in ("kernel_rx_dropped", "kernel_rx_ring_full", "ring_full_drops"):
    if q[k]: problems.append(f"{k} = {q[k]}")
if s["pipeline"]["frames_not_returned"]: problems.append("frames not returned")
j = s["journal"]
print(f"journal: {j['records_written']} records written, {j['records_acknowledged']} acknowledged, "
      f"{j['written_bytes']} bytes (LZ4 ratio {j['compression_ratio']}), {j['state_store']['devices']} devices in the state store")
events = s["events"]["web_link"] + s["events"]["server_name"]
if j["records_written"] != events or j["records_acknowledged"] != events:
    problems.append(f"journal wrote {j['records_written']} / acknowledged {j['records_acknowledged']} of {events} events")
if events == 0: problems.append("no events extracted")
if problems: sys.exit("FAILED: " + "; ".join(problems))
print("OK: every steered frame decoded exactly once, nothing dropped, every event journaled")
PY
"$ST" journal verify "$WORK/journal" | grep -E "^(records|damages)"
if ip -n "$B" -d link show vb | grep -q prog/xdp; then echo "FAILED: an XDP program is left on vb" >&2; exit 1; fi
echo "OK: no XDP program left on the interface"
