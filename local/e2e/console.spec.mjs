// Clicks through the local console in headless Chromium: sign up and
// confirm with Amplify v6 in the page, sign in with its default flow
// (USER_SRP_AUTH, then PASSWORD_VERIFIER), the API through the generated
// client, then leave the pool, after which the simulator no longer holds
// the user.
// Usage: node e2e/console.spec.mjs <base URL> <screenshot path> <simulator's /_sim URL>
// It asks for the confirmation code on stdout ("CODE? <email>") and reads
// it from stdin, as a user reads it from the make run terminal.
import http from "node:http";
import readline from "node:readline";
import { launch } from "./browser.mjs";

const [base, shot, sim] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin });
const stdin = lines[Symbol.asyncIterator]();
const ask = async (question) => {
  console.log(question);
  const { value, done } = await stdin.next();
  if (done) throw new Error("no answer to " + question);
  return value.trim();
};
// node:http, not fetch: fetch sends Sec-Fetch-Mode, which the simulator's
// port refuses as a browser's.
const simUsers = () => new Promise((resolve, reject) => {
  http.get(sim, (res) => {
    let body = "";
    res.on("data", (chunk) => { body += chunk; });
    res.on("end", () => res.statusCode === 200 ? resolve(JSON.parse(body).users) : reject(new Error(sim + ": " + res.statusCode + " " + body)));
  }).on("error", reject);
});

const browser = await launch();
const fail = (msg) => { throw new Error(msg); };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  const cognitoCalls = [];
  page.on("request", (req) => {
    const target = req.headers()["x-amz-target"];
    if (!target) return;
    const op = target.split(".").pop();
    const body = JSON.parse(req.postData() || "{}");
    cognitoCalls.push(op + (body.AuthFlow ? ":" + body.AuthFlow : "") + (body.ChallengeName ? ":" + body.ChallengeName : ""));
  });
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  const response = await page.goto(base + "/");
  const headers = response.headers();
  if (headers["x-frame-options"] !== "DENY" || headers["x-content-type-options"] !== "nosniff" ||
    !/script-src 'self'/.test(headers["content-security-policy"] || "")) fail("the console's headers: " + JSON.stringify(headers));
  await page.waitForFunction(() => document.body.dataset.ready === "true");
  const output = () => page.textContent("#output");
  const step = async (button, want) => {
    // A previous step may have ended with the same status: clear it first.
    await page.evaluate(() => { document.getElementById("status").textContent = ""; });
    await page.click(button);
    await page.waitForFunction((w) => {
      const s = document.getElementById("status").textContent;
      return s.endsWith("→ " + w) || s.endsWith("→ error");
    }, String(want));
    const status = await page.textContent("#status");
    if (!status.endsWith("→ " + want)) fail(button + ": " + status + " " + (await output()));
    const body = await output();
    return body.startsWith("{") ? JSON.parse(body) : body;
  };

  const email = "zoe@example.com";
  await page.fill("#username", email);
  await page.fill("#password", "Zoe-local-passw0rd");
  const signup = await step("#signup", "code sent");
  if (!signup.userSub || signup.codeDeliveryDetails?.destination !== email) fail("sign-up answered " + JSON.stringify(signup));
  await page.screenshot({ path: shot.replace(/\.png$/, "-signup.png"), fullPage: true });
  await page.fill("#code", await ask("CODE? " + email));
  await step("#confirm", "signed in");
  await page.waitForFunction(() => document.getElementById("who").textContent.includes("zoe@example.com"));
  for (const op of ["SignUp", "ConfirmSignUp", "InitiateAuth:USER_SRP_AUTH", "RespondToAuthChallenge:PASSWORD_VERIFIER"]) {
    if (!cognitoCalls.includes(op)) fail("the page never called Cognito's " + op + ": " + cognitoCalls);
  }
  if (cognitoCalls.some((c) => c.includes("USER_PASSWORD_AUTH"))) fail("the page sent the password itself: " + cognitoCalls);

  const account = await step("#account", 200);
  if (account.user_id !== "u" + signup.userSub.replaceAll("-", "")) fail("account view: " + JSON.stringify(account));
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
  await step("#signin", "signed in");
  await step("#account", 200);

  // Leaving the pool deletes the Kandy account: the simulator soon holds
  // one user fewer.
  const before = await simUsers();
  await step("#leave", "left the pool");
  if (!cognitoCalls.includes("DeleteUser")) fail("the page never called Cognito's DeleteUser: " + cognitoCalls);
  for (let tries = 0; (await simUsers()) !== before - 1; tries++) {
    if (tries === 50) fail("10 s after the user left the pool, the simulator holds " + (await simUsers()) + " users, " + before + " before");
    await new Promise((r) => setTimeout(r, 200));
  }
  if (pageErrors.length > 0) fail("the page threw: " + pageErrors.join("; "));
  await page.screenshot({ path: shot.replace(/\.png$/, "-left.png"), fullPage: true });
  console.log("console click-through passed: Cognito calls " + [...new Set(cognitoCalls)].join(", "));
} finally {
  lines.close(); // else the open stdin keeps node running
  await browser.close();
}
