// Drives onramp's progress page in Debian's headless Chromium (playwright-core).
//   node page.cjs URL OUTDIR EXPECT   (NODE_PATH: where playwright-core is)
// Opens URL, samples the page every 50 ms until its verdict shows, and
// writes OUTDIR/samples.json (bar values, capabilities, verdict) and
// screenshots (start, middle, end). EXPECT is "finished" (watch an install
// to its end) or "interrupted" (the page of a killed install). Exits 1
// naming what is wrong: the bar going back, not reaching 100 % on success,
// no verdict within the time limit.
"use strict";
const { chromium } = require("playwright-core");
const { writeFileSync } = require("node:fs");

const [url, outdir, expect] = process.argv.slice(2);

(async function main() {
  const LIMIT_MS = 180000;

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  let code = 0;
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const consoleErrors = [];
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    await page.goto(url);
    await page.screenshot({ path: `${outdir}/start.png` });
    const samples = [];
    const t0 = Date.now();
    let shotMiddle = false;
    for (;;) {
      const s = await page.evaluate(() => ({
        bar: parseFloat(document.getElementById("bar").getAttribute("aria-valuenow")),
        caps: Array.from(document.querySelectorAll("#caps li")).map((li) => li.dataset.capability),
        verdict: document.getElementById("verdict").dataset.status,
        verdictText: document.getElementById("verdict").textContent,
        rows: Array.from(document.querySelectorAll("#rows tr")).map((tr) => ({
          id: tr.dataset.id, status: tr.cells[1].textContent, bytes: tr.cells[2].textContent })),
        conn: document.getElementById("conn").dataset.state,
        output: document.getElementById("output").textContent.length,
      }));
      s.t = Date.now() - t0;
      samples.push(s);
      if (!shotMiddle && s.bar > 30 && !s.verdict) {
        await page.screenshot({ path: `${outdir}/middle.png` });
        shotMiddle = true;
      }
      if (s.verdict) break;
      if (s.t > LIMIT_MS) throw new Error(`no verdict on the page after ${LIMIT_MS} ms (last: ${JSON.stringify(s)})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${outdir}/end.png`, fullPage: true });
    const last = samples[samples.length - 1];
    writeFileSync(`${outdir}/samples.json`, JSON.stringify({ samples, consoleErrors }, null, 1));
    for (let i = 1; i < samples.length; i++) {
      if (samples[i].bar < samples[i - 1].bar) {
        throw new Error(`the bar went back: ${samples[i - 1].bar} then ${samples[i].bar} at ${samples[i].t} ms`);
      }
    }
    if (consoleErrors.length) throw new Error(`the page logged errors: ${consoleErrors.join("; ")}`);
    if (expect === "finished" && last.verdict === "success" && last.bar !== 100) {
      throw new Error(`success, but the bar stands at ${last.bar}`);
    }
    if (expect === "interrupted" && last.verdict !== "interrupted") {
      throw new Error(`expected the page to say interrupted, it says ${last.verdict}: ${last.verdictText}`);
    }
    const moving = new Set(samples.map((s) => s.bar)).size;
    console.log(JSON.stringify({ verdict: last.verdict, bar: last.bar, caps: last.caps, rows: last.rows,
                                 samples: samples.length, distinct_bar_values: moving }));
  } catch (e) {
    console.error(`page.cjs: ${e.message}`);
    code = 1;
  } finally {
    await browser.close();
  }
  process.exit(code);
})();
