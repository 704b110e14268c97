#!/usr/bin/env bash
# The test command on a fresh machine: install what is missing, build with warnings as a failure, run the test
# suite, the ring tests again under ThreadSanitizer, the public corpus against tshark (zero traps), the
# allocation check of the benchmark harness (counts only, never wall time) and the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

echo "== build (warnings are failures)"
swift build --build-tests 2>&1 | tee /tmp/statetap-build.log
if grep -E "warning:" /tmp/statetap-build.log | grep -v "^warning: 'main'" | grep -q .; then
  echo "error: the build has warnings" >&2; exit 1
fi

echo "== tests"
swift test --skip-build

echo "== ring and pipeline tests under ThreadSanitizer"
swift test --sanitize=thread --scratch-path .build-tsan --filter "RingsTests|PipelineTests"

CORPUS="${STATETAP_CORPUS:-../shared/corpus/pcaps}"
if [[ -d "$CORPUS" ]]; then
  echo "== public corpus vs tshark ($CORPUS)"
  python3 scripts/corpus-compare.py "$CORPUS" --statetap .build/debug/statetap
  echo "== public corpus again with 2 workers (sharding, fragment steering): no trap, no hang"
  python3 scripts/corpus-compare.py "$CORPUS" --statetap .build/debug/statetap --statetap-arg=--workers=2 | tail -3
else
  echo "== public corpus: SKIPPED, no folder at $CORPUS (set STATETAP_CORPUS)"
fi

echo "== allocation check: decode + flow tracking allocate nothing per packet (Benchmarks/, release build)"
(cd Benchmarks && swift package benchmark thresholds check --target AllocationsBenchmark --no-progress)

echo "== demo (debug build) against its ground truth"
.build/debug/statetap demo --packets 50000 > /tmp/statetap-demo.txt || { cat /tmp/statetap-demo.txt; exit 1; }
tail -1 /tmp/statetap-demo.txt
