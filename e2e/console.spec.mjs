// Clicks through the local console page in headless Chromium.
// Usage: node e2e/console.spec.mjs <base URL> <screenshot path>
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tools", "package.json"));
const { chromium } = require("playwright-core");

const [base, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = (msg) => { throw new Error(msg); };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);
  await page.goto(base + "/");
  const status = () => page.textContent("#status");
  const output = () => page.textContent("#output");
  const step = async (button, want) => {
    // A previous step may have ended with the same status: clear it first.
    await page.evaluate(() => { document.getElementById("status").textContent = ""; });
    await page.click(button);
    await page.waitForFunction((w) => document.getElementById("status").textContent.endsWith("→ " + w), String(want));
    return JSON.parse((await output()).replace("(no body)", "null"));
  };

  await page.fill("#username", "zoe");
  const signup = await step("#signup", 201);
  if (!signup.sub) fail("sign-up answered no sub");
  await page.waitForFunction(() => document.getElementById("who").textContent.includes("zoe"));

  const account = await step("#account", 200);
  if (!/^u[0-9a-f]{32}$/.test(account.user_id)) fail("account view: " + JSON.stringify(account));
  if ("user_password" in account || "user_api_secret" in account) fail("account view carries a secret");

  const again = await step("#provision", 200);
  if (again.user_id !== account.user_id) fail("POST /users gave another account");

  const token = await step("#token", 200);
  if (!/^UAT/.test(token.user_access_token)) fail("no user access token");

  await step("#delete", 204);
  const gone = await step("#account", 404);
  if (gone.error.code !== "not_provisioned") fail("after delete: " + JSON.stringify(gone));

  await step("#provision", 201);
  await step("#account", 200);
  await page.screenshot({ path: shot, fullPage: true });
  await step("#delete", 204);
  console.log("console click-through passed: " + (await status()));
} finally {
  await browser.close();
}
