// The browser the specs drive: CHROME_PATH, else the first Chrome or
// Chromium on PATH (the names the Makefile's chrome target looks for),
// launched headless with nothing that calls out on its own.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { accessSync, constants } from "node:fs";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "tools", "package.json"));
const { chromium } = require("playwright-core");

const names = ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome"];

function executable() {
  if (process.env.CHROME_PATH) return process.env.CHROME_PATH;
  for (const name of names) {
    for (const dir of (process.env.PATH || "").split(path.delimiter)) {
      const file = path.join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch { /* not here */ }
    }
  }
  throw new Error("no Chrome or Chromium on PATH (" + names.join(", ") + "): install one, or set CHROME_PATH");
}

export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: executable(),
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", ...extraArgs],
  });
}
