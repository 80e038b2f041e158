// The browser test of the chat page (scripts/browser-test runs it once per server).
//
// usage: node tools/browser/chat-test.mjs --url http://127.0.0.1:PORT/chat.html
//            [--screenshot FILE] [--timeout MS] [--chromium /usr/bin/chromium]
//
// Launches Debian's Chromium headless (through playwright-core, which downloads no browser) with
// a fresh user-data-dir, opens the page in two tabs, waits until both show `connected` in
// #status, sends a unique message from tab A through the page's own form (#msg, #send), and
// checks that it arrives, as the exact text of one `#log li`, in tab B and in tab A. Saves a
// screenshot of tab B (also on failure). Every wait is bounded by --timeout (default 20 s) and
// the whole run by 3x that. Exit status 0 on success, 1 on failure, 2 on bad arguments.
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

let opts;
try {
  opts = parseArgs({
    options: {
      url: { type: "string" },
      screenshot: { type: "string" },
      timeout: { type: "string", default: "20000" },
      chromium: { type: "string", default: "/usr/bin/chromium" },
    },
  }).values;
} catch (e) {
  console.error(`chat-test: ${e.message}`);
  process.exit(2);
}
const timeout = Number(opts.timeout);
if (!opts.url || !/^http:\/\/(127\.[0-9.]+|localhost|\[::1\])(:\d+)?\//.test(opts.url) || !(timeout > 0)) {
  console.error("usage: chat-test.mjs --url http://127.0.0.1:PORT/chat.html [--screenshot FILE] [--timeout MS]");
  process.exit(2);
}

// A hard bound on the whole run, whatever hangs.
const watchdog = setTimeout(() => {
  console.error(`chat-test: FAILED: the run took longer than ${(3 * timeout) / 1000} s`);
  process.exit(1);
}, 3 * timeout);

const step = (what) => console.log(`chat-test: ${what}`);
const userDataDir = mkdtempSync(join(tmpdir(), "weft-chat-test-"));
let context;
let pageB;
const problems = [];
let ok = false;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    timeout,
    viewport: { width: 800, height: 600 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(timeout);
  const open = async (name) => {
    const page = await context.newPage();
    page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`${name}: console: ${m.text()}`);
    });
    const response = await page.goto(opts.url, { waitUntil: "load" });
    if (!response || response.status() !== 200) {
      throw new Error(`${name}: GET ${opts.url} answered ${response ? response.status() : "nothing"}`);
    }
    return page;
  };
  const pageA = await open("A");
  pageB = await open("B");
  const connected = (page, name) =>
    page
      .waitForFunction(() => document.querySelector("#status")?.textContent === "connected")
      .catch(async () => {
        const text = await page.textContent("#status").catch(() => "?");
        throw new Error(`${name}: #status is "${text}", not "connected", after ${timeout} ms`);
      });
  await Promise.all([connected(pageA, "A"), connected(pageB, "B")]);
  step("both pages connected");

  const message = `hello from A ${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)} <b>&amp;</b>`;
  await pageA.fill("#msg", message);
  await pageA.click("#send");
  const arrives = (page, name) =>
    page
      .waitForFunction(
        (m) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === m),
        message,
      )
      .catch(() => {
        throw new Error(`${name}: the message did not appear in #log within ${timeout} ms`);
      });
  const sent = Date.now();
  await Promise.all([arrives(pageB, "B"), arrives(pageA, "A")]);
  step(`the message arrived in B and in A (${Date.now() - sent} ms)`);
  // textContent, never innerHTML: the markup in the message must stay text.
  if ((await pageB.locator("#log b").count()) !== 0) {
    throw new Error("B: the message was rendered as HTML");
  }
  ok = true;
} catch (e) {
  console.log(`chat-test: FAILED: ${e.message.split("\n")[0]}`);
} finally {
  if (opts.screenshot && pageB) {
    try {
      mkdirSync(dirname(opts.screenshot), { recursive: true });
      await pageB.screenshot({ path: opts.screenshot, fullPage: true, timeout });
      step(`screenshot ${opts.screenshot}`);
    } catch (e) {
      console.log(`chat-test: no screenshot: ${e.message.split("\n")[0]}`);
    }
  }
  for (const p of problems.slice(0, 10)) console.log(`chat-test: ${p}`);
  if (problems.length > 10) console.log(`chat-test: ... and ${problems.length - 10} more`);
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
step(ok ? "passed" : "failed");
process.exit(ok ? 0 : 1);
