#!/usr/bin/env bash
# The journal's append rate against the ceiling of its compression on this machine (issue 5's "≥ 1 M records/s
# with LZ4 on one core"): `statetap journal write-test` (events encoded, batched, compressed, written, indexed)
# alternated with Benchmarks/reference/lz4frame_ceiling.c, which compresses the same records, already encoded,
# into the same LZ4 frames (256 KB linked blocks, block and content checksums) and writes them to /dev/null.
# The ceiling is what any journal writing these frames can reach here; the gap to it is the cost of turning
# events into records. Rounds alternate so both see the same machine (it is shared: compare ratios, not rates).
# Each rate is given twice: per wall-clock second, and per CPU-second of the thread doing the work (the journal
# thread; the ceiling's only thread), which the machine's other tenants do not change: "on one core".
# Environment: ROUNDS (5), RECORDS (2000000), DIR (/tmp/statetap-journal-ceiling). Needs cc, liblz4-dev, lz4.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${ROUNDS:-5}"
records="${RECORDS:-2000000}"
dir="${DIR:-/tmp/statetap-journal-ceiling}"
for tool in cc lz4; do
    command -v "$tool" >/dev/null || { echo "journal-ceiling: '$tool' is missing (apt-get install gcc lz4 liblz4-dev)" >&2; exit 1; }
done
swift build -c release --package-path "$root" --product statetap >&2
bin="$(swift build -c release --package-path "$root" --show-bin-path)/statetap"
ceiling="$(mktemp /tmp/lz4frame_ceiling.XXXXXX)"
raw="$(mktemp /tmp/statetap-records.XXXXXX)"
trap 'rm -rf "$ceiling" "$raw" "$dir"' EXIT
cc -O2 -o "$ceiling" "$root/Benchmarks/reference/lz4frame_ceiling.c" -llz4
write_test() {
    rm -rf "$dir"
    "$bin" journal write-test "$dir" --sample --prebuilt 200000 --fsync never --batch 4096 --records "$records" \
        --segment-size 64 | awk '/ records\/s$/ {wall = $(NF-1)} / records per CPU-second$/ {cpu = $(NF-3)} END {print wall, cpu}'
}
write_test >/dev/null
# The first segment's records, as the journal encoded them: the ceiling's input.
lz4 -dc "$dir/seg-0000000001.stj" > "$raw"
journal=() ; limit=() ; journalCPU=() ; limitCPU=()
for ((i = 1; i <= rounds; i++)); do
    read -r j jc < <(write_test)
    read -r c cc < <("$ceiling" "$raw" 4096 1 | awk '{print $8, $14}')
    echo "round $i: journal $j records/s ($jc per CPU-s), LZ4 frame ceiling $c records/s ($cc per CPU-s)," \
        "journal/ceiling $(python3 -c "print(f'{$j/$c:.2f} ({$jc/$cc:.2f} per CPU-s)')")"
    journal+=("$j"); limit+=("$c"); journalCPU+=("$jc"); limitCPU+=("$cc")
done
python3 - "${journal[*]}" "${limit[*]}" "${journalCPU[*]}" "${limitCPU[*]}" <<'EOF'
import statistics, sys
j, c, jc, cc = ([float(x) for x in a.split()] for a in sys.argv[1:5])
for name, a, b in (("per wall-clock second", j, c), ("per CPU-second", jc, cc)):
    r = [x / y for x, y in zip(a, b)]
    print(f"median {name}: journal {statistics.median(a):,.0f} records, ceiling {statistics.median(b):,.0f} records, "
          f"journal/ceiling {statistics.median(r):.2f} (rounds {min(r):.2f}-{max(r):.2f})")
EOF
