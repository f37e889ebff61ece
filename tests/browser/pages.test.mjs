// The theme's pages in chromium, served by the real Worker (`wrangler dev`) over a real
// `folio build` of the example portfolio: the tag filter, search, sorting, the dark toggle
// (surviving a reload, with no flash) and the view counter (one per visitor, nothing when
// the API is unreachable). Screenshots of every page in light and dark go to artifacts/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ARTIFACTS, cspViolations, launchBrowser, newVisitor, startWorkerOnly } from "./stack.mjs";

let worker;
let browser;
let projects; // /projects.json, read by the test itself

before(async () => {
  worker = await startWorkerOnly();
  browser = await launchBrowser();
  projects = await (await fetch(`${worker.base}/projects.json`)).json();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
});

const url = (p) => `${worker.base}${p}`;

/** Slugs of the cards a visitor can see, in page order. */
function visibleCards(page) {
  return page.$$eval("[data-projects] [data-project]", (cards) =>
    cards.filter((c) => c.getClientRects().length > 0).map((c) => c.getAttribute("data-slug")));
}

function taggedWith(tag) {
  return projects.filter((p) => p.tags.includes(tag)).map((p) => p.slug).sort();
}

describe("projects page", () => {
  test("tag links are real links; with JS they filter in place and set ?tag=", async () => {
    const { context, errors } = await newVisitor(browser, "tags");
    const page = await context.newPage();
    await page.goto(url("/projects/"));
    const all = (await visibleCards(page)).sort();
    assert.deepEqual(all, projects.map((p) => p.slug).sort(), "every project has a card");

    // The most common tag that not every project has: filtering must hide something.
    const counts = {};
    for (const p of projects) for (const t of p.tags) counts[t] = (counts[t] ?? 0) + 1;
    const tag = Object.keys(counts).filter((t) => counts[t] < projects.length)
      .sort((a, b) => counts[b] - counts[a] || a.localeCompare(b))[0];
    const link = page.locator(`[data-tag-filter] a[data-tag="${tag}"]`);
    const href = await link.getAttribute("href");
    assert.equal(new URL(href, url("/")).pathname, `/tags/${tag}/`);
    const tagPage = await fetch(new URL(href, url("/")));
    assert.equal(tagPage.status, 200, `${href} is a real page`);
    assert.match(await tagPage.text(), new RegExp(tag));

    await link.click();
    assert.equal(new URL(page.url()).searchParams.get("tag"), tag);
    assert.equal(new URL(page.url()).pathname, "/projects/", "filtered in place, no navigation");
    assert.deepEqual((await visibleCards(page)).sort(), taggedWith(tag));
    assert.equal(await link.getAttribute("aria-current"), "true");
    const results = await page.locator("[data-results]").textContent();
    assert.match(results, new RegExp(`^${taggedWith(tag).length} projects? tagged ${tag}`));

    await page.locator('[data-tag-filter] a[data-tag=""]').click();
    assert.deepEqual((await visibleCards(page)).sort(), all);
    assert.equal(new URL(page.url()).searchParams.get("tag"), null);
    assert.equal(await link.getAttribute("aria-current"), null);

    // ?tag= on arrival filters too.
    const other = Object.keys(counts).sort()[0];
    await page.goto(url(`/projects/?tag=${other}`));
    assert.deepEqual((await visibleCards(page)).sort(), taggedWith(other));
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("without JavaScript the tag links go to the tag pages", async () => {
    const { context } = await newVisitor(browser, "nojs", { javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(url("/projects/"));
    assert.equal((await visibleCards(page)).length, projects.length);
    assert.equal(await page.locator("[data-project-search]").isVisible(), false, "search needs JS: hidden");
    const tag = projects[0].tags[0];
    await Promise.all([page.waitForURL(`**/tags/${tag}/`), page.locator(`[data-tag-filter] a[data-tag="${tag}"]`).click()]);
    assert.match(await page.locator("main").textContent(), new RegExp(projects[0].title));
    await context.close();
  });

  test("search keeps the cards matching every word typed", async () => {
    const { context, errors } = await newVisitor(browser, "search");
    const page = await context.newPage();
    await page.goto(url("/projects/"));
    const input = page.locator("[data-project-search] [data-search-input]");
    assert.ok(await input.isVisible(), "the search box is shown with JS");
    const expected = (q) => {
      const words = q.toLowerCase().split(/\s+/).filter(Boolean);
      return projects.filter((p) => {
        const text = [p.title, p.description, p.tags.join(" ")].join(" ").toLowerCase();
        return words.every((w) => text.includes(w));
      }).map((p) => p.slug).sort();
    };
    // A title word, a word only in one description, two words at once, and nothing.
    const queries = ["lisp", "tracer", "rust networking", "zzzz-no-such-project"];
    for (const q of queries) {
      await input.fill(q);
      const want = expected(q);
      await page.waitForFunction((n) => {
        const shown = [...document.querySelectorAll("[data-projects] [data-project]")]
          .filter((c) => c.getClientRects().length > 0);
        return shown.length === n;
      }, want.length);
      assert.deepEqual((await visibleCards(page)).sort(), want, `search "${q}"`);
      assert.equal(await page.locator("[data-no-results]").isVisible(), want.length === 0);
    }
    assert.ok(expected("tracer").length > 0 && expected("rust networking").length > 1,
      "the example portfolio still has the projects these queries are about");
    await input.fill("");
    assert.equal((await visibleCards(page)).length, projects.length);

    // Sorting by title orders the cards A–Z; by date newest first.
    await page.locator("[data-sort]").selectOption("title");
    const byTitle = await visibleCards(page);
    const titleOf = Object.fromEntries(projects.map((p) => [p.slug, p.title]));
    assert.deepEqual(byTitle, [...byTitle].sort((a, b) => titleOf[a].localeCompare(titleOf[b])));
    await page.locator("[data-sort]").selectOption("date");
    const dateOf = Object.fromEntries(projects.map((p) => [p.slug, p.date ?? ""]));
    const byDate = await visibleCards(page);
    assert.deepEqual(byDate.map((s) => dateOf[s]), byDate.map((s) => dateOf[s]).sort().reverse());
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe("light and dark", () => {
  test("the toggle survives a reload, applied before first paint", async () => {
    const { context, errors } = await newVisitor(browser, "theme", { colorScheme: "light" });
    // What data-theme says at the moment <body> starts: if it is already "dark" there, no
    // light frame can have been painted.
    await context.addInitScript(() => {
      new MutationObserver((_, obs) => {
        if (document.body) {
          window.__folio.themeAtBody = document.documentElement.dataset.theme ?? null;
          obs.disconnect();
        }
      }).observe(document, { childList: true, subtree: true });
    });
    const page = await context.newPage();
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const luminance = (rgb) => {
      const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).map(Number);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    await page.goto(url("/"));
    const toggle = page.locator(".theme-toggle");
    assert.ok(await toggle.isVisible());
    const light = await background();
    assert.ok(luminance(light) > 128, `light by default here (${light})`);
    await page.screenshot({ path: path.join(ARTIFACTS, "home-light.png"), fullPage: true });

    await toggle.click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
    assert.ok(luminance(await background()) < 128, "dark after the click");
    assert.match(await toggle.getAttribute("aria-label"), /light/);

    await page.reload();
    assert.equal(await page.evaluate(() => window.__folio.themeAtBody), "dark", "dark before <body>");
    assert.ok(luminance(await background()) < 128, "still dark after a reload");
    await page.screenshot({ path: path.join(ARTIFACTS, "home-dark.png"), fullPage: true });

    // Another page of the same site remembers it too.
    await page.goto(url("/projects/"));
    assert.equal(await page.evaluate(() => window.__folio.themeAtBody), "dark");
    await page.screenshot({ path: path.join(ARTIFACTS, "projects-dark.png"), fullPage: true });
    const demoPage = projects.find((p) => p.has_demo) ?? projects[0];
    await page.goto(url(demoPage.path));
    await page.screenshot({ path: path.join(ARTIFACTS, "project-dark.png"), fullPage: true });

    // And back.
    await page.locator(".theme-toggle").click();
    await page.reload();
    assert.equal(await page.evaluate(() => window.__folio.themeAtBody), "light");
    await page.screenshot({ path: path.join(ARTIFACTS, "project-light.png"), fullPage: true });
    await page.goto(url("/projects/"));
    await page.screenshot({ path: path.join(ARTIFACTS, "projects-light.png"), fullPage: true });
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe("view counter", () => {
  const page0 = () => projects.find((p) => p.has_demo) ?? projects[0];
  // A count belongs to a page: its key is its path, segments joined by "." (docs/security-edge.md).
  const key0 = () => page0().path.replace(/^\/|\/$/g, "").split("/").join(".");

  async function visit(ua) {
    const { context, errors } = await newVisitor(browser, ua);
    const page = await context.newPage();
    const counted = page.waitForResponse((r) => r.url().includes("/api/views/") && r.request().method() === "POST");
    await page.goto(url(page0().path));
    assert.equal((await counted).status(), 200);
    const own = page.locator("[data-views][data-views-count]");
    await own.waitFor({ state: "visible" });
    assert.equal(await own.getAttribute("data-views"), key0());
    const n = Number((await own.locator("[data-views-n]").textContent()).replace(/[^\d]/g, ""));
    assert.deepEqual(errors, []);
    return { context, page, n };
  }

  test("rises by one per visitor, once per visitor", async () => {
    const first = await visit("counter-a");
    await first.context.close();
    const second = await visit("counter-b");
    assert.equal(second.n, first.n + 1, "a new visitor adds one");
    await second.page.reload();
    const own = second.page.locator("[data-views][data-views-count] [data-views-n]");
    await own.waitFor({ state: "visible" });
    assert.equal(Number((await own.textContent()).replace(/[^\d]/g, "")), second.n, "the same visitor again: no change");
    await second.context.close();
    const third = await visit("counter-c");
    assert.equal(third.n, second.n + 1);

    // Cards elsewhere read the same count (one batched GET).
    const batch = third.page.waitForResponse((r) => r.url().includes("/api/views?slugs="));
    await third.page.goto(url("/projects/"));
    assert.equal((await batch).status(), 200);
    const card = third.page.locator(`[data-views="${key0()}"]`).first();
    await card.waitFor({ state: "visible" });
    assert.equal(Number((await card.locator("[data-views-n]").textContent()).replace(/[^\d]/g, "")), third.n);
    await third.context.close();
  });

  test("shows nothing, and breaks nothing, when the API is unreachable", async () => {
    const { context, errors } = await newVisitor(browser, "counter-offline");
    await context.route("**/api/**", (route) => route.abort());
    for (const p of ["/", "/projects/", page0().path]) {
      const page = await context.newPage();
      const failed = page.waitForEvent("requestfailed", (r) => r.url().includes("/api/views"));
      await page.goto(url(p));
      await failed;
      // Let the script's catch run before looking.
      await page.evaluate(() => new Promise((r) => setTimeout(r, 50)));
      const shown = await page.$$eval("[data-views]", (els) => els.filter((e) => !e.hidden).length);
      assert.equal(shown, 0, `${p}: no counter shown`);
      assert.ok(await page.locator("main h1, main h2").first().isVisible(), `${p}: the page is there`);
      assert.ok(await page.locator(".theme-toggle").isVisible(), `${p}: other scripts still ran`);
      await page.close();
    }
    // Only the browser's own "Failed to load resource" lines, nothing from the scripts.
    assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
    await context.close();
  });
});
