#!/usr/bin/env bash
# Longer fuzzing than CI's 60 s per target: tests/fuzz.sh for SECONDS each
# (default an hour), e.g. overnight before a release. New crashes land in
# helper/fuzz/artifacts/TARGET/: turn each into a regression test.
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
exec "$(cd "$(dirname "$0")/.." && pwd)/tests/fuzz.sh" "${1:-3600}" "${@:2}"
