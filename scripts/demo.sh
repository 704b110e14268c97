#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build in release, run the demo (a generated capture
# of synthetic mobile-edge traffic replayed through the whole pipeline, checked against its ground truth).
# Extra arguments go to `statetap demo` (see `statetap demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product statetap
exec .build/release/statetap demo "$@"
