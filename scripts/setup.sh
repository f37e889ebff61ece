#!/usr/bin/env bash
# Installs everything folio's build, tests and benchmarks need, from the package registries only.
# Idempotent: a second run only checks. Used by scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)   # folio-pty's sandbox
command -v make >/dev/null 2>&1 || need_apt+=(make)          # the example demos' build step
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # browser tests, Lighthouse, axe
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)  # the Nu HTML checker (vnu-jar)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      say "missing ${need_apt[*]}: run as root or install them with your package manager"; exit 1
    fi
  fi
  say "apt-get install ${need_apt[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
fi

# zizmor, the GitHub Actions security linter (PyPI, pinned by hash).
if ! command -v zizmor >/dev/null 2>&1 || [ "$(zizmor --version 2>/dev/null)" != "zizmor 1.32.0" ]; then
  say "pip install zizmor (scripts/requirements-lint.txt)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --require-hashes -r scripts/requirements-lint.txt
fi

# The Worker's toolchain (wasm target, worker-build, wasm-bindgen-cli, wrangler via npm ci).
if [ -x scripts/worker-toolchain.sh ]; then
  scripts/worker-toolchain.sh
fi
say "setup done"
