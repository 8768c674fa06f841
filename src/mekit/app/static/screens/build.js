// The Build-a-dataset screen: open a recording, scrub it frame by frame (keyboard too), mark
// onset, apex and offset with an emotion and action units, see the onset->apex flow, accept or
// correct the spotter's suggestions, preview frame sampling, and export the clips as a dataset
// the CASME II loader reads. The routes are in mekit/app/routes_build.py.
//
// Keys (when the focus is not in a text field): Left/Right one frame, Shift+Left/Right ten,
// Home/End first/last frame, O/A/F mark onset/apex/offset, Enter add (or update) the clip,
// Escape start a new clip. Enter in the emotion or AU field adds the clip too.

const DEFAULT_PARAMS = { n: "8", window: "3", stride: "4" };
const MAX_THUMBS = 64;

export async function mount(root, app) {
  const { api, el, table, showError, jobBox, jobFile, pickFolder } = app;
  const choices = await api("/api/build/choices");

  // -- state ---------------------------------------------------------------------------------
  let info = null;          // the open recording (GET /api/build/video)
  let fpsGiven = null;      // the frame rate typed by the user (null: the recording's own)
  let cur = 0;              // the frame shown (or being fetched)
  let shown = -1;           // the frame on screen
  let loading = false;
  let frameUrlObj = null;
  const marks = { onset: null, apex: null, offset: null };
  let clips = [];           // {onset, apex, offset, emotion, action_units, kind}
  let editing = null;       // index of the clip being edited, or null for a new one
  let suggestions = [];     // {onset, apex, offset, kind, score, accepted}

  // -- controls ------------------------------------------------------------------------------
  const field = (label, control, help) => el("label", { class: "field" }, el("span", {}, label), control, help);
  const videoInput = el("input", { type: "text", id: "video", placeholder: "a video file, or a folder of frames", autocomplete: "off" });
  const browseBtn = el("button", { type: "button", id: "video-browse" }, "Browse…");
  const videoList = el("select", { id: "video-list", hidden: true, size: 4 });
  const uploadInput = el("input", { type: "file", id: "video-upload", accept: ".mp4,.m4v,.mov,.avi,.mkv,.webm,video/*", hidden: true });
  const uploadBtn = el("button", { type: "button", id: "video-upload-btn" }, "Upload…");
  const fpsInput = el("input", { type: "number", id: "fps", min: 1, step: "any", placeholder: "the recording's own" });
  const openBtn = el("button", { type: "button", class: "primary", id: "open-video" }, "Open");
  const videoInfo = el("div", { class: "muted small", id: "video-info" }, "No recording open.");

  const spotBtn = el("button", { type: "button", id: "run-spot", disabled: true }, "Suggest intervals");
  const spotJob = jobBox();
  const spotOut = el("div", { id: "suggestions" });

  const subjectInput = el("input", { type: "text", id: "subject", value: "1", autocomplete: "off" });
  const outInput = el("input", { type: "text", id: "out", placeholder: "a new folder for the dataset", autocomplete: "off" });
  const outBrowse = el("button", { type: "button", id: "out-browse" }, "Browse…");
  const sheetSel = el("select", { id: "sheet-format" }, choices.sheet_formats.map((f) => el("option", { value: f }, f)));
  const contextInput = el("input", { type: "number", id: "context", min: 0, max: 10, step: "any", value: "0" });
  const overwriteBox = el("input", { type: "checkbox", id: "overwrite" });
  const appendBox = el("input", { type: "checkbox", id: "append" });
  const exportBtn = el("button", { type: "button", class: "primary", id: "run-export", disabled: true }, "Export");
  const exportJob = jobBox();

  // viewer
  const frameImg = el("img", { id: "frame-img", alt: "frame" });
  const frameBox = el("div", { class: "frame-box" }, frameImg, el("div", { class: "frame-empty", id: "frame-empty" }, "Open a recording to see its frames."));
  const timeline = el("div", { class: "timeline", id: "timeline", title: "click to go to a frame" });
  const slider = el("input", { type: "range", id: "frame-slider", min: 0, max: 0, value: 0, step: 1, disabled: true });
  const indexInput = el("input", { type: "number", id: "frame-index", min: 0, value: 0, disabled: true });
  const timeText = el("span", { class: "muted small", id: "frame-time" });
  const stepBtn = (text, d, title) => el("button", { type: "button", class: "step", title, onclick: () => go(cur + d) }, text);
  const navRow = el("div", { class: "row nav-row" },
    el("button", { type: "button", class: "step", title: "first frame (Home)", onclick: () => go(0) }, "«"),
    stepBtn("−10", -10, "10 frames back (Shift+←)"), stepBtn("−1", -1, "previous frame (←)"),
    el("label", { class: "frame-no" }, "frame ", indexInput, el("span", { id: "frame-count" }, "")),
    stepBtn("+1", 1, "next frame (→)"), stepBtn("+10", 10, "10 frames on (Shift+→)"),
    el("button", { type: "button", class: "step", title: "last frame (End)", onclick: () => go(lastFrame()) }, "»"),
    el("span", { class: "grow" }), timeText);

  const markBtn = (k, key) => el("button", { type: "button", class: `mark mark-${k}`, id: `mark-${k}`, title: `mark the ${k} at the current frame (${key})`,
    onclick: () => mark(k) }, el("span", { class: "mark-name" }, `${k[0].toUpperCase()}${k.slice(1)} `, el("kbd", {}, key)), el("b", { class: "mark-value" }, "–"));
  const emotionList = el("datalist", { id: "emotion-choices" }, choices.emotions.map((e) => el("option", { value: e })));
  const emotionInput = el("input", { type: "text", id: "emotion", list: "emotion-choices", placeholder: "e.g. happy", title: "a clip without an emotion is filed as others", autocomplete: "off" });
  const ausInput = el("input", { type: "text", id: "aus", placeholder: "e.g. AU4+AU7", autocomplete: "off" });
  const addBtn = el("button", { type: "button", class: "primary", id: "add-clip", disabled: true }, "Add clip ⏎");
  const newBtn = el("button", { type: "button", id: "new-clip", title: "forget the marks and start a new clip (Esc)" }, "New");
  const markRow = el("div", { class: "mark-row" },
    markBtn("onset", "O"), markBtn("apex", "A"), markBtn("offset", "F"),
    el("label", { class: "field inline" }, el("span", {}, "Emotion"), emotionInput, emotionList),
    el("label", { class: "field inline" }, el("span", {}, "Action units"), ausInput),
    el("div", { class: "row mark-actions" }, newBtn, addBtn));

  const flowImg = el("img", { id: "flow-img", alt: "onset to apex flow", hidden: true });
  const flowNote = el("div", { class: "muted small", id: "flow-note" }, "Mark an onset and a later apex to see the motion between them.");
  const flowMethod = el("select", { id: "flow-method" }, choices.flow_methods.map((f) => el("option", { value: f.name, title: f.help }, f.name)));
  flowMethod.value = choices.flow_default;
  const flowFace = el("input", { type: "checkbox", id: "flow-face", checked: true });
  const flowPanel = el("div", { class: "flow-side" },
    el("h3", {}, "Flow onset → apex"),
    el("div", { class: "flow-box" }, flowImg, el("div", { class: "flow-empty" }, "no flow yet")),
    flowNote,
    el("div", { class: "row small" }, el("label", { class: "check" }, flowFace, " face crop"), el("span", { class: "grow" }), flowMethod),
    el("p", { class: "muted small" }, "Hue is the direction of motion, brightness its speed (as mekit preview draws it)."));

  const clipsBox = el("div", { id: "clips-table" });
  const samplerSel = el("select", { id: "sampler" }, choices.samplers.map((s) => el("option", { value: s.name, title: s.help }, s.name)));
  samplerSel.value = choices.samplers.some((s) => s.name === "window") ? "window" : choices.samplers[0]?.name;
  const samplerHelp = el("small", { class: "help" });
  const samplerParams = el("div", { class: "row sampler-params" });
  const thumbs = el("div", { class: "thumbs", id: "sample-thumbs" });
  const sampleNote = el("div", { class: "muted small", id: "sample-note" });
  const exportOut = el("section", { class: "panel", id: "export-result", hidden: true });

  // -- layout --------------------------------------------------------------------------------
  const form = el("div", { class: "form-col" },
    el("section", { class: "panel" },
      el("h2", {}, "Recording"),
      el("label", { class: "field" }, el("span", {}, "Video or frame folder"),
        el("div", { class: "row" }, el("div", { class: "grow" }, videoInput), browseBtn, uploadBtn), uploadInput),
      videoList,
      el("div", { class: "row" }, el("div", { class: "grow" }, field("Frame rate (fps)", fpsInput)), openBtn),
      el("small", { class: "help" }, "Needed for a folder of frames; for a video, only to override the rate it declares."),
      videoInfo),
    el("section", { class: "panel" },
      el("h2", {}, "Spotter suggestions"),
      el("p", { class: "muted small" }, "The training-free motion spotter (as mekit analyze) proposes intervals; accept one to add it to your clips, then correct it."),
      el("div", { class: "row end" }, spotBtn), spotJob.node, spotOut),
    el("section", { class: "panel" },
      el("h2", {}, "Export"),
      el("div", { class: "grid2" }, field("Subject", subjectInput, el("small", { class: "help" }, "1 or sub01")),
        field("Coding sheet", sheetSel)),
      el("label", { class: "field" }, el("span", {}, "Dataset folder"),
        el("div", { class: "row" }, el("div", { class: "grow" }, outInput), outBrowse),
        el("small", { class: "help" }, "A new or empty folder (CASME II layout: subNN/<clip>/reg_img<N>.jpg and a coding sheet).")),
      field("Context (s)", contextInput, el("small", { class: "help" }, "frames kept before the onset and after the offset")),
      el("div", { class: "row" }, el("label", { class: "check" }, overwriteBox, " overwrite"),
        el("label", { class: "check" }, appendBox, " append to it"), el("span", { class: "grow" }), exportBtn),
      exportJob.node));

  const viewer = el("section", { class: "panel viewer", id: "viewer" },
    el("div", { class: "viewer-grid" },
      el("div", { class: "viewer-main" }, frameBox, timeline, slider, navRow),
      flowPanel),
    markRow,
    el("div", { class: "muted small keys" },
      "Keys: ← → one frame, Shift ten, Home/End, ", el("kbd", {}, "O"), " ", el("kbd", {}, "A"), " ", el("kbd", {}, "F"),
      " mark onset, apex, offset, ", el("kbd", {}, "Enter"), " add the clip, ", el("kbd", {}, "Esc"), " new clip."));
  const clipsPanel = el("section", { class: "panel", id: "clips" }, el("h2", {}, "Clips ", el("span", { class: "muted", id: "clip-count" }, "(none yet)")), clipsBox);
  const samplingPanel = el("section", { class: "panel", id: "sampling" },
    el("h2", {}, "Frame selection"),
    el("div", { class: "row sampler-row" }, el("label", { class: "field inline" }, el("span", {}, "Sampler"), samplerSel), samplerParams),
    samplerHelp, sampleNote, thumbs);
  root.append(el("div", { class: "columns build" }, form, el("div", { class: "results" }, viewer, clipsPanel, samplingPanel, exportOut)));

  // -- the recording -------------------------------------------------------------------------
  const q = (extra = {}) => ({ video: info.path, ...(fpsGiven ? { fps: fpsGiven } : {}), ...extra });
  const lastFrame = () => (info && info.n_frames ? info.n_frames - 1 : 0);
  const frameUrl = (i, size) => `/api/build/frame?${new URLSearchParams(q({ index: i, size }))}`;
  const viewWidth = () => Math.min(info.width, 960);

  browseBtn.addEventListener("click", async () => {
    const start = videoInput.value.trim() ? videoInput.value.trim().replace(/\/[^/]*\.[A-Za-z0-9]+$/, "") : null;
    const folder = await pickFolder(start);
    if (!folder) return;
    try {
      const r = await api("/api/build/videos", { query: { folder } });
      const opts = r.videos.map((v) => el("option", { value: v.path }, `${v.name} (${(v.bytes / 1e6).toFixed(1)} MB)`));
      if (r.images) opts.push(el("option", { value: r.folder }, `this folder as frames (${r.images} images)`));
      if (!opts.length) { showError(`no video and no image frames in ${r.folder}`); videoList.hidden = true; return; }
      videoList.replaceChildren(...opts);
      videoList.hidden = false;
      videoList.size = Math.min(6, Math.max(2, opts.length));
      if (opts.length === 1) { videoList.value = opts[0].value; videoInput.value = opts[0].value; }
      showError(null);
    } catch (e) { showError(e.message); }
  });
  videoList.addEventListener("change", () => { videoInput.value = videoList.value; });
  videoList.addEventListener("dblclick", () => { videoInput.value = videoList.value; openVideo(); });
  uploadBtn.addEventListener("click", () => uploadInput.click());
  uploadInput.addEventListener("change", async () => {
    const file = uploadInput.files[0];
    if (!file) return;
    videoInfo.textContent = `uploading ${file.name}…`;
    try {
      const r = await api("/api/uploads", { method: "POST", body: file, query: { filename: file.name, kind: "video" } });
      videoInput.value = r.path;
      await openVideo();
    } catch (e) { showError(e.message); videoInfo.textContent = "upload refused"; }
    uploadInput.value = "";
  });
  openBtn.addEventListener("click", () => openVideo());
  videoInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); openVideo(); } });

  async function openVideo() {
    const path = videoInput.value.trim();
    if (!path) { showError("give a video file or a folder of frames (or Browse… / Upload…)"); return; }
    const fps = fpsInput.value.trim() ? Number(fpsInput.value) : null;
    showError(null);
    let r;
    try { r = await api("/api/build/video", { query: { video: path, ...(fps ? { fps } : {}) } }); }
    catch (e) { showError(e.message); return; }
    if (!info || info.path !== r.path) { clips = loadSaved(r.path); editing = null; suggestions = []; spotOut.replaceChildren(); clearMarks(); }
    info = r; fpsGiven = fps;
    const stem = r.name.replace(/\.[^.]+$/, "");
    if (!outInput.value.trim() || outInput.dataset.auto === "1") {
      outInput.value = `${app.info.workdir}/datasets/${stem}`;
      outInput.dataset.auto = "1";
    }
    videoInfo.replaceChildren(el("b", {}, r.name), `: ${r.n_frames ?? "?"} frames at ${+r.fps.toFixed(3)} fps, ${r.width}×${r.height}`,
      r.duration_s ? `, ${r.duration_s.toFixed(2)} s` : "");
    slider.max = lastFrame(); slider.disabled = false;
    indexInput.max = lastFrame(); indexInput.disabled = false;
    document.getElementById("frame-count").textContent = ` / ${lastFrame()}`;
    spotBtn.disabled = false;
    frameBox.classList.add("open");
    shown = -1;
    go(0, true);
    renderAll();
  }

  function go(i, force = false) {
    if (!info) return;
    i = Math.max(0, Math.min(lastFrame(), Math.round(Number(i) || 0)));
    if (i === cur && !force && shown === i) return;
    cur = i;
    slider.value = i;
    if (document.activeElement !== indexInput) indexInput.value = i;
    timeText.textContent = `${(i / info.fps).toFixed(3)} s`;
    renderTimeline();
    loadFrame();
  }

  // one request at a time; while one is out, only the latest frame asked for is fetched next
  async function loadFrame() {
    if (loading || !info || cur === shown) return;
    loading = true;
    const i = cur;
    try {
      const res = await fetch(frameUrl(i, viewWidth()));
      if (!res.ok) {
        let msg = `${res.status}`;
        try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
        throw new Error(msg);
      }
      const url = URL.createObjectURL(await res.blob());
      frameImg.src = url;
      await frameImg.decode().catch(() => {});
      if (frameUrlObj) URL.revokeObjectURL(frameUrlObj);
      frameUrlObj = url;
      frameImg.dataset.index = String(i);
      shown = i;
    } catch (e) {
      showError(e.message);
      shown = i;
    } finally {
      loading = false;
    }
    if (cur !== shown) loadFrame();
  }

  slider.addEventListener("input", () => go(slider.value));
  indexInput.addEventListener("change", () => go(indexInput.value));
  indexInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); go(indexInput.value); indexInput.blur(); } });
  timeline.addEventListener("click", (e) => {
    if (!info) return;
    const box = timeline.getBoundingClientRect();
    go(((e.clientX - box.left) / box.width) * (lastFrame() + 1) - 0.5);
  });

  // -- marking -------------------------------------------------------------------------------
  function mark(k) {
    if (!info) return;
    marks[k] = cur;
    renderMarks();
    if (k !== "offset") updateFlow();
    updateSampling();
  }
  function clearMarks() {
    marks.onset = marks.apex = marks.offset = null;
    editing = null;
    emotionInput.value = ""; ausInput.value = "";
    renderMarks(); updateFlow(); updateSampling(); renderClips();
  }
  newBtn.addEventListener("click", clearMarks);

  function clipFromMarks() {
    const { onset, apex, offset } = marks;
    if (onset === null || offset === null) throw new Error("mark the onset (O) and the offset (F) first");
    if (offset < onset) throw new Error(`the offset (${offset}) comes before the onset (${onset})`);
    if (apex !== null && (apex < onset || apex > offset)) throw new Error(`the apex (${apex}) lies outside onset..offset (${onset}..${offset})`);
    const old = editing === null ? {} : clips[editing];
    return { onset, apex, offset, emotion: emotionInput.value.trim(), action_units: ausInput.value.trim(), kind: old.kind || "" };
  }
  function addClip() {
    if (!info) return;
    let c;
    try { c = clipFromMarks(); } catch (e) { showError(e.message); return; }
    const same = clips.findIndex((x, i) => i !== editing && x.onset === c.onset && x.offset === c.offset);
    if (same >= 0) { showError(`clip ${same + 1} already spans ${c.onset}..${c.offset}`); return; }
    showError(null);
    if (editing === null) clips.push(c); else clips[editing] = c;
    clips.sort((a, b) => a.onset - b.onset || a.offset - b.offset);
    save();
    clearMarks();
    // back to the keyboard's scrubbing keys after Enter in the emotion or AU field
    if (markRow.contains(document.activeElement)) document.activeElement.blur();
  }
  addBtn.addEventListener("click", addClip);
  for (const input of [emotionInput, ausInput]) input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); addClip(); }
  });

  function editClip(i) {
    const c = clips[i];
    editing = i;
    marks.onset = c.onset; marks.apex = c.apex; marks.offset = c.offset;
    emotionInput.value = c.emotion || ""; ausInput.value = c.action_units || "";
    renderMarks(); renderClips(); updateFlow(); updateSampling();
    go(c.apex ?? c.onset);
  }
  function deleteClip(i) {
    clips.splice(i, 1);
    if (editing === i) clearMarks(); else if (editing !== null && editing > i) editing -= 1;
    save(); renderClips(); renderTimeline();
  }

  function renderMarks() {
    for (const k of ["onset", "apex", "offset"]) {
      const b = markRow.querySelector(`#mark-${k}`);
      b.querySelector(".mark-value").textContent = marks[k] === null ? "–" : String(marks[k]);
      b.classList.toggle("set", marks[k] !== null);
    }
    addBtn.disabled = !info || marks.onset === null || marks.offset === null;
    addBtn.textContent = editing === null ? "Add clip ⏎" : `Update clip ${editing + 1} ⏎`;
    renderTimeline();
  }

  // -- the clip list -------------------------------------------------------------------------
  function renderClips() {
    clipsPanel.querySelector("#clip-count").textContent = clips.length ? `(${clips.length})` : "(none yet)";
    exportBtn.disabled = !info || clips.length === 0;
    if (!clips.length) {
      clipsBox.replaceChildren(el("div", { class: "placeholder" }, "Mark an onset, apex and offset, give an emotion, then Add clip (or accept a suggestion)."));
      return;
    }
    const fps = info ? info.fps : 1;
    const rows = clips.map((c, i) => el("tr", { class: i === editing ? "editing" : "", dataset: { clip: String(i) } },
      el("td", { class: "num" }, String(i + 1)),
      el("td", { class: "num" }, String(c.onset)), el("td", { class: "num" }, c.apex ?? ""), el("td", { class: "num" }, String(c.offset)),
      el("td", { class: "num" }, `${Math.round(((c.offset - c.onset) / fps) * 1000)} ms`),
      el("td", {}, c.emotion || el("span", { class: "muted" }, "others")), el("td", {}, c.action_units || ""), el("td", {}, c.kind || ""),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "small", onclick: () => editClip(i) }, i === editing ? "editing" : "Edit"),
        el("button", { type: "button", class: "small danger", onclick: () => deleteClip(i) }, "Delete"))));
    const head = el("tr", {}, ["#", "onset", "apex", "offset", "length", "emotion", "AUs", "kind", ""].map((h, k) =>
      el("th", { class: k >= 1 && k <= 4 ? "num" : "" }, h)));
    clipsBox.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "data clips" }, el("thead", {}, head), el("tbody", {}, rows))));
  }

  function renderTimeline() {
    if (!info) { timeline.replaceChildren(); return; }
    const n = lastFrame() + 1;
    const pct = (f) => `${(100 * f) / n}%`;
    // positions through the CSSOM: the page's Content-Security-Policy refuses style attributes
    const at = (node, left, width) => { node.style.left = left; if (width) node.style.width = width; return node; };
    const span = (a, b, cls, title) => at(el("div", { class: `tl-span ${cls}`, title }), pct(a), `max(2px, ${pct(b - a + 1)})`);
    const parts = [];
    suggestions.forEach((s) => parts.push(span(s.onset, s.offset, `suggestion${s.accepted ? " accepted" : ""}`, `suggestion ${s.onset}..${s.offset} (${s.kind})`)));
    clips.forEach((c, i) => parts.push(span(c.onset, c.offset, `clip${i === editing ? " editing" : ""}`, `clip ${i + 1}: ${c.onset}..${c.offset} ${c.emotion || ""}`)));
    for (const k of ["onset", "apex", "offset"]) if (marks[k] !== null)
      parts.push(at(el("div", { class: `tl-mark ${k}`, title: `${k} ${marks[k]}` }), pct(marks[k] + 0.5)));
    parts.push(at(el("div", { class: "tl-cursor" }), pct(cur + 0.5)));
    timeline.replaceChildren(...parts);
  }
  function renderAll() { renderMarks(); renderClips(); renderTimeline(); renderSamplerParams(); updateFlow(); updateSampling(); }

  // clips survive a reload of the page (kept in this browser, per recording)
  const storeKey = (path) => `mekit.build.clips:${path}`;
  function save() { try { if (info) localStorage.setItem(storeKey(info.path), JSON.stringify(clips)); } catch (e) { /* storage full or off */ } renderClips(); renderTimeline(); }
  function loadSaved(path) {
    try { const v = JSON.parse(localStorage.getItem(storeKey(path)) || "[]"); return Array.isArray(v) ? v : []; }
    catch (e) { return []; }
  }

  // -- flow ------------------------------------------------------------------------------------
  let flowTimer = null, flowSeq = 0, flowObj = null;
  function updateFlow() {
    clearTimeout(flowTimer);
    flowTimer = setTimeout(drawFlow, 120);
  }
  async function drawFlow() {
    const { onset, apex } = marks;
    if (!info || onset === null || apex === null || apex <= onset) {
      flowImg.hidden = true;
      delete flowImg.dataset.onset; delete flowImg.dataset.apex;
      flowNote.textContent = onset !== null && apex !== null ? "The apex must come after the onset." : "Mark an onset and a later apex to see the motion between them.";
      return;
    }
    const seq = ++flowSeq;
    flowNote.textContent = `computing the flow ${onset} → ${apex}…`;
    try {
      const res = await fetch(`/api/build/flow?${new URLSearchParams(q({ onset, apex, method: flowMethod.value, face: flowFace.checked }))}`);
      if (!res.ok) { let m = `${res.status}`; try { m = (await res.json()).error || m; } catch (e) { /* */ } throw new Error(m); }
      const url = URL.createObjectURL(await res.blob());
      if (seq !== flowSeq) { URL.revokeObjectURL(url); return; }
      flowImg.src = url;
      await flowImg.decode().catch(() => {});
      if (flowObj) URL.revokeObjectURL(flowObj);
      flowObj = url;
      flowImg.hidden = false;
      flowImg.dataset.onset = onset; flowImg.dataset.apex = apex;
      flowNote.textContent = `frames ${onset} → ${apex}, ${res.headers.get("X-Flow-Region")}, ${res.headers.get("X-Flow-Method")}; fastest motion ${Number(res.headers.get("X-Flow-Max")).toFixed(2)} px`;
    } catch (e) {
      if (seq === flowSeq) { flowImg.hidden = true; flowNote.textContent = `no flow: ${e.message}`; }
    }
  }
  flowMethod.addEventListener("change", updateFlow);
  flowFace.addEventListener("change", updateFlow);

  // -- frame selection -------------------------------------------------------------------------
  const paramInputs = {};
  function renderSamplerParams() {
    const s = choices.samplers.find((x) => x.name === samplerSel.value);
    samplerHelp.textContent = s ? s.help : "";
    samplerParams.replaceChildren();
    for (const k of Object.keys(paramInputs)) delete paramInputs[k];
    for (const [name, type] of Object.entries((s && s.params) || {})) {
      const input = el("input", { type: "number", min: 1, step: 1, name: `sp-${name}`, value: DEFAULT_PARAMS[name] || "4", title: type });
      input.addEventListener("input", updateSampling);
      paramInputs[name] = input;
      samplerParams.append(el("label", { class: "field inline" }, el("span", {}, name), input));
    }
  }
  samplerSel.addEventListener("change", () => { renderSamplerParams(); updateSampling(); });

  let sampleTimer = null, sampleSeq = 0;
  function updateSampling() { clearTimeout(sampleTimer); sampleTimer = setTimeout(drawSampling, 150); }
  async function drawSampling() {
    const { onset, apex, offset } = marks;
    if (!info || onset === null || offset === null || offset < onset) {
      thumbs.replaceChildren();
      sampleNote.textContent = "Mark an onset and an offset (or Edit a clip) to see the frames this sampler chooses.";
      return;
    }
    const params = {};
    for (const [k, input] of Object.entries(paramInputs)) params[k] = input.value;
    const seq = ++sampleSeq;
    let r;
    try {
      r = await api("/api/build/sampling", { query: { sampler: samplerSel.value, onset, offset, ...(apex !== null ? { apex } : {}), params: JSON.stringify(params) } });
    } catch (e) {
      if (seq === sampleSeq) { thumbs.replaceChildren(); sampleNote.textContent = e.message; }
      return;
    }
    if (seq !== sampleSeq) return;
    const frames = r.frames;
    const unique = new Set(frames).size;
    sampleNote.textContent = `${frames.length} frames chosen (${unique} different) from ${onset}..${offset}` +
      (frames.length > MAX_THUMBS ? `; the first ${MAX_THUMBS} shown` : "");
    const tag = (f) => (f === onset ? "onset" : f === apex ? "apex" : f === offset ? "offset" : "");
    thumbs.replaceChildren(...frames.slice(0, MAX_THUMBS).map((f) => el("figure", { class: `thumb ${tag(f)}`, title: `go to frame ${f}`, onclick: () => go(f) },
      el("img", { src: frameUrl(f, 120), alt: `frame ${f}`, loading: "lazy" }),
      el("figcaption", {}, String(f), tag(f) ? el("span", { class: "tag" }, ` ${tag(f)}`) : ""))));
  }

  // -- keyboard --------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (!root.isConnected || !info || e.ctrlKey || e.metaKey || e.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    const t = e.target;
    const typing = t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
      (t.tagName === "INPUT" && !["range", "checkbox", "button"].includes(t.type)));
    if (typing) return;
    const k = e.key;
    let handled = true;
    if (k === "ArrowRight") go(cur + (e.shiftKey ? 10 : 1));
    else if (k === "ArrowLeft") go(cur - (e.shiftKey ? 10 : 1));
    else if (k === "Home") go(0);
    else if (k === "End") go(lastFrame());
    else if (k === "o" || k === "O") mark("onset");
    else if (k === "a" || k === "A") mark("apex");
    else if (k === "f" || k === "F") mark("offset");
    else if (k === "Enter" && (t.tagName !== "BUTTON" || markRow.contains(t))) addClip();
    else if (k === "Escape") clearMarks();
    else handled = false;
    if (handled) e.preventDefault();
  });

  // -- spotter ---------------------------------------------------------------------------------
  spotBtn.addEventListener("click", async () => {
    if (!info) return;
    showError(null);
    spotBtn.disabled = true;
    try {
      const submitted = await api("/api/build/spot", { method: "POST", body: { video: info.path, fps: fpsGiven } });
      const done = await spotJob.follow(submitted, "Spotting");
      if (done.state === "done") showSuggestions(done);
      else if (done.state === "failed") showError(done.error);
    } catch (e) { showError(e.message); }
    finally { spotBtn.disabled = false; }
  });

  function showSuggestions(job) {
    suggestions = job.result.intervals.map((s) => ({ ...s, accepted: clips.some((c) => c.onset === s.onset && c.offset === s.offset) }));
    renderTimeline();
    if (!suggestions.length) { spotOut.replaceChildren(el("p", { class: "muted" }, "The spotter found no interval in this recording.")); return; }
    const rows = suggestions.map((s, i) => el("tr", { class: "pick", title: "click to show its apex", onclick: () => go(s.apex ?? s.onset) },
      el("td", { class: "num" }, String(s.onset)), el("td", { class: "num" }, s.apex ?? ""), el("td", { class: "num" }, String(s.offset)),
      el("td", {}, s.kind || ""), el("td", { class: "num" }, s.score === null || s.score === undefined ? "" : Number(s.score).toFixed(1)),
      el("td", {}, el("button", { type: "button", class: "small accept", disabled: s.accepted,
        onclick: (e) => { e.stopPropagation(); accept(i); } }, s.accepted ? "added" : "Accept"))));
    spotOut.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "data compact" },
      el("thead", {}, el("tr", {}, ["onset", "apex", "offset", "kind", "score", ""].map((h, k) => el("th", { class: k < 3 || k === 4 ? "num" : "" }, h)))),
      el("tbody", {}, rows))),
    job.result.timeline ? el("a", { href: jobFile(job.id, job.result.timeline), target: "_blank", class: "small" }, "the spotter's timeline (PNG)") : "");
  }
  function accept(i) {
    const s = suggestions[i];
    clips.push({ onset: s.onset, apex: s.apex ?? null, offset: s.offset, emotion: "", action_units: "", kind: s.kind || "" });
    clips.sort((a, b) => a.onset - b.onset || a.offset - b.offset);
    s.accepted = true;
    save();
    showSuggestions({ result: { intervals: suggestions, timeline: null }, id: null });
    editClip(clips.findIndex((c) => c.onset === s.onset && c.offset === s.offset));
  }

  // -- export ----------------------------------------------------------------------------------
  outInput.addEventListener("input", () => { outInput.dataset.auto = "0"; });
  outBrowse.addEventListener("click", async () => {
    const chosen = await pickFolder(outInput.value.trim() || null);
    if (chosen) { outInput.value = chosen; outInput.dataset.auto = "0"; }
  });
  overwriteBox.addEventListener("change", () => { if (overwriteBox.checked) appendBox.checked = false; });
  appendBox.addEventListener("change", () => { if (appendBox.checked) overwriteBox.checked = false; });

  exportBtn.addEventListener("click", async () => {
    if (!info) return;
    showError(null);
    exportBtn.disabled = true;
    try {
      const body = { video: info.path, fps: fpsGiven, clips, out: outInput.value.trim(), subject: subjectInput.value.trim(),
        sheet_format: sheetSel.value, context: Number(contextInput.value) || 0, overwrite: overwriteBox.checked, append: appendBox.checked };
      const submitted = await api("/api/build/export", { method: "POST", body });
      const done = await exportJob.follow(submitted, "Export");
      if (done.state === "done") showExport(done);
      else if (done.state === "failed") showError(done.error);
    } catch (e) { showError(e.message); }
    finally { exportBtn.disabled = !info || clips.length === 0; }
  });

  function showExport(job) {
    const r = job.result, c = r.check;
    const classes = Object.entries(c.classes);
    const status = c.ok ? el("span", { class: "badge good" }, "no missing or broken clips")
      : el("span", { class: "badge warn" }, `${c.missing.length} missing, ${c.problems.length} problems`);
    const parts = [el("h2", {}, "Dataset written"),
      el("div", { class: "summary", id: "export-summary" }, el("b", {}, c.dataset), `: ${c.n_samples} samples, ${c.n_subjects} subjects, ${classes.length} classes`, status),
      el("p", { class: "muted small mono" }, r.sheet),
      el("div", { class: "tables" },
        el("div", {}, el("h3", {}, "Samples per class"), table(["class", { key: "n", label: "samples", num: true }],
          classes.map(([k, n]) => ({ class: k, n })), { total: true })),
        el("div", {}, el("h3", {}, "Clips as the loader reads them"), table(["sample_id", { key: "onset", num: true }, { key: "apex", num: true },
          { key: "offset", num: true }, "emotion"], r.loaded)))];
    const notes = [...r.problems, ...r.notes];
    if (notes.length) parts.push(el("h3", {}, "Notes"), el("ul", { class: "notes" }, notes.map((n) => el("li", {}, n))));
    if (c.problems.length) parts.push(el("h3", {}, "Problems"), table(["sample", { key: "reason", cls: "reason" }], c.problems));
    parts.push(el("div", { class: "row end" }, el("button", { type: "button", id: "open-in-data", onclick: () => openInData(r.loader, r.out) }, "Open in the Data screen →")));
    exportOut.replaceChildren(...parts);
    exportOut.hidden = false;
    exportOut.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // the Data screen's form is filled by its element ids (#loader, #root): it needs no change
  async function openInData(loader, folder) {
    location.hash = "data";
    const t0 = Date.now();
    let sel = null;
    while (!(sel = document.querySelector("#screen-data #loader")) && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
    if (!sel) return;
    sel.value = loader;
    sel.dispatchEvent(new Event("change"));
    const rootInput = document.querySelector("#screen-data #root");
    if (rootInput) rootInput.value = folder;
  }

  renderAll();
}
