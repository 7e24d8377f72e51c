// Drives the jobs dashboard in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core, for test_dashboard.py. Prints one JSON object with
// what a user saw; the Python test makes the assertions and feeds the job's
// log while this watches.
//   node dashboard_browser.mjs BASE_URL TOKEN JOB_ID SCRIPT_JOB_ID SCREENSHOT SIGNAL_FILE
import { chromium } from "playwright-core";
import fs from "node:fs";

const [base, token, jobId, scriptJobId, screenshot, signalFile] = process.argv.slice(2);
const out = { dialogs: [], console_errors: [], csp_violations: 0 };
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  page.on("dialog", async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") out.console_errors.push(m.text()); });

  // without the token: refused
  const refused = await page.goto(base + "/jobs");
  out.without_token_status = refused.status();
  out.console_errors = []; // that 401 was the point; count only what follows

  // with it: the list
  await page.goto(base + "/jobs?token=" + encodeURIComponent(token));
  out.list_url = page.url();
  await page.waitForSelector("#jobs tbody tr", { timeout: 10000 });
  out.rows = await page.$$eval("#jobs tbody tr", (trs) => trs.map((tr) => ({
    id: tr.dataset.id, status: tr.querySelector(".status").textContent, title: tr.querySelector(".title").textContent,
  })));
  out.script_elements = await page.$$eval("script", (s) => s.length);

  // one job: its log grows while we watch, then cancel it
  await page.click(`#jobs tbody tr[data-id="${jobId}"] a`);
  await page.waitForSelector("#job-view:not([hidden])");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("running"), null, { timeout: 10000 });
  out.log_before = await page.$eval("#log", (e) => e.textContent);
  fs.writeFileSync(signalFile, "watching");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("step two done"), null,
                             { timeout: 15000 });
  out.log_after = await page.$eval("#log", (e) => e.textContent);
  await page.click("#cancel");
  await page.waitForFunction(() => document.getElementById("job-status").textContent === "cancelled", null,
                             { timeout: 15000 });
  out.status_after_cancel = await page.$eval("#job-status", (e) => e.textContent);
  await page.screenshot({ path: screenshot, fullPage: true });

  // the job whose title holds a script tag
  await page.goto(base + "/jobs/" + scriptJobId);
  await page.waitForFunction(() => document.getElementById("job-title").textContent.length > 0, null, { timeout: 10000 });
  out.script_title = await page.$eval("#job-title", (e) => e.textContent);
  out.script_title_children = await page.$eval("#job-title", (e) => e.children.length);
  out.script_elements_on_job_page = await page.$$eval("script", (s) => s.length);
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
