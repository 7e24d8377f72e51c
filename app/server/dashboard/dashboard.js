// patchbay's jobs dashboard. Served by the binary itself under a strict
// Content-Security-Policy (no inline script, no external origin). Every
// text that came from GitHub is put on the page with textContent, never as
// HTML, so a title like "<script>" shows as text.
"use strict";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "dead"];
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function link(href, text) {
  const a = el("a", text);
  // only http(s) links; anything else stays text
  if (/^https?:\/\//.test(href) || href.startsWith("/")) a.href = href;
  a.rel = "noopener noreferrer";
  return a;
}

async function api(path, options) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || ("HTTP " + r.status));
  return body;
}

function showError(e) {
  const p = $("error");
  p.textContent = e ? String(e.message || e) : "";
  p.hidden = !e;
}

function duration(ms) {
  if (ms === undefined || ms === null || ms < 0) return "";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
}

function took(job) {
  if (!job.started_at_ms) return "";
  const end = job.finished_at_ms || Date.now();
  return duration(end - job.started_at_ms);
}

// ---- the list

function renderFilters(current) {
  const nav = $("filters");
  nav.replaceChildren();
  for (const s of [""].concat(STATUSES)) {
    const a = link("/jobs" + (s ? "?status=" + s : ""), s || "all");
    if (s === current) a.className = "current";
    nav.appendChild(a);
  }
}

async function refreshList(status) {
  const jobs = await api("/api/jobs" + (status ? "?status=" + encodeURIComponent(status) : ""));
  const tbody = document.querySelector("#jobs tbody");
  tbody.replaceChildren();
  for (const job of jobs) {
    const tr = el("tr");
    tr.dataset.id = job.id;
    const idCell = el("td");
    idCell.appendChild(link("/jobs/" + encodeURIComponent(job.id), job.id));
    tr.appendChild(idCell);
    tr.appendChild(el("td", job.kind));
    const st = el("td");
    st.appendChild(el("span", job.status, "status " + job.status));
    tr.appendChild(st);
    const where = el("td");
    where.appendChild(job.html_url ? link(job.html_url, job.repo + "#" + job.number) : el("span", job.repo + "#" + job.number));
    tr.appendChild(where);
    const title = el("td", job.title || job.instruction || "", "title");
    title.title = job.title || "";
    tr.appendChild(title);
    tr.appendChild(el("td", job.attempts));
    tr.appendChild(el("td", job.created_at));
    tr.appendChild(el("td", took(job)));
    const pr = el("td");
    if (job.pr_url) pr.appendChild(link(job.pr_url, "pull request"));
    else if (job.answer_url) pr.appendChild(link(job.answer_url, "answer"));
    else if (job.outcome === "answered") pr.appendChild(el("span", "answered"));
    tr.appendChild(pr);
    tbody.appendChild(tr);
  }
  $("empty").hidden = jobs.length > 0;
}

// ---- one job

const FIELDS = ["kind", "repo", "number", "sender", "instruction", "attempts", "delivery", "created_at",
                "error", "worker", "supersedes", "stops", "environment", "outcome", "answer_url"];

function renderJob(job) {
  $("job-id").textContent = job.id;
  const st = $("job-status");
  st.textContent = job.status;
  st.className = "status " + job.status;
  const where = $("job-where");
  where.textContent = job.repo + "#" + job.number;
  if (job.html_url) where.href = job.html_url;
  $("job-title").textContent = job.title || "";
  $("job-pr-line").hidden = !job.pr_url;
  if (job.pr_url) { $("job-pr").textContent = job.pr_url; $("job-pr").href = job.pr_url; }
  const dl = $("job-fields");
  dl.replaceChildren();
  for (const f of FIELDS) {
    if (job[f] === undefined || job[f] === null || job[f] === "") continue;
    dl.appendChild(el("dt", f));
    dl.appendChild(el("dd", job[f]));
  }
  if (job.started_at_ms) { dl.appendChild(el("dt", "took")); dl.appendChild(el("dd", took(job))); }
  const final = ["succeeded", "failed", "cancelled", "dead"].includes(job.status);
  $("cancel").disabled = final;
  $("retry").disabled = !["failed", "cancelled", "dead"].includes(job.status);
}

let logCursor = "0";

async function refreshLog(id) {
  const lines = await api("/api/jobs/" + encodeURIComponent(id) + "/log?after=" + encodeURIComponent(logCursor));
  const pre = $("log");
  for (const l of lines) {
    const when = new Date(Number(l.ts)).toISOString().slice(11, 23);
    pre.appendChild(document.createTextNode(when + " " + (l.level || "info") + " " + l.msg + "\n"));
    logCursor = l.id;
  }
  if (lines.length) pre.scrollTop = pre.scrollHeight;
}

async function act(id, verb) {
  try {
    const r = await api("/api/jobs/" + encodeURIComponent(id) + "/" + verb, {
      method: "POST", headers: { "X-Patchbay-Action": verb },
    });
    $("action-result").textContent = r.result || "";
    renderJob(await api("/api/jobs/" + encodeURIComponent(id)));
  } catch (e) {
    $("action-result").textContent = e.message;
  }
}

// ---- start

async function main() {
  const m = location.pathname.match(/^\/jobs\/([0-9]+)$/);
  const status = new URLSearchParams(location.search).get("status") || "";
  renderFilters(m ? null : status);
  if (m) {
    const id = m[1];
    $("job-view").hidden = false;
    $("cancel").addEventListener("click", () => act(id, "cancel"));
    $("retry").addEventListener("click", () => act(id, "retry"));
    const tick = async () => {
      try { renderJob(await api("/api/jobs/" + id)); await refreshLog(id); showError(null); }
      catch (e) { showError(e); }
    };
    await tick();
    setInterval(tick, 1000);
  } else {
    $("list-view").hidden = false;
    const tick = async () => {
      try { await refreshList(status); showError(null); } catch (e) { showError(e); }
    };
    await tick();
    setInterval(tick, 2000);
  }
}

main();
