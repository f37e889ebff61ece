#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole test suite: formatting, lints, the
# Rust tests of every crate (unit, integration, real PTYs and sandbox), then the end-to-end
# tests of the Worker under `wrangler dev` against a real `folio build` of the example site.
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

if [ -x tests/worker/run.sh ]; then
  echo "==> folio build (example site) for the Worker tests"
  cargo run --quiet --locked -p folio -- build --quiet
  echo "==> Worker end-to-end tests"
  tests/worker/run.sh
fi
