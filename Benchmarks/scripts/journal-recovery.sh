#!/usr/bin/env bash
# The journal at 1 GB: how long a start takes (recovery of the last segment, then the state store rebuilt from
# every record, then again from the checkpoint that start wrote), a full verification, and one device's history through the indexes against a full scan.
#
# Builds statetap in release, writes realistic records (Journal.SampleRecords: 5000 devices, CDN links with ids)
# with `statetap journal write-test --sample` until the journal holds SIZE_MB (default 1024) on disk, then times
# each step (wall time of the whole command; the machine is shared: compare the steps with each other).
# Environment: SIZE_MB (1024), DIR (/tmp/statetap-journal-1g), KEEP=1 to keep the journal.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
size_mb="${SIZE_MB:-1024}"
dir="${DIR:-/tmp/statetap-journal-1g}"

swift build -c release --package-path "$root" >&2
bin="$(swift build -c release --package-path "$root" --show-bin-path)/statetap"
rm -rf "$dir"
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# Records per MB on disk, from a small first run.
"$bin" journal write-test "$dir" --sample --records 200000 --fsync never --segment-size 64 >/dev/null
per_mb=$(python3 -c "import os;s=sum(os.path.getsize(os.path.join('$dir',f)) for f in os.listdir('$dir') if f.endswith('.stj'));print(int(200000/(s/2**20)))")
rm -rf "$dir"
records=$((per_mb * size_mb))
echo "== writing $records records (~$size_mb MB at $per_mb records/MB)"
t0=$(now); "$bin" journal write-test "$dir" --sample --records "$records" --fsync never --segment-size 64 | tail -1; t1=$(now)
echo "write: $(elapsed $t0 $t1) s  ($(python3 -c "print(int($records/($t1-$t0)))") records/s, producer included)"
du -sh "$dir"

echo "== start: recovery (last segment verified, indexes checked)"
t0=$(now); "$bin" journal write-test "$dir" --records 0 >/dev/null; t1=$(now)
echo "recovery: $(elapsed $t0 $t1) s"

echo "== start: state store rebuilt from every record (replay of an empty capture with --journal)"
empty="$(mktemp /tmp/statetap-empty.XXXXXX.pcap)"
"$bin" generate "$empty" --packets 1 >/dev/null
t0=$(now); "$bin" replay "$empty" --journal "$dir" --json --progress-interval 0 | python3 -c "import json,sys;j=json.load(sys.stdin)['journal'];print('records replayed', j['recovery']['records_replayed'], 'devices', j['state_store']['devices'])"; t1=$(now)
echo "rebuild: $(elapsed $t0 $t1) s"
echo "== start again: the store from the checkpoint the first start wrote at its end, then the segments after it"
t0=$(now); "$bin" replay "$empty" --journal "$dir" --json --progress-interval 0 | python3 -c "import json,sys;j=json.load(sys.stdin)['journal'];r=j['recovery'];print('records from checkpoint', r['records_from_checkpoint'], 'replayed', r['records_replayed'], 'devices', j['state_store']['devices'], 'checkpoint written at the end', j['checkpoints']['last_bytes'], 'bytes in', j['checkpoints']['last_ms'], 'ms')"; t1=$(now)
echo "rebuild from checkpoint: $(elapsed $t0 $t1) s"
rm -f "$empty"

echo "== verify (every checksum)"
t0=$(now); "$bin" journal verify "$dir" | grep -E "^(records|damages)"; t1=$(now)
echo "verify: $(elapsed $t0 $t1) s"

device=10.45.0.7
echo "== one device's history ($device)"
t0=$(now); n1=$("$bin" journal dump "$dir" --device $device 2>/tmp/jr-idx.txt | wc -l); t1=$(now)
t2=$(now); n2=$("$bin" journal dump "$dir" --device $device --no-index 2>/tmp/jr-scan.txt | wc -l); t3=$(now)
echo "with index: $n1 records in $(elapsed $t0 $t1) s; $(cat /tmp/jr-idx.txt)"
echo "full scan:  $n2 records in $(elapsed $t2 $t3) s; $(cat /tmp/jr-scan.txt)"
[[ "${KEEP:-0}" == 1 ]] || rm -rf "$dir"
