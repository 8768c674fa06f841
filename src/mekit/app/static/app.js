// mekit app: the page shell (tabs, error line) and the helpers every screen uses.
//
// A screen is a module in screens/<id>.js exporting `mount(root, app)`; `root` is an empty
// element to fill and `app` is the object exported below (api, watchJob, el, table, ...).
// The server lists the screens in GET /api/info (mekit/app/server.py, SCREENS); this file
// builds the tabs from that list and loads a screen's module when its tab is opened.
// Plain ES modules, no build step, nothing fetched from outside this server.

/** Every request that changes something carries this header (the server refuses it otherwise). */
const WRITE_HEADERS = { "X-Mekit": "1" };

/** Call the API; resolves to the JSON answer, rejects with an Error whose message is one line. */
export async function api(path, { method = "GET", body, query } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q.set(k, v);
    url += (url.includes("?") ? "&" : "?") + q.toString();
  }
  const opts = { method, headers: method === "GET" ? {} : { ...WRITE_HEADERS } };
  if (body !== undefined) {
    if (body instanceof Blob) { opts.body = body; }
    else { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  }
  let res;
  try { res = await fetch(url, opts); }
  catch (e) { throw new Error("the mekit app does not answer (is it still running?)"); }
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

/** The URL of a file a job wrote (relative to its folder). */
export function jobFile(jobId, rel) {
  return `/api/jobs/${encodeURIComponent(jobId)}/files/${rel.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Poll a job until it finishes. `onUpdate(job, newEvents)` is called after every poll.
 * Returns { done: Promise<job>, cancel: () => Promise }.
 */
export function watchJob(id, onUpdate, intervalMs = 400) {
  let since = 0, stopped = false;
  const done = new Promise((resolve, reject) => {
    const tick = async () => {
      if (stopped) return;
      let job;
      try { job = await api(`/api/jobs/${encodeURIComponent(id)}`, { query: { since } }); }
      catch (e) { reject(e); return; }
      since = job.seq;
      try { onUpdate && onUpdate(job, job.events); } catch (e) { console.error(e); }
      if (["done", "failed", "cancelled"].includes(job.state)) resolve(job);
      else setTimeout(tick, intervalMs);
    };
    tick();
  });
  return {
    done,
    cancel: () => api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" }),
    stop: () => { stopped = true; },
  };
}

/** Create an element: el("div", {class: "x", onclick: fn}, child, "text", ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false)
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/**
 * A table: columns are names or {key, label, num, cls}; rows are arrays or objects.
 * `opts.total` adds a totals row over the numeric columns; `opts.max` caps the rows shown.
 */
export function table(columns, rows, opts = {}) {
  const cols = columns.map((c) => (typeof c === "string" ? { key: c, label: c } : c));
  const value = (r, c, i) => (Array.isArray(r) ? r[i] : r[c.key]);
  const max = opts.max || 500;
  const head = el("tr", {}, cols.map((c) => el("th", { class: c.num ? "num" : "" }, c.label ?? c.key)));
  const body = rows.slice(0, max).map((r) =>
    el("tr", {}, cols.map((c, i) => el("td", { class: [c.num ? "num" : "", c.cls || ""].join(" ").trim() },
      value(r, c, i) ?? ""))));
  if (opts.total) {
    body.push(el("tr", { class: "total" }, cols.map((c, i) => el("td", { class: c.num ? "num" : "" },
      i === 0 ? "total" : c.num ? rows.reduce((s, r) => s + (Number(value(r, c, i)) || 0), 0) : ""))));
  }
  const t = el("table", { class: "data" }, el("thead", {}, head), el("tbody", {}, body));
  const wrap = el("div", { class: "table-wrap" }, t);
  if (rows.length > max) wrap.append(el("div", { class: "muted small" }, `… ${rows.length - max} more rows`));
  return wrap;
}

/** Show one line of error at the top of the page (null clears it). */
export function showError(message) {
  const bar = document.getElementById("error");
  if (!message) { bar.hidden = true; bar.textContent = ""; return; }
  bar.textContent = String(message).split("\n")[0];
  bar.title = bar.textContent;
  bar.hidden = false;
}

/** Seconds as 12s / 3m05s. */
export function formatEta(s) {
  if (s === null || s === undefined) return "";
  s = Math.max(0, Math.round(s));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/**
 * A job status box with a progress bar and a Cancel button. `box.follow(jobId, label)` watches
 * a job and resolves to it when it finishes (the bar follows the stage that moved last).
 */
export function jobBox() {
  const state = el("span", { class: "job-state" });
  const label = el("span", { class: "job-label" });
  const detail = el("span", { class: "muted" });
  const fill = el("div");
  const bar = el("div", { class: "bar" }, fill);
  const cancel = el("button", { class: "danger small", type: "button", "data-role": "cancel" }, "Cancel");
  const node = el("div", { class: "job", hidden: true, "data-role": "job" },
    el("div", { class: "job-line" }, el("span", {}, label, " ", state), cancel), bar, el("div", { class: "job-line" }, detail));
  let watcher = null;
  cancel.addEventListener("click", async () => {
    if (!watcher) return;
    cancel.disabled = true;
    try { await watcher.cancel(); } catch (e) { showError(e.message); }
  });
  function render(job) {
    state.textContent = job.state;
    state.className = `job-state ${job.state}`;
    node.dataset.state = job.state;
    const p = job.progress;
    const running = job.state === "running" || job.state === "queued";
    cancel.hidden = !running;
    if (p && p.total) {
      bar.classList.remove("indeterminate");
      fill.style.width = `${Math.min(100, (100 * p.done) / p.total).toFixed(1)}%`;
      const eta = p.eta_s && running ? `, ${formatEta(p.eta_s)} left` : "";
      detail.textContent = `${p.stage}: ${p.done} / ${p.total}${eta}`;
    } else {
      bar.classList.toggle("indeterminate", running);
      fill.style.width = running ? "" : "100%";
      detail.textContent = p ? `${p.stage}…` : running ? "starting…" : "";
    }
    if (!running) {
      bar.classList.remove("indeterminate");
      if (job.state === "done") fill.style.width = "100%";
      detail.textContent = job.state === "done" ? `finished in ${((job.ended - job.started) || 0).toFixed(1)} s`
        : job.error || job.state;
    }
  }
  return {
    node,
    // onUpdate(job, newEvents), if given, is called after every poll (a screen drawing events)
    async follow(jobSummary, text, onUpdate) {
      node.hidden = false;
      node.dataset.label = text;
      node.dataset.job = jobSummary.id;
      cancel.disabled = false;
      label.textContent = text;
      render(jobSummary);
      watcher = watchJob(jobSummary.id, (job, events) => { render(job); if (onUpdate) onUpdate(job, events); });
      try { return await watcher.done; } finally { watcher = null; }
    },
  };
}

/** The folder picker: resolves to the chosen folder's path, or null. */
export function pickFolder(start) {
  const dialog = document.getElementById("folder-dialog");
  const list = document.getElementById("folder-list");
  const where = document.getElementById("folder-path");
  const note = document.getElementById("folder-note");
  const choose = document.getElementById("folder-choose");
  let current = null;
  async function open(path) {
    let data;
    try { data = await api("/api/browse", { query: path ? { path } : {} }); }
    catch (e) { if (path) return open(null); note.textContent = e.message; return; }
    current = data.path;
    where.textContent = data.path || "Allowed folders";
    choose.disabled = !data.path;
    list.replaceChildren();
    if (data.path) list.append(el("li", { class: "up", onclick: () => open(data.parent) },
      data.parent ? "↑ up" : "↑ allowed folders"));
    for (const f of data.folders) list.append(el("li", { class: "folder", onclick: () => open(f.path) }, f.name));
    note.textContent = data.path ? `${data.folders.length} folder(s), ${data.files} file(s) here` +
      (data.truncated ? " (list cut)" : "") : "Only these folders (and what is under them) can be opened.";
  }
  return new Promise((resolve) => {
    dialog.onclose = () => resolve(dialog.returnValue === "choose" ? current : null);
    dialog.returnValue = "";
    open(start || null);
    dialog.showModal();
  });
}

export const app = { api, watchJob, jobFile, el, table, showError, formatEta, jobBox, pickFolder, info: null };

// -- the shell: tabs and screens --------------------------------------------------------------
async function boot() {
  let info;
  try { info = await api("/api/info"); }
  catch (e) { showError(e.message); return; }
  app.info = info;
  document.getElementById("version").textContent = `v${info.version}`;
  const tabs = document.getElementById("tabs");
  const screens = info.screens;
  for (const s of screens) {
    tabs.append(el("button", {
      class: "tab", type: "button", id: `tab-${s.id}`, disabled: !!s.planned,
      title: s.planned ? "not available yet" : "", onclick: () => { location.hash = s.id; },
    }, s.title));
  }
  const mounted = {};
  async function show() {
    const id = location.hash.slice(1) || screens.find((s) => !s.planned)?.id;
    const s = screens.find((x) => x.id === id && !x.planned) || screens.find((x) => !x.planned);
    if (!s) return;
    for (const b of tabs.children) b.classList.toggle("active", b.id === `tab-${s.id}`);
    const host = document.getElementById("screen");
    showError(null);
    if (!mounted[s.id]) {
      const root = el("div", { class: "screen-root", id: `screen-${s.id}` });
      mounted[s.id] = root;
      try {
        const mod = await import(`/static/${s.script}`);
        host.replaceChildren(root);
        await mod.mount(root, app);
      } catch (e) { showError(`the ${s.title} screen could not load: ${e.message}`); return; }
    } else {
      host.replaceChildren(mounted[s.id]);
    }
  }
  window.addEventListener("hashchange", show);
  await show();
}

boot();
