// What the browser scripts share: their environment, expectations, the screenshot folder and Debian's
// headless chromium driven by playwright-core (no browser download, no network: background services off).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};

export const expect = (cond, what) => {
  if (!cond) throw new Error("expectation failed: " + what);
};

// The path of screenshot `name` in SCREENSHOT_DIR (created if missing).
export const shot = (name) => {
  const dir = env("SCREENSHOT_DIR");
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
};

// Runs `body(browser, seen)`; prints one JSON line of what it saw, or the error and exits non-zero.
export async function run(body) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  const seen = {};
  try {
    await body(browser, seen);
    console.log(JSON.stringify({ ok: true, ...seen }));
  } catch (err) {
    console.error(String(err && err.stack || err));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
