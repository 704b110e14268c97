#!/usr/bin/env bash
# statetap replay vs nDPI's ndpiReader on the same synthetic capture, in the same run.
#
# Builds statetap in release, generates a capture with `statetap generate`, then times, alternately, RUNS times each:
#   statetap replay --json FILE   (packets_per_second from its JSON, and wall time of the whole command)
#   ndpiReader -i FILE -q         (wall time of the whole command; packets/s = packets in the file / wall time)
# and prints every run, the medians and the ratio statetap/nDPI. Only the ratio means anything: the machine is
# shared and noisy, so absolute rates from different runs must not be compared.
#
# Environment: PACKETS (500000), RUNS (3), CAPTURE (/tmp/statetap-compare-$PACKETS.pcap),
#              NDPI_FLAGS (extra ndpiReader flags, e.g. "-t" to make it dissect GTP-U tunnels as statetap does).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
packets="${PACKETS:-500000}"
runs="${RUNS:-3}"
capture="${CAPTURE:-/tmp/statetap-compare-$packets.pcap}"
ndpi_flags="${NDPI_FLAGS:-}"

need() { command -v "$1" >/dev/null 2>&1; }

if ! need ndpiReader; then
    echo "ndpiReader not found: installing Debian's libndpi-bin" >&2
    apt-get update -qq >&2 && apt-get install -y -qq libndpi-bin >&2
fi
if ! need jq; then
    echo "jq not found: installing it" >&2
    apt-get install -y -qq jq >&2
fi

echo "== building statetap (release)" >&2
swift build -c release --package-path "$root" >&2
bin="$(swift build -c release --package-path "$root" --show-bin-path)/statetap"

echo "== generating $capture ($packets packets)" >&2
truth="$("$bin" generate "$capture" --packets "$packets" --truth)"
file_packets="$(jq -r .packets <<<"$truth")"

now_ns() { date +%s%N; }
log="$(mktemp /tmp/compare-ndpi.XXXXXX.log)"  # statetap's progress lines and nDPI's output

st_pps=()    # statetap's own packets_per_second (pipeline wall time)
st_wall=()   # statetap: packets / wall time of the whole command (process start, file open, summary included)
nd_wall=()   # ndpiReader: packets / wall time of the whole command

for ((i = 1; i <= runs; i++)); do
    t0=$(now_ns)
    json="$("$bin" replay --json "$capture" 2>>"$log")"
    t1=$(now_ns)
    replayed="$(jq -r .packets <<<"$json")"
    if [[ "$replayed" != "$file_packets" ]]; then
        echo "statetap replayed $replayed packets, the file has $file_packets" >&2
        exit 1
    fi
    st_pps+=("$(jq -r .packets_per_second <<<"$json")")
    st_wall+=("$(( file_packets * 1000000000 / (t1 - t0) ))")

    t0=$(now_ns)
    # shellcheck disable=SC2086 # NDPI_FLAGS is a list of flags
    ndpiReader -i "$capture" -q $ndpi_flags >>"$log" 2>&1
    t1=$(now_ns)
    nd_wall+=("$(( file_packets * 1000000000 / (t1 - t0) ))")

    printf 'run %d: statetap %d pkt/s (pipeline), %d pkt/s (command wall); ndpiReader %d pkt/s (command wall)\n' \
        "$i" "${st_pps[-1]}" "${st_wall[-1]}" "${nd_wall[-1]}"
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

m_st_pps=$(median "${st_pps[@]}")
m_st_wall=$(median "${st_wall[@]}")
m_nd_wall=$(median "${nd_wall[@]}")

echo
echo "capture: $capture ($file_packets packets), $runs runs each, alternating; ndpiReader flags: -q $ndpi_flags"
printf 'statetap replay   median %10d packets/s (pipeline, JSON packets_per_second)\n' "$m_st_pps"
printf 'statetap replay   median %10d packets/s (packets / command wall time)\n' "$m_st_wall"
printf 'ndpiReader        median %10d packets/s (packets / command wall time)\n' "$m_nd_wall"
awk -v a="$m_st_wall" -v b="$m_nd_wall" -v c="$m_st_pps" 'BEGIN {
    printf "ratio statetap/nDPI: %.2f (command wall times), %.2f (statetap pipeline rate vs nDPI command rate)\n", a / b, c / b }'
