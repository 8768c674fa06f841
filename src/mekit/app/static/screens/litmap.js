// The Literature screen: upload bibliographic exports (BibTeX, RIS, Scopus CSV, Web of Science
// plain text, OpenAlex JSON) or take the example bibliography, map the literature (the job of
// /api/litmap/run, mekit/app/routes_litmap.py), then show the figures, the communities, the
// top terms, the trends and the problems found in the input, with every file to download.

export async function mount(root, app) {
  const { api, el, table, showError, jobBox, jobFile } = app;
  const choices = await api("/api/litmap/choices");
  const d = choices.defaults;
  const uploaded = []; // {path, name, size}

  // -- the form (left) -----------------------------------------------------------------------
  const fileInput = el("input", { type: "file", id: "litmap-files", multiple: true,
    accept: choices.extensions.join(",") });
  const fileList = el("ul", { class: "notes", id: "litmap-file-list" });
  const exampleBox = el("input", { type: "checkbox", id: "litmap-example" });
  const minFreq = el("input", { type: "number", id: "litmap-min-freq", min: 1, step: 1, value: d.min_freq });
  const maxTerms = el("input", { type: "number", id: "litmap-max-terms", min: 2, step: 1, value: d.max_terms });
  const words = (id, value) => el("input", { type: "number", id, min: 1, max: 6, step: 1, value });
  const ngMin = words("litmap-ngram-min", d.ngram_range[0]);
  const ngMax = words("litmap-ngram-max", d.ngram_range[1]);
  const extractorSel = el("select", { id: "litmap-extractor" }, choices.extractors.map((x) =>
    el("option", { value: x }, x === "auto" ? `auto (${choices.yake ? "YAKE" : "n-grams"})` : x)));
  extractorSel.value = d.extractor;
  const communitySel = el("select", { id: "litmap-community" }, choices.communities.map((c) =>
    el("option", { value: c.name, title: c.help }, c.name)));
  communitySel.value = d.community;
  const seedInput = el("input", { type: "number", id: "litmap-seed", min: 0, step: 1, value: d.seed });
  const synInput = el("input", { type: "text", id: "litmap-synonyms", autocomplete: "off",
    placeholder: "(none; upload a .txt or give a path)" });
  const synUpload = el("input", { type: "file", id: "litmap-synonyms-file", accept: ".txt" });
  const extraInput = el("textarea", { id: "litmap-extra",
    placeholder: "more settings, key=value per line\ne.g. resolution=1.2\nlabel_top=40" });
  const runBtn = el("button", { type: "button", class: "primary", id: "litmap-run" }, "Map the literature");
  const job = jobBox();

  const field = (label, control, help) => el("label", { class: "field" }, el("span", {}, label), control, help);
  const formatsHelp = choices.formats.map((f) => f.help).join("; ");
  root.append(el("div", { class: "columns" },
    el("div", { class: "form-col" },
      el("section", { class: "panel" },
        el("h2", {}, "Bibliography"),
        field("Exports", fileInput, el("small", { class: "help" },
          `Several files at once; the format is told from each file. ${formatsHelp}.`)),
        fileList,
        el("label", { class: "row" }, exampleBox,
          el("span", {}, "Use the example bibliography (micro-expression recognition papers shipped with mekit)"))),
      el("section", { class: "panel" },
        el("h2", {}, "Settings"),
        el("div", { class: "grid2" },
          field("Min. documents per term", minFreq), field("Terms in the network", maxTerms),
          field("Phrase length from", ngMin), field("to (words)", ngMax),
          field("Keyphrases", extractorSel), field("Communities", communitySel),
          field("Seed", seedInput)),
        field("Synonym file", el("div", {}, synInput, synUpload),
          el("small", { class: "help" }, "Lines like 'optical flow = optic flow': the first entry is shown.")),
        field("More settings", extraInput),
        el("div", { class: "row end" }, runBtn))),
    el("div", { class: "results" }, job.node,
      el("section", { class: "panel", id: "litmap-result" }, el("h2", {}, "Literature map"),
        el("div", { class: "placeholder" }, "Upload exports or choose the example, then Map the literature.")))));
  const out = root.querySelector("#litmap-result");

  // -- behaviour -----------------------------------------------------------------------------
  async function send(file) {
    return api("/api/litmap/upload", { method: "POST", body: file, query: { filename: file.name } });
  }
  function drawFiles() {
    fileList.replaceChildren(...uploaded.map((f, i) => el("li", {}, `${f.name} (${(f.size / 1024).toFixed(1)} KB) `,
      el("button", { type: "button", class: "small", onclick: () => { uploaded.splice(i, 1); drawFiles(); } },
        "remove"))));
    if (uploaded.length) exampleBox.checked = false;
  }
  fileInput.addEventListener("change", async () => {
    showError(null);
    for (const f of fileInput.files) {
      try { uploaded.push(await send(f)); } catch (e) { showError(`${f.name}: ${e.message}`); }
    }
    fileInput.value = "";
    drawFiles();
  });
  synUpload.addEventListener("change", async () => {
    showError(null);
    const f = synUpload.files[0];
    if (!f) return;
    try { synInput.value = (await send(f)).path; } catch (e) { showError(`${f.name}: ${e.message}`); }
    synUpload.value = "";
  });
  exampleBox.addEventListener("change", () => { if (exampleBox.checked) { uploaded.length = 0; drawFiles(); } });

  function options() {
    const o = { min_freq: minFreq.value, max_terms: maxTerms.value, ngram_range: `[${ngMin.value}, ${ngMax.value}]`,
      extractor: extractorSel.value, community: communitySel.value, seed: seedInput.value,
      synonyms_file: synInput.value.trim() };
    for (const line of extraInput.value.split("\n")) {
      const t = line.trim();
      if (!t || t.startsWith("#")) continue;
      const i = t.indexOf("=");
      if (i < 1) throw new Error(`setting ${JSON.stringify(t)} is not of the form key=value`);
      o[t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    return o;
  }

  runBtn.addEventListener("click", async () => {
    showError(null);
    runBtn.disabled = true;
    try {
      const body = { files: uploaded.map((f) => f.path), example: exampleBox.checked, options: options() };
      const submitted = await api("/api/litmap/run", { method: "POST", body });
      const finished = await job.follow(submitted, "Literature map");
      if (finished.state === "done") show(finished);
      else if (finished.state === "failed") showError(finished.error);
    } catch (e) {
      showError(e.message);
    } finally {
      runBtn.disabled = false;
    }
  });

  function show(done) {
    const r = done.result;
    const url = (rel) => jobFile(done.id, rel);
    const issues = Object.entries(r.issues).map(([k, n]) => `${n} ${k.replace("_", " ")}`).join(", ");
    const figure = (rel, caption) => el("figure", {}, el("a", { href: url(rel), target: "_blank" },
      el("img", { src: url(rel), alt: caption, loading: "lazy" })), el("figcaption", {}, caption));
    const parts = [el("h2", {}, "Literature map"),
      el("div", { class: "summary", id: "litmap-summary" },
        `${r.n_records} documents (${r.n_read} records read from ${r.n_files} file(s), `,
        `${r.n_duplicates} duplicate(s) merged); `,
        `${r.n_kept_terms} terms in at least ${r.settings.min_freq} documents; network of ${r.n_network_terms} terms, `,
        `${r.n_links} links, ${r.communities.length} communities`,
        issues ? el("span", { class: "badge warn" }, issues)
          : el("span", { class: "badge good" }, "no problems in the input")),
      el("div", { class: "figures wide" }, figure(r.figures.network, "Co-occurrence network (communities coloured)")),
      el("div", { class: "figures" }, figure(r.figures.thematic_map, "Thematic map (Callon centrality and density)"),
        figure(r.figures.wordcloud, "Word cloud of the terms")),
      el("h3", {}, "Communities"),
      table([{ key: "cluster", num: true }, "quadrant", { key: "n_terms", label: "terms", num: true },
        { key: "central", cls: "reason" }, { key: "peripheral", cls: "reason" }],
      r.communities.map((c) => ({ ...c, central: c.central.join(", "), peripheral: c.peripheral.join(", ") }))),
      el("h3", {}, "Most frequent terms"),
      table(["term", { key: "occurrences", label: "documents", num: true }, { key: "cluster", num: true }, "role",
        { key: "degree_centrality", label: "degree", num: true }, { key: "betweenness", num: true },
        { key: "trend_slope", label: "trend", num: true }], r.top_terms)];
    if (r.emerging.length || r.declining.length) {
      parts.push(el("h3", {}, "Emerging and declining terms"),
        el("ul", { class: "notes" }, el("li", {}, `emerging: ${r.emerging.join(", ") || "(none)"}`),
          el("li", {}, `declining: ${r.declining.join(", ") || "(none)"}`)));
    }
    if (r.issue_rows.length) {
      parts.push(el("h3", {}, "Problems in the input"),
        table(["path", { key: "line", num: true }, "entry", "kind", { key: "message", cls: "reason" }],
          r.issue_rows.map((i) => ({ ...i, path: i.path.split("/").pop() }))));
    }
    parts.push(el("h3", {}, "Downloads"), el("div", { class: "tables", id: "litmap-downloads" },
      r.downloads.map((rel) => el("a", { href: url(rel), download: rel.split("/").pop() }, rel.split("/").pop()))));
    out.replaceChildren(...parts);
  }
}
