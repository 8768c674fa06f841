// The Train and evaluate screen: a ready config or one built from menus (filled from mekit's
// catalogue), key=value overrides, a check that shows the resolved config, an evaluation with
// live progress (folds, epochs, loss curve), its results (metrics with confidence intervals,
// confusion matrix, per-class and per-subject tables, downloads), the final model as a bundle,
// and a comparison of runs. Routes: /api/train/... (mekit/app/routes_train.py).

/** the SVG namespace, as the HTML parser gives it (no address is written out in the page's files) */
const SVG = (() => { const d = document.createElement("div"); d.innerHTML = "<svg></svg>"; return d.firstChild.namespaceURI; })();
/** the quick recipe: the tiny synthetic corpus, no face detection, fast flow, HOOF + logistic regression */
const QUICK = {
  loader: "synthetic", options: { n_subjects: "4", clips_per_subject: "3", size: "64", frames: "[20, 28]" },
  detector: "none", flow: "farneback", size: "64", model: "logreg", features: "hoof", class_weight: "balanced",
  sampler: "", protocol: "loso", device: "cpu", overrides: "preprocess.landmarks=false",
};
const METRIC_LABELS = { uf1: "UF1", uar: "UAR", accuracy: "Accuracy", weighted_f1: "Weighted F1", macro_f1: "Macro F1",
  mae: "MAE", rmse: "RMSE", pearson: "Pearson r", spearman: "Spearman ρ", ccc: "CCC", icc: "ICC(3,1)" };

const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : typeof v === "number" ? v.toFixed(d) : String(v));

export async function mount(root, app) {
  const { api, el, table, showError, jobBox, jobFile, pickFolder } = app;
  const ch = await api("/api/train/choices");
  const loaders = Object.fromEntries(ch.loaders.map((l) => [l.name, l]));
  const classifiers = new Set(ch.classifiers.map((c) => c.name));
  const models = Object.fromEntries(ch.models.map((m) => [m.name, m]));
  const protocols = Object.fromEntries(ch.protocols.map((p) => [p.name, p]));
  const metricHelp = Object.fromEntries(ch.metrics.map((m) => [m.name, m.help]));
  const field = (label, control, help) => el("label", { class: "field" }, el("span", {}, label), control, help);
  const opt = (value, text, title) => el("option", { value, title }, text ?? value);

  // -- the recipe (left) -------------------------------------------------------------------------
  const srcReady = el("input", { type: "radio", name: "source", value: "ready", id: "source-ready" });
  const srcMenus = el("input", { type: "radio", name: "source", value: "menus", id: "source-menus", checked: true });
  const seg = el("div", { class: "seg", role: "radiogroup" },
    el("label", {}, srcMenus, el("span", {}, "Build from menus")),
    el("label", {}, srcReady, el("span", {}, "Ready config")));

  // ready config
  const readySel = el("select", { id: "ready" }, ch.ready_configs.map((c) =>
    opt(c.id, c.where === "mekit" ? `${c.name} (packaged)` : c.name, c.where)));
  const readyHelp = el("small", { class: "help" });
  const readyRoot = el("input", { type: "text", id: "ready-root", placeholder: "(as the config says)", autocomplete: "off" });
  const readyBrowse = el("button", { type: "button" }, "Browse…");
  const readyBox = el("div", { hidden: true, id: "ready-box" },
    field("Config", readySel, readyHelp),
    el("label", { class: "field" }, el("span", {}, "Dataset folder"),
      el("div", { class: "row" }, el("div", { class: "grow" }, readyRoot), readyBrowse),
      el("small", { class: "help" }, "Replaces the config's data.root; must lie inside an allowed folder.")));

  // menus
  const loaderSel = el("select", { id: "train-loader" }, ch.loaders.map((l) => opt(l.name, l.name, l.help)));
  const rootInput = el("input", { type: "text", id: "train-root", placeholder: "dataset folder", autocomplete: "off" });
  const browseBtn = el("button", { type: "button", id: "train-browse" }, "Browse…");
  const schemeSel = el("select", { id: "train-label-scheme" }, opt("", "(as the loader labels)"),
    ch.label_schemes.map((s) => opt(s.name, `${s.name} (${s.classes.length} classes)`, s.help)));
  const optionsBox = el("div", { class: "grid2" });
  const optionInputs = {};
  const detectorSel = el("select", { id: "train-detector" }, ch.face_detectors.map((d) => opt(d.name, d.name, d.help)));
  const flowSel = el("select", { id: "train-flow" }, ch.flow_methods.map((f) => opt(f.name, f.name, f.help)));
  const sizeInput = el("input", { type: "number", id: "train-size", min: 8, step: 1, placeholder: "128" });
  const modelSel = el("select", { id: "train-model" },
    el("optgroup", { label: "Classical: features + classifier" }, ch.classifiers.map((c) => opt(c.name, c.name, c.help))),
    el("optgroup", { label: "Neural: end to end" }, ch.models.map((m) => opt(m.name, m.name, m.help))));
  const modelHelp = el("small", { class: "help" });
  const featuresSel = el("select", { id: "train-features" }, ch.features.map((f) => opt(f.name, f.name, f.help)));
  const featuresHelp = el("small", { class: "help" });
  const weightSel = el("select", { id: "class-weight" }, opt("balanced", "balanced"), opt("", "none"));
  const samplerSel = el("select", { id: "train-sampler" }, opt("", "none"),
    ch.samplers.map((s) => opt(s.name, s.name, s.help)));
  const lossSel = el("select", { id: "train-loss" }, opt("", "(model default)"), ch.losses.map((l) => opt(l.name, l.name, l.help)));
  const lossField = field("Loss (neural)", lossSel);
  const protocolSel = el("select", { id: "train-protocol" }, ch.protocols.map((p) => opt(p.name, p.name, p.help)));
  const protocolHelp = el("small", { class: "help" });
  const protocolParams = el("div", { class: "grid2" });
  const paramInputs = {};
  const quickBtn = el("button", { type: "button", id: "train-quick", class: "small",
    title: "tiny synthetic corpus, no face detection, Farneback flow, HOOF + logistic regression, LOSO, CPU" }, "Quick settings");
  const menusBox = el("div", { id: "menus-box" },
    el("div", { class: "section-title" }, el("h3", {}, "Dataset"), quickBtn),
    field("Loader", loaderSel),
    el("label", { class: "field" }, el("span", {}, "Folder"),
      el("div", { class: "row" }, el("div", { class: "grow" }, rootInput), browseBtn)),
    field("Label scheme", schemeSel),
    el("details", { class: "options", id: "train-loader-options" }, el("summary", {}, "Loader options"), optionsBox),
    el("h3", {}, "Preprocessing"),
    el("div", { class: "grid3" }, field("Face detector", detectorSel), field("Flow", flowSel), field("Crop (px)", sizeInput)),
    el("h3", {}, "Method"),
    field("Model", modelSel, modelHelp),
    field("Features", featuresSel, featuresHelp),
    el("div", { class: "grid2" }, field("Class weights", weightSel), field("Sampler", samplerSel)),
    lossField,
    el("h3", {}, "Protocol"),
    field("Protocol", protocolSel, protocolHelp),
    protocolParams);

  const deviceSel = el("select", { id: "train-device" }, ch.devices.map((d) => opt(d.name, d.name, d.help)));
  const nameInput = el("input", { type: "text", id: "run-name", placeholder: "(from the recipe)", autocomplete: "off" });
  const overridesInput = el("textarea", { id: "overrides", rows: 3,
    placeholder: "key=value per line, as after mekit evaluate\ne.g. protocol.seeds=[0, 1]\nmodel.params.epochs=5" });
  const checkBtn = el("button", { type: "button", id: "check-config" }, "Check config");
  const evalBtn = el("button", { type: "button", class: "primary", id: "run-evaluate" }, "Evaluate");
  const configPreview = el("pre", { class: "yaml", id: "config-preview", hidden: true });
  const configSummary = el("span", { class: "muted small", id: "config-summary" }, "not checked yet");
  const previewBox = el("details", { class: "options", id: "config-details" },
    el("summary", {}, "Resolved config ", configSummary), configPreview);

  const form = el("div", { class: "form-col" },
    el("section", { class: "panel" }, el("h2", {}, "Recipe"), seg, readyBox, menusBox),
    el("section", { class: "panel" }, el("h2", {}, "Run"),
      el("div", { class: "grid2" }, field("Device", deviceSel), field("Name", nameInput)),
      field("Overrides", overridesInput),
      previewBox,
      el("div", { class: "row end" }, checkBtn, evalBtn),
      el("small", { class: "help" }, "Evaluate runs the protocol's folds and writes a report folder; ",
        "each fold's model sees only its training subjects.")));

  // -- progress and results (right) --------------------------------------------------------------
  const job = jobBox();
  const foldFill = el("div");
  const foldBar = el("div", { class: "bar" }, foldFill);
  const foldText = el("div", { class: "job-line", id: "fold-text" });
  const epochText = el("div", { class: "muted small", id: "epoch-text" });
  const curve = el("div", { class: "loss-curve", id: "loss-curve", hidden: true });
  const progressOut = el("section", { class: "panel", id: "train-progress", hidden: true },
    el("h2", {}, "Progress"), foldText, foldBar, epochText, curve);
  const resultOut = el("section", { class: "panel", id: "train-result" }, el("h2", {}, "Results"),
    el("div", { class: "placeholder" }, "Choose a recipe, then Evaluate. Quick settings give a result in seconds."));
  const runsList = el("div", { id: "runs-list" });
  const addRunBtn = el("button", { type: "button", id: "add-run" }, "Add a run folder…");
  const compareBtn = el("button", { type: "button", class: "primary", id: "run-compare" }, "Compare ticked runs");
  const compareOut = el("div", { id: "compare-result" });
  const runsOut = el("section", { class: "panel", id: "train-runs" }, el("h2", {}, "Runs"),
    el("p", { class: "muted small" }, "Tick two or more finished runs to see their metrics side by side; the first ticked is the baseline of the deltas."),
    runsList, el("div", { class: "row end" }, addRunBtn, compareBtn), compareOut);
  root.append(el("div", { class: "columns" }, form,
    el("div", { class: "results" }, job.node, progressOut, resultOut, runsOut)));

  // -- menus behaviour ---------------------------------------------------------------------------
  function onSource() {
    const ready = srcReady.checked;
    readyBox.hidden = !ready;
    menusBox.hidden = ready;
    if (ready) checkConfig(true);
  }
  srcReady.addEventListener("change", onSource);
  srcMenus.addEventListener("change", onSource);

  function onReady() {
    const c = ch.ready_configs.find((x) => x.id === readySel.value);
    readyHelp.textContent = c ? c.help || c.where : "";
    checkConfig(true);
  }
  readySel.addEventListener("change", onReady);
  if (ch.ready_configs.length) readyHelp.textContent = ch.ready_configs[0].help;

  function onLoader() {
    const l = loaders[loaderSel.value];
    rootInput.placeholder = l.needs_root ? "dataset folder (required)" : "(none needed: generated once in mekit's cache)";
    rootInput.title = l.help;
    optionsBox.replaceChildren();
    for (const k of Object.keys(optionInputs)) delete optionInputs[k];
    for (const o of l.options) {
      const def = o.default === undefined || o.default === null ? "" : JSON.stringify(o.default);
      const input = el("input", { type: "text", name: `opt-${o.name}`, placeholder: def || (o.required ? "required" : ""), title: o.type, autocomplete: "off" });
      optionInputs[o.name] = input;
      optionsBox.append(field(o.name, input));
    }
  }
  loaderSel.addEventListener("change", onLoader);

  function onModel() {
    const name = modelSel.value;
    const neural = !classifiers.has(name);
    featuresSel.disabled = neural;
    featuresHelp.textContent = neural ? `${name} reads its own input (${models[name].input}); features apply to classical models`
      : (ch.features.find((f) => f.name === featuresSel.value) || {}).help || "";
    modelHelp.textContent = neural ? models[name].help : (ch.classifiers.find((c) => c.name === name) || {}).help || "";
    lossField.hidden = !neural;
    // a neural model resamples batches by index; synthetic samplers (SMOTE...) need feature vectors
    for (const o of samplerSel.options) {
      const s = ch.samplers.find((x) => x.name === o.value);
      o.disabled = !!(neural && s && !s.indices);
    }
    if (samplerSel.selectedOptions[0]?.disabled) samplerSel.value = "";
  }
  modelSel.addEventListener("change", onModel);
  featuresSel.addEventListener("change", onModel);

  function onProtocol() {
    const p = protocols[protocolSel.value];
    protocolHelp.textContent = p.help;
    protocolParams.replaceChildren();
    for (const k of Object.keys(paramInputs)) delete paramInputs[k];
    for (const prm of p.params) {
      const input = el("input", { type: "text", name: `protocol-${prm.name}`, placeholder: JSON.stringify(prm.default ?? ""), title: prm.type, autocomplete: "off" });
      paramInputs[prm.name] = input;
      protocolParams.append(field(prm.name, input));
    }
  }
  protocolSel.addEventListener("change", onProtocol);

  for (const [btn, input] of [[browseBtn, rootInput], [readyBrowse, readyRoot]]) {
    btn.addEventListener("click", async () => {
      const chosen = await pickFolder(input.value.trim() || null);
      if (chosen) input.value = chosen;
    });
  }

  function applyMenus(v) {
    if (v.loader) { loaderSel.value = v.loader; onLoader(); }
    rootInput.value = v.root || "";
    for (const [k, val] of Object.entries(v.options || {})) if (optionInputs[k]) optionInputs[k].value = val;
    detectorSel.value = v.detector; flowSel.value = v.flow; sizeInput.value = v.size;
    modelSel.value = v.model; featuresSel.value = v.features; weightSel.value = v.class_weight;
    samplerSel.value = v.sampler; protocolSel.value = v.protocol; onProtocol(); onModel();
    deviceSel.value = v.device;
    if (v.overrides !== undefined) overridesInput.value = v.overrides;
  }
  quickBtn.addEventListener("click", () => { applyMenus(QUICK); checkConfig(true); });

  // defaults: what `mekit run` does with no arguments (synthetic corpus, HOOF, logistic regression, LOSO)
  applyMenus({ loader: "synthetic", options: {}, detector: "none", flow: "tvl1", size: "128", model: "logreg",
    features: "hoof", class_weight: "balanced", sampler: "", protocol: "loso", device: "auto" });

  // -- the config spec and its check ---------------------------------------------------------------
  function spec() {
    const s = { source: srcReady.checked ? "ready" : "menus", device: deviceSel.value, name: nameInput.value.trim() || null,
      overrides: overridesInput.value };
    if (s.source === "ready") {
      s.ready = readySel.value;
      s.root = readyRoot.value.trim() || null;
    } else {
      const options = {};
      for (const [k, input] of Object.entries(optionInputs)) if (input.value.trim()) options[k] = input.value.trim();
      const params = {};
      for (const [k, input] of Object.entries(paramInputs)) if (input.value.trim()) params[k] = input.value.trim();
      s.menus = { loader: loaderSel.value, root: rootInput.value.trim(), label_scheme: schemeSel.value, options,
        detector: detectorSel.value, flow: flowSel.value, size: sizeInput.value, model: modelSel.value,
        features: featuresSel.value, class_weight: weightSel.value, sampler: samplerSel.value, loss: lossSel.value,
        protocol: protocolSel.value, protocol_params: params };
    }
    return s;
  }

  let checkSeq = 0;
  async function checkConfig(quiet = false) {
    const mine = ++checkSeq;
    configSummary.textContent = "checking…";
    try {
      const r = await api("/api/train/config", { method: "POST", body: spec() });
      if (mine !== checkSeq) return null;
      configPreview.textContent = r.yaml;
      configPreview.hidden = false;
      configSummary.textContent = `${r.name}: ${r.model} on ${r.loader}, ${r.protocol}${r.neural ? " (neural)" : ""}`;
      configSummary.className = "small ok";
      if (!quiet) showError(null);
      return r;
    } catch (e) {
      if (mine !== checkSeq) return null;
      configPreview.textContent = "";
      configPreview.hidden = true;
      configSummary.textContent = "not valid";
      configSummary.className = "small bad";
      showError(e.message);
      return null;
    }
  }
  checkBtn.addEventListener("click", async () => {
    if (await checkConfig()) previewBox.open = true;
  });

  // -- running jobs ----------------------------------------------------------------------------------
  const buttons = [checkBtn, evalBtn, compareBtn];
  async function run(path, body, label, onDone, onUpdate, onStart) {
    showError(null);
    buttons.forEach((b) => (b.disabled = true));
    try {
      const submitted = await api(path, { method: "POST", body });
      if (onStart) onStart(submitted);
      job.node.scrollIntoView({ block: onStart ? "start" : "nearest" });
      const finished = await job.follow(submitted, label, onUpdate);
      if (finished.state === "done") await onDone(finished);
      else if (finished.state === "failed") showError(finished.error);
      return finished;
    } catch (e) {
      showError(e.message);
      return null;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  // progress: folds of each seed, the epoch being trained, the loss curve of every fold
  let progress;
  function resetProgress() {
    progress = { curves: new Map(), current: null, foldsDone: 0, foldsTotal: null, seed: null, lastEpoch: null };
    foldFill.style.width = "0%";
    foldText.replaceChildren(el("span", {}, "Folds"), el("span", { class: "muted" }, "waiting for the data…"));
    epochText.textContent = "";
    curve.hidden = true;
    curve.replaceChildren();
    progressOut.hidden = false;
  }
  function onEvents(j, events) {
    for (const ev of events) {
      if (ev.stage === "folds" && (ev.kind === "stage_start" || ev.kind === "progress")) {
        progress.foldsTotal = ev.total; progress.foldsDone = ev.done || 0; progress.seed = ev.seed;
      } else if (ev.kind === "fold") {
        progress.foldsDone = ev.done; progress.foldsTotal = ev.total; progress.seed = ev.seed;
        progress.lastFold = ev.fold + (ev.resumed ? " (read back)" : "");
      } else if (ev.kind === "epoch") {
        const key = `seed ${ev.seed ?? 0} · ${ev.fold ?? "final"}`;
        let runs = progress.curves.get(key);
        if (!runs) { runs = [[]]; progress.curves.set(key, runs); }
        let cur = runs[runs.length - 1];
        if (cur.length && ev.epoch <= cur[cur.length - 1].epoch) { cur = []; runs.push(cur); } // a second fit (refit)
        cur.push({ epoch: ev.epoch, loss: ev.loss });
        progress.current = key;
        progress.lastEpoch = ev;
      }
    }
    const t = progress.foldsTotal;
    if (t) {
      foldFill.style.width = `${Math.min(100, (100 * progress.foldsDone) / t).toFixed(1)}%`;
      foldText.replaceChildren(el("span", {}, el("b", {}, `Fold ${progress.foldsDone} / ${t}`),
        progress.seed !== null && progress.seed !== undefined ? ` · seed ${progress.seed}` : ""),
        el("span", { class: "muted" }, progress.lastFold ? `last finished: ${progress.lastFold}` : ""));
    } else if (j.progress) {
      const p = j.progress;
      foldText.replaceChildren(el("span", {}, "Folds"),
        el("span", { class: "muted" }, p.total ? `${p.stage}: ${p.done} / ${p.total}` : `${p.stage}…`));
    }
    const e = progress.lastEpoch;
    if (e) {
      epochText.textContent = `${progress.current}: epoch ${e.epoch} / ${e.epochs}, loss ${fmt(e.loss)}` +
        (e.val !== null && e.val !== undefined ? `, validation ${e.metric || ""} ${fmt(e.val)}` : "");
      drawCurves();
    }
    if (j.state === "done" && t) foldFill.style.width = "100%";
  }

  function drawCurves() {
    const W = 560, H = 190, L = 44, R = 10, T = 10, B = 38;
    const all = [...progress.curves.values()].flat(2);
    if (!all.length) return;
    const maxE = Math.max(2, ...all.map((p) => p.epoch));
    const losses = all.map((p) => p.loss).filter((v) => Number.isFinite(v));
    const lo = Math.min(...losses), hi = Math.max(...losses);
    const pad = (hi - lo) * 0.08 || 0.05;
    const y0 = Math.max(0, lo - pad), y1 = hi + pad;
    const x = (e) => L + ((e - 1) / (maxE - 1)) * (W - L - R);
    const y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    const s = (tag, attrs, ...kids) => {
      const n = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      for (const k of kids) n.append(k);
      return n;
    };
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "loss-svg", role: "img", "aria-label": "training loss per epoch" });
    for (let i = 0; i <= 4; i++) {
      const v = y0 + ((y1 - y0) * i) / 4;
      svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
        s("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, v.toFixed(2)));
    }
    const step = Math.max(1, Math.ceil(maxE / 8));
    for (let e = 1; e <= maxE; e += step) svg.append(s("text", { x: x(e), y: H - B + 14, class: "tick", "text-anchor": "middle" }, String(e)));
    svg.append(s("text", { x: (L + W - R) / 2, y: H - 4, class: "tick", "text-anchor": "middle" }, "epoch"));
    for (const [key, runs] of progress.curves) {
      for (const pts of runs) {
        if (!pts.length) continue;
        const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.epoch).toFixed(1)},${y(p.loss).toFixed(1)}`).join(" ");
        svg.append(s("path", { d, class: key === progress.current && pts === runs[runs.length - 1] ? "now" : "past" }));
      }
    }
    curve.replaceChildren(el("div", { class: "small muted" }, "Training loss per epoch (the current fold in colour, finished folds in grey)"), svg);
    curve.hidden = false;
  }

  evalBtn.addEventListener("click", async () => {
    const finished = await run("/api/train/evaluate", spec(), "Evaluation", async (j) => {
      showRun(j);
      await refreshRuns(j.id);
    }, onEvents, resetProgress);
    if (finished && finished.state !== "done") foldText.append(el("span", { class: "bad" }, finished.state));
  });

  // -- results ---------------------------------------------------------------------------------------
  function metricsTable(r) {
    const m = r.metrics;
    const names = ch.metrics.filter((x) => x.task === r.task && x.name !== "macro_f1").map((x) => x.name).filter((k) => k in m);
    const ci = m.bootstrap_ci95 || {};
    const seeds = m.over_seeds || {};
    const cols = [{ key: "metric", label: "metric" }, { key: "value", label: "value", num: true },
      { key: "ci", label: "95% CI (subject bootstrap)", num: true }];
    if (Object.keys(seeds).length) cols.push({ key: "seeds", label: `over ${m.seeds.length} seeds (mean ± sd)`, num: true });
    const rows = names.map((k) => ({
      metric: el("span", { title: metricHelp[k] || "" }, METRIC_LABELS[k] || k),
      value: el("b", {}, fmt(m[k])),
      ci: ci[k] ? `${fmt(ci[k][0])} – ${fmt(ci[k][1])}` : "–",
      seeds: seeds[k] ? `${fmt(seeds[k].mean)} ± ${fmt(seeds[k].std)}` : "",
    }));
    return table(cols, rows);
  }

  function breakdownTable(obj, firstLabel, short) {
    const entries = Object.entries(obj || {});
    if (!entries.length) return null;
    const keys = [...new Set(entries.flatMap(([, v]) => Object.keys(v)))];
    const cols = [firstLabel, ...keys.map((k) => ({ key: k, label: METRIC_LABELS[k] || k, num: true }))];
    return table(cols, entries.map(([name, v]) => {
      const row = { [firstLabel]: short ? name.slice(name.indexOf("/") + 1) : name };
      for (const k of keys) row[k] = typeof v[k] === "number" && !Number.isInteger(v[k]) ? fmt(v[k]) : v[k];
      return row;
    }));
  }

  function confusionFallback(m) {
    if (!m.confusion) return null;
    return table(["true \\ predicted", ...m.classes.map((c) => ({ key: c, label: c, num: true }))],
      m.classes.map((c, i) => ({ "true \\ predicted": c, ...Object.fromEntries(m.classes.map((p, k) => [p, m.confusion[i][k]])) })));
  }

  let shown = null;
  function showRun(j) {
    const r = j.result, m = r.metrics;
    shown = j;
    const file = (name) => jobFile(j.id, `${r.run}/${name}`);
    const leaky = m.leaky ? el("span", { class: "badge warn", title: m.model_selection }, "LEAKY: sample-level split") : "";
    const parts = [
      el("div", { class: "section-title" }, el("h2", {}, "Results"), el("span", { class: "muted small mono" }, j.id)),
      el("div", { class: "summary", id: "result-summary" }, el("b", {}, r.name), `: ${r.model}`,
        r.features ? ` on ${r.features}` : "", `, ${r.loader}`, r.label_scheme ? ` (${r.label_scheme})` : "", leaky),
      el("p", { class: "muted small" }, [m.protocol_description || m.protocol,
        `${m.n_samples ?? m.n_clips ?? "?"} samples, ${m.n_subjects ?? "?"} subjects, ${m.n_folds ?? "?"} folds`,
        m.timing_s ? `${fmt(m.timing_s.total, 1)} s` : ""].filter(Boolean).join(" · ")),
      el("div", { class: "tables" },
        el("div", { id: "metrics-table" }, el("h3", {}, "Metrics"), metricsTable(r)),
        m.per_class ? el("div", { id: "per-class" }, el("h3", {}, "Per class"),
          table(["class", { key: "precision", num: true }, { key: "recall", num: true }, { key: "f1", label: "F1", num: true },
            { key: "support", num: true }], Object.entries(m.per_class).map(([c, v]) => ({ class: c,
            precision: fmt(v.precision), recall: fmt(v.recall), f1: fmt(v.f1), support: v.support })), { total: false })) : ""),
    ];
    const figs = (m.figures || []).filter((f) => r.files.includes(f));
    const titles = { "confusion_matrix.png": "Confusion matrix (pooled over folds)", "per_class.png": "Per-class F1, precision and recall",
      "learning_curves.png": "Learning curves (mean over folds)" };
    if (figs.length) {
      parts.push(el("div", { class: "figures", id: "result-figures" }, figs.map((f) => el("figure", { "data-figure": f,
        class: f === "confusion_matrix.png" ? "wide" : "" },
        el("a", { href: file(f), target: "_blank" }, el("img", { src: file(f), alt: titles[f] || f })),
        el("figcaption", {}, titles[f] || f)))));
    } else if (m.confusion) {
      parts.push(el("h3", {}, "Confusion matrix"), confusionFallback(m));
    }
    const subj = breakdownTable(m.per_subject, "subject", true);
    if (subj) parts.push(el("details", { class: "options", id: "per-subject", open: Object.keys(m.per_subject).length <= 12 },
      el("summary", {}, `Per subject (${Object.keys(m.per_subject).length})`), subj));
    const ds = breakdownTable(m.per_dataset, "dataset", false);
    if (ds) parts.push(el("h3", {}, "Per dataset"), ds);
    const notes = [r.excluded_summary, m.model_selection].filter(Boolean);
    if (notes.length) parts.push(el("ul", { class: "notes small" }, notes.map((n) => el("li", {}, n))));
    // downloads and the final model
    const zip = `/api/train/report.zip?run=${encodeURIComponent(r.run_dir)}`;
    const bundleBtn = el("button", { type: "button", id: "train-bundle" }, "Train final model");
    const bundleOut = el("span", { id: "bundle-result", class: "small" });
    parts.push(el("div", { class: "downloads" },
      el("a", { href: zip, id: "download-zip", class: "button", download: `${r.run}.zip` }, "Report folder (.zip)"),
      ["report.md", "predictions.csv", "metrics.json"].filter((f) => r.files.includes(f)).map((f) =>
        el("a", { href: file(f), class: "button light", target: "_blank" }, f)),
      el("span", { class: "grow" }), bundleOut, bundleBtn),
      el("p", { class: "muted small" }, "The final model is fitted on every subject with the same config (model selection by its own inner CV) and saved as a .mekit bundle for mekit predict and the Analyse screen."));
    bundleBtn.addEventListener("click", async () => {
      bundleBtn.disabled = true;
      bundleOut.replaceChildren("training…");
      await run("/api/train/bundle", { job: j.id }, "Final model", (b) => {
        const r2 = b.result;
        bundleOut.replaceChildren(el("a", { href: jobFile(b.id, r2.bundle), download: r2.bundle, id: "bundle-link", class: "button" },
          `${r2.bundle} (${(r2.size / 1024).toFixed(0)} KB)`));
      });
      if (!bundleOut.querySelector("a")) bundleOut.replaceChildren();
      bundleBtn.disabled = false;
    });
    resultOut.replaceChildren(...parts);
  }

  // -- runs and comparison ---------------------------------------------------------------------------
  const extraRuns = [];  // run folders added with the picker: {name, run_dir}
  const ticked = [];     // run folders, in the order they were ticked
  async function refreshRuns(justFinished) {
    let data;
    try { data = await api("/api/train/runs"); } catch (e) { showError(e.message); return; }
    const items = [...data.runs, ...extraRuns];
    if (justFinished && !ticked.length) {
      const r = data.runs.find((x) => x.job === justFinished);
      if (r) ticked.push(r.run_dir);
    }
    if (!items.length) {
      runsList.replaceChildren(el("div", { class: "placeholder" }, "Finished evaluations appear here."));
      return;
    }
    runsList.replaceChildren(el("ul", { class: "runs" }, items.map((r) => {
      const box = el("input", { type: "checkbox", value: r.run_dir, checked: ticked.includes(r.run_dir) });
      box.addEventListener("change", () => {
        const i = ticked.indexOf(r.run_dir);
        if (box.checked && i < 0) ticked.push(r.run_dir);
        if (!box.checked && i >= 0) ticked.splice(i, 1);
        markBaseline();
      });
      const h = r.headline || {};
      const figures = Object.entries(h).map(([k, v]) => `${METRIC_LABELS[k] || k} ${fmt(v)}`).join(" · ");
      const name = r.live ? el("a", { href: "#train", class: "run-name", onclick: async (e) => {
        e.preventDefault();
        try { showRun(await api(`/api/jobs/${encodeURIComponent(r.job)}`)); resultOut.scrollIntoView({ block: "start" }); }
        catch (err) { showError(err.message); }
      } }, r.name) : el("span", { class: "run-name" }, r.name);
      return el("li", { "data-run": r.run_dir }, el("label", {}, box, name),
        el("span", { class: "muted small", title: r.run_dir }, r.job ? `${r.model} · ${r.loader} · ${r.protocol}${r.live ? "" : " · earlier session"}` : r.run_dir),
        el("span", { class: "small" }, figures), el("span", { class: "badge base", hidden: true }, "baseline"));
    })));
    markBaseline();
  }
  function markBaseline() {
    for (const li of runsList.querySelectorAll("li")) li.querySelector(".base").hidden = li.dataset.run !== ticked[0];
  }
  addRunBtn.addEventListener("click", async () => {
    const chosen = await pickFolder(null);
    if (!chosen || extraRuns.some((r) => r.run_dir === chosen)) return;
    extraRuns.push({ name: chosen.split("/").pop(), run_dir: chosen });
    ticked.push(chosen);
    refreshRuns();
  });
  compareBtn.addEventListener("click", async () => {
    if (ticked.length < 2) { showError("tick at least two runs to compare"); return; }
    await run("/api/train/compare", { runs: ticked }, "Comparison", (j) => {
      const r = j.result;
      // runs side by side: one column per run, one row per figure (its CI in the same cell)
      const keys = r.columns.filter((c) => c !== "run" && c !== "leaky" && !(c.endsWith("_ci") && r.columns.includes(c.slice(0, -3))));
      const cell = (row, k) => {
        const v = row[k];
        if (v === null || v === undefined) return "–";
        if (k.startsWith("d_") && typeof v === "number") {
          return `${v >= 0 ? "+" : ""}${v.toFixed(3)}${row[`${k}_ci`] ? ` ${row[`${k}_ci`]}` : ""}`;
        }
        const text = typeof v === "number" && !Number.isInteger(v) ? fmt(v) : String(v);
        return row[`${k}_ci`] ? `${text} (${row[`${k}_ci`].replace("-", " – ")})` : text;
      };
      const label = (k) => k.startsWith("d_") ? `Δ ${METRIC_LABELS[k.slice(2)] || k.slice(2)}` : k === "n" ? "samples"
        : k === "time_s" ? "time (s)" : k === "uf1_seeds" ? "UF1 over seeds" : METRIC_LABELS[k] || k;
      const cols = [{ key: "what", label: "" }, ...r.rows.map((row, i) => ({ key: `r${i}`, num: true,
        label: row.run === r.baseline ? `${row.run} (baseline)` : row.run }))];
      const rows = keys.map((k) => ({ what: el("span", { title: k }, label(k)),
        ...Object.fromEntries(r.rows.map((row, i) => [`r${i}`, cell(row, k)])) }));
      compareOut.replaceChildren(el("h3", {}, "Comparison"), table(cols, rows),
        [...r.warnings, ...r.notes].length ? el("ul", { class: "notes small" }, [...r.warnings.map((w) => el("li", { class: "warn" }, w)),
          ...r.notes.map((n) => el("li", {}, n))]) : "",
        el("div", { class: "downloads" }, r.files.map((f) => el("a", { href: jobFile(j.id, f), class: "button light", target: "_blank" }, f))));
    });
  });

  await refreshRuns();
}
