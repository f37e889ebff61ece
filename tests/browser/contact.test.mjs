// The contact form (issue 15) in chromium, served by the real Worker under `wrangler dev`
// over a real `folio build` of the example portfolio, delivered through the ContactOutbox
// and Miniflare's send_email (an .eml file per message). With JavaScript off: a plain post
// answered by a 303 to the thank-you page, or by the form again with the errors and the
// text kept. With JavaScript on: inline errors, then success in place. axe finds nothing in
// any of these states.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS, ROOT, cspViolations, launchBrowser, newVisitor, readManifest, startWorkerOnly } from "./stack.mjs";
import { findEmails, parseEmail } from "../contact/mail.mjs";

const AXE = path.join(ROOT, "node_modules/axe-core/axe.min.js");
const contact = readManifest().contact;
const started = Date.now();
let worker;
let browser;

before(async () => {
  assert.ok(contact, "the example site enables [contact]");
  worker = await startWorkerOnly();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
});

const url = (p) => `${worker.base}${p}`;

/** Messages this run delivered holding `marker` (copies of one file are one message). */
function delivered(marker) {
  const seen = new Map();
  for (const m of findEmails([path.join(ROOT, ".wrangler"), os.tmpdir()], started).map(parseEmail)) {
    if (m.body.includes(marker)) seen.set(m.raw, m);
  }
  return [...seen.values()];
}

async function waitForDelivery(marker, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const found = delivered(marker);
    if (found.length || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** axe's violations on the page as it is now (axe is injected through the devtools protocol). */
async function axe(page) {
  await page.evaluate(readFileSync(AXE, "utf8"));
  return page.evaluate(async () => {
    const r = await window.axe.run(document);
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
}

/**
 * axe's violations on a page of a JavaScript-off visit: the devtools protocol cannot run
 * axe there, so the very HTML that visitor got is served again, from the same origin (its
 * stylesheets load as they did), to a tab with JavaScript, and checked there.
 */
async function axeOfHtml(html) {
  const { context } = await newVisitor(browser, "contact-axe");
  const at = url(`/__axe-snapshot-${Date.now()}/`);
  await context.route(at, (route) => route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html }));
  const page = await context.newPage();
  await page.goto(at);
  try {
    return await axe(page);
  } finally {
    await context.close();
  }
}

/** A person needs a moment: the form refuses a post sooner than min_fill_secs after render. */
const humanPause = () => new Promise((r) => setTimeout(r, (contact.min_fill_secs + 0.5) * 1000));

async function fill(page, { name, email, subject, message }) {
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel(/Your email address/).fill(email);
  if (subject !== undefined) await page.getByLabel(/Subject/).fill(subject);
  await page.getByLabel("Message").fill(message);
}

test("without JavaScript: an error shows the form again with the text kept; a good message goes to the thank-you page", { timeout: 60_000 }, async () => {
  const { context } = await newVisitor(browser, "contact-nojs", { javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(url(contact.page));
  assert.deepEqual(await axeOfHtml(await page.content()), [], "axe: the empty form");
  const marker = `nojs-${Date.now()}`;
  const message = `Bonjour Ada — une question sur vos projets. ${marker}`;
  await fill(page, { name: "Zoé Müller", email: "not an address", message });
  await humanPause();
  await page.getByRole("button", { name: "Send message" }).click();
  await page.waitForLoadState("load");
  // The form again: the error beside the field, every text kept, nothing sent.
  assert.equal(new URL(page.url()).pathname, "/api/contact");
  const email = page.getByLabel(/Your email address/);
  assert.equal(await email.getAttribute("aria-invalid"), "true");
  const emailError = page.locator("#contact-email-error");
  assert.ok(await emailError.isVisible(), "the email error is shown");
  assert.match(await emailError.textContent(), /does not look like an email address/);
  assert.ok(await page.locator("#contact-form-error").isVisible(), "the form's summary is shown");
  assert.equal(await email.inputValue(), "not an address");
  assert.equal(await page.getByLabel("Your name").inputValue(), "Zoé Müller");
  assert.equal(await page.getByLabel("Message").inputValue(), message);
  assert.deepEqual(await axeOfHtml(await page.content()), [], "axe: the form with errors");
  await page.screenshot({ path: path.join(ARTIFACTS, "contact-nojs-errors.png"), fullPage: true });
  assert.equal(delivered(marker).length, 0);

  // Corrected and sent: a 303 to the thank-you page, and the message delivered once.
  await email.fill("zoe@example.org");
  await humanPause();
  await page.getByRole("button", { name: "Send message" }).click();
  await page.waitForURL(url(contact.thanks));
  await page.getByRole("heading", { name: "Message sent" }).waitFor();
  assert.deepEqual(await axeOfHtml(await page.content()), [], "axe: the thank-you page");
  const mails = await waitForDelivery(marker);
  assert.equal(mails.length, 1);
  assert.equal(mails[0].headers["reply-to"], "Zoé Müller <zoe@example.org>");
  assert.ok(mails[0].body.includes(message));
  await context.close();
});

test("with JavaScript: inline errors, then success in place", { timeout: 60_000 }, async () => {
  const { context, errors } = await newVisitor(browser, "contact-js");
  const page = await context.newPage();
  await page.goto(url(contact.page));
  const marker = `js-${Date.now()}`;
  const message = `Hello Ada, 你好! ${marker}`;
  await fill(page, { name: "", email: "zoe@example", message });
  await humanPause();
  await page.getByRole("button", { name: "Send message" }).click();
  // Inline: no navigation; each field's error beside it, focus on the first.
  const nameError = page.locator("#contact-name-error");
  await nameError.waitFor({ state: "visible", timeout: 15_000 }).catch(async (e) => {
    const form = await page.locator("[data-contact-form]").evaluate((f) => f.outerHTML);
    throw new Error(`${e.message}\nerrors: ${errors.join("\n")}\nform: ${form}`);
  });
  assert.equal(new URL(page.url()).pathname, contact.page);
  assert.ok(await page.locator("#contact-email-error").isVisible());
  assert.equal(await page.getByLabel("Your name").getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByLabel(/Your email address/).getAttribute("aria-invalid"), "true");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "contact-name");
  assert.equal(await page.getByLabel("Message").inputValue(), message, "the text is kept");
  assert.deepEqual(await axe(page), [], "axe: inline errors");
  await page.screenshot({ path: path.join(ARTIFACTS, "contact-js-errors.png"), fullPage: true });

  await page.getByLabel("Your name").fill("Zoé Müller");
  await page.getByLabel(/Your email address/).fill("zoe@example.org");
  await page.getByRole("button", { name: "Send message" }).click();
  const status = page.locator("[data-contact-status]");
  await page.waitForFunction(() => /Thank you|sent/i.test(document.querySelector("[data-contact-status]")?.textContent ?? ""));
  assert.equal(new URL(page.url()).pathname, contact.page, "sent in place");
  assert.match(await status.textContent(), /sent/i);
  assert.equal(await page.locator("#contact-name-error").isVisible(), false, "the errors are gone");
  assert.deepEqual(await axe(page), [], "axe: sent");
  await page.screenshot({ path: path.join(ARTIFACTS, "contact-js-sent.png"), fullPage: true });
  const mails = await waitForDelivery(marker);
  assert.equal(mails.length, 1);
  assert.ok(mails[0].body.includes(message));
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await context.close();
});
