// Shared bits of the theme's quality gates.
import { writeFileSync } from "node:fs";
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

/** The categories the theme must score 100 in. */
export const LIGHTHOUSE_CATEGORIES = ["performance", "accessibility", "best-practices", "seo"];

const score = (lhr, c) => Math.round((lhr.categories[c].score ?? 0) * 100);

/** The weighted audits of category `c` that did not pass, one line each. */
function failingAudits(lhr, c) {
  return lhr.categories[c].auditRefs
    .map((ref) => [ref, lhr.audits[ref.id]])
    .filter(([ref, a]) => ref.weight > 0 && a.score !== null && a.score < 1)
    .map(([, a]) => `${a.id} ${a.score} ${a.displayValue ?? ""} ${a.title}`);
}

/**
 * Lighthouse's verdict on the runs (`lhr`s) of one page: every category but Performance must
 * score 100 on every run (they do not depend on timing, so a 100 once in three is a regression
 * that sometimes hides); Performance, simulated from a trace that a busy machine disturbs,
 * counts its best run. Returns what failed, one line each (nothing when it passes).
 */
export function lighthouseFailures(runs) {
  const failures = [];
  runs.forEach((lhr, i) => {
    for (const c of LIGHTHOUSE_CATEGORIES.filter((c) => c !== "performance")) {
      if (score(lhr, c) !== 100) {
        failures.push(`run ${i + 1}: ${c} ${score(lhr, c)}: ${failingAudits(lhr, c).join("; ")}`);
      }
    }
  });
  const perf = runs.map((lhr) => score(lhr, "performance"));
  const best = runs[perf.indexOf(Math.max(...perf))];
  if (score(best, "performance") !== 100) {
    failures.push(`performance: best of ${runs.length} runs ${perf.join(", ")}: ${failingAudits(best, "performance").join("; ")}`);
  }
  return failures;
}

/** One summary line per run: every category's score. */
export function lighthouseScores(lhr) {
  return LIGHTHOUSE_CATEGORIES.map((c) => `${c} ${score(lhr, c)}`).join("  ");
}

/**
 * A Chromium for Lighthouse (chrome-launcher), and `bestOf(url, preset, runs, name)`: up to
 * `runs` Lighthouse runs of `url` with the mobile or desktop preset, until Performance scores
 * 100, judged by `lighthouseFailures`; each run's report is saved in ARTIFACTS under `name`
 * and its scores printed. Returns the failures (none: it passed). Used by shapes.test.mjs.
 */
export async function startLighthouse() {
  const lighthouse = (await import("lighthouse")).default;
  const desktopConfig = (await import("lighthouse/core/config/desktop-config.js")).default;
  const launcher = await import("chrome-launcher");
  const chrome = await launcher.launch({ chromePath: CHROMIUM, chromeFlags: CHROMIUM_ARGS });
  return {
    async bestOf(url, preset, runs, name) {
      const flags = { port: chrome.port, output: "json", logLevel: "error", onlyCategories: LIGHTHOUSE_CATEGORIES };
      const lhrs = [];
      const file = `lighthouse-${name}-${preset}-${new URL(url).pathname.replace(/^\/|\/$/g, "").replace(/[/.]/g, "-") || "home"}`;
      for (let run = 1; run <= runs; run++) {
        const result = await lighthouse(url, flags, preset === "desktop" ? desktopConfig : undefined);
        lhrs.push(result.lhr);
        writeFileSync(path.join(ARTIFACTS, `${file}-run${run}.json`), result.report);
        console.log(`${preset.padEnd(8)}${name} ${new URL(url).pathname}  run ${run}: ${lighthouseScores(result.lhr)}`);
        if (score(result.lhr, "performance") === 100) break;
      }
      return lighthouseFailures(lhrs);
    },
    async stop() {
      await chrome.kill();
    },
  };
}
