// Example-point thumbnails in Debian's headless chromium (playwright-core): with an image origin
// configured, a display field that links to that origin shows the image inside its link (fetched without
// a referrer); a link to any other origin stays a plain link, and the page's policy refuses that origin's
// images even when a script asks for one.
// Env: BASE_URL, TOKEN, NAMESPACE, EVENT, ALLOWED_IMAGE, OTHER_IMAGE, SCREENSHOT_DIR.
// Exits non-zero on the first failed expectation; prints one JSON line of what it saw.
import { env, expect, run, shot } from "./harness.mjs";

await run(async (browser, seen) => {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(env("BASE_URL"))) outside.push(r.url()); });
  await page.goto(env("BASE_URL") + "/?namespace=" + encodeURIComponent(env("NAMESPACE")), { waitUntil: "domcontentloaded" });
  await page.fill("#token", env("TOKEN"));
  await page.click("#signin-button");
  const event = env("EVENT");
  await page.waitForSelector(`tr[data-event-id="${event}"]`);
  await page.click(`tr[data-event-id="${event}"]`);
  await page.waitForFunction((id) => document.getElementById("details-title").textContent === id, event);
  await page.waitForSelector("#details-explanation:not([hidden])");

  // The allowed origin's image is shown, inside the link to it, and it loaded.
  const thumbs = page.locator("#explanation-examples img.thumbnail");
  expect(await thumbs.count() === 1, "one thumbnail, got " + await thumbs.count());
  expect(await thumbs.getAttribute("src") === env("ALLOWED_IMAGE"), "the thumbnail shows the allowed image");
  expect(await thumbs.evaluate((img) => img.closest("a").href) === env("ALLOWED_IMAGE"), "the thumbnail sits in its link");
  await page.waitForFunction(() => {
    const img = document.querySelector("#explanation-examples img.thumbnail");
    return img && img.complete;
  });
  seen.size = await thumbs.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  expect(seen.size[0] === 160 && seen.size[1] === 90, "the image loaded: " + seen.size);

  // Another origin's URL stays a plain link.
  const other = page.locator(`#explanation-examples a[href="${env("OTHER_IMAGE")}"]`);
  expect(await other.count() === 1, "the other origin's link is listed");
  expect(await other.locator("img").count() === 0, "no thumbnail for another origin");
  seen.texts = await page.locator("#explanation-examples li").allTextContents();
  seen.outside = [...outside];
  expect(seen.outside.length === 1 && seen.outside[0] === env("ALLOWED_IMAGE"), "only the allowed image left the server: " + seen.outside.join(", "));

  // And the page's policy refuses that origin's images whatever asks for them.
  const violation = await page.evaluate((url) => new Promise((resolve) => {
    document.addEventListener("securitypolicyviolation", (e) => resolve({ directive: e.effectiveDirective, blocked: e.blockedURI }), { once: true });
    const img = document.createElement("img");
    img.src = url;
    document.body.append(img);
    setTimeout(() => resolve(null), 5000);
  }), env("OTHER_IMAGE"));
  seen.violation = violation;
  expect(violation && violation.directive === "img-src", "another origin's image is refused: " + JSON.stringify(violation));
  await page.locator("#details").screenshot({ path: shot("05-thumbnails.png") });
});
