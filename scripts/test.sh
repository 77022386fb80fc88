#!/usr/bin/env bash
# The whole test suite (node's own test runner over the compiled tests).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(dist/test/*.test.js)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found under dist/test" >&2; exit 1; fi
exec node --test --test-concurrency=1 --test-reporter=spec "$@" "${files[@]}"
