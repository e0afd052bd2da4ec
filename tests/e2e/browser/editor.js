// Shared helpers for the browser scripts: launch Debian's chromium through playwright-core and open
// ComfyUI's editor with the app ready. Launch flags: a closed network, no sandbox (root), no GPU.
"use strict";
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "node_modules", "playwright-core"));

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--autoplay-policy=no-user-gesture-required"];

async function openEditor(url, { executablePath = process.env.CHROMIUM || "/usr/bin/chromium" } = {}) {
  const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error" && /harmony/i.test(msg.text())) errors.push(msg.text());
  });
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph && window.app.extensionManager, null,
    { timeout: 120000 });
  await page.waitForFunction(() => window.LiteGraph.registered_node_types?.HarmonySampler, null,
    { timeout: 60000 });
  return { browser, page, errors };
}

async function readJson(file) {
  return JSON.parse(require("fs").readFileSync(file, "utf8"));
}

function writeJson(file, data) {
  require("fs").writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
}

module.exports = { openEditor, readJson, writeJson };
