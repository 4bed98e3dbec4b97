/**
 * Shared by the panels (tag editor, anonymization): prepended to each panel's module by
 * `widgets/_static.py`, so that every panel stays one self-contained ES module (no
 * imports, no CDN: clinical networks are offline).
 *
 * `PanelRequests` is the browser side of the request/reply protocol of
 * `widgets/_base.py`: `{kind, id, ...}` → `{kind: "<kind>:reply", id, ok, ...}`, with ids
 * per model (several views of one widget share its comm) and a timeout per request.
 */

/** @type {WeakMap<any, {next: number}>} request ids are per model (views share the comm) */
const PANEL_COUNTERS = new WeakMap();

class RequestError extends Error {
  /** @param {string} type @param {string} message */
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

class PanelRequests {
  /**
   * @param {any} model
   * @param {string} panel  named in error messages ("the tag editor")
   * @param {number} timeoutMs
   */
  constructor(model, panel, timeoutMs) {
    this.model = model;
    this.panel = panel;
    this.timeoutMs = timeoutMs;
    if (!PANEL_COUNTERS.has(model)) PANEL_COUNTERS.set(model, { next: 1 });
    this.counter = /** @type {{next: number}} */ (PANEL_COUNTERS.get(model));
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    this.closed = false;
  }

  /**
   * Send one request and wait for its reply.
   *
   * @param {string} kind
   * @param {Record<string, any>} [fields]
   * @returns {Promise<any>}
   */
  send(kind, fields = {}) {
    if (this.closed) return Promise.reject(new Error(`${this.panel} was closed`));
    const id = this.counter.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError("Timeout", `no reply to the ${kind} request after ${this.timeoutMs / 1000} s — is the kernel busy or gone?`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.model.send({ kind, id, ...fields });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  /**
   * Settle the request a reply answers; return false if `msg` is not a reply of this view.
   *
   * @param {any} msg
   * @returns {boolean}
   */
  handle(msg) {
    if (!msg || typeof msg.kind !== "string" || !msg.kind.endsWith(":reply")) return false;
    const entry = this.pending.get(msg.id);
    if (!entry) return false; // another view's request
    this.pending.delete(msg.id);
    clearTimeout(entry.timer);
    if (msg.ok) entry.resolve(msg);
    else {
      const err = msg.error || {};
      entry.reject(new RequestError(String(err.type || "Error"), String(err.message || "the kernel refused the request")));
    }
    return true;
  }

  /** Reject every request still waiting (the view is closing). */
  close() {
    this.closed = true;
    for (const { timer, reject } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error(`${this.panel} was closed`));
    }
    this.pending.clear();
  }
}

/**
 * Create an element.
 *
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {(Node | string | null)[]} [children]
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    else if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null) el.append(c);
  return el;
}
