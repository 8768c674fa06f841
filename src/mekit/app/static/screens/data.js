// The Data screen: choose a loader and a folder, check the dataset (tables and EDA plots),
// preview chosen samples, preprocess with live progress. Every button starts a job through
// /api/data/... (mekit/app/routes_data.py) and follows it with a job box.

export async function mount(root, app) {
  const { api, el, table, showError, jobBox, jobFile, pickFolder } = app;
  const choices = await api("/api/data/choices");
  const loaders = Object.fromEntries(choices.loaders.map((l) => [l.name, l]));
  const defaults = choices.preprocess_defaults;

  // -- the form (left) -----------------------------------------------------------------------
  const loaderSel = el("select", { id: "loader", name: "loader" },
    choices.loaders.map((l) => el("option", { value: l.name }, l.name)));
  loaderSel.value = "synthetic";
  const loaderHelp = el("small", { class: "help" });
  const rootInput = el("input", { type: "text", id: "root", name: "root", placeholder: "dataset folder", autocomplete: "off" });
  const browseBtn = el("button", { type: "button", id: "browse" }, "Browse…");
  const rootHelp = el("small", { class: "help" });
  const schemeSel = el("select", { id: "label-scheme" }, el("option", { value: "" }, "(as the loader labels)"),
    choices.label_schemes.map((s) => el("option", { value: s.name, title: s.help }, `${s.name} (${s.classes.length} classes)`)));
  const optionsBox = el("div", { class: "grid2" });
  const optionInputs = {};
  const checkBtn = el("button", { type: "button", class: "primary", id: "run-check" }, "Check dataset");

  const sampleSel = el("select", { id: "samples", multiple: true, disabled: true });
  const sampleHelp = el("small", { class: "help" }, "Check the dataset first to choose samples; without a choice, the first 4 are drawn.");
  const previewBtn = el("button", { type: "button", id: "run-preview" }, "Preview");

  const detectorSel = el("select", { id: "detector" }, choices.face_detectors.map((d) =>
    el("option", { value: d.name, title: d.help }, d.name)));
  detectorSel.value = defaults.detector;
  const flowSel = el("select", { id: "flow" }, choices.flow_methods.map((f) =>
    el("option", { value: f.name, title: f.help }, f.name)));
  flowSel.value = defaults.flow;
  const sizeInput = el("input", { type: "number", id: "size", min: 8, step: 1, value: defaults.size });
  const workersInput = el("input", { type: "number", id: "workers", min: 0, step: 1, value: defaults.workers });
  const extraInput = el("textarea", { id: "extra-settings", placeholder: "more settings, key=value per line\ne.g. stack_sizes=[28, 64]" });
  const preprocessBtn = el("button", { type: "button", class: "primary", id: "run-preprocess" }, "Preprocess");
  const job = jobBox();

  const field = (label, control, help) => el("label", { class: "field" }, el("span", {}, label), control, help);
  const form = el("div", { class: "form-col" },
    el("section", { class: "panel" },
      el("h2", {}, "Dataset"),
      field("Loader", loaderSel, loaderHelp),
      el("label", { class: "field" }, el("span", {}, "Folder"),
        el("div", { class: "row" }, el("div", { class: "grow" }, rootInput), browseBtn), rootHelp),
      field("Label scheme", schemeSel),
      el("details", { class: "options", id: "loader-options" }, el("summary", {}, "Loader options"), optionsBox),
      el("div", { class: "row end" }, checkBtn)),
    el("section", { class: "panel" },
      el("h2", {}, "Preview samples"),
      field("Samples", sampleSel, sampleHelp),
      el("div", { class: "row end" }, previewBtn)),
    el("section", { class: "panel" },
      el("h2", {}, "Preprocess"),
      el("div", { class: "grid2" }, field("Face detector", detectorSel), field("Flow", flowSel),
        field("Crop size (px)", sizeInput), field("Workers (0 = all cores)", workersInput)),
      field("More settings", extraInput),
      el("div", { class: "row end" }, preprocessBtn),
      el("small", { class: "help" }, "Results go to mekit's preprocessing cache; the preview uses the same settings.")));

  // -- the results (right) ---------------------------------------------------------------------
  const checkOut = el("section", { class: "panel", id: "check-result" },
    el("h2", {}, "Data check"), el("div", { class: "placeholder" }, "Choose a loader and a folder, then Check dataset."));
  const edaOut = el("section", { class: "panel", id: "eda-result", hidden: true }, el("h2", {}, "Exploratory plots"));
  const previewOut = el("section", { class: "panel", id: "preview-result", hidden: true }, el("h2", {}, "Previews"));
  const preprocessOut = el("section", { class: "panel", id: "preprocess-result", hidden: true }, el("h2", {}, "Preprocessing"));
  root.append(el("div", { class: "columns" }, form, el("div", { class: "results" }, job.node, checkOut, edaOut, previewOut, preprocessOut)));

  // -- behaviour -----------------------------------------------------------------------------
  function onLoader() {
    const l = loaders[loaderSel.value];
    loaderHelp.textContent = l.help;
    rootHelp.textContent = l.needs_root ? "Must lie inside a folder the app was started with (--root)."
      : "Optional: without a folder the corpus is generated once in mekit's cache.";
    rootInput.placeholder = l.needs_root ? "dataset folder" : "(none needed)";
    optionsBox.replaceChildren();
    for (const k of Object.keys(optionInputs)) delete optionInputs[k];
    for (const o of l.options) {
      const def = o.default === undefined || o.default === null ? "" : JSON.stringify(o.default);
      const input = el("input", { type: "text", name: `opt-${o.name}`, placeholder: def || (o.required ? "required" : ""),
        title: o.type, autocomplete: "off" });
      optionInputs[o.name] = input;
      optionsBox.append(field(o.name, input, el("small", { class: "help mono" }, o.type)));
    }
  }
  loaderSel.addEventListener("change", onLoader);
  onLoader();

  browseBtn.addEventListener("click", async () => {
    const chosen = await pickFolder(rootInput.value.trim() || null);
    if (chosen) rootInput.value = chosen;
  });

  function dataset() {
    const options = {};
    for (const [k, input] of Object.entries(optionInputs)) if (input.value.trim()) options[k] = input.value.trim();
    return { loader: loaderSel.value, root: rootInput.value.trim() || null,
      label_scheme: schemeSel.value || null, options };
  }
  function settings() {
    const s = { detector: detectorSel.value, flow: flowSel.value };
    if (sizeInput.value) s.size = sizeInput.value;
    if (workersInput.value !== "") s.workers = workersInput.value;
    for (const line of extraInput.value.split("\n")) {
      const t = line.trim();
      if (!t || t.startsWith("#")) continue;
      const i = t.indexOf("=");
      if (i < 1) throw new Error(`setting ${JSON.stringify(t)} is not of the form key=value`);
      s[t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    return s;
  }

  const buttons = [checkBtn, previewBtn, preprocessBtn];
  async function run(path, body, label, onDone) {
    showError(null);
    buttons.forEach((b) => (b.disabled = true));
    try {
      const submitted = await api(path, { method: "POST", body: body() });
      job.node.hidden = false;
      job.node.scrollIntoView({ block: "nearest" });
      const finished = await job.follow(submitted, label);
      if (finished.state === "done") await onDone(finished);
      else if (finished.state === "failed") showError(finished.error);
    } catch (e) {
      showError(e.message);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  checkBtn.addEventListener("click", () => run("/api/data/check", dataset, "Data check", showCheck));
  previewBtn.addEventListener("click", () => run("/api/data/preview", () => ({
    ...dataset(), samples: [...sampleSel.selectedOptions].map((o) => o.value), settings: settings(),
  }), "Preview", showPreviews));
  preprocessBtn.addEventListener("click", () => run("/api/data/preprocess", () => ({ ...dataset(), settings: settings() }),
    "Preprocessing", showPreprocess));

  function showCheck(jobDone) {
    const r = jobDone.result;
    const classes = Object.keys(r.classes);
    const status = r.ok ? el("span", { class: "badge good" }, "no missing, broken or duplicated samples")
      : el("span", { class: "badge warn" }, `${r.missing.length} missing, ${r.problems.length} problems, ${r.duplicates.length} duplicates`);
    const parts = [el("h2", {}, "Data check"),
      el("div", { class: "summary", id: "check-summary" },
        el("b", {}, r.dataset), `: ${r.n_samples} samples, ${r.n_subjects} subjects, ${classes.length} classes`,
        r.scheme ? `, scheme ${r.scheme}` : "", status)];
    const tables = el("div", { class: "tables" });
    tables.append(el("div", {}, el("h3", {}, "Samples per class"),
      table(["class", { key: "n", label: "samples", num: true }],
        Object.entries(r.classes).map(([c, n]) => ({ class: c, n })), { total: true })));
    const splits = Object.keys(r.splits);
    if (splits.length > 1 || (splits.length === 1 && splits[0] !== "")) {
      tables.append(el("div", {}, el("h3", {}, "Samples per split"),
        table(["split", ...classes.map((c) => ({ key: c, label: c, num: true })), { key: "total", num: true }],
          Object.entries(r.splits).map(([s, cnt]) => ({ split: s || "(none)", ...cnt,
            total: Object.values(cnt).reduce((a, b) => a + b, 0) })))));
    }
    // one corpus: subjects without its prefix (as `mekit data check` prints them)
    const corpora = new Set(Object.keys(r.subject_classes).map((s) => s.split("/")[0]));
    const short = corpora.size === 1;
    tables.append(el("div", {}, el("h3", {}, "Samples per subject" + (short ? ` (${[...corpora][0]}/…)` : "")),
      table(["subject", ...classes.map((c) => ({ key: c, label: c, num: true })), { key: "total", num: true }],
        Object.entries(r.subject_classes).map(([s, cnt]) => {
          const row = { subject: short ? s.slice(s.indexOf("/") + 1) : s };
          for (const c of classes) row[c] = cnt[c] || 0;
          row.total = Object.values(cnt).reduce((a, b) => a + b, 0);
          return row;
        }), { total: true })));
    parts.push(tables);
    if (Object.keys(r.label_mapping).length) parts.push(el("h3", {}, "Label mapping"),
      table(["as written", "label"], Object.entries(r.label_mapping)));
    if (Object.keys(r.dropped).length) parts.push(el("h3", {}, "Dropped by the label scheme"),
      table(["emotion", { key: "n", num: true }], Object.entries(r.dropped).map(([e, n]) => ({ emotion: e, n }))));
    if (r.missing.length) parts.push(el("h3", {}, `Missing (${r.missing.length})`),
      table(["sample"], r.missing.map((m) => [m])));
    if (r.problems.length) parts.push(el("h3", {}, `Problems (${r.problems.length}, left out of the counts)`),
      table(["sample", { key: "reason", cls: "reason" }], r.problems.map((p) => ({ sample: p.sample, reason: p.reason }))));
    if (r.duplicates.length) parts.push(el("h3", {}, `Near-duplicates across splits (${r.duplicates.length})`),
      table(["a", "b", { key: "distance", num: true }], r.duplicates));
    if (r.notes.length) parts.push(el("h3", {}, "Notes"), el("ul", { class: "notes" }, r.notes.map((n) => el("li", {}, n))));
    checkOut.replaceChildren(...parts);

    // EDA figures
    if (r.eda) {
      const titles = { class_distribution: "Samples per class", subject_counts: "Samples per subject", sample_grid: "Sample faces per class" };
      edaOut.replaceChildren(el("h2", {}, "Exploratory plots"), el("div", { class: "figures" },
        Object.entries(r.eda.figures).map(([k, rel]) => {
          const url = jobFile(jobDone.id, rel);
          return el("figure", {}, el("a", { href: url, target: "_blank" }, el("img", { src: url, alt: titles[k] || k, loading: "lazy" })),
            el("figcaption", {}, titles[k] || k));
        })));
      edaOut.hidden = false;
    }
    // the preview picker
    sampleSel.replaceChildren(...r.samples.map((s) => el("option", { value: s.id }, `${s.id} — ${s.label}`)));
    sampleSel.disabled = r.samples.length === 0;
    sampleHelp.textContent = `${r.samples.length} samples${r.samples_truncated ? " (list cut)" : ""}; Ctrl/Shift-click to choose several (at most 32).`;
  }

  function showPreviews(jobDone) {
    const r = jobDone.result;
    const figs = r.previews.map((p) => {
      const url = jobFile(jobDone.id, p.file);
      return el("figure", {}, el("a", { href: url, target: "_blank" }, el("img", { src: url, alt: p.sample })),
        el("figcaption", {}, p.sample));
    });
    previewOut.replaceChildren(el("h2", {}, "Previews"),
      el("p", { class: "muted small" }, "Onset, apex and offset crops with landmarks and regions, onset→apex flow in colour (hue = direction), and optical strain."),
      el("div", { class: "figures wide" }, figs),
      r.missing.length ? el("p", { class: "muted" }, `no preview for ${r.missing.join(", ")} (skipped by preprocessing; see the job log)`) : "");
    previewOut.hidden = false;
    previewOut.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function showPreprocess(jobDone) {
    const s = jobDone.result;
    const skipped = Object.entries(s.skipped || {});
    const parts = [el("h2", {}, "Preprocessing"),
      el("div", { class: "tables" },
        el("div", {}, el("h3", {}, "Clips"), table(["", { key: "n", num: true }],
          [["clips", s.clips], ["done", s.done], ["computed", s.computed], ["cached", s.cached], ["skipped", skipped.length]].map(([k, n]) => ({ "": k, n })))),
        el("div", {}, el("h3", {}, "Time by stage (s)"), table(["stage", { key: "s", num: true }],
          Object.entries(s.timings).filter(([k, v]) => v >= 0.005 || k === "total")
            .map(([k, v]) => ({ stage: k === "total" ? "total (wall)" : k, s: v.toFixed(2) }))))),
      el("p", { class: "muted small" }, `cache: ${s.cache}`)];
    if (skipped.length) parts.push(el("h3", {}, `Skipped clips (${skipped.length})`),
      table(["sample", { key: "reason", cls: "reason" }], skipped.map(([sample, reason]) => ({ sample, reason }))));
    preprocessOut.replaceChildren(...parts);
    preprocessOut.hidden = false;
  }
}
