#!/usr/bin/env bash
# Builds the libFuzzer harnesses of Fuzz/ (release, fuzzer + address sanitizers, in Fuzz/.build) and runs each for
# a bounded time from seeds the harnesses generate. Exits non-zero, naming the harness and the input file, if any
# harness crashed (a trap, an AddressSanitizer report, a leak, a timeout or running out of memory).
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESSES=(decode http tls quic api http2)
declare -A BINARY=([decode]=DecodeFuzzer [http]=HTTPFuzzer [tls]=TLSFuzzer [quic]=QUICFuzzer [api]=APIFuzzer [http2]=HTTP2Fuzzer)

usage() {
  cat <<EOF
usage: scripts/fuzz.sh [--seconds N] [--only NAME[,NAME...]] [--corpus DIR] [--artifacts DIR] [--skip-build]

Fuzzes statetap's parsers with libFuzzer: ${HARNESSES[*]}.
  decode  PacketDecoder on every link type, IP reassembly and resume (Decode, Flows)
  http    HTTPStreamParser, both directions, segmented, with gaps (Extract)
  tls     ClientHelloParser, TLSClientHelloCollector, StreamReassembler against a model (Extract, Flows)
  quic    QUICInitialParser on raw datagrams and on Initials it protects itself; CRYPTO frames, ClientHello
  api     the control plane's request bodies: duplicate keys, JSON decoding, RFC 3339, addresses, URLs, names
  http2   HTTP/2 frames and libnghttp2 HPACK (segment cuts), TLS record opening, key-log lines (Extract)

  --seconds N      fuzzing time per harness (default 60); the build comes on top
  --only NAMES     only these harnesses (comma-separated)
  --corpus DIR     keep the corpus in DIR/<harness> and start from it next time (default: a temporary folder)
  --artifacts DIR  where crashing inputs go, as DIR/<harness>/crash-<sha1> (default: Fuzz/.build/fuzz-artifacts)
  --skip-build     use the harnesses already built
  -h, --help       this text

Seeds are written by the harnesses themselves (--write-seeds) on every run, next to the corpus, never into it.
Longer runs: scripts/fuzz.sh --seconds 3600 --only http --corpus ~/statetap-corpus
Reproduce a crash: SWIFT_BACKTRACE=enable=no Fuzz/.build/release/HTTPFuzzer FILE   (see Fuzz/README.md)
EOF
}

SECONDS_PER_HARNESS=60
ONLY=""
CORPUS_ROOT=""
ARTIFACTS_ROOT="Fuzz/.build/fuzz-artifacts"
BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SECONDS_PER_HARNESS="${2:?--seconds needs a number}"; shift 2 ;;
    --seconds=*) SECONDS_PER_HARNESS="${1#*=}"; shift ;;
    --only) ONLY="${2:?--only needs harness names}"; shift 2 ;;
    --only=*) ONLY="${1#*=}"; shift ;;
    --corpus) CORPUS_ROOT="${2:?--corpus needs a folder}"; shift 2 ;;
    --corpus=*) CORPUS_ROOT="${1#*=}"; shift ;;
    --artifacts) ARTIFACTS_ROOT="${2:?--artifacts needs a folder}"; shift 2 ;;
    --artifacts=*) ARTIFACTS_ROOT="${1#*=}"; shift ;;
    --skip-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$SECONDS_PER_HARNESS" =~ ^[1-9][0-9]*$ ]] || { echo "error: --seconds takes a positive whole number" >&2; exit 2; }
SELECTED=("${HARNESSES[@]}")
if [[ -n "$ONLY" ]]; then
  IFS=, read -r -a SELECTED <<<"$ONLY"
  for h in "${SELECTED[@]}"; do
    [[ -n "${BINARY[$h]:-}" ]] || { echo "error: no harness '$h' (there are: ${HARNESSES[*]})" >&2; exit 2; }
  done
fi

# --sanitize=fuzzer: SwiftPM compiles the harnesses with -parse-as-library and links libFuzzer's main (see
# Fuzz/Package.swift). The sanitizers of the Swift code come from -Xswiftc: with `--sanitize=fuzzer
# --sanitize=address` SwiftPM passes two -sanitize= flags, the Swift driver keeps the last one, and the Swift code
# gets AddressSanitizer without coverage instrumentation (libFuzzer then fuzzes blind). C dependencies get coverage
# only.
BUILD_FLAGS=(--package-path Fuzz -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
if [[ $BUILD -eq 1 ]]; then
  echo "== build (Fuzz/, release, fuzzer and address sanitizers; warnings are failures)"
  start=$(date +%s)
  LOG=$(mktemp)
  if ! swift build "${BUILD_FLAGS[@]}" >"$LOG" 2>&1; then cat "$LOG"; rm -f "$LOG"; exit 1; fi
  # ld.gold warns about an ASan runtime symbol in every sanitized link: the toolchain's, not ours.
  if grep "warning:" "$LOG" | grep -v "Cannot export local symbol '__asan_extra_spill_area'" | grep -q .; then
    grep "warning:" "$LOG" | grep -v "__asan_extra_spill_area" >&2
    echo "error: the fuzz build has warnings" >&2; rm -f "$LOG"; exit 1
  fi
  rm -f "$LOG"
  echo "built in $(( $(date +%s) - start )) s"
fi
BIN="$(swift build "${BUILD_FLAGS[@]}" --show-bin-path)"

WORK=$(mktemp -d -t statetap-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# A crash must end the run, not hang in swift-backtrace.
export SWIFT_BACKTRACE=enable=no

failed=()
for h in "${SELECTED[@]}"; do
  exe="$BIN/${BINARY[$h]}"
  [[ -x "$exe" ]] || { echo "error: $exe is missing (build without --skip-build)" >&2; exit 1; }
  corpus="${CORPUS_ROOT:-$WORK/corpus}/$h"
  artifacts="$ARTIFACTS_ROOT/$h"
  mkdir -p "$corpus" "$artifacts"
  if ! "$exe" --write-seeds="$WORK/seeds/$h" >/dev/null || ! "$exe" --write-dict="$WORK/$h.dict" >/dev/null; then
    echo "FAILED $h: writing its seeds or dictionary failed (see above)" >&2
    failed+=("$h")
    continue
  fi
  dict=(); [[ -s "$WORK/$h.dict" ]] && dict=(-dict="$WORK/$h.dict")
  echo "== $h: ${SECONDS_PER_HARNESS} s ($(ls "$corpus" | wc -l) corpus inputs, $(ls "$WORK/seeds/$h" | wc -l) seeds)"
  log="$WORK/$h.log"
  touch "$WORK/started"
  status=0
  # The outer timeout is a backstop: libFuzzer stops itself after -max_total_time.
  timeout --kill-after=10 $((SECONDS_PER_HARNESS + 120)) \
    "$exe" "$corpus" "$WORK/seeds/$h" "${dict[@]}" \
    -max_total_time="$SECONDS_PER_HARNESS" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?

  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/([0-9a-zA-Z]+).*/cov \1, ft \2, corpus \3 (\4)/p' \
    <<<"$done_line")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  if [[ $status -eq 0 && -n "$cov" ]]; then
    echo "$h: ${execs:-?} executions, ${rate:-?} exec/s, $cov, peak RSS ${rss:-?} MB"
    continue
  fi
  if [[ $status -eq 0 ]]; then
    echo "FAILED $h: libFuzzer reported no coverage: the harness was built without coverage instrumentation" >&2
    failed+=("$h")
    continue
  fi
  failed+=("$h")
  # The input libFuzzer saved (crash-, leak-, timeout-, oom- followed by its SHA-1), if it got that far.
  input=$(find "$artifacts" -maxdepth 1 -type f -newer "$WORK/started" ! -name last-run.log | head -1)
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "FAILED $h: still running ${SECONDS_PER_HARNESS}+120 s later, killed (a hang outside libFuzzer's -timeout)" >&2
  else
    echo "FAILED $h (exit $status): ${input:-no input file written}" >&2
  fi
  # What libFuzzer and the sanitizer said, and the first frames in statetap's sources or the harness.
  grep -E "Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|^SUMMARY|^ALARM|out-of-memory" "$log" \
    | head -6 >&2 || true
  grep -E "^ +#[0-9]+ .*/(Sources|Fuzz/Sources)/" "$log" | head -8 >&2 || true
  if [[ -n "$input" ]]; then
    echo "  input (hex): $(od -An -tx1 -v "$input" | tr -d ' \n' | head -c 400)" >&2
    echo "  reproduce: SWIFT_BACKTRACE=enable=no $exe $input" >&2
  fi
  cp "$log" "$artifacts/last-run.log"
  echo "  full log: $artifacts/last-run.log" >&2
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "error: fuzzing failed in: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzzing: no crash in ${SELECTED[*]}"
