// Drives the governance dashboard in Debian's headless chromium (playwright-core, no browser download).
// Env: BASE_URL, APPROVER_TOKEN, VIEWER_TOKEN, STRANGER_TOKEN, APPROVE_EVENT, IGNORE_EVENT, DECIDED_EVENT,
// NOTHING_EVENT, SCREENSHOT_DIR.
// Exits non-zero on the first failed expectation; prints one JSON line of what it saw.
import { env, expect, run, shot } from "./harness.mjs";

const BASE_URL = env("BASE_URL");
await run(async (browser, seen) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error" && !/401|403|409/.test(m.text())) consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  // Nothing may be fetched from outside this server.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(BASE_URL)) foreign.push(r.url()); });

  // 1. Without a token the dashboard says a token is needed and how to get one, where the monitors and
  //    the events would be (not "Loading…" forever, not an empty table).
  const home = BASE_URL + "/?namespace=" + encodeURIComponent(env("NAMESPACE"));
  const apiCalls = [];
  page.on("request", (r) => { if (/\/api\/v1\/(monitors|drift-events)/.test(r.url())) apiCalls.push(r.url()); });
  await page.goto(home, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#banner:not([hidden])");
  expect((await page.textContent("#banner")).includes("Sign in"), "sign-in prompt shown");
  await page.waitForSelector("#monitors .signin-needed");
  const monitorsText = await page.textContent("#monitors");
  seen.signedOutMonitors = monitorsText;
  expect(!monitorsText.includes("Loading"), "no endless Loading… under Monitors: " + monitorsText);
  expect(monitorsText.includes("token is needed"), "monitors say a token is needed: " + monitorsText);
  expect(monitorsText.includes("kubectl create token"), "monitors say how to get one: " + monitorsText);
  expect(monitorsText.includes("OIDC proxy"), "monitors name the OIDC proxy: " + monitorsText);
  expect(await page.isVisible("#events-empty"), "the events table explains itself");
  expect((await page.textContent("#events-empty")).includes("token is needed"), "events say a token is needed");
  expect(apiCalls.length === 0, "no API call without a token: " + apiCalls.join(", "));
  await page.screenshot({ path: shot("01-signed-out.png") });

  // 1b. A token the API server does not accept (401): a readable message in both sections.
  await page.fill("#token", "not-a-real-token");
  await page.click("#signin-button");
  await page.waitForFunction(() => /not accepted/.test(document.getElementById("monitors").textContent));
  seen.unauthorized = await page.textContent("#monitors");
  expect(seen.unauthorized.includes("Sign in again"), "401 says what to do: " + seen.unauthorized);
  expect((await page.textContent("#events-empty")).includes("not accepted"), "401 under events");
  await page.screenshot({ path: shot("01b-unauthorized.png") });
  await page.click("#signout-button");

  // 1c. A valid token without read rights (403): a readable message naming the missing role.
  await page.fill("#token", env("STRANGER_TOKEN"));
  await page.click("#signin-button");
  await page.waitForFunction(() => /not allowed/.test(document.getElementById("monitors").textContent));
  seen.forbidden = await page.textContent("#monitors");
  expect(seen.forbidden.includes("driftwatch-viewer"), "403 names the role to ask for: " + seen.forbidden);
  expect((await page.textContent("#events-empty")).includes("not allowed"), "403 under events");
  await page.screenshot({ path: shot("01c-forbidden.png") });
  await page.click("#signout-button");
  await page.waitForSelector("#monitors .signin-needed");

  // 2. Sign in as the approver: monitors, history chart with threshold, events.
  await page.fill("#token", env("APPROVER_TOKEN"));
  await page.click("#signin-button");
  await page.waitForSelector(`tr[data-event-id="${env("APPROVE_EVENT")}"]`);
  seen.rows = await page.locator("#events tr").count();
  seen.monitors = await page.locator("article.monitor").count();
  expect(seen.monitors >= 1, "a monitor card");
  expect(await page.locator("article.monitor svg.chart path.score").count() >= 1, "a history line");
  expect(await page.locator("article.monitor svg.chart line.threshold").count() >= 1, "a threshold line");
  seen.badges = await page.locator("#events .badge").allTextContents();
  expect(seen.badges.includes("NEEDS_REVIEW"), "NEEDS_REVIEW badge");
  expect(await page.evaluate(() => sessionStorage.getItem("driftwatch.token") !== null), "token kept in sessionStorage");

  // 3. Filters: status IGNORED shows only ignored events.
  await page.selectOption("#filter-status", "ACTIONED");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => [...document.querySelectorAll("#events .badge")].every((b) => b.textContent === "ACTIONED"));
  seen.filteredRows = await page.locator("#events tr").count();
  await page.selectOption("#filter-status", "");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction((n) => document.querySelectorAll("#events tr").length === n, seen.rows);

  // 4. A decided event: details shown, buttons disabled.
  await page.click(`tr[data-event-id="${env("DECIDED_EVENT")}"]`);
  await page.waitForFunction((id) => document.getElementById("details-title").textContent === id, env("DECIDED_EVENT"));
  expect(await page.isDisabled("#approve"), "approve disabled for a decided event");
  expect(await page.isDisabled("#ignore"), "ignore disabled for a decided event");

  // 4b. An event whose monitor has no spec.retraining: nothing to trigger, so only Ignore is offered.
  const nothing = env("NOTHING_EVENT");
  await page.click(`tr[data-event-id="${nothing}"]`);
  await page.waitForFunction((id) => document.getElementById("details-title").textContent === id, nothing);
  await page.waitForFunction(() => /Nothing to trigger/.test(document.getElementById("decision-feedback").textContent));
  expect(await page.isDisabled("#approve"), "approve disabled when there is nothing to trigger");
  expect(await page.isEnabled("#ignore"), "ignore still offered when there is nothing to trigger");
  expect((await page.textContent("#details-facts")).includes("nothing to trigger: DriftMonitor bare has no spec.retraining"), "the facts say why");
  seen.nothingFeedback = await page.textContent("#decision-feedback");

  // 5. The event in review: every detector, windows, samples, the distribution picture; approve with a reason.
  const target = env("APPROVE_EVENT");
  await page.click(`tr[data-event-id="${target}"]`);
  await page.waitForFunction((id) => document.getElementById("details-title").textContent === id, target);
  seen.detectorRows = await page.locator("#details-scores tr").count();
  expect(seen.detectorRows === 4, "four detector rows, got " + seen.detectorRows);
  const facts = await page.textContent("#details-facts");
  expect(facts.includes("Reference window") && facts.includes("reference 20000 of 48211"), "windows and samples shown");
  expect(await page.locator("#details-distribution svg").count() === 1, "distribution picture");
  expect(await page.isEnabled("#approve"), "approve enabled in review");
  // What changed and where: the slices table, the region shares, the example points as links.
  await page.waitForSelector("#details-explanation:not([hidden])");
  seen.sliceRows = await page.locator("#explanation-slices tr").allTextContents();
  expect(seen.sliceRows.length === 3, "three slice rows, got " + seen.sliceRows.length);
  expect(seen.sliceRows[0].includes("cam-7") && seen.sliceRows[0].includes("drifted") && seen.sliceRows[0].includes("640 (12.8%)"), "the drifted camera first: " + seen.sliceRows[0]);
  expect(seen.sliceRows[1].includes("appeared"), "an appeared slice");
  seen.regionRows = await page.locator("#explanation-regions tr").allTextContents();
  expect(seen.regionRows[0].includes("new") && seen.regionRows[0].includes("260 (5.2%)"), "the new region: " + seen.regionRows[0]);
  expect(await page.locator("#explanation-regions tr:first-child .share.comparison").count() === 1, "region share bars");
  const links = await page.locator("#explanation-examples a").evaluateAll((as) => as.map((a) => [a.href, a.rel, a.target]));
  seen.exampleLinks = links.map((l) => l[0]);
  expect(links.length === 3, "three example links, got " + links.length);
  expect(links[0][0] === "https://frames.example.com/cam-7/48211.jpg" && links[0][1] === "noopener noreferrer" && links[0][2] === "_blank", "example links open the frame: " + links[0]);
  expect((await page.textContent("#explanation-examples")).includes("region 3 (new): 50017"), "region examples listed");
  expect(await page.locator("#explanation-examples img").count() === 0, "no thumbnails without a configured image origin");
  await page.locator("#details").screenshot({ path: shot("04-explanation.png") });
  if (process.env.DOCS_SCREENSHOT) await page.locator("#details").screenshot({ path: process.env.DOCS_SCREENSHOT });
  await page.screenshot({ path: shot("02-details.png"), fullPage: true });
  await page.fill("#reason", "new camera firmware shifted the embeddings");
  await page.click("#approve");
  await page.waitForFunction(() => /packaging job/.test(document.getElementById("decision-feedback").textContent));
  seen.approveFeedback = await page.textContent("#decision-feedback");
  await page.waitForFunction(() => /Approve by system:serviceaccount:/.test(document.getElementById("details-facts").textContent));
  expect(await page.isDisabled("#approve"), "approve disabled after the decision");
  seen.approvedStatus = await page.textContent(`tr[data-event-id="${target}"] .badge`);

  // 6. Ignore another event: the status changes to IGNORED in the table.
  const other = env("IGNORE_EVENT");
  await page.click(`tr[data-event-id="${other}"]`);
  await page.waitForFunction((id) => document.getElementById("details-title").textContent === id, other);
  await page.fill("#reason", "seasonal traffic, expected");
  await page.click("#ignore");
  await page.waitForFunction((id) => document.querySelector(`tr[data-event-id="${id}"] .badge`)?.textContent === "IGNORED", other, { timeout: 20000 });
  seen.ignoredStatus = "IGNORED";
  await page.click(`tr[data-event-id="${target}"]`);
  await page.waitForFunction((id) => document.getElementById("details-title").textContent === id, target);
  await page.screenshot({ path: shot("dashboard.png"), fullPage: true });

  // 7. A viewer may look but not decide: a clear 403 message.
  const viewer = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  await viewer.goto(home, { waitUntil: "domcontentloaded" });
  await viewer.fill("#token", env("VIEWER_TOKEN"));
  await viewer.click("#signin-button");
  const open = env("VIEWER_EVENT");
  await viewer.waitForSelector(`tr[data-event-id="${open}"]`);
  await viewer.click(`tr[data-event-id="${open}"]`);
  await viewer.waitForFunction((id) => document.getElementById("details-title").textContent === id, open);
  await viewer.click("#approve");
  await viewer.waitForFunction(() => /not allowed/.test(document.getElementById("decision-feedback").textContent));
  seen.viewerFeedback = await viewer.textContent("#decision-feedback");
  await viewer.screenshot({ path: shot("03-viewer-forbidden.png"), fullPage: true });

  expect(foreign.length === 0, "no request left the server: " + foreign.join(", "));
  expect(consoleErrors.length === 0, "no script errors: " + consoleErrors.join(" | "));
});
