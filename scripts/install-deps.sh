#!/usr/bin/env bash
# Installs the system packages statetap builds, tests and runs with (Debian 12). Idempotent: installs only what
# is missing, so it is cheap to call from every entry point.
set -euo pipefail

# Build: the C libraries behind CModules/ (libxdp, libbpf, LZ4, libpcap; nghttp2 for HPACK, nghttp3 for QPACK)
# and clang for the XDP programs in bpf/.
PACKAGES=(libxdp-dev libbpf-dev liblz4-dev libpcap-dev libnghttp2-dev libnghttp3-dev clang pkg-config)
# Live capture tests and the live demo: network namespaces and veth (iproute2), ping across the pair, setpriv
# (dropping capabilities), ethtool (veth drop counters and offloads), nginx and curl (the real-traffic test through
# a TAP, the migration lab's edge caches and device), jq (the lab reads the API's JSON), openssl (test certificates),
# trafficserver (the HTTPS lab's TLS-terminating edge caches, which write their TLS key log).
LIVE=(iproute2 iputils-ping util-linux ethtool nginx-light curl jq openssl trafficserver)
# Tests: tshark is the reference decoder the corpus comparison checks against.
if [[ "${1:-}" == "--test" ]]; then PACKAGES+=(tshark "${LIVE[@]}"); fi
if [[ "${1:-}" == "--live" ]]; then PACKAGES+=("${LIVE[@]}"); fi
# Benchmarks: nDPI's ndpiReader is the side-by-side reference; the live benchmark builds a C AF_XDP receiver (gcc);
# journal-ceiling.sh builds a C LZ4 reference (gcc) and reads a segment with the lz4 tool.
if [[ "${1:-}" == "--bench" ]]; then PACKAGES+=(libndpi-bin gcc lz4 "${LIVE[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The real-traffic tests drive a real QUIC client: aioquic from PyPI.
if [[ "${1:-}" == "--test" ]] && ! python3 -c "import aioquic" 2>/dev/null; then
  echo "installing: aioquic (PyPI)" >&2
  python3 -m pip install -q aioquic
fi
if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: swift is not on PATH (Swift 6.1 or later is needed)" >&2; exit 1; }
