// Opens pages in headless Chromium that call the API from their own
// origin, and prints what each page saw, one JSON line per page.
// Usage: node e2e/cors.spec.mjs <page URL>...
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tools", "package.json"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  for (const url of process.argv.slice(2)) {
    const page = await browser.newPage();
    page.setDefaultTimeout(15000);
    await page.goto(url);
    await page.waitForFunction(() => document.title.startsWith("status ") || document.title.startsWith("error "));
    console.log(JSON.stringify({ page: new URL(url).origin, saw: await page.title() }));
    await page.close();
  }
} finally {
  await browser.close();
}
