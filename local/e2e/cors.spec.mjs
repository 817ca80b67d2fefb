// Opens pages in headless Chromium; each makes calls from its own origin
// (planPage in makerun_host_test.go) and says what each call got. Prints
// one JSON line per page: {"page": its origin, "saw": {call: what it got}}.
// Usage: node e2e/cors.spec.mjs <page URL>...; CHROMIUM_FLAGS, a JSON
// list, adds flags (a host resolver rule for a rebound name).
import { launch } from "./browser.mjs";

const browser = await launch(JSON.parse(process.env.CHROMIUM_FLAGS || "null") ?? []);
try {
  for (const url of process.argv.slice(2)) {
    const page = await browser.newPage();
    page.setDefaultTimeout(120000);
    await page.goto(url);
    await page.waitForFunction(() => document.title === "done");
    console.log(JSON.stringify({ page: new URL(url).origin, saw: await page.evaluate(() => window.results) }));
    await page.close();
  }
} finally {
  await browser.close();
}
