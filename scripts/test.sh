#!/usr/bin/env bash
# The test command on a fresh machine: install what is missing, build with warnings as a failure, run the test
# suite (as root it includes the live AF_XDP tests in network namespaces; otherwise they are skipped with a
# warning), the ring tests again under ThreadSanitizer, the public corpus against tshark (zero traps), the
# allocation check of the benchmark harness (counts only, never wall time), the fuzzers for a minute each, the live
# demo (root) and the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

echo "== build (warnings are failures)"
swift build --build-tests 2>&1 | tee /tmp/statetap-build.log
# Ours only: compiler warnings in this package's files, and package-level warnings about this package. Other
# packages' own warnings (e.g. swift-distributed-tracing's unhandled CMakeLists.txt) are theirs.
if grep -E "warning:" /tmp/statetap-build.log | grep -v "/\.build[^/]*/checkouts/" \
   | grep -vE "^warning: '[^']+':" | grep -q . \
   || grep -E "^warning: 'statetap':" /tmp/statetap-build.log | grep -q .; then
  grep -E "warning:" /tmp/statetap-build.log | grep -v "^warning: '" | head -20 >&2
  echo "error: the build has warnings" >&2; exit 1
fi

echo "== tests"
swift test --skip-build --skip MigrationTests
# The migration tests run real servers on Swift concurrency's pool: alone, so that tests which block their
# threads (waiting on processes) cannot starve them of the pool's few threads on a 2-core machine.
echo "== migration tests (control plane, agent, planner, OpenAPI)"
swift test --skip-build --filter MigrationTests

echo "== ring and pipeline tests under ThreadSanitizer"
swift test --sanitize=thread --scratch-path .build-tsan --filter "RingsTests|PipelineTests"

CORPUS="${STATETAP_CORPUS:-../shared/corpus/pcaps}"
if [[ -d "$CORPUS" ]]; then
  echo "== public corpus vs tshark ($CORPUS)"
  python3 scripts/corpus-compare.py "$CORPUS" --statetap .build/debug/statetap
  echo "== public corpus again with 2 workers (sharding, fragment steering): no trap, no hang"
  python3 scripts/corpus-compare.py "$CORPUS" --statetap .build/debug/statetap --statetap-arg=--workers=2 | tail -3
  echo "== extraction accuracy vs tshark: 99% recall and precision in every category (raw totals printed too;"
  echo "   the differences set aside are each examined and argued in scripts/accuracy-explained.json)"
  python3 scripts/accuracy.py "$CORPUS" --statetap .build/debug/statetap --explained scripts/accuracy-explained.json \
    --min-recall 0.99 --min-precision 0.99 | tail -5
else
  echo "== public corpus: SKIPPED, no folder at $CORPUS (set STATETAP_CORPUS)"
fi

echo "== allocation check: decode + flow tracking allocate nothing per packet (Benchmarks/, release build)"
(cd Benchmarks && swift package benchmark thresholds check --target AllocationsBenchmark --no-progress)

echo "== fuzzing: the decoder, HTTP, TLS, QUIC and HTTP/2 parsers and the API's request bodies under libFuzzer (Fuzz/, release, fuzzer + address"
echo "   sanitizers), ${STATETAP_FUZZ_SECONDS:-60} s each, zero crashes (longer runs: Fuzz/README.md)"
scripts/fuzz.sh --seconds "${STATETAP_FUZZ_SECONDS:-60}"

if [[ $(id -u) -eq 0 ]]; then
  echo "== live demo: AF_XDP capture on a veth pair, release build (optimized code paths differ from debug)"
  scripts/live-demo.sh 20000
  echo "== the migration lab: real nginx edge caches, a device, a TAP; a MEC 012 signal gets edge B warm (release)"
  scripts/lab.sh
else
  echo "== live demo and migration lab: SKIPPED, not root (AF_XDP, XDP and network namespaces need root); CI runs them" >&2
fi

echo "== demo (debug build) against its ground truth"
.build/debug/statetap demo --packets 50000 > /tmp/statetap-demo.txt || { cat /tmp/statetap-demo.txt; exit 1; }
tail -1 /tmp/statetap-demo.txt
