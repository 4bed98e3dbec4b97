/**
 * dicomflow_lab anonymization panel — the browser side of `widgets/anonymize_panel.py`.
 *
 * One self-contained ES module (no imports, no CDN: clinical networks are offline),
 * anywidget's `export default {initialize, render}`.
 *
 * The secret key lives in a password input of this view only. It is read when the user
 * presses Preview or Run and sent inside that one request (`{kind: "preview", id, key}`,
 * `{kind: "run", id, key, out}`); it is never written to the model (so never to the
 * notebook), never logged and never shown. Preview values (before → after) are patient
 * data: they are asked for (`values: true`) only while "Show values" is ticked.
 * Every request gets one reply `{kind: "<kind>:reply", id, ok, ...}`; failures are shown
 * under the panel.
 *
 * Test hooks: the root `.dfl-anonymize` carries `data-dfl-ready="1"` once the kernel
 * answered `info`, `data-dfl-preview` (rows of the last preview), `data-dfl-job` (the job
 * state), `data-dfl-verified` (residual rows after a verified run) and `data-dfl-report`
 * ("1" once the report lists are filled); `root.dflAnonymize.state()` reports the rest.
 */

const PAGE = 100;
const REQUEST_TIMEOUT_MS = 120000;
const FILTER_DELAY_MS = 150;
const REPORT_LIMIT = 200;
const KEY_BYTES = 32;

// RequestError, PanelRequests and h() come from _panel_base.js (prepended by _static.py).

/** @param {number} n @param {string} word */
function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** A random hex key from the browser's CSPRNG (never leaves the input unless sent). */
function randomKey() {
  const bytes = new Uint8Array(KEY_BYTES);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ACTION_TITLES = {
  X: "removed",
  Z: "emptied (zero length)",
  D: "dummy value",
  U: "UID remapped",
  K: "kept",
  C: "cleaned / shifted",
  keep: "kept (override)",
  replace: "replaced (override)",
  remove: "removed (override)",
  hash: "hashed (override)",
};

class AnonymizeView {
  /** @param {any} model @param {HTMLElement} el */
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.requests = new PanelRequests(model, "the anonymization panel", REQUEST_TIMEOUT_MS);
    this.disposed = false;
    this.offset = 0;
    this.total = 0;
    this.query = "";
    this.sample = 0;
    this.previewGen = 0;
    this.rowsGen = 0;
    this.shownSummary = "";
    /** @type {{value: string, title: string, code: string}[]} */
    this.optionList = [];
    /** @type {any} */
    this.timers = {};
    this.onMessage = (/** @type {any} */ msg, /** @type {any[]} */ buffers) => this.receive(msg, buffers);
    model.on("msg:custom", this.onMessage);
    /** @type {[string, Function][]} */
    this.listeners = [];
    this.build();
    this.listen("change:choices change:selection_key change:n_files", () => this.syncChoices());
    this.listen("change:template_name change:template_base change:template_description change:options change:n_overrides", () => this.syncTemplate());
    this.listen("change:job_state change:job_done change:job_total change:job_message", () => this.syncJob());
    this.listen("change:summary", () => this.syncSummary());
    this.listen("change:preview_total", () => { if (!this.model.get("preview_total")) this.clearPreview(); });
    this.syncChoices();
    this.syncJob();
    this.loadInfo();
  }

  /** @param {string} names @param {Function} fn */
  listen(names, fn) {
    for (const name of names.split(" ")) {
      this.model.on(name, fn);
      this.listeners.push([name, fn]);
    }
  }

  // ------------------------------------------------------------------ messaging
  /**
   * Send one request and wait for its reply.
   *
   * @param {string} kind
   * @param {Record<string, any>} [fields]
   * @returns {Promise<any>}
   */
  request(kind, fields = {}) {
    return this.requests.send(kind, fields);
  }

  /** @param {any} msg @param {any[]} _buffers */
  receive(msg, _buffers) {
    if (msg && msg.kind === "job" && typeof msg.message === "string") {
      if (msg.state === "error") this.showError(new Error(msg.message));
      return;
    }
    this.requests.handle(msg);
  }

  /** @param {any} err */
  showError(err) {
    if (this.disposed) return;
    const text = err && err.message ? err.message : String(err);
    this.errorEl.textContent = text;
    this.errorEl.hidden = false;
    this.root.dataset.dflError = "1";
  }

  clearError() {
    this.errorEl.textContent = "";
    this.errorEl.hidden = true;
    this.root.dataset.dflError = "0";
  }

  // ------------------------------------------------------------------ layout
  build() {
    const btn = (/** @type {string} */ cls, /** @type {string} */ text, /** @type {string} */ title, /** @type {Function} */ fn) =>
      h("button", { class: `dfl-btn ${cls}`, type: "button", title, text, onclick: fn });
    const label = (/** @type {string} */ text) => h("span", { class: "dfl-an-label", text });

    // selection
    this.selectionSel = /** @type {HTMLSelectElement} */ (h("select", { class: "dfl-an-selection", "aria-label": "What to anonymize" }));
    this.selectionSel.addEventListener("change", () => this.select(this.selectionSel.value));
    this.nFilesEl = h("span", { class: "dfl-an-dim dfl-an-nfiles" });
    const selRow = h("div", { class: "dfl-an-row" }, [
      label("Anonymize"),
      this.selectionSel,
      btn("dfl-an-refresh", "↻", "List the workspace's studies and series again", () => this.simple("refresh")),
      this.nFilesEl,
    ]);

    // template
    this.templateSel = /** @type {HTMLSelectElement} */ (h("select", { class: "dfl-an-template", "aria-label": "Template" }));
    this.templateSel.addEventListener("change", () => this.chooseTemplate());
    this.templateInfo = h("span", { class: "dfl-an-dim dfl-an-tinfo" });
    this.jsonArea = /** @type {HTMLTextAreaElement} */ (h("textarea", { class: "dfl-an-json", rows: "7", spellcheck: "false", "aria-label": "Template JSON", placeholder: '{"name": "my-template", "options": ["retain_uids"], "overrides": [{"selector": "StudyDescription", "action": "keep"}]}' }));
    this.jsonBtn = btn("dfl-an-json-apply", "Use this template", "Validate the JSON and use it as the base template", () => this.applyJson());
    this.jsonBox = h("div", { class: "dfl-an-jsonbox", hidden: true }, [this.jsonArea, h("div", { class: "dfl-an-row dfl-an-flat" }, [this.jsonBtn, h("span", { class: "dfl-an-dim", text: "Schema: name, description, options, overrides (keep / replace / remove / hash by tag, keyword or group mask), safe_private, pixel_rules." })])]);
    const tplRow = h("div", { class: "dfl-an-row" }, [label("Template"), this.templateSel, this.templateInfo]);

    // options
    this.optionsEl = h("div", { class: "dfl-an-options", role: "group", "aria-label": "PS3.15 options" });
    const optRow = h("div", { class: "dfl-an-row dfl-an-optrow" }, [label("Options"), this.optionsEl]);

    // key and output
    this.keyInput = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-an-key", type: "password", autocomplete: "new-password", spellcheck: "false", placeholder: "Secret key (never saved)", "aria-label": "Secret key" }));
    this.keyInput.addEventListener("keydown", (e) => { if (e.key === "Enter") this.preview(); });
    this.showKeyBtn = btn("dfl-an-showkey", "Show", "Show or hide the key", () => this.toggleKeyVisible());
    this.genKeyBtn = btn("dfl-an-genkey", "Generate", "Fill in a new random key (write it down: the same key gives the same UIDs and pseudonyms)", () => { this.keyInput.value = randomKey(); });
    const keyRow = h("div", { class: "dfl-an-row" }, [
      label("Key"),
      this.keyInput,
      this.showKeyBtn,
      this.genKeyBtn,
      h("span", { class: "dfl-an-dim", text: "Kept in this browser tab only; sent to the kernel with Preview and Run." }),
    ]);
    this.outInput = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-an-out", spellcheck: "false", placeholder: "Output folder", "aria-label": "Output folder" }));
    this.previewBtn = btn("dfl-an-preview", "Preview", "Show the actions on one instance of the selection (nothing is written)", () => this.preview());
    this.runBtn = btn("dfl-an-run", "Run", "Anonymize the selection into the output folder, then verify", () => this.run());
    this.cancelBtn = btn("dfl-an-cancel", "Cancel", "Stop the run (between files)", () => this.simple("cancel"));
    this.progress = /** @type {HTMLProgressElement} */ (h("progress", { class: "dfl-an-progress", max: "1", value: "0", hidden: true }));
    this.statusEl = h("span", { class: "dfl-an-status", role: "status" });
    const runRow = h("div", { class: "dfl-an-row dfl-an-runrow" }, [
      label("Output"),
      this.outInput,
      this.previewBtn,
      this.runBtn,
      this.cancelBtn,
      this.progress,
      this.statusEl,
    ]);

    this.errorEl = h("div", { class: "dfl-an-error", role: "alert", hidden: true });

    // preview
    this.sampleEl = h("span", { class: "dfl-an-dim dfl-an-sample" });
    this.prevSample = btn("dfl-an-prev-sample", "‹", "Preview the previous instance", () => this.moveSample(-1));
    this.nextSample = btn("dfl-an-next-sample", "›", "Preview the next instance", () => this.moveSample(1));
    this.countsEl = h("span", { class: "dfl-an-counts" });
    this.filter = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-an-filter", type: "search", placeholder: "Filter tag / keyword / action", "aria-label": "Filter the preview", spellcheck: "false" }));
    this.filter.addEventListener("input", () => {
      clearTimeout(this.timers.filter);
      this.timers.filter = setTimeout(() => { this.query = this.filter.value; this.offset = 0; this.loadRows(); }, FILTER_DELAY_MS);
    });
    this.valuesBox = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-an-values", type: "checkbox" }));
    this.valuesBox.addEventListener("change", () => {
      clearTimeout(this.timers.filter);
      this.query = this.filter.value;
      this.loadRows();
    });
    this.tableBody = h("tbody");
    this.headRow = h("tr");
    this.table = h("table", { class: "dfl-an-table" }, [h("thead", {}, [this.headRow]), this.tableBody]);
    this.pageEl = h("span", { class: "dfl-an-dim" });
    this.prevPage = btn("dfl-an-prev-page", "Previous", "Previous page", () => { this.offset = Math.max(0, this.offset - PAGE); this.loadRows(); });
    this.nextPage = btn("dfl-an-next-page", "Next", "Next page", () => { this.offset += PAGE; this.loadRows(); });
    this.previewEl = h("section", { class: "dfl-an-previewbox", hidden: true }, [
      h("div", { class: "dfl-an-row" }, [
        h("span", { class: "dfl-an-title", text: "Preview" }),
        this.prevSample,
        this.sampleEl,
        this.nextSample,
        this.countsEl,
        h("span", { class: "dfl-an-grow" }),
        this.filter,
        h("label", { class: "dfl-an-check", title: "Before and after values are patient data: they are fetched only while this is ticked and never saved in the notebook" }, [this.valuesBox, " show values (patient data)"]),
      ]),
      h("div", { class: "dfl-an-scroll" }, [this.table]),
      h("div", { class: "dfl-an-row dfl-an-flat" }, [this.prevPage, this.nextPage, this.pageEl]),
    ]);

    // report
    this.verdictEl = h("div", { class: "dfl-an-verdict" });
    this.outLine = h("div", { class: "dfl-an-outline dfl-an-dim" });
    this.reportCounts = h("div", { class: "dfl-an-counts dfl-an-report-counts" });
    this.quarantinedEl = h("div", { class: "dfl-an-list dfl-an-quarantined" });
    this.failedEl = h("div", { class: "dfl-an-list dfl-an-failed" });
    this.warningsEl = h("div", { class: "dfl-an-list dfl-an-warnings" });
    this.residualEl = h("div", { class: "dfl-an-list dfl-an-residual" });
    this.reportEl = h("section", { class: "dfl-an-report", hidden: true }, [
      h("div", { class: "dfl-an-row" }, [h("span", { class: "dfl-an-title", text: "Report" }), this.reportCounts]),
      this.verdictEl,
      this.outLine,
      this.quarantinedEl,
      this.failedEl,
      this.warningsEl,
      this.residualEl,
    ]);

    this.root = h("div", { class: "dfl-anonymize", "data-dfl-ready": "0", "data-dfl-preview": "0", "aria-label": "DICOM anonymization" }, [
      selRow, tplRow, this.jsonBox, optRow, keyRow, runRow, this.errorEl, this.previewEl, this.reportEl,
    ]);
    /** @type {any} */ (this.root).dflAnonymize = {
      state: () => ({ total: this.total, offset: this.offset, sample: this.sample, query: this.query, values: this.valuesBox.checked, options: [...(this.model.get("options") || [])] }),
    };
    this.el.append(this.root);
  }

  // ------------------------------------------------------------------ data
  async loadInfo() {
    try {
      const info = await this.request("info");
      this.optionList = info.options || [];
      const names = info.templates || [];
      this.templateSel.replaceChildren(
        ...names.map((/** @type {string} */ n) => h("option", { value: n, text: n })),
        h("option", { value: "custom", text: "Custom JSON…" }),
      );
      // empty: the workspace's default folder, named after the run
      this.outInput.placeholder = "Output folder (empty: the workspace's anon/<run id>)";
      this.outInput.title = `Empty: ${info.default_out || "the workspace's default folder"}; a folder you type must be new or empty`;
      if (!this.optionsEl.childElementCount) this.buildOptions();
      this.syncTemplate();
      this.root.dataset.dflReady = "1";
    } catch (err) {
      this.showError(err);
    }
  }

  buildOptions() {
    const items = this.optionList.map((o) => {
      const box = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", value: o.value, "data-option": o.value }));
      box.addEventListener("change", () => this.toggleOption(o.value, box.checked));
      return h("label", { class: "dfl-an-opt", title: `${o.title} (DCM ${o.code})`, "data-option": o.value }, [box, h("span", { text: o.title.replace(/ Option$/, "") })]);
    });
    this.optionsEl.replaceChildren(...items);
  }

  /** @param {string} key */
  async select(key) {
    try {
      await this.request("select", { selection: key });
      this.clearError();
      this.sample = 0;
    } catch (err) {
      this.showError(err);
      this.syncChoices();
    }
  }

  chooseTemplate() {
    const base = this.templateSel.value;
    this.jsonBox.hidden = base !== "custom";
    if (base === "custom") {
      if (!this.jsonArea.value.trim()) this.jsonArea.value = JSON.stringify({ name: "custom", description: "", options: [...(this.model.get("options") || [])], overrides: [] }, null, 2);
      this.jsonArea.focus();
      return; // applied with the button
    }
    this.setTemplate({ base });
  }

  applyJson() {
    this.setTemplate({ base: "custom", json: this.jsonArea.value });
  }

  /** @param {Record<string, any>} fields */
  async setTemplate(fields) {
    try {
      await this.request("template", fields);
      this.clearError();
      this.jsonArea.classList.remove("dfl-an-bad");
    } catch (err) {
      this.showError(err);
      if (fields.base === "custom") this.jsonArea.classList.add("dfl-an-bad"); // keep editing
      else this.syncTemplate();
    }
  }

  /** @param {string} value @param {boolean} on */
  async toggleOption(value, on) {
    const chosen = new Set(this.model.get("options") || []);
    if (on) {
      chosen.add(value);
      // the two longitudinal temporal options are alternatives (PS3.15 E.3.6)
      if (value === "retain_long_full_dates") chosen.delete("retain_long_modified_dates");
      if (value === "retain_long_modified_dates") chosen.delete("retain_long_full_dates");
    } else chosen.delete(value);
    const ordered = this.optionList.map((o) => o.value).filter((v) => chosen.has(v));
    try {
      await this.request("options", { options: ordered });
      this.clearError();
    } catch (err) {
      this.showError(err);
      this.syncTemplate();
    }
  }

  toggleKeyVisible() {
    const hidden = this.keyInput.type === "password";
    this.keyInput.type = hidden ? "text" : "password";
    this.showKeyBtn.textContent = hidden ? "Hide" : "Show";
  }

  /** The key, read from the input at the moment of the request only. */
  key() {
    return this.keyInput.value;
  }

  /** @param {number} step */
  moveSample(step) {
    const n = this.model.get("n_files") || 0;
    if (!n) return;
    this.sample = (this.sample + step + n) % n;
    this.preview();
  }

  async preview() {
    const gen = ++this.previewGen;
    this.statusEl.textContent = "Previewing…";
    try {
      const reply = await this.request("preview", { key: this.key(), sample: this.sample });
      if (gen !== this.previewGen) return;
      this.clearError();
      this.statusEl.textContent = "";
      this.sample = reply.sample;
      this.sampleEl.textContent = `instance ${reply.sample + 1} of ${reply.n_files}${reply.file ? ` (${reply.file})` : ""}`;
      this.countsEl.replaceChildren(...this.chips(reply.counts || {}));
      this.previewEl.hidden = false;
      this.offset = 0;
      await this.loadRows();
      this.root.dataset.dflPreview = String(reply.total);
    } catch (err) {
      if (gen !== this.previewGen) return;
      this.statusEl.textContent = "";
      this.showError(err);
    }
  }

  /** @param {Record<string, number>} counts */
  chips(counts) {
    return Object.entries(counts).map(([action, n]) => h("span", {
      class: "dfl-an-chip", "data-action": action, title: ACTION_TITLES[/** @type {keyof typeof ACTION_TITLES} */ (action)] || action, text: `${action} ${n}`,
    }));
  }

  async loadRows() {
    if (this.previewEl.hidden) return;
    const values = this.valuesBox.checked;
    const gen = ++this.rowsGen;
    try {
      const reply = await this.request("preview_rows", { offset: this.offset, limit: PAGE, query: this.query, values });
      if (gen !== this.rowsGen || this.disposed) return; // a newer page was asked for
      this.total = reply.total;
      this.root.dataset.dflRows = String(reply.total);
      this.root.dataset.dflValues = values ? "1" : "0";
      const cols = ["Tag", "Keyword", "VR", "Action", "Rule"];
      if (values) cols.push("Before", "After");
      this.headRow.replaceChildren(...cols.map((c) => h("th", { text: c })));
      this.tableBody.replaceChildren(...reply.rows.map((/** @type {any} */ r) => {
        const cells = [
          h("td", { class: "dfl-an-tag", title: r.path, text: r.tag }),
          h("td", { text: r.keyword || "—" }),
          h("td", { class: "dfl-an-vr", text: r.vr }),
          h("td", {}, [h("span", { class: "dfl-an-chip", "data-action": r.action, title: ACTION_TITLES[/** @type {keyof typeof ACTION_TITLES} */ (r.action)] || r.action, text: r.action })]),
          h("td", { class: "dfl-an-rule", text: r.rule }),
        ];
        if (values) {
          cells.push(h("td", { class: "dfl-an-before", text: r.before === null || r.before === undefined ? "(absent)" : r.before }));
          cells.push(h("td", { class: "dfl-an-after", text: r.after === null || r.after === undefined ? "(removed)" : r.after === "" ? "(empty)" : r.after }));
        }
        return h("tr", { "data-keyword": r.keyword, "data-action": r.action }, cells);
      }));
      if (!reply.rows.length) this.tableBody.replaceChildren(h("tr", {}, [h("td", { colspan: String(cols.length), class: "dfl-an-dim", text: this.query ? "No row matches the filter." : "No element." })]));
      const last = Math.min(this.total, this.offset + reply.rows.length);
      this.pageEl.textContent = this.total ? `rows ${this.offset + 1}–${last} of ${this.total}` : "";
      this.prevPage.disabled = this.offset === 0;
      this.nextPage.disabled = last >= this.total;
    } catch (err) {
      if (gen === this.rowsGen) this.showError(err);
    }
  }

  clearPreview() {
    this.previewGen++;
    this.rowsGen++; // a page still on its way is dropped
    this.previewEl.hidden = true;
    this.tableBody.replaceChildren();
    this.root.dataset.dflPreview = "0";
  }

  async run() {
    this.reportEl.hidden = true;
    this.root.dataset.dflReport = "0";
    this.shownSummary = "";
    delete this.root.dataset.dflVerified;
    this.clearError(); // before: a failing job may push its error before the reply comes
    try {
      await this.request("run", { key: this.key(), out: this.outInput.value.trim() });
    } catch (err) {
      this.showError(err);
    }
  }

  /** @param {string} kind */
  async simple(kind) {
    try {
      await this.request(kind);
      this.clearError();
    } catch (err) {
      this.showError(err);
    }
  }

  /** @param {"quarantined" | "failed" | "warnings" | "residual"} section */
  async loadSection(section) {
    const reply = await this.request("report", { section, offset: 0, limit: REPORT_LIMIT });
    return reply;
  }

  async loadReport() {
    try {
      const [q, f, w, r] = await Promise.all(["quarantined", "failed", "warnings", "residual"].map((s) => this.loadSection(/** @type {any} */ (s))));
      this.fillList(this.quarantinedEl, "Quarantined (not written)", q, (/** @type {any} */ row) => [h("span", { class: "dfl-an-file", text: row.file }), h("span", { text: row.reason })]);
      this.fillList(this.failedEl, "Failed or skipped (not written)", f, (/** @type {any} */ row) => [h("span", { class: "dfl-an-file", text: row.file }), h("span", { class: "dfl-an-dim", text: row.status }), h("span", { text: row.reason })]);
      this.fillList(this.warningsEl, "Warnings", w, (/** @type {any} */ row) => [h("span", { class: "dfl-an-file", text: row.file }), h("span", { text: row.warning })]);
      this.fillList(this.residualEl, "Residual identifying values", r, (/** @type {any} */ row) => [
        h("span", { class: "dfl-an-file", text: row.file }),
        h("span", { class: "dfl-an-dim", text: `${row.check} · ${row.location} · ${row.attribute} (${row.kind})` }),
        h("span", { text: row.detail }),
      ]);
      this.outLine.textContent = q.out ? `Output folder: ${q.out}` : "";
      this.root.dataset.dflReport = "1";
    } catch (err) {
      this.showError(err);
    }
  }

  /**
   * @param {HTMLElement} el @param {string} title @param {any} reply
   * @param {(row: any) => (Node | string)[]} cells
   */
  fillList(el, title, reply, cells) {
    el.hidden = !reply.total;
    if (!reply.total) { el.replaceChildren(); return; }
    const items = reply.rows.map((/** @type {any} */ row) => h("div", { class: "dfl-an-item" }, cells(row)));
    if (reply.total > reply.rows.length) items.push(h("div", { class: "dfl-an-dim", text: `… and ${reply.total - reply.rows.length} more (panel.report in Python has them all)` }));
    el.replaceChildren(h("div", { class: "dfl-an-subtitle", text: `${title}: ${reply.total}` }), ...items);
  }

  // ------------------------------------------------------------------ traits
  syncChoices() {
    const choices = this.model.get("choices") || [];
    const current = this.model.get("selection_key") || "";
    const groups = { query: "Query result", study: "Studies", series: "Series" };
    /** @type {HTMLElement[]} */
    const out = [];
    for (const [kind, title] of Object.entries(groups)) {
      const items = choices.filter((/** @type {any} */ c) => c.kind === kind);
      if (!items.length) continue;
      out.push(h("optgroup", { label: title }, items.map((/** @type {any} */ c) => h("option", { value: c.key, text: c.label, selected: c.key === current }))));
    }
    if (!out.length) out.push(h("option", { value: "", text: "(nothing indexed: ws.index(folder) first)" }));
    this.selectionSel.replaceChildren(...out);
    this.selectionSel.value = current;
    const n = this.model.get("n_files") || 0;
    this.nFilesEl.textContent = current ? plural(n, "file") : "";
    this.syncButtons();
  }

  syncTemplate() {
    const base = this.model.get("template_base") || "basic";
    if (this.templateSel.options.length) this.templateSel.value = base;
    this.jsonBox.hidden = base !== "custom" && this.templateSel.value !== "custom";
    const chosen = new Set(this.model.get("options") || []);
    for (const box of /** @type {NodeListOf<HTMLInputElement>} */ (this.optionsEl.querySelectorAll("input[type=checkbox]"))) {
      box.checked = chosen.has(box.value);
      /** @type {HTMLElement} */ (box.parentElement).classList.toggle("dfl-an-on", box.checked);
    }
    const name = this.model.get("template_name") || "";
    const overrides = this.model.get("n_overrides") || 0;
    this.templateInfo.textContent = `in use: ${name}${overrides ? ` · ${plural(overrides, "override")}` : ""}${chosen.size ? "" : " · Basic Profile"}`;
    this.templateInfo.title = this.model.get("template_description") || "";
  }

  syncButtons() {
    const running = this.model.get("job_state") === "running";
    const hasFiles = (this.model.get("n_files") || 0) > 0;
    this.runBtn.disabled = running || !hasFiles;
    this.previewBtn.disabled = !hasFiles;
    this.prevSample.disabled = !hasFiles;
    this.nextSample.disabled = !hasFiles;
    this.cancelBtn.hidden = !running;
    this.selectionSel.disabled = running;
  }

  syncJob() {
    const state = this.model.get("job_state") || "idle";
    const done = this.model.get("job_done") || 0;
    const total = this.model.get("job_total") || 0;
    this.progress.hidden = state === "idle";
    this.progress.max = Math.max(1, total);
    this.progress.value = done;
    this.root.dataset.dflJob = state;
    const message = this.model.get("job_message") || "";
    if (state !== "idle") this.statusEl.textContent = message || `${done} / ${total}`;
    this.statusEl.classList.toggle("dfl-error", state === "error");
    this.syncButtons();
    if (state === "done" || state === "cancelled") this.syncSummary();
  }

  syncSummary() {
    const s = this.model.get("summary") || {};
    const state = this.model.get("job_state");
    if (!s.files || (state !== "done" && state !== "cancelled")) return;
    const shown = `${state}:${JSON.stringify(s)}`;
    if (shown === this.shownSummary) return; // the job state and the summary both call this
    this.shownSummary = shown;
    this.reportCounts.replaceChildren(
      h("span", { class: "dfl-an-dim dfl-an-report-line", text: `${plural(s.written, "file")} written of ${s.files} · ${s.quarantined} quarantined${s.failed ? ` · ${s.failed} failed or skipped` : ""} · ${plural(s.warnings, "warning")}${s.run_id ? ` · run ${s.run_id}` : ""}${s.status === "cancelled" ? " · cancelled" : ""}` }),
      ...this.chips(s.counts || {}),
    );
    const residual = s.residual;
    const clean = residual === 0 && s.written > 0;
    this.verdictEl.classList.toggle("dfl-an-ok", clean);
    this.verdictEl.classList.toggle("dfl-an-bad", !clean);
    let verdict = residual === null || residual === undefined
      ? "not verified"
      : residual === 0 ? "✓ verified: 0 residual" : `✗ verification: ${plural(residual, "residual row")} (listed below)`;
    if (!s.written) verdict = `✗ nothing was written${residual === 0 ? " (verified: 0 residual)" : ""}`;
    if (s.failed) verdict += ` — ${plural(s.failed, "file")} failed or skipped (listed below)`;
    this.verdictEl.textContent = verdict;
    this.root.dataset.dflVerified = residual === null || residual === undefined ? "none" : String(residual);
    this.reportEl.hidden = false;
    this.loadReport();
  }

  dispose() {
    this.disposed = true;
    this.keyInput.value = "";
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.requests.close();
    this.model.off("msg:custom", this.onMessage);
    for (const [name, fn] of this.listeners) this.model.off(name, fn);
    this.root.remove();
  }
}

export default {
  /** Nothing model-wide: each view keeps its own key input and preview page. */
  initialize() {},
  /** @param {{model: any, el: HTMLElement}} props */
  render({ model, el }) {
    const view = new AnonymizeView(model, el);
    return () => view.dispose();
  },
};
