// The Analyse screen: recordings (uploaded or picked by path, one or many) or the browser's
// camera, analysed with optional bundles; per recording the annotated video, a timeline drawn
// here (motion score, threshold, intensity, intervals by class, event markers), the intervals
// with their class probabilities, exports; for a batch, the average response aligned on the
// markers. Every computation is the server's (mekit/app/routes_analyse.py); this file draws.

// the SVG namespace name (an identifier, not a source: nothing is loaded from it), spelled so
// that no URL appears in the page's files
const SVG = ["http:", "", "www.w3.org", "2000", "svg"].join("/");
// matplotlib's tab10, as timeline.png colours the classes
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const KIND_COLOUR = { micro: "#444b5a", macro: "#98a2b3", other: "#c0c6d0" };

function svg(tag, attrs = {}, ...children) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, v);
  for (const c of children.flat()) if (c) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return n;
}
// the page's Content-Security-Policy refuses style attributes; the CSSOM is allowed
function styled(node, props) { for (const [k, v] of Object.entries(props)) node.style.setProperty(k, v); return node; }
const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
// the motion score's axis: linear up to 10 noise units, logarithmic above (as timeline.png)
const symlog = (v) => (v <= 10 ? v / 10 : 1 + Math.log10(v / 10));

export async function mount(root, app) {
  const { api, el, table, showError, jobBox, jobFile, watchJob } = app;
  const choices = await api("/api/analyse/choices");

  // -- the form (left) -----------------------------------------------------------------------
  const fileInput = el("input", { type: "file", id: "video-files", multiple: true, accept: choices.video_extensions.join(",") });
  const pathInput = el("input", { type: "text", id: "video-path", placeholder: "or a video's path inside an allowed folder", autocomplete: "off" });
  const addPathBtn = el("button", { type: "button", id: "add-path" }, "Add");
  const list = el("ul", { class: "rec-list", id: "rec-list" });
  const modelFile = el("input", { type: "file", id: "model-file", accept: ".mekit,.zip" });
  const modelPath = el("input", { type: "text", id: "model-path", placeholder: "classification bundle (.mekit), optional", autocomplete: "off" });
  const intensityFile = el("input", { type: "file", id: "intensity-file", accept: ".mekit,.zip" });
  const intensityPath = el("input", { type: "text", id: "intensity-path", placeholder: "intensity bundle (.mekit), optional", autocomplete: "off" });
  const detectorSel = el("select", { id: "analyse-detector" }, choices.face_detectors.map((d) =>
    el("option", { value: d.name, title: d.help }, d.name)));
  detectorSel.value = "auto";
  const runBtn = el("button", { type: "button", class: "primary", id: "run-analyse" }, "Analyse");
  const camStart = el("button", { type: "button", class: "primary", id: "camera-start" }, "Start camera");
  const camStop = el("button", { type: "button", class: "danger", id: "camera-stop", disabled: true }, "Stop");
  const camVideo = el("video", { id: "camera-video", class: "camera-video", muted: true, playsinline: true, autoplay: true, hidden: true });
  const camStats = el("div", { class: "muted small", id: "camera-stats" }, "The camera's frames are analysed as they come; Stop writes the outputs.");
  const job = jobBox();

  const field = (label, control, help) => el("label", { class: "field" }, el("span", {}, label), control, help);
  const form = el("div", { class: "form-col" },
    el("section", { class: "panel" },
      el("h2", {}, "Recordings"),
      field("Upload videos", fileInput, el("small", { class: "help" }, "One or many (a batch): each is analysed in turn.")),
      el("div", { class: "row" }, el("div", { class: "grow" }, pathInput), addPathBtn),
      list),
    el("section", { class: "panel" },
      el("h2", {}, "Bundles"),
      field("Classification", el("div", {}, modelFile, modelPath), el("small", { class: "help" }, "Labels each interval (from mekit train); without one, intervals are only spotted.")),
      field("Intensity", el("div", {}, intensityFile, intensityPath)),
      field("Face detector", detectorSel),
      el("div", { class: "row end" }, runBtn)),
    el("section", { class: "panel" },
      el("h2", {}, "Camera"),
      camVideo, camStats,
      el("div", { class: "row end" }, camStart, camStop)));

  // -- the results (right) ---------------------------------------------------------------------
  const liveOut = el("section", { class: "panel", id: "live-result", hidden: true });
  const resultOut = el("section", { class: "panel", id: "analyse-result" },
    el("h2", {}, "Results"), el("div", { class: "placeholder" }, "Upload one or more recordings and press Analyse, or start the camera."));
  const alignedOut = el("section", { class: "panel", id: "aligned-panel", hidden: true });
  root.append(el("div", { class: "columns" }, form, el("div", { class: "results" }, job.node, liveOut, resultOut, alignedOut)));

  // -- choosing recordings and bundles ----------------------------------------------------------
  const chosen = []; // {path, name}
  function drawList() {
    list.replaceChildren(...chosen.map((c, i) => el("li", { "data-path": c.path },
      el("span", { class: "grow", title: c.path }, c.name),
      el("button", { type: "button", class: "small link", title: "remove", onclick: () => { chosen.splice(i, 1); drawList(); } }, "×"))));
    if (!chosen.length) list.append(el("li", { class: "muted" }, "no recording yet"));
  }
  drawList();

  async function upload(file, kind) {
    const info = await api("/api/uploads", { method: "POST", body: file, query: { filename: file.name, kind } });
    return info;
  }
  fileInput.addEventListener("change", async () => {
    showError(null);
    for (const f of fileInput.files) {
      const item = el("li", { class: "muted" }, `uploading ${f.name}…`);
      list.append(item);
      try { const info = await upload(f, "video"); chosen.push({ path: info.path, name: f.name }); }
      catch (e) { showError(`${f.name}: ${e.message}`); }
      item.remove();
    }
    fileInput.value = "";
    drawList();
  });
  addPathBtn.addEventListener("click", () => {
    const p = pathInput.value.trim();
    if (!p) return;
    chosen.push({ path: p, name: p.split("/").pop() });
    pathInput.value = "";
    drawList();
  });
  for (const [input, target] of [[modelFile, modelPath], [intensityFile, intensityPath]]) {
    input.addEventListener("change", async () => {
      const f = input.files[0];
      if (!f) return;
      showError(null);
      target.value = `uploading ${f.name}…`;
      try { target.value = (await upload(f, "bundle")).path; }
      catch (e) { target.value = ""; showError(`${f.name}: ${e.message}`); }
      input.value = "";
    });
  }
  const bundles = () => ({ model: modelPath.value.trim() || null, intensity: intensityPath.value.trim() || null,
    detector: detectorSel.value });

  // -- a batch ----------------------------------------------------------------------------------
  let busy = false;
  function setBusy(b) { busy = b; runBtn.disabled = b; camStart.disabled = b; }
  runBtn.addEventListener("click", async () => {
    showError(null);
    setBusy(true);
    try {
      const submitted = await api("/api/analyse/batch", { method: "POST", body: { ...bundles(), videos: chosen.map((c) => c.path) } });
      const n = chosen.length;
      const finished = await job.follow(submitted, n > 1 ? `Analysis of ${n} recordings` : "Analysis");
      if (finished.state === "done") await showResults(finished);
      else if (finished.state === "failed") showError(finished.error);
    } catch (e) { showError(e.message); }
    finally { setBusy(false); }
  });

  // -- results ----------------------------------------------------------------------------------
  let current = null; // {job, rec, timeline, markers}
  let markersAll = {};

  async function showResults(jobDone) {
    const r = jobDone.result;
    try { markersAll = (await api(`/api/analyse/${jobDone.id}/markers`)).markers; } catch (e) { markersAll = {}; }
    const recSel = el("select", { id: "recording" }, r.recordings.map((rec) =>
      el("option", { value: rec.key }, `${rec.name} — ${rec.n_intervals} intervals`)));
    const body = el("div", {});
    const head = el("div", { class: "section-title" }, el("h2", {}, "Results"),
      r.recordings.length > 1 ? el("label", { class: "inline" }, "Recording ", recSel) : "");
    resultOut.replaceChildren(head, body);
    resultOut.dataset.job = jobDone.id;
    const open = async () => {
      const rec = r.recordings.find((x) => x.key === recSel.value) || r.recordings[0];
      await showRecording(jobDone, rec, r.classes || [], body);
    };
    recSel.addEventListener("change", open);
    await open();
    if (!r.live) showAligned(jobDone);
    else alignedOut.hidden = true;
  }

  async function showRecording(jobDone, rec, classes, body) {
    const tl = await (await fetch(jobFile(jobDone.id, rec.files.timeline))).json();
    current = { job: jobDone, rec, tl, classes, markers: [...(markersAll[rec.key] || [])] };
    const player = rec.files.web_video
      ? el("video", { id: "player", class: "player", controls: true, preload: "auto", src: jobFile(jobDone.id, rec.files.web_video) })
      : el("div", { class: "placeholder", id: "player" }, "No playable video for this recording.");
    const timeline = el("div", { class: "timeline", id: "timeline" });
    const detail = el("div", { class: "interval-detail", id: "interval-detail" },
      el("span", { class: "muted" }, "Click an interval on the timeline or in the table to see its class probabilities."));
    const addMarker = el("button", { type: "button", id: "add-marker" }, "Add marker at current time");
    const markerLabel = el("input", { type: "text", id: "marker-label", placeholder: "marker label (e.g. stimulus)", value: "stimulus" });
    const markerList = el("div", { class: "marker-list", id: "marker-list" });
    const stats = el("div", { class: "summary", id: "recording-summary" },
      el("b", {}, rec.name), `: ${rec.n_intervals} intervals`,
      Object.keys(rec.kinds || {}).length ? ` (${Object.entries(rec.kinds).map(([k, n]) => `${n} ${k}`).join(", ")})` : "",
      `, ${rec.frames} frames at ${fmt(rec.fps, 0)} fps (${fmt(rec.duration_s, 1)} s)`,
      rec.frames_without_face ? el("span", { class: "badge warn" }, `${rec.frames_without_face} frames without a face`) : "",
      rec.dropped ? el("span", { class: "badge warn" }, `${rec.dropped} frames dropped`) : "");
    const exports = el("div", { class: "exports", id: "exports" }, "Export: ",
      [["intervals.csv", "intervals (CSV)"], ["intervals.json", "intervals (JSON)"], ["frames.csv", "frames (CSV)"],
        ["annotated", "annotated video (mp4)"], ["web_video", "annotated video (WebM)"], ["timeline.png", "timeline (PNG)"],
        ["megc_spotting.csv", "MEGC spotting"]]
        .filter(([k]) => rec.files[k]).map(([k, label]) => el("a", { href: jobFile(jobDone.id, rec.files[k]), download: "" }, label)),
      el("a", { href: `/api/analyse/${encodeURIComponent(jobDone.id)}/markers`, download: "markers.json", id: "export-markers" }, "markers (JSON)"));
    const intervalsBox = el("div", { id: "intervals-table" });
    body.replaceChildren(stats, el("div", { class: "player-wrap" }, player), timeline,
      el("div", { class: "row marker-row" }, markerLabel, addMarker,
        el("span", { class: "muted small" }, "Click the timeline to seek; double-click it to add a marker there.")),
      markerList, detail, intervalsBox, exports);

    const draw = () => drawTimeline(timeline, current, player, detail);
    draw();
    drawIntervals(intervalsBox, tl, classes, player, detail);
    drawMarkers(markerList, draw);
    addMarker.addEventListener("click", () => {
      const t = player.currentTime !== undefined ? player.currentTime : 0;
      addMarkerAt(t, markerLabel.value, draw, markerList);
    });
    timeline.addEventListener("marker", (e) => addMarkerAt(e.detail.t, markerLabel.value, draw, markerList));
    if (player.tagName === "VIDEO") {
      player.addEventListener("timeupdate", () => movePlayhead(timeline, current, player.currentTime));
      player.addEventListener("seeked", () => movePlayhead(timeline, current, player.currentTime));
    }
  }

  async function saveMarkers(list) {
    const saved = await api(`/api/analyse/${current.job.id}/markers/${current.rec.key}`, { method: "PUT", body: { markers: list } });
    current.markers = saved.markers;
    markersAll[current.rec.key] = saved.markers;
  }
  async function addMarkerAt(t, label, redraw, listNode) {
    showError(null);
    try { await saveMarkers([...current.markers, { t: Math.round(t * 1000) / 1000, label: label.trim() }]); }
    catch (e) { showError(e.message); return; }
    redraw();
    drawMarkers(listNode, redraw);
  }
  function drawMarkers(node, redraw) {
    node.replaceChildren(...current.markers.map((m, i) => el("span", { class: "marker-chip", "data-t": m.t },
      `▼ ${fmt(m.t, 2)} s${m.label ? ` ${m.label}` : ""}`,
      el("button", { type: "button", class: "small link", title: "remove this marker", onclick: async () => {
        try { await saveMarkers(current.markers.filter((_, j) => j !== i)); } catch (e) { showError(e.message); return; }
        redraw(); drawMarkers(node, redraw);
      } }, "×"))));
    if (!current.markers.length) node.append(el("span", { class: "muted small" }, "No markers yet (stimulus onsets, events)."));
  }

  // -- the timeline (SVG) -----------------------------------------------------------------------
  const W = 1000, PAD_L = 66, PAD_R = 44, MOTION_TOP = 12, MOTION_H = 110, LANE_Y = 140, LANE_H = 30, AXIS_Y = 186, H = 206;
  function classColour(label, kind, classes) {
    if (typeof label === "string" && label) { const i = classes.indexOf(label); return PALETTE[(i < 0 ? 7 : i) % 10]; }
    return KIND_COLOUR[kind] || KIND_COLOUR.other;
  }
  function drawTimeline(host, cur, player, detail) {
    const { tl, classes } = cur;
    const dur = Math.max(tl.duration_s || 0, 0.001);
    const x = (t) => PAD_L + ((W - PAD_L - PAD_R) * t) / dur;
    const tOf = (px) => Math.max(0, Math.min(dur, ((px - PAD_L) * dur) / (W - PAD_L - PAD_R)));
    const c = tl.curves;
    const nodes = [];
    // motion score (symlog) and threshold
    const mvals = c.motion.filter((v) => v !== null);
    const mmax = Math.max(symlog(Math.max(...mvals, tl.threshold || 0, 20)) * 1.05, 1);
    const ym = (v) => MOTION_TOP + MOTION_H - (MOTION_H * symlog(Math.max(0, v))) / mmax;
    nodes.push(svg("rect", { x: PAD_L, y: MOTION_TOP, width: W - PAD_L - PAD_R, height: MOTION_H, class: "tl-bg" }));
    // intervals shaded over the curves, then as bars in their lane
    tl.intervals.forEach((iv, i) => {
      const col = classColour(iv.label, iv.kind, classes);
      const x0 = x(iv.onset_s), x1 = Math.max(x(iv.offset_s + 1 / tl.fps), x0 + 2);
      nodes.push(svg("rect", { x: x0, y: MOTION_TOP, width: x1 - x0, height: MOTION_H, fill: col, opacity: 0.14 }));
    });
    if (mvals.length) {
      let d = "";
      c.time_s.forEach((t, i) => { const v = c.motion[i]; if (v === null) return; d += `${d && c.motion[i - 1] !== null ? "L" : "M"}${x(t).toFixed(1)},${ym(v).toFixed(1)}`; });
      nodes.push(svg("path", { d, class: "tl-motion", id: "tl-motion" }));
      if (tl.threshold !== null) nodes.push(svg("line", { x1: PAD_L, x2: W - PAD_R, y1: ym(tl.threshold), y2: ym(tl.threshold), class: "tl-threshold" }),
        svg("text", { x: W - PAD_R + 3, y: ym(tl.threshold) + 4, class: "tl-small" }, `thr ${fmt(tl.threshold, 1)}`));
      for (const v of [0, 10, 100, 1000].filter((v) => symlog(v) <= mmax))
        nodes.push(svg("text", { x: PAD_L - 6, y: ym(v) + 4, class: "tl-small", "text-anchor": "end" }, v),
          svg("line", { x1: PAD_L - 3, x2: PAD_L, y1: ym(v), y2: ym(v), class: "tl-tick" }));
      nodes.push(svg("text", { x: 4, y: MOTION_TOP + 10, class: "tl-label" }, "motion"));
    }
    const ivals = c.intensity.filter((v) => v !== null);
    if (ivals.length) {
      const imax = Math.max(1, ...ivals);
      const yi = (v) => MOTION_TOP + MOTION_H - (MOTION_H * v) / imax;
      let d = "";
      c.time_s.forEach((t, i) => { const v = c.intensity[i]; if (v === null) return; d += `${d && c.intensity[i - 1] !== null ? "L" : "M"}${x(t).toFixed(1)},${yi(v).toFixed(1)}`; });
      nodes.push(svg("path", { d, class: "tl-intensity", id: "tl-intensity" }),
        svg("text", { x: W - PAD_R + 3, y: MOTION_TOP + 10, class: "tl-small" }, `int ${fmt(imax, 1)}`));
    }
    // the interval lane
    nodes.push(svg("text", { x: 4, y: LANE_Y + 19, class: "tl-label" }, "intervals"),
      svg("rect", { x: PAD_L, y: LANE_Y, width: W - PAD_L - PAD_R, height: LANE_H, class: "tl-lane" }));
    tl.intervals.forEach((iv, i) => {
      const col = classColour(iv.label, iv.kind, classes);
      const x0 = x(iv.onset_s), x1 = Math.max(x(iv.offset_s + 1 / tl.fps), x0 + 3);
      const y0 = iv.kind === "micro" ? LANE_Y + 2 : LANE_Y + LANE_H / 2 + 1;
      const r = svg("rect", { x: x0, y: y0, width: x1 - x0, height: LANE_H / 2 - 3, fill: col, class: "tl-interval",
        "data-index": i, "data-onset": iv.onset, "data-offset": iv.offset, "data-kind": iv.kind },
        svg("title", {}, `${iv.kind} ${fmt(iv.onset_s)}–${fmt(iv.offset_s)} s${iv.label ? `: ${iv.label}` : ""}`));
      r.addEventListener("click", (e) => { e.stopPropagation(); showInterval(detail, iv, classes, i); seek(player, iv.onset_s); });
      r.addEventListener("mouseenter", () => showInterval(detail, iv, classes, i));
      nodes.push(r);
    });
    // markers
    for (const m of cur.markers) {
      nodes.push(svg("g", { class: "tl-marker", "data-t": m.t },
        svg("line", { x1: x(m.t), x2: x(m.t), y1: MOTION_TOP, y2: LANE_Y + LANE_H }),
        svg("path", { d: `M${x(m.t) - 5},${MOTION_TOP - 8}L${x(m.t) + 5},${MOTION_TOP - 8}L${x(m.t)},${MOTION_TOP}Z` }),
        svg("title", {}, `${fmt(m.t)} s ${m.label || ""}`)));
    }
    // time axis
    const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800].find((s) => dur / s <= 12) || 3600;
    for (let t = 0; t <= dur + 1e-9; t += step)
      nodes.push(svg("line", { x1: x(t), x2: x(t), y1: AXIS_Y - 14, y2: AXIS_Y - 10, class: "tl-tick" }),
        svg("text", { x: x(t), y: AXIS_Y + 2, class: "tl-small", "text-anchor": "middle" }, `${+t.toFixed(1)}s`));
    nodes.push(svg("line", { id: "tl-playhead", class: "tl-playhead", x1: x(0), x2: x(0), y1: MOTION_TOP - 2, y2: LANE_Y + LANE_H + 2 }));
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "tl-svg", role: "img", "aria-label": "timeline" }, nodes);
    s.addEventListener("click", (e) => seek(player, tOf(svgX(s, e))));
    s.addEventListener("dblclick", (e) => host.dispatchEvent(new CustomEvent("marker", { detail: { t: tOf(svgX(s, e)) } })));
    const legend = el("div", { class: "tl-legend" },
      el("span", { class: "key motion" }, "motion score"), tl.threshold !== null ? el("span", { class: "key thr" }, "threshold") : "",
      ivals.length ? el("span", { class: "key intensity" }, "intensity") : "",
      classes.length ? classes.map((k) => styled(el("span", { class: "key swatch" }, k), { "--c": classColour(k, "", classes) }))
        : [styled(el("span", { class: "key swatch" }, "micro (top)"), { "--c": KIND_COLOUR.micro }),
          styled(el("span", { class: "key swatch" }, "macro (bottom)"), { "--c": KIND_COLOUR.macro })],
      el("span", { class: "key marker" }, "marker"));
    host.replaceChildren(s, legend);
    host._x = x;
  }
  function svgX(s, e) { const r = s.getBoundingClientRect(); return ((e.clientX - r.left) * W) / r.width; }
  function seek(player, t) { if (player && player.tagName === "VIDEO") { try { player.currentTime = t; } catch (e) { /* not loaded yet */ } } }
  function movePlayhead(host, cur, t) {
    const line = host.querySelector("#tl-playhead");
    if (!line || !host._x) return;
    const px = host._x(Math.min(t, cur.tl.duration_s));
    line.setAttribute("x1", px); line.setAttribute("x2", px);
  }
  function showInterval(node, iv, classes, i) {
    const probs = classes.map((c) => [c, iv[`p_${c}`]]).filter(([, p]) => p !== undefined && p !== null);
    node.replaceChildren(
      el("div", {}, el("b", {}, `Interval ${i + 1}`), ` ${iv.kind}, ${fmt(iv.onset_s)}–${fmt(iv.offset_s)} s (frames ${iv.onset}–${iv.offset}, apex ${iv.apex}), score ${fmt(iv.score, 1)}`,
        iv.label ? [", class ", el("b", {}, iv.label)] : "",
        iv.intensity_peak !== undefined && iv.intensity_peak !== null ? `, intensity peak ${fmt(iv.intensity_peak)}` : ""),
      probs.length ? el("div", { class: "prob-bars" }, probs.map(([c, p]) => el("div", { class: "prob" },
        el("span", { class: "prob-name" }, c),
        el("span", { class: "prob-bar" }, styled(el("span", {}), { width: `${(100 * p).toFixed(1)}%`, background: classColour(c, "", classes) })),
        el("span", { class: "prob-val" }, fmt(p, 2))))) : el("div", { class: "muted small" }, "No classification bundle: the interval is spotted, not labelled."),
      iv.recognition_note ? el("div", { class: "muted small" }, iv.recognition_note) : "");
    node.dataset.index = i;
  }
  function drawIntervals(node, tl, classes, player, detail) {
    if (!tl.intervals.length) { node.replaceChildren(el("p", { class: "muted" }, "No interval was spotted in this recording.")); return; }
    const rows = tl.intervals.map((iv, i) => ({ n: i + 1, kind: iv.kind, onset: fmt(iv.onset_s), offset: fmt(iv.offset_s),
      frames: `${iv.onset}–${iv.offset}`, label: iv.label || "", score: fmt(iv.score, 1) }));
    const t = table([{ key: "n", label: "#", num: true }, "kind", { key: "onset", label: "onset (s)", num: true },
      { key: "offset", label: "offset (s)", num: true }, "frames", { key: "label", label: "class" }, { key: "score", num: true }], rows);
    t.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.classList.add("clickable");
      tr.addEventListener("click", () => { showInterval(detail, tl.intervals[i], classes, i); seek(player, tl.intervals[i].onset_s); });
    });
    node.replaceChildren(el("h3", {}, "Intervals"), t);
  }

  // -- the aligned average ------------------------------------------------------------------------
  function showAligned(jobDone) {
    const before = el("input", { type: "number", id: "aligned-before", value: 2, min: 0, step: 0.5 });
    const after = el("input", { type: "number", id: "aligned-after", value: 5, min: 0, step: 0.5 });
    const bin = el("input", { type: "number", id: "aligned-bin", value: 0.2, min: 0.01, step: 0.05 });
    const btn = el("button", { type: "button", class: "primary", id: "run-aligned" }, "Average across recordings");
    const out = el("div", { id: "aligned-result" });
    alignedOut.replaceChildren(el("h2", {}, "Average response aligned on the markers"),
      el("p", { class: "muted small" }, "Each marker opens a window; windows are averaged within each recording, then across recordings (shaded: ± standard error across recordings)."),
      el("div", { class: "row aligned-form" }, el("label", {}, "before (s) ", before), el("label", {}, "after (s) ", after),
        el("label", {}, "bin (s) ", bin), btn), out);
    alignedOut.hidden = false;
    btn.addEventListener("click", async () => {
      showError(null);
      try {
        const r = await api(`/api/analyse/${jobDone.id}/aligned`, { method: "POST",
          body: { before_s: Number(before.value), after_s: Number(after.value), bin_s: Number(bin.value) } });
        out.replaceChildren(el("div", { class: "summary", id: "aligned-summary" },
          `${r.n_epochs} markers in ${r.n_recordings} of ${r.recordings.length} recordings`),
          alignedChart(r), el("div", { class: "exports" }, el("a", { href: jobFile(jobDone.id, r.file), download: "" }, "average (CSV)")));
      } catch (e) { showError(e.message); }
    });
  }
  function alignedChart(r) {
    const w = 1000, h = 240, l = 54, rr = 20, top = 10;
    const panels = [["motion", "motion score", "#1f4e79"], ["active", "share in an interval", "#c0392b"], ["intensity", "intensity", "#222"]]
      .filter(([k]) => r[k].mean.some((v) => v !== null));
    const ph = (h - top - 24) / Math.max(1, panels.length);
    const t0 = -r.before_s, t1 = r.after_s;
    const x = (t) => l + ((w - l - rr) * (t - t0)) / (t1 - t0 || 1);
    const nodes = [];
    panels.forEach(([k, label, col], pi) => {
      const m = r[k].mean, se = r[k].sem;
      const vals = m.map((v, i) => (v === null ? null : v + (se[i] || 0))).filter((v) => v !== null);
      const lo = Math.min(0, ...m.filter((v) => v !== null).map((v, i) => v - (se[i] || 0)));
      const hi = Math.max(...vals, lo + 1e-6);
      const y = (v) => top + pi * ph + ph - 6 - ((ph - 12) * (v - lo)) / (hi - lo);
      nodes.push(svg("rect", { x: l, y: top + pi * ph, width: w - l - rr, height: ph - 4, class: "tl-bg" }),
        svg("text", { x: l + 6, y: top + pi * ph + 13, class: "tl-label" }, label),
        svg("text", { x: l - 6, y: y(hi) + 4, class: "tl-small", "text-anchor": "end" }, fmt(hi, 2)),
        svg("text", { x: l - 6, y: y(lo) + 4, class: "tl-small", "text-anchor": "end" }, fmt(lo, 2)));
      let band = "", back = "", d = "";
      r.t.forEach((t, i) => {
        if (m[i] === null) return;
        const s = se[i] || 0;
        band += `${band ? "L" : "M"}${x(t).toFixed(1)},${y(m[i] + s).toFixed(1)}`;
        back = `L${x(t).toFixed(1)},${y(m[i] - s).toFixed(1)}` + back;
        d += `${d ? "L" : "M"}${x(t).toFixed(1)},${y(m[i]).toFixed(1)}`;
      });
      if (band) nodes.push(svg("path", { d: band + back + "Z", fill: col, opacity: 0.15 }));
      if (d) nodes.push(svg("path", { d, fill: "none", stroke: col, "stroke-width": 1.6, class: `aligned-${k}` }));
    });
    nodes.push(svg("line", { x1: x(0), x2: x(0), y1: top, y2: h - 22, class: "tl-zero" }));
    for (let t = Math.ceil(t0); t <= t1; t += 1) nodes.push(svg("text", { x: x(t), y: h - 6, class: "tl-small", "text-anchor": "middle" }, `${t}s`));
    return el("div", { class: "timeline" }, svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "tl-svg", id: "aligned-chart" }, nodes));
  }

  // -- the camera ---------------------------------------------------------------------------------
  let cam = null; // {stream, jobId, timer, sent, refused, skipped, inFlight, intervals, ...}
  camStart.addEventListener("click", async () => {
    showError(null);
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError("this browser gives no camera to the page (open the app at 127.0.0.1 or localhost, or over https)");
      return;
    }
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false }); }
    catch (e) { showError(`the camera could not be opened: ${e.message || e.name}`); return; }
    camVideo.srcObject = stream;
    camVideo.hidden = false;
    await camVideo.play().catch(() => {});
    await new Promise((res) => { if (camVideo.videoWidth) res(); else camVideo.addEventListener("loadedmetadata", res, { once: true }); });
    const width = Math.min(choices.camera.width, camVideo.videoWidth || 640);
    const height = 2 * Math.round((width * (camVideo.videoHeight || 480)) / (camVideo.videoWidth || 640) / 2);
    let session;
    try {
      session = await api("/api/analyse/live", { method: "POST", body: { ...bundles(), size: [width, height], fps: choices.camera.fps } });
    } catch (e) { stream.getTracks().forEach((t) => t.stop()); camVideo.hidden = true; showError(e.message); return; }
    setBusy(true);
    camStop.disabled = false;
    const canvas = el("canvas", { width, height });
    const ctx = canvas.getContext("2d");
    cam = { stream, jobId: session.id, sent: 0, refused: 0, skipped: 0, inFlight: false, intervals: [], received: 0,
      dropped: 0, analysed: 0, t0: performance.now(), stopping: false };
    liveOut.hidden = false;
    liveOut.dataset.job = session.id;
    drawLive();
    cam.timer = setInterval(() => {
      if (!cam || cam.stopping) return;
      if (cam.inFlight) { cam.skipped += 1; return; }
      cam.inFlight = true;
      const t = Math.round(performance.now() - cam.t0);
      ctx.drawImage(camVideo, 0, 0, width, height);
      canvas.toBlob(async (blob) => {
        try {
          const r = await api(`/api/analyse/live/${cam.jobId}/frame`, { method: "POST", body: blob, query: { t } });
          cam.sent += 1;
          if (!r.accepted) cam.refused += 1;
        } catch (e) { if (cam && !cam.stopping) showError(e.message); }
        finally { if (cam) cam.inFlight = false; }
      }, "image/jpeg", 0.85);
    }, 1000 / choices.camera.fps);
    cam.watch = watchJob(session.id, (j, evs) => {
      if (!cam) return;
      for (const ev of evs) {
        if (ev.kind === "interval") cam.intervals.push(ev);
        if (ev.kind === "progress" && ev.stage === "camera") { cam.received = ev.done; cam.dropped = ev.dropped; }
        if (ev.kind === "progress" && ev.stage === "analyze") cam.analysed = ev.done;
      }
      cam.state = j.state;
      drawLive();
    }, 500);
    cam.watch.done.then(async (finished) => {
      const c = cam;
      stopCapture();
      setBusy(false);
      camStop.disabled = true;
      if (finished.state === "done") { liveOut.dataset.state = "done"; await showResults(finished); }
      else if (finished.state === "failed") showError(finished.error);
      if (c) drawLive(c, finished);
      cam = null;
    }).catch((e) => showError(e.message));
  });
  function stopCapture() {
    if (!cam) return;
    clearInterval(cam.timer);
    cam.stream.getTracks().forEach((t) => t.stop());
    camVideo.srcObject = null;
    camVideo.hidden = true;
  }
  camStop.addEventListener("click", async () => {
    if (!cam) return;
    cam.stopping = true;
    cam.stoppedAt = performance.now();
    clearInterval(cam.timer);
    camStop.disabled = true;
    try { await api(`/api/analyse/live/${cam.jobId}/stop`, { method: "POST" }); } catch (e) { showError(e.message); }
    camStats.textContent = "Stopping: the outputs are being written…";
  });
  function drawLive(c = cam, finished = null) {
    if (!c) return;
    const secs = ((c.stoppedAt || performance.now()) - c.t0) / 1000;
    const text = `${c.sent} frames sent (${c.skipped} skipped in the browser, ${c.refused} refused by a full queue), ` +
      `${c.received} received, ${c.dropped} dropped by the analysis, ${c.analysed} analysed, ${c.intervals.length} intervals`;
    camStats.textContent = finished ? `Session ${finished.state}: ${text}` : text;
    camStats.dataset.received = c.received;
    camStats.dataset.dropped = c.dropped;
    camStats.dataset.sent = c.sent;
    camStats.dataset.analysed = c.analysed;
    // the live timeline: the last 30 s
    const span = 30, t1 = Math.max(span, secs), t0 = t1 - span, w = 1000, h = 70;
    const x = (t) => 20 + ((w - 40) * (t - t0)) / span;
    const nodes = [svg("rect", { x: 20, y: 10, width: w - 40, height: 36, class: "tl-lane" })];
    for (const iv of c.intervals) {
      if (iv.offset_s < t0) continue;
      nodes.push(svg("rect", { x: x(Math.max(t0, iv.onset_s)), y: iv.interval_kind === "micro" ? 12 : 29, width: Math.max(3, x(iv.offset_s) - x(Math.max(t0, iv.onset_s))),
        height: 15, fill: classColour(iv.label, iv.interval_kind, []), class: "live-interval" }, svg("title", {}, `${iv.interval_kind} ${fmt(iv.onset_s)}–${fmt(iv.offset_s)} s`)));
    }
    for (let t = Math.ceil(t0 / 5) * 5; t <= t1; t += 5) nodes.push(svg("text", { x: x(t), y: 62, class: "tl-small", "text-anchor": "middle" }, `${t}s`));
    nodes.push(svg("line", { x1: x(Math.min(secs, t1)), x2: x(Math.min(secs, t1)), y1: 6, y2: 50, class: "tl-playhead" }));
    liveOut.replaceChildren(el("h2", {}, finished ? "Camera session" : "Live camera"),
      el("div", { class: "muted small" }, "Intervals appear here as they close (the spotter decides a few seconds after an expression)."),
      el("div", { class: "timeline" }, svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "tl-svg", id: "live-timeline" }, nodes)));
  }
}
