#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole test suite: formatting, lints, the
# Rust tests of every crate (unit, integration, `folio serve` over real HTTP, real PTYs and
# sandbox), then, against a real `folio build` of the example site served by the real Worker
# under `wrangler dev`: the Worker's end-to-end tests, the browser tests (Chromium clicking
# through the theme and running a demo in the live terminal) and the theme's quality gates
# (Lighthouse, axe-core, the Nu HTML checker, page weight).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/setup.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked

echo "==> zizmor: this repository's workflow and the one folio new writes"
site_dir="$(mktemp -d)"
cargo run --quiet --locked -p folio -- -q new "$site_dir/site"
zizmor --offline --no-progress .github/workflows "$site_dir/site/.github/workflows"
rm -rf "$site_dir"

if [ -x tests/worker/run.sh ]; then
  echo "==> folio build (example site) for the Worker tests"
  cargo run --quiet --locked -p folio -- build --quiet
  echo "==> Worker end-to-end tests"
  tests/worker/run.sh
fi
# The Worker's wasm is built by now (tests/worker/run.sh).
echo "==> browser tests"
FOLIO_WORKER_PREBUILT=1 tests/browser/run.sh
echo "==> theme quality gates"
FOLIO_WORKER_PREBUILT=1 tests/theme/run.sh
