// Drives tests/browser/realtime.html in headless Chromium (playwright-core from localdev/node) for a pytest test.
// Usage: node drive.mjs '<json config>'   (config: pageUrl, connect: {...digisConnect cfg}, userDataDir,
//                                          executablePath, waitEvents, timeoutMs)
// Talks JSON lines on stdout: {"status":"subscribed","socketId":...}, then one {"status":"event",...} per event
// until `waitEvents` arrived, then {"status":"done"}; on any failure {"status":"error","message":...} and exit 1.
// The test reads stdin for nothing; it triggers the events itself after "subscribed".
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "localdev", "node", "package.json"));
const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.argv[2]);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const started = Date.now();
const mark = (what) => process.stderr.write(`[driver +${Date.now() - started} ms] ${what}\n`);
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let context;
const deadline = setTimeout(() => {
  say({ status: "error", message: `driver timed out after ${cfg.timeoutMs} ms` });
  process.exit(1);
}, cfg.timeoutMs);

try {
  // A persistent context is how playwright takes a --user-data-dir: a fresh directory per run.
  context = await chromium.launchPersistentContext(cfg.userDataDir, {
    executablePath: cfg.executablePath,
    headless: true,
    args: FLAGS,
    timeout: cfg.timeoutMs,
  });
  mark("chromium up");
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => process.stderr.write(`[page] ${msg.text()}\n`));
  page.on("pageerror", (err) => process.stderr.write(`[page error] ${err.message}\n`));
  await page.goto(cfg.pageUrl, { waitUntil: "load", timeout: cfg.timeoutMs });
  mark("page loaded");
  await page.evaluate((connect) => window.digisConnect(connect), cfg.connect);
  await page.waitForFunction(() => window.digis.state !== "connecting", null, { timeout: cfg.timeoutMs });
  const state = await page.evaluate(() => ({ state: window.digis.state, socketId: window.digis.socketId,
                                             errors: window.digis.errors }));
  if (state.state !== "subscribed") {
    throw new Error(`not subscribed: ${JSON.stringify(state)}`);
  }
  mark("subscribed");
  say({ status: "subscribed", socketId: state.socketId });
  for (let seen = 0; seen < cfg.waitEvents; seen++) {
    await page.waitForFunction((n) => window.digis.events.length > n, seen, { timeout: cfg.timeoutMs });
    const event = await page.evaluate((n) => window.digis.events[n], seen);
    mark(`event ${event.event}`);
    say({ status: "event", ...event });
  }
  say({ status: "done" });
  await context.close();
  mark("closed");
  clearTimeout(deadline);
  process.exit(0);
} catch (err) {
  say({ status: "error", message: String(err && err.stack ? err.stack : err) });
  if (context) await context.close().catch(() => {});
  clearTimeout(deadline);
  process.exit(1);
}
