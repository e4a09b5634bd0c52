// Drives Debian's chromium (headless) through the viewer with playwright-core:
//   node test/browser.mjs URL SCREENSHOT.png [RECORD_INDEX]
// URL is the page as `neural-format view` serves it (which opens the served file), or the page's
// file:// URL followed by `#choose=PATH` to pick PATH through the page's file chooser instead.
// It selects a record, waits for the digest check, takes a screenshot and prints a JSON summary of
// the DOM (record count, digest state, what was drawn); the pytest driver asserts on it.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";

const [url, screenshot, recordArg] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node test/browser.mjs URL SCREENSHOT.png [RECORD_INDEX]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "nf-viewer-chromium-"));
// a fresh profile (playwright passes it as --user-data-dir)
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  viewport: { width: 1400, height: 1000 },
  deviceScaleFactor: 1,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const messages = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => messages.push(`pageerror: ${e.message}`));
  const [pageUrl, choose] = url.split("#choose=");
  await page.goto(pageUrl);
  if (choose) await page.setInputFiles("#file-input", decodeURIComponent(choose));
  // the file is open when the list is filled (or refused when the error box shows)
  await page.waitForFunction(() => Number(document.getElementById("record-count").dataset.total) > 0
    || !document.getElementById("error").hidden, null, { timeout: 60000 });
  const index = Number(recordArg ?? 1);
  const rows = await page.locator("#records tbody tr").count();
  if (rows > index) await page.locator(`#records tbody tr[data-index="${index}"]`).click();
  await page.waitForFunction(() => ["verified", "mismatch", "error"].includes(document.getElementById("digest-status").dataset.state)
    || !document.getElementById("error").hidden, null, { timeout: 60000 });
  await page.screenshot({ path: screenshot, fullPage: false });
  const summary = await page.evaluate(() => ({
    total: Number(document.getElementById("record-count").dataset.total),
    rows: document.querySelectorAll("#records tbody tr").length,
    selected: document.querySelector("#records tbody tr.selected")?.dataset.index ?? null,
    recordId: document.getElementById("record-id").textContent,
    digestState: document.getElementById("digest-status").dataset.state,
    digestText: document.getElementById("digest-status").textContent,
    digest: document.getElementById("digest-computed").textContent,
    patchesDrawn: document.querySelectorAll("#graph g.patch").length,
    tilesDrawn: document.querySelectorAll("#graph g.patch image").length,
    entitiesDrawn: document.querySelectorAll("#graph g.entity").length,
    absentDrawn: document.querySelectorAll('#graph g.entity[data-assertion="absent"]').length,
    relationsDrawn: document.querySelectorAll("#graph .relation").length,
    bridgeDrawn: document.querySelectorAll("#graph path.bridge").length,
    legendItems: document.querySelectorAll("#legend .item").length,
    error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
    errorCode: document.getElementById("error").dataset.code ?? null,
    status: document.getElementById("status").textContent,
  }));
  // search narrows the list to matching IDs
  if (summary.total > 0 && summary.recordId) {
    await page.fill("#search", summary.recordId);
    summary.searchRows = await page.locator("#records tbody tr").count();
  }
  summary.console = messages;
  console.log(JSON.stringify(summary));
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
