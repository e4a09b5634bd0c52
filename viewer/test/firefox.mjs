// The viewer in Firefox (Debian's firefox-esr, headless), driven over WebDriver BiDi, the protocol
// Firefox itself speaks (playwright-core drives only its own patched Firefox builds):
//   node --experimental-websocket test/firefox.mjs URL SCREENSHOT.png [RECORD_INDEX]
// URL is the page as `neural-format view` serves it, or the page's file:// URL followed by
// `#choose=PATH` to pick PATH through the file chooser. Prints the same kind of JSON summary as
// browser.mjs. Node 22+ has WebSocket without the flag.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [url, screenshot, recordArg] = process.argv.slice(2);
const executable = process.env.FIREFOX || "/usr/bin/firefox-esr";
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "nf-viewer-firefox-"));
// no updates, telemetry or remote settings: the test machine has no internet
fs.writeFileSync(path.join(profile, "user.js"), [
  'user_pref("app.update.enabled", false);', 'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
  'user_pref("toolkit.telemetry.enabled", false);', 'user_pref("browser.shell.checkDefaultBrowser", false);',
  'user_pref("network.captive-portal-service.enabled", false);', 'user_pref("extensions.update.enabled", false);',
  'user_pref("browser.startup.homepage_override.mstone", "ignore");',
].join("\n"));
const firefox = spawn(executable, ["--headless", "--remote-debugging-port=0", "--profile", profile, "--no-remote",
  "--width=1400", "--height=1000", "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });

let socket;
try {
  const endpoint = await new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`firefox did not start: ${text.slice(-500)}`)), 30000);
    firefox.stderr.on("data", (chunk) => {
      text += chunk;
      const match = text.match(/WebDriver BiDi listening on (ws:\/\/\S+)/);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
    firefox.on("exit", (code) => reject(new Error(`firefox exited ${code}: ${text.slice(-500)}`)));
  });
  socket = new WebSocket(`${endpoint}/session`);
  await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject; });
  let nextId = 0;
  const waiting = new Map();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const entry = waiting.get(message.id);
    if (!entry) return;
    waiting.delete(message.id);
    if (message.type === "error") entry.reject(new Error(`${message.error}: ${message.message}`));
    else entry.resolve(message.result);
  };
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const id = ++nextId;
    waiting.set(id, { resolve, reject });
    socket.send(JSON.stringify({ id, method, params }));
  });
  await send("session.new", { capabilities: {} });
  const { contexts } = await send("browsingContext.getTree", {});
  const context = contexts[0].context;
  await send("browsingContext.setViewport", { context, viewport: { width: 1400, height: 1000 } });
  const [pageUrl, choose] = url.split("#choose=");
  await send("browsingContext.navigate", { context, url: pageUrl, wait: "complete" });
  if (choose) { // pick the file through the page's file chooser (input.setFiles)
    const input = await send("script.evaluate", { expression: 'document.getElementById("file-input")', target: { context },
      awaitPromise: false, resultOwnership: "root" });
    await send("input.setFiles", { context, element: { sharedId: input.result.sharedId }, files: [decodeURIComponent(choose)] });
  }
  const evaluate = async (expression) => {
    const result = await send("script.evaluate", { expression, target: { context }, awaitPromise: true });
    if (result.type === "exception") throw new Error(result.exceptionDetails.text);
    return result.result.value;
  };
  const until = async (expression, timeoutMs = 60000) => {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await evaluate(expression)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${expression}`);
  };
  await until('Number(document.getElementById("record-count").dataset.total) > 0 || !document.getElementById("error").hidden');
  const index = Number(recordArg ?? 1);
  await evaluate(`document.querySelector('#records tbody tr[data-index="${index}"]')?.click(), true`);
  await until(`document.querySelector("#records tbody tr.selected")?.dataset.index === "${index}" && ` +
    '["verified", "mismatch", "error"].includes(document.getElementById("digest-status").dataset.state) || !document.getElementById("error").hidden');
  const shot = await send("browsingContext.captureScreenshot", { context });
  fs.writeFileSync(screenshot, Buffer.from(shot.data, "base64"));
  const summary = JSON.parse(await evaluate(`JSON.stringify({
    userAgent: navigator.userAgent,
    total: Number(document.getElementById("record-count").dataset.total),
    selected: document.querySelector("#records tbody tr.selected")?.dataset.index ?? null,
    recordId: document.getElementById("record-id").textContent,
    digestState: document.getElementById("digest-status").dataset.state,
    digest: document.getElementById("digest-computed").textContent,
    patchesDrawn: document.querySelectorAll("#graph g.patch").length,
    entitiesDrawn: document.querySelectorAll("#graph g.entity").length,
    bridgeDrawn: document.querySelectorAll("#graph path.bridge").length,
    error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
  })`));
  console.log(JSON.stringify(summary));
  await send("session.end", {}).catch(() => {});
} finally {
  if (socket) socket.close();
  firefox.kill();
  await new Promise((r) => (firefox.exitCode !== null ? r() : firefox.on("exit", r)));
  fs.rmSync(profile, { recursive: true, force: true });
}
