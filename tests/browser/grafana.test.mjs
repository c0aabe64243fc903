// The optional Grafana panel in Debian's headless chromium (playwright-core): with a Grafana URL configured,
// each monitor card keeps its built-in chart and embeds the panel (with var-namespace/var-monitor) in a
// frame; the page's policy lets exactly that origin into a frame and refuses any other.
// Env: BASE_URL, TOKEN, NAMESPACE, MONITOR, GRAFANA_ORIGIN, OTHER_ORIGIN, SCREENSHOT_DIR.
// Exits non-zero on the first failed expectation; prints one JSON line of what it saw.
import { env, expect, run, shot } from "./harness.mjs";

await run(async (browser, seen) => {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  const grafanaRequests = [];
  page.on("request", (r) => { if (r.url().startsWith(env("GRAFANA_ORIGIN"))) grafanaRequests.push(r.url()); });
  await page.goto(env("BASE_URL") + "/?namespace=" + encodeURIComponent(env("NAMESPACE")), { waitUntil: "domcontentloaded" });
  await page.fill("#token", env("TOKEN"));
  await page.click("#signin-button");
  const card = `article.monitor[data-monitor="${env("NAMESPACE")}/${env("MONITOR")}"]`;
  await page.waitForSelector(card);

  // The built-in chart stays; the panel comes on top of it.
  expect(await page.locator(`${card} svg.chart path.score`).count() >= 1, "the built-in history chart is kept");
  const frame = page.locator(`${card} iframe[data-testid=grafana-panel]`);
  expect(await frame.count() === 1, "one Grafana panel per monitor");
  const src = new URL(await frame.getAttribute("src"));
  seen.panel = src.toString();
  expect(src.origin === env("GRAFANA_ORIGIN"), "the panel comes from the configured Grafana: " + src);
  expect(src.searchParams.get("var-namespace") === env("NAMESPACE"), "var-namespace set");
  expect(src.searchParams.get("var-monitor") === env("MONITOR"), "var-monitor set");
  // The frame loaded the panel (the policy let it in).
  let panelFrame = null;
  for (let i = 0; i < 100 && !panelFrame; i++) {
    panelFrame = page.frames().find((f) => f.url().startsWith(env("GRAFANA_ORIGIN")));
    if (!panelFrame) await page.waitForTimeout(100);
  }
  expect(!!panelFrame, "a frame from the Grafana origin");
  await panelFrame.waitForSelector("#panel");
  seen.panelText = await panelFrame.textContent("#panel");
  expect(grafanaRequests.some((u) => u.includes("var-monitor=" + encodeURIComponent(env("MONITOR")))), "the panel was requested");

  // Any other origin in a frame is refused by the page's policy.
  const violation = await page.evaluate((other) => new Promise((resolve) => {
    document.addEventListener("securitypolicyviolation", (e) => resolve({ directive: e.effectiveDirective, blocked: e.blockedURI }), { once: true });
    const f = document.createElement("iframe");
    f.src = other + "/d-solo/other?panelId=1";
    document.body.append(f);
    setTimeout(() => resolve(null), 5000);
  }), env("OTHER_ORIGIN"));
  seen.violation = violation;
  expect(violation && violation.directive === "frame-src", "a frame from another origin is refused: " + JSON.stringify(violation));
  await page.screenshot({ path: shot("04-grafana-panel.png"), fullPage: true });
});
