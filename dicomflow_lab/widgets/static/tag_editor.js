/**
 * dicomflow_lab tag table editor — the browser side of `widgets/tag_editor.py`.
 *
 * One self-contained ES module (no imports, no CDN: clinical networks are offline),
 * anywidget's `export default {initialize, render}`.
 *
 * Rows travel on demand by custom message, a page at a time
 * (`{kind: "rows", id, offset, limit, query, field, expand_all, toggled}` →
 * `{kind: "rows:reply", id, ok, rows, total, offset}`); the table scrolls virtually and
 * keeps only the pages around the visible rows. Dataset values never enter synced traits.
 * Every request gets one reply `{kind: "<kind>:reply", id, ok, ...}`; failures are shown
 * under the table.
 *
 * Test hooks: the root `.dfl-tag-editor` carries `data-dfl-ready="1"` once rows are on
 * screen, `data-dfl-pending` (pending edit count) and `data-dfl-total` (rows matching the
 * filter); `root.dflTagEditor` exposes `state()`.
 */

const ROW_H = 24;
const PAGE = 200;
const VIEW_ROWS = 18;
const REQUEST_TIMEOUT_MS = 60000;
const VALIDATE_DELAY_MS = 120;
const FILTER_DELAY_MS = 150;
const MAX_TOGGLED = 2000;

const LOCK_SVG = '<svg width="11" height="12" viewBox="0 0 11 12" aria-hidden="true"><rect x="1" y="5" width="9" height="7" rx="1" fill="currentColor"/><path d="M3 5V3.5a2.5 2.5 0 0 1 5 0V5" fill="none" stroke="currentColor" stroke-width="1.4"/></svg>';

const VRS = ["", "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"];

/**
 * @typedef {{path: string, tag: string, keyword: string, name: string, vr: string,
 *   vm: number, length: number, value: string, private_creator: string | null,
 *   depth: number, is_meta: boolean, is_sequence: boolean, is_item: boolean,
 *   editable: boolean, expanded: boolean, changed: boolean}} Row
 */

// RequestError, PanelRequests and h() come from _panel_base.js (prepended by _static.py).

class TagEditorView {
  /** @param {any} model @param {HTMLElement} el */
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.requests = new PanelRequests(model, "the tag editor", REQUEST_TIMEOUT_MS);
    /** @type {Map<number, Row[]>} */
    this.pages = new Map();
    /** @type {Map<number, Row[]>} the previous generation's pages, until the new ones come */
    this.stale = new Map();
    /** @type {Set<number>} */
    this.loading = new Set();
    this.gen = 0;
    this.total = 0;
    this.query = "";
    this.field = "any";
    this.expandAll = true;
    /** @type {Set<string>} */
    this.toggled = new Set();
    /** @type {{path: string, vr: string, input: HTMLInputElement, seq: number} | null} */
    this.editing = null;
    /** keyboard cursor: the index of the current row, -1 before the first move */
    this.cursor = -1;
    this.validateSeq = 0;
    this.disposed = false;
    /** @type {any} */
    this.timers = {};
    this.raf = 0;
    this.onMessage = (/** @type {any} */ msg, /** @type {any[]} */ buffers) => this.receive(msg, buffers);
    model.on("msg:custom", this.onMessage);
    /** @type {[string, Function][]} */
    this.listeners = [];
    this.build();
    this.listen("change:revision", () => this.reload());
    this.listen("change:n_pending change:can_undo change:can_redo", () => this.syncButtons());
    this.listen("change:job_state change:job_done change:job_total change:job_message", () => this.syncJob());
    this.listen("change:can_apply", () => this.syncButtons());
    this.syncButtons();
    this.syncJob();
    this.loadInfo();
    this.reload();
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
  }

  clearError() {
    this.errorEl.textContent = "";
    this.errorEl.hidden = true;
  }

  // ------------------------------------------------------------------ layout
  build() {
    const btn = (/** @type {string} */ cls, /** @type {string} */ text, /** @type {string} */ title, /** @type {Function} */ fn) =>
      h("button", { class: `dfl-btn ${cls}`, type: "button", title, text, onclick: fn });

    this.search = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-search", type: "search", placeholder: "Filter: tag, keyword or value…", "aria-label": "Filter rows", spellcheck: "false" }));
    this.search.addEventListener("input", () => {
      clearTimeout(this.timers.filter);
      this.timers.filter = setTimeout(() => this.setFilter(this.search.value, this.fieldSel.value), FILTER_DELAY_MS);
    });
    this.fieldSel = /** @type {HTMLSelectElement} */ (h("select", { class: "dfl-te-field", "aria-label": "Filter on" }, [
      h("option", { value: "any", text: "All columns" }),
      h("option", { value: "tag", text: "Tag" }),
      h("option", { value: "keyword", text: "Keyword" }),
      h("option", { value: "value", text: "Value" }),
    ]));
    this.fieldSel.addEventListener("change", () => this.setFilter(this.search.value, this.fieldSel.value));
    this.undoBtn = btn("dfl-te-undo", "Undo", "Undo the last edit", () => this.simple("undo"));
    this.redoBtn = btn("dfl-te-redo", "Redo", "Redo the edit undone", () => this.simple("redo"));
    this.changesBtn = btn("dfl-te-changes-btn", "Changes", "Show the pending changes (old → new)", () => this.toggleChanges());
    this.countEl = h("span", { class: "dfl-te-count" });
    const toolbar = h("div", { class: "dfl-te-toolbar" }, [
      this.search,
      this.fieldSel,
      btn("dfl-te-expand", "Expand all", "Expand every sequence", () => this.setExpandAll(true)),
      btn("dfl-te-collapse", "Collapse all", "Collapse every sequence", () => this.setExpandAll(false)),
      h("span", { class: "dfl-sep" }),
      this.undoBtn,
      this.redoBtn,
      this.changesBtn,
      h("span", { class: "dfl-te-grow" }),
      this.countEl,
    ]);

    this.addTag = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-add-tag", placeholder: "Tag or keyword, e.g. (0008,103E) or SeriesDescription", spellcheck: "false", "aria-label": "New element tag or keyword" }));
    this.addVr = /** @type {HTMLSelectElement} */ (h("select", { class: "dfl-te-add-vr", "aria-label": "VR", title: "VR (empty: the dictionary's)" }, VRS.map((v) => h("option", { value: v, text: v || "VR" }))));
    this.addValue = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-add-value", placeholder: "Value", spellcheck: "false", "aria-label": "New element value" }));
    this.addValue.addEventListener("keydown", (e) => { if (e.key === "Enter") this.addElement(); });
    const addRow = h("div", { class: "dfl-te-addrow" }, [
      h("span", { class: "dfl-te-label", text: "Add element" }),
      this.addTag,
      this.addVr,
      this.addValue,
      btn("dfl-te-add-btn", "Add", "Add (or replace) this element", () => this.addElement()),
    ]);

    const head = h("div", { class: "dfl-te-row dfl-te-head", role: "row" }, [
      h("span", { class: "dfl-te-c dfl-te-c-tag", text: "Tag" }),
      h("span", { class: "dfl-te-c dfl-te-c-kw", text: "Keyword" }),
      h("span", { class: "dfl-te-c dfl-te-c-vr", text: "VR" }),
      h("span", { class: "dfl-te-c dfl-te-c-vm", text: "VM" }),
      h("span", { class: "dfl-te-c dfl-te-c-len", text: "Len" }),
      h("span", { class: "dfl-te-c dfl-te-c-value", text: "Value" }),
      h("span", { class: "dfl-te-c dfl-te-c-act" }),
    ]);
    this.rowsEl = h("div", { class: "dfl-te-rows", role: "rowgroup" });
    this.spacer = h("div", { class: "dfl-te-spacer" }, [this.rowsEl]);
    this.scroller = h("div", { class: "dfl-te-scroll", role: "grid", tabindex: "0", "aria-label": "Elements: arrow keys move, Enter or F2 edits, Left/Right collapse or expand, Delete deletes" }, [this.spacer]);
    this.scroller.style.height = `${ROW_H * VIEW_ROWS}px`;
    this.scroller.addEventListener("scroll", () => this.schedule());
    this.scroller.addEventListener("keydown", (e) => this.onKey(e));
    this.rowsEl.addEventListener("click", (e) => this.onRowClick(e));

    this.validationEl = h("div", { class: "dfl-te-validation", role: "status", hidden: true });
    this.errorEl = h("div", { class: "dfl-te-error", role: "alert", hidden: true });
    this.changesEl = h("div", { class: "dfl-te-changes", hidden: true });

    this.outInput = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-out", placeholder: "Output folder", spellcheck: "false", "aria-label": "Output folder" }));
    this.overwrite = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-overwrite", type: "checkbox" }));
    this.regen = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-regen", type: "checkbox" }));
    this.overwrite.addEventListener("change", () => { this.outInput.disabled = this.overwrite.checked; });
    this.saveBtn = btn("dfl-te-save", "Save as", "Write the edited file to the folder", () => this.save());
    this.seriesBtn = btn("dfl-te-apply-series", "Apply to series", "Apply the pending edits to every file of the series", () => this.apply("series"));
    this.studyBtn = btn("dfl-te-apply-study", "Apply to study", "Apply the pending edits to every file of the study", () => this.apply("study"));
    this.cancelBtn = btn("dfl-te-cancel", "Cancel", "Stop the running job", () => this.simple("cancel"));
    this.progress = /** @type {HTMLProgressElement} */ (h("progress", { class: "dfl-te-progress", max: "1", value: "0", hidden: true }));
    this.statusEl = h("span", { class: "dfl-te-status", role: "status" });
    const saveRow = h("div", { class: "dfl-te-saverow" }, [
      h("span", { class: "dfl-te-label", text: "Save to" }),
      this.outInput,
      h("label", { class: "dfl-te-check", title: "Write over the original files; a backup copy of each is kept" }, [this.overwrite, " overwrite originals (keeps a backup)"]),
      h("label", { class: "dfl-te-check", title: "New Study/Series/SOP Instance UIDs, references kept consistent" }, [this.regen, " new UIDs"]),
      this.saveBtn,
      this.seriesBtn,
      this.studyBtn,
      this.cancelBtn,
      this.progress,
      this.statusEl,
    ]);

    this.root = h("div", { class: "dfl-tag-editor", "data-dfl-ready": "0", "aria-label": "DICOM tag editor" }, [
      toolbar, addRow, head, this.scroller, this.validationEl, this.errorEl, this.changesEl, saveRow,
    ]);
    /** @type {any} */ (this.root).dflTagEditor = {
      state: () => ({ total: this.total, pages: [...this.pages.keys()], query: this.query, field: this.field, editing: this.editing ? this.editing.path : null }),
    };
    this.el.append(this.root);
  }

  // ------------------------------------------------------------------ data
  async loadInfo() {
    try {
      const info = await this.request("info");
      if (!this.outInput.value) this.outInput.value = info.default_out || "";
    } catch (err) {
      this.showError(err);
    }
  }

  /** @param {string} query @param {string} field */
  setFilter(query, field) {
    if (query === this.query && field === this.field) return;
    this.query = query;
    this.field = field;
    this.scroller.scrollTop = 0;
    this.reload();
  }

  /** @param {boolean} all */
  setExpandAll(all) {
    this.expandAll = all;
    this.toggled.clear();
    this.reload();
  }

  /** @param {string} path */
  toggle(path) {
    if (this.toggled.has(path)) this.toggled.delete(path);
    else if (this.toggled.size < MAX_TOGGLED) this.toggled.add(path);
    this.reload();
  }

  /** Drop every page and fetch the visible ones again (filter, expansion or data changed). */
  reload() {
    this.gen++;
    if (this.pages.size) this.stale = this.pages; // shown until the new pages arrive (no flicker)
    this.pages = new Map();
    this.loading.clear();
    this.schedule(true);
  }

  /** @param {boolean} [force] */
  schedule(force = false) {
    if (this.raf && !force) return;
    cancelAnimationFrame(this.raf);
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.update();
    });
  }

  visibleRange() {
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW_H));
    const count = Math.ceil((this.scroller.clientHeight || ROW_H * VIEW_ROWS) / ROW_H) + 1;
    return [first, first + count];
  }

  update() {
    if (this.disposed) return;
    const [first, last] = this.visibleRange();
    const lastRow = Math.min(last, Math.max(this.total, 1));
    const p0 = Math.floor(first / PAGE);
    const p1 = Math.floor(Math.max(first, lastRow - 1) / PAGE);
    for (let p = p0; p <= p1; p++) if (!this.pages.has(p)) this.fetchPage(p);
    for (const p of [...this.pages.keys()]) if (p < p0 - 1 || p > p1 + 1) this.pages.delete(p); // keep only pages near the view
    this.draw(first, last);
  }

  /** @param {number} page */
  async fetchPage(page) {
    if (this.loading.has(page)) return;
    this.loading.add(page);
    const gen = this.gen;
    try {
      const reply = await this.request("rows", {
        offset: page * PAGE,
        limit: PAGE,
        query: this.query,
        field: this.field,
        expand_all: this.expandAll,
        toggled: [...this.toggled],
      });
      if (gen !== this.gen || this.disposed) return;
      this.loading.delete(page);
      this.total = reply.total;
      this.pages.set(page, reply.rows);
      if (this.loading.size === 0) this.stale = new Map();
      this.clearError();
      this.spacer.style.height = `${Math.max(1, this.total) * ROW_H}px`;
      this.countEl.textContent = `${this.total} row${this.total === 1 ? "" : "s"}`;
      this.root.dataset.dflTotal = String(this.total);
      this.update();
      if (this.root.dataset.dflReady !== "1") this.root.dataset.dflReady = "1";
    } catch (err) {
      if (gen === this.gen) this.loading.delete(page);
      this.showError(err);
    }
  }

  /** @param {number} i @returns {Row | null | undefined} */
  rowAt(i) {
    const page = this.pages.get(Math.floor(i / PAGE)) || this.stale.get(Math.floor(i / PAGE));
    return page ? page[i % PAGE] : undefined;
  }

  /** @param {number} first @param {number} last */
  draw(first, last) {
    const end = Math.min(last, this.total);
    this.rowsEl.style.transform = `translateY(${first * ROW_H}px)`;
    const out = [];
    for (let i = first; i < end; i++) {
      const row = this.rowAt(i);
      out.push(row ? this.rowEl(row, i) : h("div", { class: "dfl-te-row dfl-te-loading", "data-index": i }, [h("span", { class: "dfl-te-c", text: "…" })]));
    }
    if (this.total === 0 && this.pages.size) out.push(h("div", { class: "dfl-te-empty", text: this.query ? "No element matches the filter." : "The dataset is empty." }));
    this.rowsEl.replaceChildren(...out);
  }

  /** @param {Row} r @param {number} i */
  rowEl(r, i) {
    const cls = ["dfl-te-row"];
    if (r.is_meta) cls.push("dfl-te-meta");
    if (r.is_sequence) cls.push("dfl-te-seq");
    if (r.is_item) cls.push("dfl-te-item");
    if (r.private_creator !== null && r.private_creator !== undefined) cls.push("dfl-te-private");
    if (r.changed) cls.push("dfl-te-changed");
    if (i === this.cursor) cls.push("dfl-te-cursor");
    const indent = `${6 + r.depth * 14}px`;
    let twisty = null;
    if (r.is_sequence) {
      twisty = h("button", { class: "dfl-te-twisty", type: "button", "data-act": "toggle", "aria-expanded": String(r.expanded), title: r.expanded ? "Collapse" : "Expand", text: r.expanded ? "▾" : "▸" });
    }
    const tagCell = h("span", { class: "dfl-te-c dfl-te-c-tag" }, [twisty, r.is_item ? `Item ${r.path.slice(r.path.lastIndexOf("[") + 1, -1)}` : r.tag]);
    tagCell.style.paddingLeft = indent;
    const kw = h("span", { class: "dfl-te-c dfl-te-c-kw", title: r.name || r.keyword }, [r.keyword || r.name || (r.is_item ? "" : "—")]);
    if (r.private_creator !== null && r.private_creator !== undefined) {
      kw.append(h("span", { class: "dfl-te-creator", title: `Private creator: ${r.private_creator}`, text: r.private_creator || "private" }));
    }
    const valueCell = h("span", { class: "dfl-te-c dfl-te-c-value", title: r.editable ? "Click to edit" : r.is_meta ? "File meta information (group 0002) is read-only" : "" });
    if (this.editing && this.editing.path === r.path) valueCell.append(this.editing.input);
    else valueCell.textContent = r.value;
    if (r.editable) valueCell.dataset.act = "edit";
    const act = h("span", { class: "dfl-te-c dfl-te-c-act" });
    if (r.is_meta) {
      const lock = h("span", { class: "dfl-te-lock", title: "read-only (file meta information)", "aria-label": "read-only" });
      lock.innerHTML = LOCK_SVG; // a constant: no data goes through innerHTML
      act.append(lock);
    }
    else if (r.is_item) act.append(h("button", { class: "dfl-te-icon", type: "button", "data-act": "remove_item", title: "Remove this item", text: "−" }));
    else {
      if (r.is_sequence) act.append(h("button", { class: "dfl-te-icon", type: "button", "data-act": "add_item", title: "Add an empty item", text: "+" }));
      act.append(h("button", { class: "dfl-te-icon dfl-te-del", type: "button", "data-act": "delete", title: "Delete this element", text: "×" }));
    }
    return h("div", { class: cls.join(" "), role: "row", "aria-selected": String(i === this.cursor), "data-index": i, "data-path": r.path, "data-keyword": r.keyword }, [
      tagCell,
      kw,
      h("span", { class: "dfl-te-c dfl-te-c-vr", text: r.is_item ? "" : r.vr }),
      h("span", { class: "dfl-te-c dfl-te-c-vm", text: r.is_item ? "" : String(r.vm) }),
      h("span", { class: "dfl-te-c dfl-te-c-len", text: r.is_item || r.is_sequence ? "" : String(r.length) }),
      valueCell,
      act,
    ]);
  }

  // ------------------------------------------------------------------ actions
  /**
   * Keyboard use of the table (focus it with Tab or a click): arrows, Page Up/Down,
   * Home/End move the current row; Enter or F2 edits its value; Right/Left expand and
   * collapse a sequence; Delete deletes the element. Typing in the edit box is not
   * handled here (its own Enter/Escape commit or cancel and give the focus back).
   *
   * @param {KeyboardEvent} e
   */
  onKey(e) {
    if (e.target !== this.scroller || this.total === 0) return;
    const last = this.total - 1;
    const at = Math.min(Math.max(this.cursor, 0), last);
    const row = this.cursor < 0 ? undefined : this.rowAt(at);
    let next = at;
    switch (e.key) {
      case "ArrowDown": next = this.cursor < 0 ? 0 : Math.min(last, at + 1); break;
      case "ArrowUp": next = Math.max(0, at - 1); break;
      case "PageDown": next = Math.min(last, at + VIEW_ROWS - 1); break;
      case "PageUp": next = Math.max(0, at - (VIEW_ROWS - 1)); break;
      case "Home": next = 0; break;
      case "End": next = last; break;
      case "Enter":
      case "F2":
        if (row && row.editable) this.startEdit(row);
        break;
      case "ArrowRight":
        if (row && row.is_sequence && !row.expanded) this.toggle(row.path);
        break;
      case "ArrowLeft":
        if (row && row.is_sequence && row.expanded) this.toggle(row.path);
        break;
      case "Delete":
        if (row && !row.is_meta && !row.is_item) this.edit({ op: "delete", path: row.path });
        break;
      default:
        return;
    }
    e.preventDefault();
    this.setCursor(next);
  }

  /** @param {number} index */
  setCursor(index) {
    this.cursor = index;
    this.root.dataset.dflCursor = String(index);
    const top = index * ROW_H;
    const s = this.scroller;
    if (top < s.scrollTop) s.scrollTop = top;
    else if (top + ROW_H > s.scrollTop + s.clientHeight) s.scrollTop = top + ROW_H - s.clientHeight;
    this.schedule(true);
  }

  /** @param {MouseEvent} e */
  onRowClick(e) {
    const target = /** @type {HTMLElement} */ (e.target);
    const actEl = /** @type {HTMLElement | null} */ (target.closest("[data-act]"));
    const rowEl = /** @type {HTMLElement | null} */ (target.closest(".dfl-te-row"));
    if (rowEl && Number(rowEl.dataset.index) !== this.cursor) this.setCursor(Number(rowEl.dataset.index));
    if (!actEl || !rowEl) return;
    const row = this.rowAt(Number(rowEl.dataset.index));
    if (!row) return;
    const act = actEl.dataset.act;
    if (act === "toggle") this.toggle(row.path);
    else if (act === "edit") this.startEdit(row);
    else if (act === "delete") this.edit({ op: "delete", path: row.path });
    else if (act === "add_item") this.edit({ op: "add_item", path: row.path });
    else if (act === "remove_item") {
      const at = row.path.lastIndexOf("[");
      this.edit({ op: "remove_item", path: row.path.slice(0, at), index: Number(row.path.slice(at + 1, -1)) });
    }
  }

  /** @param {Row} row */
  startEdit(row) {
    if (this.editing && this.editing.path === row.path) return;
    this.cancelEdit();
    const input = /** @type {HTMLInputElement} */ (h("input", { class: "dfl-te-edit", spellcheck: "false", "aria-label": `New value of ${row.keyword || row.tag}` }));
    input.value = row.value;
    this.editing = { path: row.path, vr: row.vr, input, seq: 0 };
    input.addEventListener("input", () => {
      clearTimeout(this.timers.validate);
      this.timers.validate = setTimeout(() => this.validate(), VALIDATE_DELAY_MS);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); this.commitEdit(); this.scroller.focus(); }
      else if (e.key === "Escape") { e.preventDefault(); this.cancelEdit(); this.scroller.focus(); }
    });
    this.schedule(true);
    requestAnimationFrame(() => { input.focus(); input.select(); });
    this.validate();
  }

  cancelEdit() {
    if (!this.editing) return;
    this.editing = null;
    clearTimeout(this.timers.validate);
    this.validationEl.hidden = true;
    this.validationEl.textContent = "";
    this.schedule(true);
  }

  async validate() {
    const ed = this.editing;
    if (!ed) return;
    const seq = ++this.validateSeq;
    try {
      const reply = await this.request("validate", { path: ed.path, value: ed.input.value, vr: null });
      if (seq !== this.validateSeq || this.editing !== ed) return;
      this.validationEl.hidden = false;
      this.validationEl.classList.toggle("dfl-te-invalid", !reply.valid);
      this.validationEl.textContent = reply.valid ? `✓ ${reply.message || "valid"} — Enter applies, Esc cancels` : `✗ ${reply.message}`;
      ed.input.classList.toggle("dfl-te-bad", !reply.valid);
      this.root.dataset.dflValid = reply.valid ? "1" : "0";
    } catch (err) {
      this.showError(err);
    }
  }

  async commitEdit() {
    const ed = this.editing;
    if (!ed) return;
    const ok = await this.edit({ op: "set", path: ed.path, value: ed.input.value });
    if (ok && this.editing === ed) this.cancelEdit();
  }

  /** @param {Record<string, any>} fields @returns {Promise<boolean>} */
  async edit(fields) {
    try {
      await this.request("edit", { value: null, vr: null, index: 0, ...fields });
      this.clearError();
      if (!this.changesEl.hidden) this.loadChanges();
      return true;
    } catch (err) {
      this.showError(err);
      return false;
    }
  }

  async addElement() {
    const path = this.addTag.value.trim();
    if (!path) { this.showError(new Error("Type the tag or keyword of the element to add.")); return; }
    const ok = await this.edit({ op: "add", path, value: this.addValue.value, vr: this.addVr.value || null });
    if (ok) { this.addTag.value = ""; this.addValue.value = ""; this.addVr.value = ""; }
  }

  /** @param {string} kind */
  async simple(kind) {
    try {
      await this.request(kind);
      this.clearError();
      if (!this.changesEl.hidden) this.loadChanges();
    } catch (err) {
      this.showError(err);
    }
  }

  toggleChanges() {
    this.changesEl.hidden = !this.changesEl.hidden;
    this.changesBtn.setAttribute("aria-pressed", String(!this.changesEl.hidden));
    if (!this.changesEl.hidden) this.loadChanges();
  }

  async loadChanges() {
    try {
      const reply = await this.request("changes");
      const items = reply.changes.map((/** @type {any} */ c) => h("div", { class: "dfl-te-diff", "data-path": c.path }, [
        h("span", { class: "dfl-te-diff-path", text: c.keyword ? `${c.keyword} ${c.path}` : c.path }),
        h("span", { class: "dfl-te-old", text: c.old === null ? "(absent)" : c.old }),
        h("span", { class: "dfl-te-arrow", text: "→" }),
        h("span", { class: "dfl-te-new", text: c.new === null ? "(deleted)" : c.new }),
      ]));
      if (reply.more) items.push(h("div", { class: "dfl-te-diff-more", text: `… and ${reply.more} more` }));
      this.changesEl.replaceChildren(...(items.length ? items : [h("div", { class: "dfl-te-empty", text: "No pending changes." })]));
    } catch (err) {
      this.showError(err);
    }
  }

  async save() {
    this.statusEl.textContent = "Saving…";
    try {
      const reply = await this.request("save", { out: this.overwrite.checked ? "" : this.outInput.value.trim(), overwrite: this.overwrite.checked, regenerate_uids: this.regen.checked });
      this.clearError();
      this.statusEl.textContent = `Saved ${reply.written} file${reply.written === 1 ? "" : "s"} to ${reply.folder}`;
      this.root.dataset.dflSaved = String(reply.written);
    } catch (err) {
      this.statusEl.textContent = "";
      this.showError(err);
    }
  }

  /** @param {"series" | "study"} scope */
  async apply(scope) {
    try {
      await this.request("apply", { scope, out: this.overwrite.checked ? "" : this.outInput.value.trim(), overwrite: this.overwrite.checked, regenerate_uids: this.regen.checked });
      this.clearError();
    } catch (err) {
      this.showError(err);
    }
  }

  // ------------------------------------------------------------------ traits
  syncButtons() {
    const n = this.model.get("n_pending") || 0;
    this.undoBtn.disabled = !this.model.get("can_undo");
    this.redoBtn.disabled = !this.model.get("can_redo");
    this.changesBtn.textContent = `Changes (${n})`;
    this.root.dataset.dflPending = String(n);
    const running = this.model.get("job_state") === "running";
    const canApply = !!this.model.get("can_apply");
    this.seriesBtn.disabled = running || !canApply;
    this.studyBtn.disabled = running || !canApply;
    this.saveBtn.disabled = running;
    this.cancelBtn.hidden = !running;
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
  }

  dispose() {
    this.disposed = true;
    cancelAnimationFrame(this.raf);
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.requests.close();
    this.model.off("msg:custom", this.onMessage);
    for (const [name, fn] of this.listeners) this.model.off(name, fn);
    this.root.remove();
  }
}

export default {
  /** Nothing model-wide: each view keeps its own pages (ids are per model). */
  initialize() {},
  /** @param {{model: any, el: HTMLElement}} props */
  render({ model, el }) {
    const view = new TagEditorView(model, el);
    return () => view.dispose();
  },
};
