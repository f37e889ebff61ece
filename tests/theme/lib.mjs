// Shared bits of the theme's quality gates.
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Where reports and screenshots go (gitignored). */
export const ARTIFACTS = path.join(ROOT, "tests/theme/artifacts");
/** Debian chromium, as every browser test of the project runs it. */
export const CHROMIUM = "/usr/bin/chromium";
/** Flags for a headless, quiet Chromium that makes no request of its own. */
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
