#!/usr/bin/env bash
# statetap replay (with application state extraction and its events written) vs nDPI's ndpiReader on the same
# synthetic captures, in the same run.
#
# Builds statetap in release, then for each mix in MIXES (mixed: every encapsulation, short sessions; http:
# keep-alive HTTP/1.1 connections with browser and CDN headers) generates a capture with
# `statetap generate --mix MIX --truth` and times, alternately, RUNS times each:
#   statetap replay --json --events jsonl --events-out EVENTS FILE
#                                 (packets_per_second from its JSON, and wall time of the whole command; the
#                                  web_link/server_name events are written, so producing them is in the cost)
#   ndpiReader -i FILE -q         (wall time of the whole command; packets/s = packets in the file / wall time)
#   Benchmarks/reference/pcap_read_ceiling.c walk|copy FILE
#                                 (wall time of the whole command: the ceiling of the file source — packets read off
#                                  the file with nothing done to them, and with the one copy into a frame slot that
#                                  statetap's pipeline makes — so a target "N times nDPI" can be checked against what
#                                  reading the file allows on this machine)
# and prints every run, the medians, the ratio statetap/nDPI, the read ceilings/nDPI, and the web_link events
# statetap found next to the HTTP requests the generator wrote (one event each). Only ratios mean anything: the machine is shared and noisy,
# so absolute rates from different runs must not be compared.
#
# Environment: PACKETS (500000), RUNS (3), MIXES ("mixed http"), CAPTURE_DIR (/tmp; the captures,
#              statetap-compare-MIX-PACKETS.pcap, are written again each time: same seed, same bytes), EVENTS_OUT
#              (a temp file, removed at the end; /dev/null still formats every event but keeps none),
#              NDPI_FLAGS (extra ndpiReader flags, e.g. "-t" to make it dissect GTP-U tunnels as statetap does),
#              SCRATCH (SwiftPM scratch path for the release build; default: the package's .build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
packets="${PACKETS:-500000}"
runs="${RUNS:-3}"
mixes="${MIXES:-mixed http}"
capture_dir="${CAPTURE_DIR:-/tmp}"
ndpi_flags="${NDPI_FLAGS:-}"
scratch=()
if [[ -n "${SCRATCH:-}" ]]; then scratch=(--scratch-path "$SCRATCH"); fi

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
swift build -c release --package-path "$root" "${scratch[@]}" --product statetap >&2
bin="$(swift build -c release --package-path "$root" "${scratch[@]}" --show-bin-path)/statetap"

ceiling="$(mktemp /tmp/pcap-read-ceiling.XXXXXX)"
clang -O2 -Wall -Wextra -Werror -o "$ceiling" "$root/Benchmarks/reference/pcap_read_ceiling.c" >&2

log="$(mktemp /tmp/compare-ndpi.XXXXXX.log)"  # statetap's progress lines and nDPI's output
events_out="${EVENTS_OUT:-$(mktemp /tmp/compare-ndpi-events.XXXXXX.jsonl)}"
cleanup() { rm -f "$ceiling"; if [[ -z "${EVENTS_OUT:-}" ]]; then rm -f "$events_out"; fi; }
trap cleanup EXIT

now_ns() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

summary_lines=()
for mix in $mixes; do
    capture="$capture_dir/statetap-compare-$mix-$packets.pcap"
    echo "== generating $capture ($packets packets, --mix $mix)" >&2
    truth="$("$bin" generate "$capture" --packets "$packets" --mix "$mix" --truth)"
    file_packets="$(jq -r .packets <<<"$truth")"
    requests="$(jq -r .http_requests <<<"$truth")"

    st_pps=()    # statetap's own packets_per_second (pipeline wall time)
    st_wall=()   # statetap: packets / wall time of the whole command (process start, file open, summary included)
    nd_wall=()   # ndpiReader: packets / wall time of the whole command
    walk_wall=() # read ceiling: packets / wall time, records walked, nothing done
    copy_wall=() # read ceiling: packets / wall time, each packet copied into a frame slot
    web_links=""
    server_names=""

    for ((i = 1; i <= runs; i++)); do
        t0=$(now_ns)
        json="$("$bin" replay --json --progress-interval 0 --events jsonl --events-out "$events_out" "$capture" \
            2>>"$log")"
        t1=$(now_ns)
        replayed="$(jq -r .packets <<<"$json")"
        if [[ "$replayed" != "$file_packets" ]]; then
            echo "statetap replayed $replayed packets, the file has $file_packets" >&2
            exit 1
        fi
        web_links="$(jq -r .events.web_link <<<"$json")"
        server_names="$(jq -r .events.server_name <<<"$json")"
        written="$(grep -c '"kind":"web_link"' "$events_out" || true)"
        if [[ "$events_out" != /dev/null && "$written" != "$web_links" ]]; then
            echo "statetap counted $web_links web_link events but wrote $written" >&2
            exit 1
        fi
        st_pps+=("$(jq -r .packets_per_second <<<"$json")")
        st_wall+=("$(( file_packets * 1000000000 / (t1 - t0) ))")

        t0=$(now_ns)
        # shellcheck disable=SC2086 # NDPI_FLAGS is a list of flags
        ndpiReader -i "$capture" -q $ndpi_flags >>"$log" 2>&1
        t1=$(now_ns)
        nd_wall+=("$(( file_packets * 1000000000 / (t1 - t0) ))")

        for mode in walk copy; do
            t0=$(now_ns)
            read_packets="$("$ceiling" "$mode" "$capture" | awk '{ print $2 }')"
            t1=$(now_ns)
            if [[ "$read_packets" != "$file_packets" ]]; then
                echo "read ceiling ($mode) read $read_packets packets, the file has $file_packets" >&2
                exit 1
            fi
            if [[ $mode == walk ]]; then walk_wall+=("$(( file_packets * 1000000000 / (t1 - t0) ))")
            else copy_wall+=("$(( file_packets * 1000000000 / (t1 - t0) ))"); fi
        done

        printf '%s run %d: statetap %d pkt/s (pipeline), %d pkt/s (command wall); ndpiReader %d pkt/s (command wall); read ceiling %d (walk) %d (copy) pkt/s\n' \
            "$mix" "$i" "${st_pps[-1]}" "${st_wall[-1]}" "${nd_wall[-1]}" "${walk_wall[-1]}" "${copy_wall[-1]}"
    done

    m_st_pps=$(median "${st_pps[@]}")
    m_st_wall=$(median "${st_wall[@]}")
    m_nd_wall=$(median "${nd_wall[@]}")
    m_walk=$(median "${walk_wall[@]}")
    m_copy=$(median "${copy_wall[@]}")
    match="MATCHES"
    if [[ "$web_links" != "$requests" ]]; then match="DIFFERS"; fi

    echo
    echo "capture: $capture ($file_packets packets, --mix $mix), $runs runs each, alternating; ndpiReader flags: -q $ndpi_flags"
    printf 'statetap replay   median %10d packets/s (pipeline, JSON packets_per_second)\n' "$m_st_pps"
    printf 'statetap replay   median %10d packets/s (packets / command wall time)\n' "$m_st_wall"
    printf 'ndpiReader        median %10d packets/s (packets / command wall time)\n' "$m_nd_wall"
    ratio="$(awk -v a="$m_st_wall" -v b="$m_nd_wall" -v c="$m_st_pps" 'BEGIN {
        printf "%.2f (command wall times), %.2f (statetap pipeline rate vs nDPI command rate)", a / b, c / b }')"
    printf 'read ceiling      median %10d packets/s (walk), %d (copy)\n' "$m_walk" "$m_copy"
    echo "ratio statetap/nDPI: $ratio"
    ceilings="$(awk -v w="$m_walk" -v c="$m_copy" -v b="$m_nd_wall" 'BEGIN { printf "%.2f (walk), %.2f (copy)", w / b, c / b }')"
    echo "ratio read ceiling/nDPI: $ceilings"
    echo "events: web_link $web_links (generated HTTP requests: $requests, $match), server_name $server_names"
    echo
    summary_lines+=("$(printf '%-6s statetap/nDPI %s; read ceiling/nDPI %s; web_link %s of %s requests (%s)' \
        "$mix" "$ratio" "$ceilings" "$web_links" "$requests" "$match")")
done

echo "== summary ($packets packets per capture, $runs runs each, medians)"
printf '%s\n' "${summary_lines[@]}"
