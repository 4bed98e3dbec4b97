// @ts-check
/**
 * dicomflow_lab inline DICOM viewer: the browser side of `dicomflow_lab.widgets.viewer.Viewer`.
 *
 * One self-contained anywidget ESM module: no imports, no build step, nothing fetched
 * from a network (clinical networks are offline). Styles are in viewer.css, scoped
 * under `.dfl-viewer`.
 *
 * Frames travel once: the view asks the kernel for a frame's raw stored values
 * (`{kind: "frame", id, series, index}`, protocol in widgets/_messages.py), keeps them in
 * a per-model LRU of promises and applies the display pipeline of core/voi.py here, in
 * PS3.3 order: stored value → modality (table or slope/intercept) → VOI (LINEAR,
 * LINEAR_EXACT, SIGMOID, or the VOI LUT table) → 0–255 → MONOCHROME1 inversion XOR the
 * user's invert. Integer data of at most 16 bits goes through one 8-bit lookup table
 * over the stored-value domain; float, 32-bit and very large images through a WebGL2
 * fragment shader computing the same formula, or a per-pixel canvas fallback when
 * WebGL2 is missing. Zoom, pan, rotation and flips are CSS transforms of the
 * native-resolution canvas, so a window/level repaint costs the same at any zoom.
 *
 * Overlays (60xx groups, PS3.3 C.9.2): the frame reply says how many planes apply to the
 * frame; while the `overlays` trait is on, the view asks for them (`{kind: "overlay",
 * id, series, index}` → one image-sized 0/1 mask per plane, kept in a small LRU) and
 * draws them, one colour per plane, on a second canvas in the same stage as the image,
 * so zoom, pan, rotation and flips move both; the image canvas is never touched.
 *
 * Test hooks: the root element `.dfl-viewer` carries `data-dfl-ready`, `data-dfl-paints`,
 * `data-dfl-frame`, `data-dfl-series`, `data-dfl-wc`, `data-dfl-ww`, `data-dfl-renderer`,
 * `data-dfl-overlays` (planes drawn, 0 when hidden) and `data-dfl-error`, and
 * `root.dflViewer` exposes `{paints, lastPaintMs, setWindow(c, w), pixel(row, col),
 * overlayPixel(row, col), overlayAlpha(), state(), ...}`.
 */

/* ------------------------------------------------------------------ constants */

const REQUEST_TIMEOUT_MS = 30_000;
const CACHE_LIMIT_BYTES = 256 * 1024 * 1024;
/** Images with more pixels than this go to the WebGL2 path (when it exists). */
const GL_PIXEL_THRESHOLD = 2048 * 2048;
const PREFETCH_CONCURRENCY = 3;
const FRAME_SAVE_DELAY_MS = 150;
const WL_SAVE_DELAY_MS = 300;
const LOADING_DELAY_MS = 150;
const SERIES_SETTLE_MS = 60;
/** Overlay masks kept per model: at most this many frames' worth, and this many bytes. */
const OVERLAY_CACHE_ENTRIES = 32;
const OVERLAY_CACHE_BYTES = 64 * 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** @type {Record<string, any>} */
const DTYPES = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
};

/** Stored-value domains a lookup table can cover: [offset, size]. */
/** @type {Record<string, [number, number]>} */
const LUT_DOMAINS = {
  uint8: [0, 256],
  int8: [128, 256],
  uint16: [0, 65536],
  int16: [32768, 65536],
};

const VOI_FUNCTIONS = { LINEAR: 0, LINEAR_EXACT: 1, SIGMOID: 2 };

/**
 * @typedef {Object} FrameHeader
 * @property {string} series
 * @property {number} index
 * @property {number} rows
 * @property {number} columns
 * @property {number} samples
 * @property {string} dtype
 * @property {string} photometric
 * @property {number} bits_stored
 * @property {boolean} signed
 * @property {boolean} is_float
 * @property {number} slope
 * @property {number} intercept
 * @property {string} rescale_type
 * @property {{first: number, table: number[]} | null} modality_lut
 * @property {string} voi_function
 * @property {{first: number, bits: number, table: number[]} | null} voi_lut
 * @property {boolean} invert
 * @property {{name: string, center: number, width: number, source: string}[]} windows
 * @property {number} min
 * @property {number} max
 * @property {number[] | null} position
 * @property {number[] | null} orientation
 * @property {number[] | null} spacing
 * @property {number | null} thickness
 * @property {string} file
 * @property {number | null} [overlays] overlay planes of this frame (null: unreadable)
 */

/**
 * One overlay plane of a frame, image-sized, already placed at its Overlay Origin.
 *
 * @typedef {Object} OverlayPlane
 * @property {number} group    0x6000, 0x6002 ...
 * @property {number} rows
 * @property {number} columns
 * @property {string} label
 * @property {Uint8Array} mask  rows × columns, 1 where the overlay is set
 */

/**
 * @typedef {Object} Frame
 * @property {FrameHeader} header
 * @property {any} data  typed array of rows × columns × samples values
 * @property {number} bytes
 * @property {{lo: number, hi: number} | null} range  modality-value range (lazy)
 */

/**
 * @typedef {Object} DisplayParams
 * @property {number} center
 * @property {number} width
 * @property {string} fn        VOI function name
 * @property {boolean} invert   the user's invert (XORed with MONOCHROME1)
 * @property {boolean} useVoiLut apply the header's VOI LUT table instead of the window
 */

/* ------------------------------------------------------------ binary helpers */

/**
 * View a reply buffer as the header's typed array, honouring byteOffset/byteLength and
 * copying when the offset is misaligned for the element size (or the host is big-endian).
 *
 * @param {string} dtype
 * @param {any} buffer DataView (anywidget), ArrayBuffer or typed array
 * @param {number} count expected number of values
 */
function toTypedArray(dtype, buffer, count) {
  const T = DTYPES[dtype];
  if (!T) throw new Error(`unsupported pixel type ${JSON.stringify(dtype)}`);
  /** @type {DataView} */
  let view;
  if (buffer instanceof DataView) view = buffer;
  else if (buffer instanceof ArrayBuffer) view = new DataView(buffer);
  else if (buffer && ArrayBuffer.isView(buffer)) {
    view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } else throw new Error("the frame reply carries no pixel buffer");
  const bpe = T.BYTES_PER_ELEMENT;
  if (view.byteLength !== count * bpe) {
    throw new Error(`the frame buffer holds ${view.byteLength} bytes, expected ${count * bpe}`);
  }
  if (!LITTLE_ENDIAN && bpe > 1) {
    const out = new T(count);
    const get = {
      2: dtype === "int16" ? view.getInt16 : view.getUint16,
      4: dtype === "float32" ? view.getFloat32 : dtype === "int32" ? view.getInt32 : view.getUint32,
    }[bpe];
    for (let i = 0; i < count; i++) out[i] = get.call(view, i * bpe, true);
    return out;
  }
  if (view.byteOffset % bpe === 0) return new T(view.buffer, view.byteOffset, count);
  return new T(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

/** @param {number} v @param {number} lo @param {number} hi */
const clamp = (v, lo, hi) => (v < lo ? lo : v > hi ? hi : v);

/** Pack a grey level into one little-endian RGBA word. @param {number} y */
const packGrey = LITTLE_ENDIAN
  ? (y) => (0xff000000 | (y << 16) | (y << 8) | y) >>> 0
  : (y) => ((y << 24) | (y << 16) | (y << 8) | 0xff) >>> 0;

/** Pack an RGBA colour into one word, in the byte order ImageData uses on this host. */
const packRgba = (/** @type {number} */ r, /** @type {number} */ g, /** @type {number} */ b, /** @type {number} */ a) =>
  (LITTLE_ENDIAN ? (a << 24) | (b << 16) | (g << 8) | r : (r << 24) | (g << 16) | (b << 8) | a) >>> 0;

/** Overlay colours, one per plane in group order: yellow, cyan, magenta, green; alpha 0.8. */
const OVERLAY_COLOURS = [
  [255, 224, 0],
  [0, 229, 255],
  [255, 64, 255],
  [64, 255, 96],
].map(([r, g, b]) => packRgba(r, g, b, 204));

/** The 256 packed grey words. */
const GREY32 = (() => {
  const out = new Uint32Array(256);
  for (let y = 0; y < 256; y++) out[y] = packGrey(y);
  return out;
})();

/* ------------------------------------------------------- the display pipeline */

/**
 * Stored value → modality value (PS3.3 C.11.1): the Modality LUT table when present
 * (inputs clamped to its range, as pydicom does), else slope × value + intercept.
 *
 * @param {FrameHeader} h
 * @returns {(s: number) => number}
 */
function modalityFunction(h) {
  const lut = h.modality_lut;
  if (lut && lut.table && lut.table.length) {
    const table = lut.table;
    const first = lut.first | 0;
    const last = table.length - 1;
    return (s) => table[clamp(Math.round(s) - first, 0, last)];
  }
  const m = Number.isFinite(h.slope) ? h.slope : 1;
  const b = Number.isFinite(h.intercept) ? h.intercept : 0;
  if (m === 1 && b === 0) return (s) => s;
  return (s) => s * m + b;
}

/**
 * Modality value → 0..255 (unrounded) by the VOI window function (PS3.3 C.11.2.1.2).
 *
 * @param {string} fn LINEAR | LINEAR_EXACT | SIGMOID
 * @param {number} c window center
 * @param {number} w window width
 * @returns {(x: number) => number}
 */
function windowFunction(fn, c, w) {
  if (fn === "SIGMOID") {
    const k = -4 / Math.max(w, 1e-12);
    return (x) => 255 / (1 + Math.exp(k * (x - c)));
  }
  if (fn === "LINEAR_EXACT") {
    const ww = Math.max(w, 1e-12);
    const lo = c - ww / 2;
    const hi = c + ww / 2;
    return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - c) / ww + 0.5) * 255);
  }
  // LINEAR: center - 0.5 and width - 1 (PS3.3 C.11.2.1.2.1); width below 1 acts as 1
  const c0 = c - 0.5;
  const w0 = Math.max(w, 1) - 1;
  const lo = c0 - w0 / 2;
  const hi = c0 + w0 / 2;
  return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - c0) / w0 + 0.5) * 255);
}

/**
 * Modality value → 0..255 by a VOI LUT table (PS3.3 C.11.2.1.1), inputs clamped to its
 * range and its output scaled from `bits` to 8 bits.
 *
 * @param {{first: number, bits: number, table: number[]}} voi
 * @returns {(x: number) => number}
 */
function voiLutFunction(voi) {
  const table = voi.table;
  const first = voi.first | 0;
  const last = table.length - 1;
  const scale = 255 / (2 ** (voi.bits || 16) - 1);
  return (x) => clamp(table[clamp(Math.floor(x - first), 0, last)] * scale, 0, 255);
}

/**
 * The whole grey pipeline for one stored value: modality → VOI → round → inversion.
 *
 * @param {FrameHeader} h
 * @param {DisplayParams} p
 * @returns {(s: number) => number} integer 0..255
 */
function greyFunction(h, p) {
  const mod = modalityFunction(h);
  const voi = p.useVoiLut && h.voi_lut ? voiLutFunction(h.voi_lut) : windowFunction(p.fn, p.center, p.width);
  const inv = isMonochrome1(h) !== !!p.invert;
  return (s) => {
    let y = Math.round(voi(mod(s)));
    y = y >= 0 ? (y <= 255 ? y : 255) : 0; // NaN → 0 too
    return inv ? 255 - y : y;
  };
}

/** @param {FrameHeader} h */
function isMonochrome1(h) {
  return typeof h.invert === "boolean" ? h.invert : h.photometric === "MONOCHROME1";
}

/**
 * The 8-bit LUT over a dtype's stored-value domain: `lut[s + offset]` is the display grey.
 *
 * @param {FrameHeader} h
 * @param {DisplayParams} p
 * @returns {{lut: Uint8Array, offset: number}}
 */
function buildLut(h, p) {
  const domain = LUT_DOMAINS[h.dtype];
  if (!domain) throw new Error(`no lookup table for ${h.dtype} data`);
  const [offset, size] = domain;
  const f = greyFunction(h, p);
  const lut = new Uint8Array(size);
  for (let i = 0; i < size; i++) lut[i] = f(i - offset);
  return { lut, offset };
}

/**
 * The 8-bit LUT over the stored values `lo..hi` only: `lut[s + offset]` for lo <= s <= hi.
 *
 * @param {FrameHeader} h
 * @param {DisplayParams} p
 * @param {number} lo
 * @param {number} hi
 * @returns {{lut: Uint8Array, offset: number}}
 */
function buildRangeLut(h, p, lo, hi) {
  const f = greyFunction(h, p);
  const lut = new Uint8Array(hi - lo + 1);
  for (let i = 0; i < lut.length; i++) lut[i] = f(i + lo);
  return { lut, offset: -lo };
}

/** @param {FrameHeader} h @param {DisplayParams} p */
function lutKey(h, p) {
  return [
    h.dtype, h.slope, h.intercept, h.photometric, h.invert, p.fn, p.center, p.width,
    p.invert, p.useVoiLut, h.modality_lut ? h.modality_lut.first : "", h.modality_lut ? h.modality_lut.table.length : "",
    p.useVoiLut && h.voi_lut ? `${h.voi_lut.first}/${h.voi_lut.bits}/${h.voi_lut.table.length}` : "",
  ].join("|");
}

/**
 * 0.5–99.5 percentile window of a frame's modality values, as core/voi.py's
 * `auto_window`: numpy's linear-interpolated percentiles; for integral values the LINEAR
 * window maps the 0.5 percentile to 0 and the 99.5 percentile to 255 exactly.
 *
 * @param {Frame} frame
 * @returns {{center: number, width: number}}
 */
function autoWindow(frame) {
  const h = frame.header;
  const data = frame.data;
  const mod = modalityFunction(h);
  const domain = LUT_DOMAINS[h.dtype];
  /** @type {(rank: number) => number} value at a 0-based rank of the sorted values */
  let at;
  let n;
  if (domain && h.samples === 1) {
    const [offset, size] = domain;
    const counts = new Uint32Array(size);
    for (let i = 0; i < data.length; i++) counts[data[i] + offset]++;
    /** @type {[number, number][]} */
    const bins = [];
    for (let i = 0; i < size; i++) if (counts[i]) bins.push([mod(i - offset), counts[i]]);
    bins.sort((a, b) => a[0] - b[0]);
    n = data.length;
    at = (rank) => {
      let seen = 0;
      for (const [v, c] of bins) {
        seen += c;
        if (seen > rank) return v;
      }
      return bins.length ? bins[bins.length - 1][0] : 0;
    };
  } else {
    const finite = [];
    const step = data.length > 1 << 20 ? Math.floor(data.length / (1 << 20)) + 1 : 1;
    for (let i = 0; i < data.length; i += step) {
      const v = mod(data[i]);
      if (Number.isFinite(v)) finite.push(v);
    }
    const sorted = Float64Array.from(finite).sort();
    n = sorted.length;
    at = (rank) => sorted[rank];
  }
  if (!n) return { center: 0.5, width: 1 };
  const percentile = (/** @type {number} */ q) => {
    const pos = q * (n - 1);
    const lo = Math.floor(pos);
    const a = at(lo);
    return lo + 1 < n ? a + (pos - lo) * (at(lo + 1) - a) : a;
  };
  const low = percentile(0.005);
  const high = percentile(0.995);
  let integral = !(h.is_float || h.dtype === "float32");
  for (let i = 0; integral && i < Math.min(data.length, 4096); i++) integral = Number.isInteger(mod(data[i]));
  if (integral) {
    const width = high - low + 1;
    return { center: low + width / 2, width };
  }
  const width = Math.max(high - low, 1.1920929e-7);
  return { center: (low + high) / 2, width };
}

/** Modality-value range of a frame, from the header's stored min/max. @param {Frame} f */
function modalityRange(f) {
  if (!f.range) {
    const h = f.header;
    const mod = modalityFunction(h);
    let lo = mod(h.min);
    let hi = mod(h.max);
    if (h.modality_lut) {
      lo = Math.min(...h.modality_lut.table);
      hi = Math.max(...h.modality_lut.table);
    }
    if (lo > hi) [lo, hi] = [hi, lo];
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
    f.range = { lo, hi };
  }
  return f.range;
}

/* ---------------------------------------------------------------- renderers */

const GL_FORMATS = {
  uint8: ["R8UI", "RED_INTEGER", "UNSIGNED_BYTE", "usampler2D"],
  int8: ["R8I", "RED_INTEGER", "BYTE", "isampler2D"],
  uint16: ["R16UI", "RED_INTEGER", "UNSIGNED_SHORT", "usampler2D"],
  int16: ["R16I", "RED_INTEGER", "SHORT", "isampler2D"],
  uint32: ["R32UI", "RED_INTEGER", "UNSIGNED_INT", "usampler2D"],
  int32: ["R32I", "RED_INTEGER", "INT", "isampler2D"],
  float32: ["R32F", "RED", "FLOAT", "sampler2D"],
};

const VERTEX_SHADER = `#version 300 es
void main() {
  vec2 p = vec2(gl_VertexID == 1 ? 3.0 : -1.0, gl_VertexID == 2 ? 3.0 : -1.0);
  gl_Position = vec4(p, 0.0, 1.0);
}`;

/** @param {string} sampler */
const fragmentShader = (sampler) => `#version 300 es
precision highp float;
precision highp int;
uniform highp ${sampler} u_tex;
uniform int u_rows;
uniform float u_slope;
uniform float u_intercept;
uniform float u_center;
uniform float u_width;
uniform int u_fn;
uniform bool u_invert;
out vec4 outColor;
void main() {
  ivec2 p = ivec2(int(gl_FragCoord.x), u_rows - 1 - int(gl_FragCoord.y));
  float x = float(texelFetch(u_tex, p, 0).r) * u_slope + u_intercept;
  float y;
  if (u_fn == 2) {
    y = 255.0 / (1.0 + exp(-4.0 * (x - u_center) / max(u_width, 1e-12)));
  } else if (u_fn == 1) {
    float w = max(u_width, 1e-12);
    y = x <= u_center - w / 2.0 ? 0.0 : (x > u_center + w / 2.0 ? 255.0 : ((x - u_center) / w + 0.5) * 255.0);
  } else {
    float c = u_center - 0.5;
    float w = max(u_width, 1.0) - 1.0;
    y = x <= c - w / 2.0 ? 0.0 : (x > c + w / 2.0 ? 255.0 : ((x - c) / w + 0.5) * 255.0);
  }
  y = clamp(floor(y + 0.5), 0.0, 255.0);
  if (isnan(x)) { y = 0.0; }
  if (u_invert) { y = 255.0 - y; }
  outColor = vec4(vec3(y / 255.0), 1.0);
}`;

/** Window/level of grey frames in a WebGL2 fragment shader (R16I / R16UI / R32F … textures). */
class GLRenderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    const gl = canvas.getContext("webgl2", {
      preserveDrawingBuffer: true,
      antialias: false,
      depth: false,
      stencil: false,
      alpha: false,
      premultipliedAlpha: false,
    });
    if (!gl) throw new Error("WebGL2 is not available");
    this.gl = gl;
    this.canvas = canvas;
    /** @type {Map<string, {program: WebGLProgram, loc: Record<string, WebGLUniformLocation | null>}>} */
    this.programs = new Map();
    this.texture = gl.createTexture();
    this.vao = gl.createVertexArray();
    this.maxSize = gl.getParameter(gl.MAX_TEXTURE_SIZE);
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    /** The GPU's name, when the browser tells it. */
    this.device = String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    /**
     * A software rasteriser (SwiftShader, llvmpipe…): slower than the CPU lookup table,
     * e.g. ~100 ms against ~15 ms for a 2304² frame in headless Chromium.
     */
    this.software = /swiftshader|llvmpipe|softpipe|software|basic render/i.test(this.device);
    /** @type {Frame | null} */
    this.uploaded = null;
    this.lost = false;
    this.onLost = (/** @type {Event} */ e) => {
      e.preventDefault();
      this.lost = true;
      this.uploaded = null;
    };
    canvas.addEventListener("webglcontextlost", this.onLost);
  }

  /** @param {FrameHeader} h */
  accepts(h) {
    return !this.lost && h.samples === 1 && h.dtype in GL_FORMATS && h.rows <= this.maxSize && h.columns <= this.maxSize;
  }

  /** @param {string} sampler */
  program(sampler) {
    let entry = this.programs.get(sampler);
    if (entry) return entry;
    const gl = this.gl;
    const compile = (/** @type {number} */ type, /** @type {string} */ src) => {
      const shader = /** @type {WebGLShader} */ (gl.createShader(type));
      gl.shaderSource(shader, src);
      gl.compileShader(shader);
      if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
        throw new Error(`shader: ${gl.getShaderInfoLog(shader)}`);
      }
      return shader;
    };
    const program = /** @type {WebGLProgram} */ (gl.createProgram());
    gl.attachShader(program, compile(gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, compile(gl.FRAGMENT_SHADER, fragmentShader(sampler)));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      throw new Error(`shader program: ${gl.getProgramInfoLog(program)}`);
    }
    /** @type {Record<string, WebGLUniformLocation | null>} */
    const loc = {};
    for (const name of ["u_tex", "u_rows", "u_slope", "u_intercept", "u_center", "u_width", "u_fn", "u_invert"]) {
      loc[name] = gl.getUniformLocation(program, name);
    }
    entry = { program, loc };
    this.programs.set(sampler, entry);
    return entry;
  }

  /** @param {Frame} frame */
  upload(frame) {
    if (this.uploaded === frame) return;
    const gl = this.gl;
    const h = frame.header;
    const [internal, format, type] = GL_FORMATS[/** @type {keyof typeof GL_FORMATS} */ (h.dtype)];
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl[internal], h.columns, h.rows, 0, gl[format], gl[type], frame.data);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    this.uploaded = frame;
  }

  /** @param {Frame} frame @param {DisplayParams} p */
  draw(frame, p) {
    const gl = this.gl;
    const h = frame.header;
    if (this.canvas.width !== h.columns || this.canvas.height !== h.rows) {
      this.canvas.width = h.columns;
      this.canvas.height = h.rows;
    }
    this.upload(frame);
    const { program, loc } = this.program(GL_FORMATS[/** @type {keyof typeof GL_FORMATS} */ (h.dtype)][3]);
    gl.viewport(0, 0, h.columns, h.rows);
    gl.useProgram(program);
    gl.bindVertexArray(this.vao);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(loc.u_tex, 0);
    gl.uniform1i(loc.u_rows, h.rows);
    gl.uniform1f(loc.u_slope, Number.isFinite(h.slope) ? h.slope : 1);
    gl.uniform1f(loc.u_intercept, Number.isFinite(h.intercept) ? h.intercept : 0);
    gl.uniform1f(loc.u_center, p.center);
    gl.uniform1f(loc.u_width, p.width);
    gl.uniform1i(loc.u_fn, VOI_FUNCTIONS[/** @type {keyof typeof VOI_FUNCTIONS} */ (p.fn)] ?? 0);
    gl.uniform1i(loc.u_invert, isMonochrome1(h) !== !!p.invert ? 1 : 0);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
  }

  /** @param {number} row @param {number} col */
  pixel(row, col) {
    const out = new Uint8Array(4);
    this.gl.readPixels(col, this.canvas.height - 1 - row, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, out);
    return Array.from(out);
  }

  /** Red channel of the whole image, top row first. */
  greys() {
    const { width, height } = this.canvas;
    const rgba = new Uint8Array(width * height * 4);
    this.gl.readPixels(0, 0, width, height, this.gl.RGBA, this.gl.UNSIGNED_BYTE, rgba);
    const out = new Uint8Array(width * height);
    for (let r = 0; r < height; r++) {
      const src = (height - 1 - r) * width * 4;
      for (let c = 0; c < width; c++) out[r * width + c] = rgba[src + c * 4];
    }
    return out;
  }

  dispose() {
    this.canvas.removeEventListener("webglcontextlost", this.onLost);
    const ext = this.gl.getExtension("WEBGL_lose_context");
    if (ext) ext.loseContext();
  }
}

/* ------------------------------------------------------- per-model runtime */

class RequestError extends Error {
  /** @param {string} type @param {string} message */
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

/**
 * Model-wide state created in `initialize`: the request/reply correlation, the frame
 * LRU (promises keyed `series:index`, bounded by bytes), prefetching and thumbnails.
 */
class Runtime {
  /** @param {any} model */
  constructor(model) {
    this.model = model;
    this.nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any, kind: string}>} */
    this.pending = new Map();
    /** @type {Map<string, {promise: Promise<Frame>, value: Frame | null, bytes: number}>} */
    this.frames = new Map();
    this.cacheBytes = 0;
    this.cacheLimit = CACHE_LIMIT_BYTES;
    /** @type {string[]} */
    this.prefetchQueue = [];
    this.prefetchActive = 0;
    /** @type {Map<string, Promise<string>>} */
    this.thumbs = new Map();
    /** @type {string[]} */
    this.urls = [];
    /** @type {Map<string, Promise<any>>} */
    this.notes = new Map();
    /** @type {Map<string, {promise: Promise<OverlayPlane[]>, value: OverlayPlane[] | null, bytes: number}>} */
    this.overlayCache = new Map();
    this.overlayBytes = 0;
    this.requests = 0;
    this.timeoutMs = REQUEST_TIMEOUT_MS;
    this.disposed = false;
    this.onMessage = (/** @type {any} */ msg, /** @type {any[]} */ buffers) => this.receive(msg, buffers);
    model.on("msg:custom", this.onMessage);
  }

  /**
   * Send one request and wait for its reply.
   *
   * @param {string} kind
   * @param {Record<string, any>} fields
   * @returns {Promise<{msg: any, buffers: any[]}>}
   */
  request(kind, fields) {
    if (this.disposed) return Promise.reject(new Error("the viewer was closed"));
    const id = this.nextId++;
    this.requests++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError("Timeout", `no reply to the ${kind} request after ${this.timeoutMs / 1000} s — is the kernel busy or gone?`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer, kind });
      try {
        this.model.send({ kind, id, ...fields });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  /** @param {any} msg @param {any[]} buffers */
  receive(msg, buffers) {
    if (!msg || typeof msg.kind !== "string" || !msg.kind.endsWith(":reply")) return;
    const entry = this.pending.get(msg.id);
    if (!entry) {
      if (msg.ok === false && msg.error) console.warn("[dicomflow_lab viewer]", msg.error.type, msg.error.message);
      return;
    }
    this.pending.delete(msg.id);
    clearTimeout(entry.timer);
    if (msg.ok) entry.resolve({ msg, buffers: buffers || [] });
    else {
      const err = msg.error || {};
      entry.reject(new RequestError(String(err.type || "Error"), String(err.message || "the kernel refused the request")));
    }
  }

  /** @param {string} series @param {number} index */
  static key(series, index) {
    return `${series}:${index}`;
  }

  /**
   * The frame, from the cache or the kernel (one request however many ask).
   *
   * @param {string} series
   * @param {number} index
   * @returns {Promise<Frame>}
   */
  frame(series, index) {
    const key = Runtime.key(series, index);
    const hit = this.frames.get(key);
    if (hit) {
      this.frames.delete(key); // LRU: move to the most recent end
      this.frames.set(key, hit);
      return hit.promise;
    }
    /** @type {{promise: Promise<Frame>, value: Frame | null, bytes: number}} */
    const entry = { promise: /** @type {any} */ (null), value: null, bytes: 0 };
    entry.promise = this.request("frame", { series, index }).then(({ msg, buffers }) => {
      const h = /** @type {FrameHeader} */ (msg.frame);
      if (!h || !(h.rows > 0) || !(h.columns > 0)) throw new RequestError("ProtocolError", "the frame reply has no valid header");
      const samples = h.samples || 1;
      const data = toTypedArray(h.dtype, buffers[0], h.rows * h.columns * samples);
      /** @type {Frame} */
      const frame = { header: { ...h, samples }, data, bytes: data.byteLength, range: null };
      if (this.frames.get(key) === entry) {
        entry.value = frame;
        entry.bytes = frame.bytes;
        this.cacheBytes += frame.bytes;
        this.evict();
      }
      return frame;
    });
    entry.promise.catch(() => {
      if (this.frames.get(key) === entry) this.frames.delete(key);
    });
    this.frames.set(key, entry);
    return entry.promise;
  }

  /** A frame already in the cache and decoded, or null. @param {string} series @param {number} index */
  peek(series, index) {
    const hit = this.frames.get(Runtime.key(series, index));
    return hit && hit.value ? hit.value : null;
  }

  evict() {
    for (const [key, entry] of this.frames) {
      if (this.cacheBytes <= this.cacheLimit) break;
      if (!entry.value) continue; // in flight
      this.frames.delete(key);
      this.cacheBytes -= entry.bytes;
    }
  }

  /**
   * Replace the prefetch queue (nearest first); at most a few requests in flight.
   *
   * @param {string} series
   * @param {number[]} indices
   */
  prefetch(series, indices) {
    this.prefetchQueue = indices.map((i) => Runtime.key(series, i)).filter((k) => !this.frames.has(k));
    this.pumpPrefetch();
  }

  pumpPrefetch() {
    while (this.prefetchActive < PREFETCH_CONCURRENCY && this.prefetchQueue.length && !this.disposed) {
      const key = /** @type {string} */ (this.prefetchQueue.shift());
      if (this.frames.has(key)) continue;
      const cut = key.lastIndexOf(":");
      this.prefetchActive++;
      this.frame(key.slice(0, cut), Number(key.slice(cut + 1)))
        .catch(() => {})
        .finally(() => {
          this.prefetchActive--;
          this.pumpPrefetch();
        });
    }
  }

  /** Object URL of a series' thumbnail PNG. @param {string} series @returns {Promise<string>} */
  thumb(series) {
    let p = this.thumbs.get(series);
    if (!p) {
      p = this.request("thumb", { series }).then(({ msg, buffers }) => {
        const buf = buffers[0];
        if (!buf) throw new Error("empty thumbnail");
        const url = URL.createObjectURL(new Blob([buf], { type: msg.mime || "image/png" }));
        this.urls.push(url);
        return url;
      });
      p.catch(() => this.thumbs.delete(series));
      this.thumbs.set(series, p);
    }
    return p;
  }

  /**
   * A frame's overlay planes, from the small LRU or the kernel (one request however many ask).
   *
   * @param {string} series
   * @param {number} index
   * @returns {Promise<OverlayPlane[]>}
   */
  overlays(series, index) {
    const key = Runtime.key(series, index);
    const hit = this.overlayCache.get(key);
    if (hit) {
      this.overlayCache.delete(key);
      this.overlayCache.set(key, hit);
      return hit.promise;
    }
    /** @type {{promise: Promise<OverlayPlane[]>, value: OverlayPlane[] | null, bytes: number}} */
    const entry = { promise: /** @type {any} */ (null), value: null, bytes: 0 };
    entry.promise = this.request("overlay", { series, index }).then(({ msg, buffers }) => {
      const list = Array.isArray(msg.overlays) ? msg.overlays : [];
      const planes = list.map((/** @type {any} */ o, /** @type {number} */ k) => {
        if (!(o && o.rows > 0 && o.columns > 0)) throw new RequestError("ProtocolError", "an overlay in the reply has no valid size");
        const mask = /** @type {Uint8Array} */ (toTypedArray("uint8", buffers[k], o.rows * o.columns));
        return { group: Number(o.group), rows: Number(o.rows), columns: Number(o.columns), label: String(o.label || ""), mask };
      });
      if (this.overlayCache.get(key) === entry) {
        entry.value = planes;
        entry.bytes = planes.reduce((n, p) => n + p.mask.byteLength, 0);
        this.overlayBytes += entry.bytes;
        this.evictOverlays();
      }
      return planes;
    });
    entry.promise.catch(() => {
      if (this.overlayCache.get(key) === entry) this.overlayCache.delete(key);
    });
    this.overlayCache.set(key, entry);
    this.evictOverlays();
    return entry.promise;
  }

  /** A frame's overlay planes when already received, or null. @param {string} series @param {number} index */
  peekOverlays(series, index) {
    const hit = this.overlayCache.get(Runtime.key(series, index));
    return hit && hit.value ? hit.value : null;
  }

  evictOverlays() {
    for (const [key, entry] of this.overlayCache) {
      if (this.overlayCache.size <= OVERLAY_CACHE_ENTRIES && this.overlayBytes <= OVERLAY_CACHE_BYTES) break;
      if (!entry.value) continue; // in flight
      this.overlayCache.delete(key);
      this.overlayBytes -= entry.bytes;
    }
  }

  /** Corner text lines from the kernel (patient/study lines only when show_phi). */
  annotations(/** @type {string} */ series, /** @type {number} */ index, /** @type {boolean} */ phi) {
    const key = `${series}:${phi ? 1 : 0}`;
    let p = this.notes.get(key);
    if (!p) {
      p = this.request("annotations", { series, index }).then(({ msg }) => msg.corners || {});
      p.catch(() => this.notes.delete(key));
      this.notes.set(key, p);
    }
    return p;
  }

  dispose() {
    this.disposed = true;
    this.model.off("msg:custom", this.onMessage);
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new Error("the viewer was closed"));
    }
    this.pending.clear();
    this.frames.clear();
    this.cacheBytes = 0;
    this.prefetchQueue = [];
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
    this.thumbs.clear();
    this.notes.clear();
    this.overlayCache.clear();
    this.overlayBytes = 0;
  }
}

/*
 * anywidget hands `initialize` and each `render` a different proxy of the same model,
 * so the runtime is found again through an object all proxies return: the widget's
 * `layout` model. The module is also evaluated once per model, so the fallback slot is
 * per model too.
 */
const RUNTIMES = new WeakMap();
/** @type {Runtime | null} */
let moduleRuntime = null;

/** @param {any} model */
function runtimeKey(model) {
  const layout = model.get("layout");
  return layout && typeof layout === "object" ? layout : null;
}

/** @param {any} model @returns {Runtime} */
function runtimeFor(model) {
  const key = runtimeKey(model);
  let rt = key ? RUNTIMES.get(key) : moduleRuntime;
  if (!rt || rt.disposed) {
    rt = new Runtime(model);
    if (key) RUNTIMES.set(key, rt);
    else moduleRuntime = rt;
  }
  return rt;
}

/* -------------------------------------------------------------------- icons */

const ICONS = {
  wl: '<circle cx="10" cy="10" r="7" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M10 3a7 7 0 0 1 0 14z" fill="currentColor"/>',
  pan: '<path d="M10 2l3 3h-2v4h4V7l3 3-3 3v-2h-4v4h2l-3 3-3-3h2v-4H5v2l-3-3 3-3v2h4V5H7z" fill="currentColor"/>',
  zoom: '<circle cx="8.5" cy="8.5" r="5.5" fill="none" stroke="currentColor" stroke-width="1.7"/><path d="M12.6 12.6L18 18" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  zoomIn: '<circle cx="8.5" cy="8.5" r="5.5" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M12.6 12.6L18 18" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><path d="M6 8.5h5M8.5 6v5" stroke="currentColor" stroke-width="1.5"/>',
  zoomOut: '<circle cx="8.5" cy="8.5" r="5.5" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M12.6 12.6L18 18" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><path d="M6 8.5h5" stroke="currentColor" stroke-width="1.5"/>',
  fit: '<path d="M3 7V3h4M13 3h4v4M17 13v4h-4M7 17H3v-4" fill="none" stroke="currentColor" stroke-width="1.7"/><rect x="7" y="7" width="6" height="6" fill="currentColor" opacity=".55"/>',
  invert: '<rect x="3" y="3" width="14" height="14" rx="1.5" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M3.8 16.2L16.2 3.8V16.2z" fill="currentColor"/>',
  rotate: '<path d="M15.5 10.5a5.5 5.5 0 1 1-1.6-4.4" fill="none" stroke="currentColor" stroke-width="1.7"/><path d="M15.8 2.8v4.4h-4.4" fill="none" stroke="currentColor" stroke-width="1.7"/>',
  flipH: '<path d="M10 2v16" stroke="currentColor" stroke-width="1.2" stroke-dasharray="2 2"/><path d="M8 5L3 15h5z" fill="currentColor"/><path d="M12 5l5 10h-5z" fill="none" stroke="currentColor" stroke-width="1.4"/>',
  flipV: '<path d="M2 10h16" stroke="currentColor" stroke-width="1.2" stroke-dasharray="2 2"/><path d="M5 8L15 3v5z" fill="currentColor"/><path d="M5 12l10 5v-5z" fill="none" stroke="currentColor" stroke-width="1.4"/>',
  reset: '<path d="M4.5 10.5a5.5 5.5 0 1 0 1.6-4.4" fill="none" stroke="currentColor" stroke-width="1.7"/><path d="M4.2 2.8v4.4h4.4" fill="none" stroke="currentColor" stroke-width="1.7"/>',
  play: '<path d="M6 4l10 6-10 6z" fill="currentColor"/>',
  pause: '<path d="M5 4h3.2v12H5zM11.8 4H15v12h-3.2z" fill="currentColor"/>',
  annot: '<path d="M3 4.5h7M3 7.5h4.5M10 15.5h7M12.5 12.5H17" stroke="currentColor" stroke-width="1.6"/><rect x="2" y="2" width="16" height="16" rx="2" fill="none" stroke="currentColor" stroke-width="1.1" opacity=".6"/>',
  auto: '<path d="M3 16L7.5 4h1L13 16M4.8 11.5h6.4" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M14.5 4.5l1 2 2 1-2 1-1 2-1-2-2-1 2-1z" fill="currentColor"/>',
  overlay: '<path d="M10 2.8l7.2 3.6L10 10 2.8 6.4z" fill="currentColor" opacity=".6"/><path d="M2.8 10L10 13.6 17.2 10M2.8 13.6L10 17.2l7.2-3.6" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/>',
};

/** @param {keyof typeof ICONS} name */
const icon = (name) => `<svg viewBox="0 0 20 20" width="18" height="18" aria-hidden="true">${ICONS[name]}</svg>`;

/**
 * Create an element.
 *
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {(Node | string)[]} children
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "html") node.innerHTML = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

/** Format a W/L or pixel value compactly. @param {number} v */
function fmt(v) {
  if (!Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1000 || Number.isInteger(v)) return String(Math.round(v));
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01) return v.toFixed(2);
  return v.toPrecision(3);
}

/** Patient-direction letters of a vector (LPS): +x L, +y P, +z H. @param {number[]} v */
function directionLabel(v) {
  const names = [["L", "R"], ["P", "A"], ["H", "F"]];
  const order = [0, 1, 2].sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]));
  let out = "";
  for (const i of order) {
    if (Math.abs(v[i]) < 0.3 || out.length >= 2) continue;
    out += v[i] > 0 ? names[i][0] : names[i][1];
  }
  return out;
}

/* ----------------------------------------------------------------- the view */

const TOOLS = [
  ["wl", "Window/level: drag (right-drag works in any tool)"],
  ["pan", "Pan: drag (middle-drag works in any tool)"],
  ["zoom", "Zoom: drag up/down (Ctrl+wheel works in any tool)"],
];

class ViewerView {
  /**
   * @param {any} model
   * @param {HTMLElement} el
   * @param {Runtime} rt
   */
  constructor(model, el, rt) {
    this.model = model;
    this.el = el;
    this.rt = rt;
    /** @type {(() => void)[]} */
    this.cleanups = [];
    this.disposed = false;
    this.s = {
      series: String(model.get("series_key") || ""),
      frame: Number(model.get("frame")) || 0,
      center: Number(model.get("window_center")),
      width: Number(model.get("window_width")),
      fn: String(model.get("voi_function") || "LINEAR"),
      invert: !!model.get("invert"),
      wlTouched: false,
      zoom: 1,
      panX: 0,
      panY: 0,
      rot: 0,
      flipH: false,
      flipV: false,
      /** Screen-from-image orientation [m00, m01, m10, m11], built from screen-space rotations and flips. */
      m: [1, 0, 0, 1],
      fit: true,
      tool: "wl",
      playing: false,
      /** @type {string | null} */
      forced: null,
    };
    /** @type {Frame | null} */
    this.current = null;
    /** The frame index the view is showing or waiting for. */
    this.wanted = { series: this.s.series, frame: this.s.frame };
    this.error = "";
    this.gen = 0;
    this.paints = 0;
    this.lastPaintMs = 0;
    this.renderer = "canvas2d";
    this.lut = { key: "", lut32: /** @type {Uint32Array | null} */ (null), lut8: /** @type {Uint8Array | null} */ (null), offset: 0 };
    /** @type {ImageData | null} */
    this.imageData = null;
    /** @type {GLRenderer | null} */
    this.gl = null;
    this.glFailed = false;
    this.raf = 0;
    this.writing = false;
    /** @type {Record<string, any>} */
    this.timers = {};
    /** @type {{tl?: string[], tr?: string[]}} */
    this.kernelNotes = {};
    this.pointer = /** @type {{x: number, y: number} | null} */ (null);
    /** @type {any} the drag in progress (mode, start point, start state) */
    this.drag = null;
    this.wheelRest = 0;
    this.modelSyncQueued = false;
    this.readoutQueued = false;
    this.seriesPending = false;
    this.overlayGen = 0;
    this.overlayError = "";

    this.build();
    this.bindModel();
    this.bindInput();
    this.syncSeriesStrip();
    this.syncPresets();
    this.syncToggles();
    this.syncOverlays();
    this.syncStatus();
    this.syncWLControls();
    this.show(this.s.series, this.s.frame);
    this.loadNotes();
  }

  /* ---- DOM ---- */

  build() {
    const btn = (/** @type {string} */ cls, /** @type {string} */ title, /** @type {string} */ html, extra = {}) =>
      h("button", { type: "button", class: `dfl-btn ${cls}`, title, "aria-label": title, html, ...extra });
    const sep = () => h("span", { class: "dfl-sep" });

    this.toolButtons = TOOLS.map(([tool, title]) =>
      btn(`dfl-tool-${tool}`, title, icon(/** @type {any} */ (tool)), { "data-tool": tool, "aria-pressed": "false" }),
    );
    this.presetSelect = /** @type {HTMLSelectElement} */ (h("select", { class: "dfl-presets", title: "Window presets" }));
    this.autoBtn = btn("dfl-auto", "Auto window (0.5–99.5 percentile of this frame)", `${icon("auto")}<span>Auto</span>`);
    this.wSlider = /** @type {HTMLInputElement} */ (h("input", { type: "range", class: "dfl-ww-range", "aria-label": "Window width" }));
    this.wInput = /** @type {HTMLInputElement} */ (h("input", { type: "number", class: "dfl-ww-input", "aria-label": "Window width value" }));
    this.cSlider = /** @type {HTMLInputElement} */ (h("input", { type: "range", class: "dfl-wc-range", "aria-label": "Window center" }));
    this.cInput = /** @type {HTMLInputElement} */ (h("input", { type: "number", class: "dfl-wc-input", "aria-label": "Window center value" }));
    this.invertBtn = btn("dfl-invert", "Invert grey levels (I)", icon("invert"), { "aria-pressed": "false" });
    this.rotBtn = btn("dfl-rotate", "Rotate 90° clockwise (R)", icon("rotate"));
    this.flipHBtn = btn("dfl-fliph", "Flip horizontally (H)", icon("flipH"), { "aria-pressed": "false" });
    this.flipVBtn = btn("dfl-flipv", "Flip vertically (V)", icon("flipV"), { "aria-pressed": "false" });
    this.zoomOutBtn = btn("dfl-zoomout", "Zoom out (−)", icon("zoomOut"));
    this.zoomInBtn = btn("dfl-zoomin", "Zoom in (+)", icon("zoomIn"));
    this.fitBtn = btn("dfl-fit", "Fit to view (F)", icon("fit"));
    this.oneBtn = btn("dfl-one", "Actual pixels, 1:1 (1)", "<span>1:1</span>");
    this.resetBtn = btn("dfl-reset", "Reset view and window", icon("reset"));
    this.playBtn = btn("dfl-play", "Play / pause cine (Space)", icon("play"), { "aria-pressed": "false" });
    this.fpsInput = /** @type {HTMLInputElement} */ (h("input", { type: "number", class: "dfl-fps", min: 1, max: 60, step: 1, title: "Cine frames per second", "aria-label": "Cine frames per second" }));
    this.annotBtn = btn("dfl-annot", "Corner annotations (A)", icon("annot"), { "aria-pressed": "true" });
    this.overlayBtn = btn("dfl-overlays", "Overlays (O)", icon("overlay"), { "aria-pressed": "false", disabled: true });

    const wl = h(
      "div",
      { class: "dfl-group dfl-wl" },
      h("label", { class: "dfl-field", title: "Window width" }, h("span", { class: "dfl-key", text: "W" }), this.wSlider, this.wInput),
      h("label", { class: "dfl-field", title: "Window center (level)" }, h("span", { class: "dfl-key", text: "L" }), this.cSlider, this.cInput),
    );
    this.toolbar = h(
      "div",
      { class: "dfl-toolbar", role: "toolbar", "aria-label": "Viewer tools" },
      h("div", { class: "dfl-group" }, ...this.toolButtons),
      sep(),
      h("div", { class: "dfl-group" }, this.presetSelect, this.autoBtn),
      sep(),
      wl,
      sep(),
      h("div", { class: "dfl-group" }, this.invertBtn, this.rotBtn, this.flipHBtn, this.flipVBtn),
      sep(),
      h("div", { class: "dfl-group" }, this.zoomOutBtn, this.zoomInBtn, this.fitBtn, this.oneBtn, this.resetBtn),
      sep(),
      h("div", { class: "dfl-group" }, this.playBtn, h("label", { class: "dfl-field dfl-fps-field" }, this.fpsInput, h("span", { class: "dfl-unit", text: "fps" }))),
      sep(),
      h("div", { class: "dfl-group" }, this.annotBtn, this.overlayBtn),
    );

    this.strip = h("div", { class: "dfl-strip", role: "listbox", "aria-label": "Series" });

    this.canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dfl-image dfl-canvas2d", width: 1, height: 1 }));
    this.glCanvas = /** @type {HTMLCanvasElement | null} */ (null);
    // above the image canvas (and the WebGL2 one, added later), same box, same transform
    this.overlayCanvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dfl-overlay", width: 1, height: 1, hidden: true }));
    this.stage = h("div", { class: "dfl-stage" }, this.canvas, this.overlayCanvas);
    /** @type {Record<string, HTMLElement>} */
    this.corners = {};
    for (const pos of ["tl", "tr", "bl", "br"]) this.corners[pos] = h("div", { class: `dfl-corner dfl-${pos}` });
    /** @type {Record<string, HTMLElement>} */
    this.markers = {};
    for (const pos of ["top", "bottom", "left", "right"]) this.markers[pos] = h("div", { class: `dfl-marker dfl-marker-${pos}` });
    this.message = h("div", { class: "dfl-message", role: "alert", hidden: true });
    this.spinner = h("div", { class: "dfl-loading", hidden: true, text: "Loading…" });
    this.viewport = h(
      "div",
      { class: "dfl-viewport" },
      this.stage,
      ...Object.values(this.corners),
      ...Object.values(this.markers),
      this.spinner,
      this.message,
    );

    this.sliceSlider = /** @type {HTMLInputElement} */ (h("input", { type: "range", class: "dfl-slice", min: 0, max: 0, step: 1, "aria-label": "Frame" }));
    this.sliceLabel = h("span", { class: "dfl-slice-label" });
    this.slicebar = h("div", { class: "dfl-slicebar" }, this.sliceSlider, this.sliceLabel);

    this.readout = h("div", { class: "dfl-readout", "aria-live": "off" });
    this.statusText = h("div", { class: "dfl-status", role: "status" });
    this.statusbar = h("div", { class: "dfl-statusbar" }, this.readout, this.statusText);

    this.root = h(
      "div",
      { class: "dfl-viewer", tabindex: 0, "data-dfl-ready": "0", "aria-label": "DICOM viewer" },
      this.toolbar,
      h("div", { class: "dfl-body" }, this.strip, h("div", { class: "dfl-main" }, this.viewport, this.slicebar)),
      this.statusbar,
    );
    this.el.replaceChildren(this.root);
    this.root.dataset.dflPaints = "0";
    this.root.dataset.dflError = "";
    this.root.dataset.dflRenderer = this.renderer;
    /** @type {any} */ (this.root).dflViewer = this.hooks();
    this.ctx = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext("2d"));
    this.overlayCtx = /** @type {CanvasRenderingContext2D} */ (this.overlayCanvas.getContext("2d"));
    this.root.dataset.dflOverlays = "0";
    this.fpsInput.value = String(this.model.get("cine_fps") || 10);
    this.setTool("wl");
  }

  hooks() {
    const view = this;
    return {
      get paints() {
        return view.paints;
      },
      get lastPaintMs() {
        return view.lastPaintMs;
      },
      /** Epoch ms (Date.now()) of the first paint. */
      get firstPaintAt() {
        return view.firstPaintAt;
      },
      /**
       * Scroll through `count` frames of the current series once they are cached; resolves
       * to frames per second (every frame fully painted, as when a wheel scrolls fast).
       */
      async scrollRate(/** @type {number} */ count) {
        const series = view.s.series;
        const n = Math.min(count, view.nFrames(series));
        for (let i = 0; i < n; i++) await view.rt.frame(series, i);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) view.show(series, i);
        return (n * 1000) / (performance.now() - t0);
      },
      /** Set W/L and repaint synchronously; returns the paint time in ms (not saved to Python). */
      setWindow(/** @type {number} */ c, /** @type {number} */ w) {
        view.s.center = c;
        view.s.width = w;
        view.s.wlTouched = true;
        const t0 = performance.now();
        view.paintNow();
        if (view.gl && view.renderer === "webgl2") view.gl.pixel(0, 0); // wait for the GPU (finish() may not)
        return performance.now() - t0;
      },
      /** [r, g, b, a] of the image canvas at native coordinates. */
      pixel: (/** @type {number} */ row, /** @type {number} */ col) => view.pixelAt(row, col),
      /** [r, g, b, a] of the overlay canvas at native coordinates (all 0 where nothing is drawn). */
      overlayPixel: (/** @type {number} */ row, /** @type {number} */ col) => Array.from(view.overlayCtx.getImageData(col, row, 1, 1).data),
      /** Base64 of the alpha channel of the whole overlay canvas, top row first. */
      overlayAlpha: () => {
        const { width, height } = view.overlayCanvas;
        const rgba = view.overlayCtx.getImageData(0, 0, width, height).data;
        const bytes = new Uint8Array(width * height);
        for (let i = 0; i < bytes.length; i++) bytes[i] = rgba[i * 4 + 3];
        let bin = "";
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(bin);
      },
      /** Base64 of the red channel of the whole image canvas, top row first. */
      greys: () => {
        let bytes;
        if (view.renderer === "webgl2" && view.gl) bytes = view.gl.greys();
        else {
          const { width, height } = view.canvas;
          const rgba = view.ctx.getImageData(0, 0, width, height).data;
          bytes = new Uint8Array(width * height);
          for (let i = 0; i < bytes.length; i++) bytes[i] = rgba[i * 4];
        }
        let bin = "";
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(bin);
      },
      /** Force a path ("canvas2d", or "webgl2" even when it is software) or let the viewer choose ("auto"). */
      forceRenderer: (/** @type {string} */ name) => {
        view.s.forced = name === "auto" ? null : name;
        view.paintNow();
        return view.renderer;
      },
      state: () => ({
        series: view.s.series,
        frame: view.s.frame,
        nFrames: view.nFrames(),
        center: view.s.center,
        width: view.s.width,
        fn: view.s.fn,
        invert: view.s.invert,
        zoom: view.s.zoom,
        pan: [view.s.panX, view.s.panY],
        rotation: view.s.rot * 90,
        flipH: view.s.flipH,
        flipV: view.s.flipV,
        tool: view.s.tool,
        playing: view.s.playing,
        renderer: view.renderer,
        glDevice: view.gl ? view.gl.device : null,
        glSoftware: view.gl ? view.gl.software : null,
        error: view.error,
        paints: view.paints,
        lastPaintMs: view.lastPaintMs,
        requests: view.rt.requests,
        cachedFrames: view.rt.frames.size,
        cacheBytes: view.rt.cacheBytes,
        rows: view.current ? view.current.header.rows : 0,
        columns: view.current ? view.current.header.columns : 0,
        overlays: {
          on: !!view.model.get("overlays"),
          available: view.current ? view.current.header.overlays ?? null : 0,
          shown: !view.overlayCanvas.hidden,
          drawn: Number(view.root.dataset.dflOverlays) || 0,
          size: [view.overlayCanvas.height, view.overlayCanvas.width],
          transform: view.overlayCanvas.parentElement === view.stage ? view.stage.style.transform : null,
          labels: view.overlayBtn.dataset.labels || "",
        },
      }),
    };
  }

  /* ---- model ---- */

  /** Write traits without reacting to our own change events. @param {Record<string, any>} values */
  write(values) {
    this.writing = true;
    try {
      for (const [k, v] of Object.entries(values)) this.model.set(k, v);
      this.model.save_changes();
    } finally {
      this.writing = false;
    }
  }

  bindModel() {
    const on = (/** @type {string} */ name, /** @type {Function} */ fn) => {
      const handler = (/** @type {any[]} */ ...args) => {
        if (this.writing || this.disposed) return;
        fn(...args);
      };
      this.model.on(name, handler);
      this.cleanups.push(() => this.model.off(name, handler));
    };
    // several traits arrive together (hold_sync); settle them once, after all are set
    // a series switch from Python comes as series_key, then the kernel's batch (frame,
    // n_frames, window, presets): wait a moment for the batch rather than show a stale frame
    on("change:series_key", () => {
      clearTimeout(this.timers.series);
      this.seriesPending = true;
      this.timers.series = setTimeout(() => {
        this.seriesPending = false;
        this.scheduleModelSync();
      }, SERIES_SETTLE_MS);
    });
    on("change:frame", () => this.scheduleModelSync());
    on("change:n_frames", () => this.scheduleModelSync());
    on("change:window_center", () => this.scheduleModelSync());
    on("change:window_width", () => this.scheduleModelSync());
    on("change:voi_function", () => this.scheduleModelSync());
    on("change:invert", () => this.scheduleModelSync());
    on("change:series", () => this.syncSeriesStrip());
    on("change:presets", () => this.syncPresets());
    on("change:annotations", () => this.syncToggles());
    on("change:overlays", () => this.syncOverlays());
    on("change:show_phi", () => this.loadNotes());
    on("change:status", () => this.syncStatus());
    on("change:cine_fps", () => {
      this.fpsInput.value = String(this.model.get("cine_fps") || 10);
    });
  }

  scheduleModelSync() {
    if (this.modelSyncQueued) return;
    this.modelSyncQueued = true;
    queueMicrotask(() => {
      this.modelSyncQueued = false;
      if (!this.disposed) this.syncFromModel();
    });
  }

  syncFromModel() {
    const m = this.model;
    const series = String(m.get("series_key") || "");
    const frame = Number(m.get("frame")) || 0;
    const c = Number(m.get("window_center"));
    const w = Number(m.get("window_width"));
    const fn = String(m.get("voi_function") || "LINEAR");
    const inv = !!m.get("invert");
    let repaint = false;
    if (c !== this.s.center || w !== this.s.width || fn !== this.s.fn || inv !== this.s.invert) {
      this.s.center = c;
      this.s.width = w;
      this.s.fn = fn;
      this.s.invert = inv;
      repaint = true;
      this.syncWLControls();
      this.syncToggles();
    }
    if (series !== this.wanted.series) {
      if (this.seriesPending) return;
      this.s.wlTouched = false;
      this.syncSeriesStrip();
      this.show(series, frame);
      this.loadNotes();
    } else if (frame !== this.wanted.frame) {
      this.show(series, frame);
    } else if (repaint) {
      this.requestPaint();
    }
    this.syncSlice();
  }

  /** Frame count of a series (default: the one on screen), from the series listing. */
  nFrames(series = this.s.series) {
    const entry = (this.model.get("series") || []).find((/** @type {any} */ s) => s.key === series);
    if (entry && entry.n_frames > 0) return entry.n_frames;
    const n = Number(this.model.get("n_frames"));
    return n > 0 ? n : 1;
  }

  /* ---- frames ---- */

  /**
   * Show a frame: synchronously when cached, else after its reply; prefetch neighbours.
   *
   * @param {string} series
   * @param {number} index
   */
  show(series, index) {
    if (!series) {
      this.setMessage("This viewer has no series to show.");
      return;
    }
    const n = this.nFrames(series);
    index = clamp(Math.round(index), 0, Math.max(0, n - 1));
    this.wanted = { series, frame: index };
    this.s.series = series;
    this.s.frame = index;
    const gen = ++this.gen;
    this.syncSlice();
    this.prefetchAround(series, index);
    const hit = this.rt.peek(series, index);
    if (hit) {
      this.rt.frame(series, index); // touch the LRU
      this.setFrame(hit);
      return;
    }
    clearTimeout(this.timers.loading);
    this.timers.loading = setTimeout(() => {
      if (gen === this.gen) this.spinner.hidden = false;
    }, LOADING_DELAY_MS);
    this.rt.frame(series, index).then(
      (frame) => {
        if (gen !== this.gen || this.disposed) return;
        this.setFrame(frame); // clears the loading badge
      },
      (err) => {
        if (gen !== this.gen || this.disposed) return;
        clearTimeout(this.timers.loading);
        this.spinner.hidden = true;
        this.showFrameError(series, index, err);
      },
    );
  }

  /** @param {string} series @param {number} index */
  prefetchAround(series, index) {
    const k = Math.max(0, Number(this.model.get("prefetch")) || 0);
    const n = this.nFrames();
    const ahead = this.s.playing ? Math.max(k, Math.min(2 * (Number(this.model.get("cine_fps")) || 10), 30)) : k;
    /** @type {number[]} */
    const order = [];
    for (let d = 1; d <= Math.max(k, ahead); d++) {
      if (this.s.playing) {
        order.push((index + d) % n);
        continue;
      }
      if (index + d < n && d <= ahead) order.push(index + d);
      if (index - d >= 0 && d <= k) order.push(index - d);
    }
    this.rt.prefetch(series, order);
  }

  /** @param {Frame} frame */
  setFrame(frame) {
    clearTimeout(this.timers.loading);
    this.spinner.hidden = true;
    const sizeChanged = !this.current || this.current.header.rows !== frame.header.rows || this.current.header.columns !== frame.header.columns;
    this.current = frame;
    this.error = "";
    this.setMessage("");
    if (sizeChanged) {
      this.stage.style.width = `${frame.header.columns}px`;
      this.stage.style.height = `${frame.header.rows}px`;
      if (this.s.fit) this.fitView(false);
      this.syncWLControls();
    }
    this.paintNow();
    this.applyTransform();
    this.syncOverlays();
    this.updateReadout();
    this.syncStatus();
  }

  /** @param {string} series @param {number} index @param {any} err */
  showFrameError(series, index, err) {
    const type = err && err.type ? `${err.type}: ` : "";
    const text = `Frame ${index + 1} of ${this.nFrames()} could not be shown — ${type}${err && err.message ? err.message : String(err)}`;
    this.error = text;
    this.current = null;
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.glCanvas) this.glCanvas.hidden = true;
    this.canvas.hidden = false;
    this.syncOverlays();
    this.setMessage(text);
    this.root.dataset.dflFrame = String(index);
    this.root.dataset.dflSeries = series;
    this.root.dataset.dflError = text;
    this.updateCorners();
    this.syncStatus();
  }

  /** @param {string} text */
  setMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  /* ---- painting ---- */

  requestPaint() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      if (!this.disposed) this.paintNow();
    });
  }

  /** @returns {DisplayParams} */
  params() {
    const h = this.current ? this.current.header : null;
    const useVoiLut = !!(h && h.voi_lut && !(h.windows && h.windows.length) && !this.s.wlTouched);
    return { center: this.s.center, width: this.s.width, fn: this.s.fn, invert: this.s.invert, useVoiLut };
  }

  /** Which path draws this frame. @param {Frame} f @param {DisplayParams} p */
  choosePath(f, p) {
    const h = f.header;
    if (h.samples !== 1) return "rgb";
    const lutable = h.dtype in LUT_DOMAINS;
    const tables = !!h.modality_lut || p.useVoiLut;
    const cpu = lutable ? "lut" : "formula";
    if (this.s.forced === "canvas2d") return cpu;
    if (this.s.forced === "webgl2") return !tables && this.glReady(h) ? "gl" : cpu;
    if (lutable && (h.rows * h.columns <= GL_PIXEL_THRESHOLD || tables)) return "lut";
    // float, 32-bit or very large: the shader, unless WebGL2 is missing or software-only
    if (!tables && this.glReady(h) && !(/** @type {GLRenderer} */ (this.gl).software)) return "gl";
    return cpu;
  }

  /** @param {FrameHeader} header */
  glReady(header) {
    if (this.glFailed) return false;
    if (!this.gl || this.gl.lost) {
      try {
        if (this.gl) this.gl.dispose();
        if (this.glCanvas) this.glCanvas.remove();
        this.glCanvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "dfl-canvasgl", width: 1, height: 1, hidden: true }));
        this.stage.append(this.glCanvas);
        this.gl = new GLRenderer(this.glCanvas);
      } catch (err) {
        console.info("[dicomflow_lab viewer] WebGL2 unavailable, using the canvas path:", String(err));
        this.glFailed = true;
        if (this.glCanvas) this.glCanvas.remove();
        this.glCanvas = null;
        this.gl = null;
        return false;
      }
    }
    return this.gl.accepts(header);
  }

  /** Paint the current frame now; returns the time taken in ms. */
  paintNow() {
    const f = this.current;
    if (!f) return 0;
    const t0 = performance.now();
    const h = f.header;
    const p = this.params();
    let path = this.choosePath(f, p);
    if (path === "gl") {
      try {
        /** @type {GLRenderer} */ (this.gl).draw(f, p);
      } catch (err) {
        console.warn("[dicomflow_lab viewer] WebGL2 draw failed, falling back:", err);
        this.glFailed = true;
        path = h.dtype in LUT_DOMAINS ? "lut" : "formula";
      }
    }
    if (path !== "gl") {
      if (this.canvas.width !== h.columns || this.canvas.height !== h.rows) {
        this.canvas.width = h.columns;
        this.canvas.height = h.rows;
        this.imageData = null;
      }
      if (!this.imageData || this.imageData.width !== h.columns || this.imageData.height !== h.rows) {
        this.imageData = this.ctx.createImageData(h.columns, h.rows);
      }
      const out = new Uint32Array(this.imageData.data.buffer);
      if (path === "lut") this.drawLut(f, p, out);
      else if (path === "rgb") this.drawRgb(f, p, out);
      else this.drawFormula(f, p, out);
      this.ctx.putImageData(this.imageData, 0, 0);
    }
    this.setRenderer(path === "gl" ? "webgl2" : "canvas2d");
    const ms = performance.now() - t0;
    this.lastPaintMs = ms;
    this.paints++;
    const d = this.root.dataset;
    d.dflPaints = String(this.paints);
    d.dflFrame = String(h.index);
    d.dflSeries = h.series;
    d.dflWc = String(this.s.center);
    d.dflWw = String(this.s.width);
    d.dflRenderer = this.renderer;
    d.dflError = "";
    if (d.dflReady !== "1") {
      d.dflReady = "1";
      this.firstPaintAt = Date.now(); // epoch ms, comparable with the kernel's time.time()
    }
    this.updateCorners();
    return ms;
  }

  /** @param {string} name */
  setRenderer(name) {
    this.renderer = name;
    const gl = name === "webgl2";
    if (this.glCanvas) {
      this.glCanvas.hidden = !gl;
      this.glCanvas.classList.toggle("dfl-image", gl);
    }
    this.canvas.hidden = gl;
    this.canvas.classList.toggle("dfl-image", !gl);
  }

  /** @param {Frame} f @param {DisplayParams} p @param {Uint32Array} out */
  drawLut(f, p, out) {
    const h = f.header;
    // Only the frame's own stored-value range needs entries: a 12-bit CT has ~4k, not 65k,
    // which keeps a W/L change (a LUT rebuild) well under a millisecond.
    const ranged = Number.isInteger(h.min) && Number.isInteger(h.max) && h.max >= h.min;
    const key = `${lutKey(h, p)}|${ranged ? `${h.min}:${h.max}` : "full"}`;
    if (this.lut.key !== key) {
      const { lut, offset } = ranged ? buildRangeLut(h, p, h.min, h.max) : buildLut(h, p);
      const lut32 = new Uint32Array(lut.length);
      for (let i = 0; i < lut.length; i++) lut32[i] = GREY32[lut[i]];
      this.lut = { key, lut32, lut8: lut, offset };
    }
    const lut32 = /** @type {Uint32Array} */ (this.lut.lut32);
    const off = this.lut.offset;
    const px = f.data;
    const n = px.length;
    for (let i = 0; i < n; i++) out[i] = lut32[px[i] + off];
  }

  /** @param {Frame} f @param {DisplayParams} p @param {Uint32Array} out */
  drawFormula(f, p, out) {
    const g = greyFunction(f.header, p);
    const px = f.data;
    const n = px.length;
    for (let i = 0; i < n; i++) out[i] = GREY32[g(px[i])];
  }

  /** Colour is drawn as is (window/level off); invert still applies. @param {Frame} f @param {DisplayParams} p @param {Uint32Array} out */
  drawRgb(f, p, out) {
    const h = f.header;
    const px = f.data;
    const n = h.rows * h.columns;
    const s = h.samples;
    const inv = p.invert;
    const bits = h.dtype === "uint8" || h.dtype === "int8" ? 8 : clamp(h.bits_stored || 16, 1, 16);
    const k = 255 / (2 ** bits - 1);
    const bytes = new Uint8ClampedArray(out.buffer);
    for (let i = 0; i < n; i++) {
      const o = i * 4;
      for (let c = 0; c < 3; c++) {
        const v = s >= 3 ? px[i * s + c] : px[i * s];
        const y = bits === 8 ? v : Math.round(v * k);
        bytes[o + c] = inv ? 255 - y : y;
      }
      bytes[o + 3] = 255;
    }
  }

  /** @param {number} row @param {number} col */
  pixelAt(row, col) {
    if (this.renderer === "webgl2" && this.gl) return this.gl.pixel(row, col);
    return Array.from(this.ctx.getImageData(col, row, 1, 1).data);
  }

  /* ---- view transform ---- */

  viewportSize() {
    return { w: this.viewport.clientWidth || 1, h: this.viewport.clientHeight || 1 };
  }

  imageSize() {
    const f = this.current;
    const cols = f ? f.header.columns : this.canvas.width;
    const rows = f ? f.header.rows : this.canvas.height;
    return this.s.m[0] === 0 ? { w: rows, h: cols } : { w: cols, h: rows };
  }

  /** @param {boolean} [apply] */
  fitView(apply = true) {
    const vp = this.viewportSize();
    const im = this.imageSize();
    this.s.zoom = Math.max(0.01, Math.min(vp.w / im.w, vp.h / im.h));
    this.s.panX = 0;
    this.s.panY = 0;
    this.s.fit = true;
    if (apply) this.applyTransform();
  }

  applyTransform() {
    const s = this.s;
    const [a, b, c, d] = s.m;
    this.stage.style.transform = `translate(-50%, -50%) translate(${s.panX}px, ${s.panY}px) scale(${s.zoom}) matrix(${a}, ${c}, ${b}, ${d}, 0, 0)`;
    this.stage.classList.toggle("dfl-pixelated", s.zoom * (window.devicePixelRatio || 1) > 1.001);
    this.updateMarkers();
    this.updateCorners();
  }

  /**
   * Screen offset from the viewport centre → image coordinates (fractional column, row).
   *
   * @param {number} sx
   * @param {number} sy
   */
  toImage(sx, sy) {
    const s = this.s;
    const { c: qx, r: qy } = this.screenToImageDir((sx - s.panX) / s.zoom, (sy - s.panY) / s.zoom);
    const f = this.current;
    const cols = f ? f.header.columns : this.canvas.width;
    const rows = f ? f.header.rows : this.canvas.height;
    return { col: qx + cols / 2, row: qy + rows / 2 };
  }

  /**
   * Image vector (dcol, drow) of a screen vector: the orientation matrix is orthogonal,
   * so its inverse is its transpose.
   *
   * @param {number} dx
   * @param {number} dy
   */
  screenToImageDir(dx, dy) {
    const [a, b, c, d] = this.s.m;
    return { c: a * dx + c * dy, r: b * dx + d * dy };
  }

  /** Compose a screen-space operation [n00, n01, n10, n11] onto the orientation. @param {number[]} n */
  orient(n) {
    const [a, b, c, d] = this.s.m;
    this.s.m = [n[0] * a + n[1] * c, n[0] * b + n[1] * d, n[2] * a + n[3] * c, n[2] * b + n[3] * d];
  }

  /** @param {PointerEvent | WheelEvent | MouseEvent} e */
  eventOffset(e) {
    const rect = this.viewport.getBoundingClientRect();
    return { x: e.clientX - rect.left - rect.width / 2, y: e.clientY - rect.top - rect.height / 2 };
  }

  /** Zoom by `factor` keeping the point at screen offset (x, y) fixed. */
  zoomAt(/** @type {number} */ factor, x = 0, y = 0) {
    const s = this.s;
    const z = clamp(s.zoom * factor, 0.02, 64);
    const k = z / s.zoom;
    s.panX = x - (x - s.panX) * k;
    s.panY = y - (y - s.panY) * k;
    s.zoom = z;
    s.fit = false;
    this.applyTransform();
  }

  /* ---- input ---- */

  bindInput() {
    /** @type {[EventTarget, string, any, any?][]} */
    const listeners = [];
    const listen = (/** @type {EventTarget} */ target, /** @type {string} */ type, /** @type {any} */ fn, /** @type {any} */ opts) => {
      target.addEventListener(type, fn, opts);
      listeners.push([target, type, fn, opts]);
    };
    this.cleanups.push(() => {
      for (const [target, type, fn, opts] of listeners) target.removeEventListener(type, fn, opts);
    });

    for (const b of this.toolButtons) listen(b, "click", () => this.setTool(String(b.dataset.tool)));
    listen(this.presetSelect, "change", () => this.applyPreset(this.presetSelect.value));
    listen(this.autoBtn, "click", () => this.autoWindowNow());
    const fromInputs = (/** @type {HTMLInputElement} */ wEl, /** @type {HTMLInputElement} */ cEl, /** @type {boolean} */ final) => {
      const w = Number(wEl.value);
      const c = Number(cEl.value);
      if (!Number.isFinite(w) || !Number.isFinite(c)) return;
      this.setWindow(c, Math.max(w, this.minWidth()), { save: final ? "now" : "debounce", controls: false });
      if (wEl === this.wSlider) {
        this.wInput.value = fmt(this.s.width);
        this.cInput.value = fmt(this.s.center);
      } else {
        this.wSlider.value = String(this.s.width);
        this.cSlider.value = String(this.s.center);
      }
    };
    listen(this.wSlider, "input", () => fromInputs(this.wSlider, this.cSlider, false));
    listen(this.cSlider, "input", () => fromInputs(this.wSlider, this.cSlider, false));
    listen(this.wSlider, "change", () => fromInputs(this.wSlider, this.cSlider, true));
    listen(this.cSlider, "change", () => fromInputs(this.wSlider, this.cSlider, true));
    listen(this.wInput, "change", () => fromInputs(this.wInput, this.cInput, true));
    listen(this.cInput, "change", () => fromInputs(this.wInput, this.cInput, true));
    listen(this.invertBtn, "click", () => this.toggleInvert());
    listen(this.rotBtn, "click", () => this.rotate());
    listen(this.flipHBtn, "click", () => this.flip("h"));
    listen(this.flipVBtn, "click", () => this.flip("v"));
    listen(this.zoomInBtn, "click", () => this.zoomAt(1.25));
    listen(this.zoomOutBtn, "click", () => this.zoomAt(0.8));
    listen(this.fitBtn, "click", () => this.fitView());
    listen(this.oneBtn, "click", () => {
      this.s.zoom = 1;
      this.s.panX = 0;
      this.s.panY = 0;
      this.s.fit = false;
      this.applyTransform();
    });
    listen(this.resetBtn, "click", () => this.resetView());
    listen(this.playBtn, "click", () => this.togglePlay());
    listen(this.fpsInput, "change", () => {
      const fps = clamp(Math.round(Number(this.fpsInput.value) || 10), 1, 60);
      this.fpsInput.value = String(fps);
      this.write({ cine_fps: fps });
    });
    listen(this.annotBtn, "click", () => {
      this.write({ annotations: !this.model.get("annotations") });
      this.syncToggles();
    });
    listen(this.overlayBtn, "click", () => {
      this.write({ overlays: !this.model.get("overlays") });
      this.syncOverlays();
    });
    listen(this.sliceSlider, "input", () => {
      this.show(this.s.series, Number(this.sliceSlider.value));
      this.scheduleFrameSave();
    });

    // the image: drags, wheel, readout
    // right-drag is window/level: no browser or JupyterLab context menu on the image
    listen(this.viewport, "contextmenu", (/** @type {Event} */ e) => {
      e.preventDefault();
      e.stopPropagation();
    });
    listen(this.viewport, "pointerdown", (/** @type {PointerEvent} */ e) => this.onPointerDown(e));
    listen(this.viewport, "pointermove", (/** @type {PointerEvent} */ e) => this.onPointerMove(e));
    listen(this.viewport, "pointerup", (/** @type {PointerEvent} */ e) => this.onPointerUp(e));
    listen(this.viewport, "pointercancel", (/** @type {PointerEvent} */ e) => this.onPointerUp(e));
    listen(this.viewport, "pointerleave", () => {
      this.pointer = null;
      this.updateReadout();
    });
    // keep the notebook from starting a cell drag or text selection on the image
    listen(this.viewport, "mousedown", (/** @type {MouseEvent} */ e) => {
      e.stopPropagation();
      if (e.button === 1) e.preventDefault(); // no autoscroll on middle-drag
    });
    listen(this.viewport, "auxclick", (/** @type {MouseEvent} */ e) => e.preventDefault());
    listen(this.viewport, "wheel", (/** @type {WheelEvent} */ e) => this.onWheel(e), { passive: false });
    // keys: in the capture phase of window, so the viewer sees them before JupyterLab's
    // shortcut handler whichever phase the host registers it in; only while focused
    listen(window, "keydown", (/** @type {KeyboardEvent} */ e) => this.onKey(e), true);
    // arrows on the sliders stay with the sliders (JupyterLab would move the active cell)
    listen(this.root, "keydown", (/** @type {KeyboardEvent} */ e) => {
      const t = /** @type {HTMLElement} */ (e.target);
      if (t && (t.tagName === "INPUT" || t.tagName === "SELECT")) e.stopPropagation();
    });

    const ro = new ResizeObserver(() => {
      if (this.s.fit && this.current) this.fitView();
    });
    ro.observe(this.viewport);
    this.cleanups.push(() => ro.disconnect());
  }

  /** @param {string} tool */
  setTool(tool) {
    this.s.tool = tool;
    for (const b of this.toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    this.viewport.dataset.tool = tool;
  }

  /** @param {PointerEvent} e */
  onPointerDown(e) {
    this.root.focus({ preventScroll: true });
    const button = e.button;
    let mode = "";
    if (button === 2) mode = "wl";
    else if (button === 1) mode = "pan";
    else if (button === 0) mode = e.shiftKey ? "pan" : e.ctrlKey || e.metaKey ? "zoom" : this.s.tool;
    if (!mode) return;
    e.preventDefault();
    try {
      this.viewport.setPointerCapture(e.pointerId);
    } catch {
      /* synthetic events have no capturable pointer */
    }
    this.drag = {
      mode,
      id: e.pointerId,
      x: e.clientX,
      y: e.clientY,
      center: this.s.center,
      width: this.s.width,
      panX: this.s.panX,
      panY: this.s.panY,
      zoom: this.s.zoom,
      origin: this.eventOffset(e),
    };
    this.viewport.classList.add(`dfl-dragging-${mode}`);
  }

  /** @param {PointerEvent} e */
  onPointerMove(e) {
    this.pointer = this.eventOffset(e);
    const d = this.drag;
    if (d && d.id === e.pointerId) {
      const dx = e.clientX - d.x;
      const dy = e.clientY - d.y;
      if (d.mode === "wl") {
        const k = this.wlSensitivity();
        let c = d.center + dy * k;
        let w = Math.max(this.minWidth(), d.width + dx * k);
        if (this.integralValues()) {
          c = Math.round(c);
          w = Math.max(1, Math.round(w));
        }
        this.setWindow(c, w, { save: "none" });
      } else if (d.mode === "pan") {
        this.s.panX = d.panX + dx;
        this.s.panY = d.panY + dy;
        this.s.fit = false;
        this.applyTransform();
      } else if (d.mode === "zoom") {
        const factor = Math.exp(-dy / 150);
        const z = clamp(d.zoom * factor, 0.02, 64);
        const kz = z / d.zoom;
        this.s.panX = d.origin.x - (d.origin.x - d.panX) * kz;
        this.s.panY = d.origin.y - (d.origin.y - d.panY) * kz;
        this.s.zoom = z;
        this.s.fit = false;
        this.applyTransform();
      }
    }
    this.scheduleReadout();
  }

  /** @param {PointerEvent} e */
  onPointerUp(e) {
    const d = this.drag;
    if (!d || d.id !== e.pointerId) return;
    this.drag = null;
    this.viewport.classList.remove(`dfl-dragging-${d.mode}`);
    try {
      this.viewport.releasePointerCapture(e.pointerId);
    } catch {
      /* already released */
    }
    if (d.mode === "wl" && (d.center !== this.s.center || d.width !== this.s.width)) this.saveWindow();
  }

  /** @param {WheelEvent} e */
  onWheel(e) {
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      const o = this.eventOffset(e);
      const dy = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
      this.zoomAt(Math.exp(-dy * 0.0025), o.x, o.y);
      return;
    }
    const n = this.nFrames();
    if (n <= 1) return; // let the notebook scroll
    e.preventDefault();
    const px = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
    let steps = 0;
    if (Math.abs(px) >= 50) {
      steps = Math.sign(px);
      this.wheelRest = 0;
    } else {
      this.wheelRest = (this.wheelRest || 0) + px;
      if (Math.abs(this.wheelRest) >= 50) {
        steps = Math.sign(this.wheelRest);
        this.wheelRest = 0;
      }
    }
    if (steps) this.step(steps);
  }

  /**
   * Keyboard control while the viewer has focus. Modified keys (Ctrl+S, Shift+Enter…),
   * Tab, Escape and Enter go on to the notebook; other plain keys are the viewer's, and
   * their default is prevented so that JupyterLab's single-key command-mode shortcuts
   * (`d d`, `x`, `m`…) never act on the cell behind the image.
   *
   * @param {KeyboardEvent} e
   */
  onKey(e) {
    const target = /** @type {HTMLElement} */ (e.target);
    if (!target || !(target instanceof Node) || !this.root.contains(target) || this.disposed) return;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (["Tab", "Escape", "Enter", "Shift", "Control", "Alt", "Meta"].includes(e.key)) return;
    if (target !== this.root && e.key === " ") return; // Space presses the focused button
    const n = this.nFrames();
    let handled = true;
    switch (e.key) {
      case "ArrowDown":
      case "ArrowRight":
        this.step(1);
        break;
      case "ArrowUp":
      case "ArrowLeft":
        this.step(-1);
        break;
      case "PageDown":
        this.step(Math.max(1, Math.round(n / 10)));
        break;
      case "PageUp":
        this.step(-Math.max(1, Math.round(n / 10)));
        break;
      case "Home":
        this.goTo(0);
        break;
      case "End":
        this.goTo(n - 1);
        break;
      case " ":
        this.togglePlay();
        break;
      case "i":
      case "I":
        this.toggleInvert();
        break;
      case "r":
      case "R":
        this.rotate();
        break;
      case "h":
      case "H":
        this.flip("h");
        break;
      case "v":
      case "V":
        this.flip("v");
        break;
      case "f":
      case "F":
        this.fitView();
        break;
      case "1":
        this.oneBtn.click();
        break;
      case "+":
      case "=":
        this.zoomAt(1.25);
        break;
      case "-":
        this.zoomAt(0.8);
        break;
      case "a":
      case "A":
        this.annotBtn.click();
        break;
      case "o":
      case "O":
        this.overlayBtn.click(); // nothing when disabled (no overlays in this frame)
        break;
      default:
        handled = false;
    }
    e.preventDefault();
    if (handled) e.stopPropagation();
  }

  /** @param {number} delta */
  step(delta) {
    this.goTo(this.s.frame + delta);
  }

  /** @param {number} index */
  goTo(index) {
    const n = this.nFrames();
    index = clamp(index, 0, n - 1);
    if (index === this.s.frame && (this.current || this.error)) return;
    this.show(this.s.series, index);
    this.scheduleFrameSave();
  }

  scheduleFrameSave() {
    clearTimeout(this.timers.frame);
    this.timers.frame = setTimeout(() => {
      if (this.disposed) return;
      if (this.model.get("frame") !== this.s.frame && this.s.series === this.model.get("series_key")) {
        this.write({ frame: this.s.frame });
      }
    }, FRAME_SAVE_DELAY_MS);
  }

  /* ---- window / level ---- */

  wlSensitivity() {
    const f = this.current;
    if (!f) return 1;
    const { lo, hi } = modalityRange(f);
    const span = Math.max(hi - lo, f.header.is_float || f.header.dtype === "float32" ? 1e-6 : 1);
    return span / 600;
  }

  /** Whole-number modality values (integer data, integer rescale): W/L drags in whole steps. */
  integralValues() {
    const h = this.current ? this.current.header : null;
    return !!h && !h.is_float && h.dtype !== "float32" && !h.modality_lut && Number.isInteger(h.slope ?? 1) && Number.isInteger(h.intercept ?? 0);
  }

  minWidth() {
    const f = this.current;
    if (!f || this.s.fn !== "LINEAR" || f.header.dtype === "float32") return 1e-6;
    return 1;
  }

  /**
   * @param {number} c
   * @param {number} w
   * @param {{save?: "now" | "debounce" | "none", controls?: boolean}} [opts]
   */
  setWindow(c, w, opts = {}) {
    if (!Number.isFinite(c) || !Number.isFinite(w)) return;
    this.s.center = c;
    this.s.width = Math.max(w, this.minWidth());
    this.s.wlTouched = true;
    this.requestPaint();
    if (opts.controls !== false) this.syncWLControls();
    else this.syncPresetSelection();
    if (opts.save === "now") this.saveWindow();
    else if (opts.save === "debounce") {
      clearTimeout(this.timers.wl);
      this.timers.wl = setTimeout(() => this.saveWindow(), WL_SAVE_DELAY_MS);
    }
  }

  saveWindow() {
    clearTimeout(this.timers.wl);
    if (this.disposed) return;
    if (this.model.get("window_center") === this.s.center && this.model.get("window_width") === this.s.width) return;
    this.write({ window_center: this.s.center, window_width: this.s.width });
  }

  /** @param {string} value */
  applyPreset(value) {
    const presets = this.model.get("presets") || [];
    const p = presets[Number(value)];
    if (!p) return;
    this.setWindow(Number(p.center), Number(p.width), { save: "now" });
  }

  autoWindowNow() {
    if (!this.current || this.current.header.samples !== 1) return;
    const { center, width } = autoWindow(this.current);
    this.setWindow(center, width, { save: "now" });
  }

  toggleInvert() {
    this.s.invert = !this.s.invert;
    this.write({ invert: this.s.invert });
    this.syncToggles();
    this.requestPaint();
  }

  rotate() {
    this.s.rot = (this.s.rot + 1) % 4;
    this.orient([0, -1, 1, 0]); // 90° clockwise on screen
    if (this.s.fit) this.fitView(false);
    this.applyTransform();
  }

  /** @param {"h" | "v"} axis */
  flip(axis) {
    if (axis === "h") {
      this.s.flipH = !this.s.flipH;
      this.orient([-1, 0, 0, 1]); // mirror left-right on screen
    } else {
      this.s.flipV = !this.s.flipV;
      this.orient([1, 0, 0, -1]);
    }
    this.syncToggles();
    this.applyTransform();
  }

  resetView() {
    this.s.rot = 0;
    this.s.flipH = false;
    this.s.flipV = false;
    this.s.m = [1, 0, 0, 1];
    this.fitView(false);
    this.syncToggles();
    this.applyTransform();
    const f = this.current;
    const presets = this.model.get("presets") || [];
    const first = f && f.header.windows && f.header.windows[0] ? f.header.windows[0] : presets[0];
    if (first) this.setWindow(Number(first.center), Number(first.width), { save: "now" });
    if (f && f.header.voi_lut && !(f.header.windows && f.header.windows.length)) {
      this.s.wlTouched = false;
      this.requestPaint();
    }
  }

  /* ---- cine ---- */

  togglePlay() {
    this.s.playing = !this.s.playing;
    this.playBtn.innerHTML = icon(this.s.playing ? "pause" : "play");
    this.playBtn.setAttribute("aria-pressed", String(this.s.playing));
    clearTimeout(this.timers.cine);
    if (this.s.playing) this.cineTick();
    else this.scheduleFrameSave();
  }

  cineTick() {
    if (!this.s.playing || this.disposed) return;
    const fps = clamp(Number(this.model.get("cine_fps")) || 10, 1, 60);
    const n = this.nFrames();
    const started = performance.now();
    const next = (this.s.frame + 1) % Math.max(n, 1);
    // only advance when the next frame is at hand, so playback never outruns the kernel
    if (this.rt.peek(this.s.series, next) || !this.rt.frames.has(Runtime.key(this.s.series, next))) {
      this.show(this.s.series, next);
      this.scheduleFrameSave();
    }
    const wait = Math.max(0, 1000 / fps - (performance.now() - started));
    this.timers.cine = setTimeout(() => this.cineTick(), wait);
  }

  /* ---- readout & annotations ---- */

  scheduleReadout() {
    if (this.readoutQueued) return;
    this.readoutQueued = true;
    requestAnimationFrame(() => {
      this.readoutQueued = false;
      if (!this.disposed) this.updateReadout();
    });
  }

  updateReadout() {
    const f = this.current;
    if (!f || !this.pointer) {
      this.readout.textContent = f ? `${f.header.columns} × ${f.header.rows}` : "";
      return;
    }
    const { col, row } = this.toImage(this.pointer.x, this.pointer.y);
    const c = Math.floor(col);
    const r = Math.floor(row);
    const h = f.header;
    if (r < 0 || c < 0 || r >= h.rows || c >= h.columns) {
      this.readout.textContent = `${h.columns} × ${h.rows}`;
      return;
    }
    const i = r * h.columns + c;
    const parts = [`R ${r}  C ${c}`];
    if (h.samples === 1) {
      const sv = f.data[i];
      const mv = modalityFunction(h)(sv);
      parts.push(`SV ${fmt(sv)}`);
      const unit = h.rescale_type ? ` ${h.rescale_type}` : "";
      if (mv !== sv || unit) parts.push(`${fmt(mv)}${unit}`);
    } else {
      const s = h.samples;
      parts.push(`RGB ${f.data[i * s]}, ${f.data[i * s + 1]}, ${f.data[i * s + 2]}`);
    }
    const xyz = this.patientPoint(row, col);
    if (xyz) parts.push(`(${xyz.map((v) => v.toFixed(1)).join(", ")}) mm`);
    this.readout.textContent = parts.join("   ·   ");
  }

  /** Patient coordinates (mm, LPS) of an image point (PS3.3 C.7.6.2.1.1). @param {number} row @param {number} col */
  patientPoint(row, col) {
    const h = this.current ? this.current.header : null;
    if (!h || !h.position || !h.orientation || !h.spacing) return null;
    const [px, py, pz] = h.position;
    const o = h.orientation;
    const [dr, dc] = h.spacing;
    const ci = Math.floor(col);
    const ri = Math.floor(row);
    return [0, 1, 2].map((k) => [px, py, pz][k] + o[k] * dc * ci + o[3 + k] * dr * ri);
  }

  updateMarkers() {
    const h = this.current ? this.current.header : null;
    const show = !!(h && h.orientation && this.model.get("annotations"));
    for (const [pos, node] of Object.entries(this.markers)) {
      if (!show || !h || !h.orientation) {
        node.textContent = "";
        continue;
      }
      const dir = { top: [0, -1], bottom: [0, 1], left: [-1, 0], right: [1, 0] }[pos] || [0, 0];
      const { c, r } = this.screenToImageDir(dir[0], dir[1]);
      const o = h.orientation;
      const v = [0, 1, 2].map((k) => o[k] * c + o[3 + k] * r);
      node.textContent = directionLabel(v);
    }
  }

  /** Patient and study lines come from the kernel, and only while show_phi is on. */
  loadNotes() {
    const series = this.s.series;
    this.kernelNotes = {};
    this.updateCorners();
    if (!this.model.get("show_phi")) {
      this.rt.notes.clear(); // keep no patient lines around once they are hidden
      return;
    }
    if (!series) return;
    this.rt.annotations(series, this.s.frame, true).then(
      (corners) => {
        if (this.disposed || series !== this.s.series || !this.model.get("show_phi")) return;
        this.kernelNotes = corners;
        this.updateCorners();
      },
      () => {},
    );
  }

  updateCorners() {
    const on = !!this.model.get("annotations");
    for (const node of Object.values(this.corners)) node.hidden = !on;
    if (!on) return;
    const f = this.current;
    const h = f ? f.header : null;
    const info = (this.model.get("series") || []).find((/** @type {any} */ s) => s.key === this.s.series) || {};
    const n = this.nFrames();
    const tl = [...(this.kernelNotes.tl || [])];
    const seriesLine = [info.number != null ? `Se ${info.number}` : "", info.modality || ""].filter(Boolean).join("  ");
    if (seriesLine) tl.push(seriesLine);
    if (info.description) tl.push(info.description);
    const tr = [...(this.kernelNotes.tr || [])];
    tr.push(`Im ${this.s.frame + 1} / ${n}`);
    if (h) tr.push(`${h.columns} × ${h.rows}`);
    const bl = [];
    if (h && h.position) bl.push(`Z ${fmt(h.position[2])} mm`);
    if (h && h.thickness != null) bl.push(`Thk ${fmt(h.thickness)} mm`);
    if (h && h.spacing) bl.push(`Px ${h.spacing.map((v) => fmt(v)).join(" × ")} mm`);
    const br = [];
    if (h && h.samples === 1) {
      const lut = this.params().useVoiLut ? "VOI LUT" : `W ${fmt(this.s.width)}  L ${fmt(this.s.center)}`;
      br.push(lut + (this.s.fn !== "LINEAR" ? `  ${this.s.fn.toLowerCase()}` : ""));
    }
    const flags = [this.s.invert ? "INV" : "", this.s.rot ? `ROT ${this.s.rot * 90}°` : "", this.s.flipH ? "FLIP H" : "", this.s.flipV ? "FLIP V" : ""].filter(Boolean);
    br.push(`Zoom ${Math.round(this.s.zoom * 100)}%${flags.length ? "  " + flags.join(" ") : ""}`);
    const lines = { tl, tr, bl, br };
    for (const [pos, list] of Object.entries(lines)) {
      const node = this.corners[pos];
      const text = list.join("\n");
      if (node.textContent !== text) node.textContent = text;
    }
  }

  /* ---- controls from state ---- */

  syncSlice() {
    const n = this.nFrames();
    this.sliceSlider.max = String(Math.max(0, n - 1));
    this.sliceSlider.value = String(this.s.frame);
    this.sliceSlider.disabled = n <= 1;
    this.sliceLabel.textContent = `${this.s.frame + 1} / ${n}`;
    this.slicebar.hidden = false;
  }

  syncWLControls() {
    const f = this.current;
    let lo = -1024;
    let hi = 3071;
    let isFloat = false;
    if (f) {
      ({ lo, hi } = modalityRange(f));
      isFloat = f.header.is_float || f.header.dtype === "float32" || !Number.isInteger(f.header.slope ?? 1);
    }
    const span = Math.max(hi - lo, isFloat ? 1e-6 : 1);
    const step = isFloat && span < 1000 ? span / 1000 : 1;
    const c = this.s.center;
    const w = this.s.width;
    this.cSlider.min = String(Math.min(lo - span * 0.25, c));
    this.cSlider.max = String(Math.max(hi + span * 0.25, c));
    this.cSlider.step = String(step);
    this.wSlider.min = String(Math.min(step, w));
    this.wSlider.max = String(Math.max(span * 2, w));
    this.wSlider.step = String(step);
    this.cSlider.value = String(c);
    this.wSlider.value = String(w);
    this.cInput.step = String(step);
    this.wInput.step = String(step);
    if (document.activeElement !== this.cInput) this.cInput.value = fmt(c);
    if (document.activeElement !== this.wInput) this.wInput.value = fmt(w);
    const disabled = !!(f && f.header.samples !== 1);
    for (const node of [this.cSlider, this.wSlider, this.cInput, this.wInput, this.presetSelect, this.autoBtn]) {
      /** @type {any} */ (node).disabled = disabled;
    }
    this.syncPresetSelection();
  }

  syncPresets() {
    const presets = this.model.get("presets") || [];
    const options = [h("option", { value: "", text: "Presets" })];
    presets.forEach((/** @type {any} */ p, /** @type {number} */ i) => {
      options.push(h("option", { value: String(i), text: `${p.name}  (${fmt(p.center)} / ${fmt(p.width)})` }));
    });
    this.presetSelect.replaceChildren(...options);
    this.syncPresetSelection();
  }

  syncPresetSelection() {
    const presets = this.model.get("presets") || [];
    const i = presets.findIndex((/** @type {any} */ p) => Number(p.center) === this.s.center && Number(p.width) === this.s.width);
    this.presetSelect.value = i >= 0 ? String(i) : "";
  }

  syncToggles() {
    const on = !!this.model.get("annotations");
    this.s.invert = !!this.model.get("invert");
    this.annotBtn.setAttribute("aria-pressed", String(on));
    this.invertBtn.setAttribute("aria-pressed", String(this.s.invert));
    this.flipHBtn.setAttribute("aria-pressed", String(this.s.flipH));
    this.flipVBtn.setAttribute("aria-pressed", String(this.s.flipV));
    this.updateMarkers();
    this.updateCorners();
  }

  /**
   * Overlay button and canvas from the `overlays` trait and the frame on screen: draw
   * the frame's planes now when they are cached, else hide the last frame's and draw
   * when the kernel's reply comes.
   */
  syncOverlays() {
    const on = !!this.model.get("overlays");
    const f = this.current;
    // null: the kernel could not count them; let the user ask and see why
    const available = !!f && f.header.overlays !== 0;
    this.overlayBtn.setAttribute("aria-pressed", String(on));
    this.overlayBtn.disabled = !available;
    if (!available) {
      this.overlayBtn.title = "Overlays (O): none in this frame";
      delete this.overlayBtn.dataset.labels;
    }
    const gen = ++this.overlayGen;
    if (!on || !available || !f) {
      this.hideOverlays();
      if (this.overlayError) {
        this.overlayError = "";
        this.syncStatus();
      }
      return;
    }
    const { series, index } = f.header;
    const hit = this.rt.peekOverlays(series, index);
    if (hit) {
      this.drawOverlays(hit);
      this.prefetchOverlays(series, index);
      return;
    }
    this.hideOverlays();
    this.rt.overlays(series, index).then(
      (planes) => {
        if (gen !== this.overlayGen || this.disposed) return;
        this.drawOverlays(planes);
        this.prefetchOverlays(series, index);
      },
      (err) => {
        if (gen !== this.overlayGen || this.disposed) return;
        const type = err && err.type ? `${err.type}: ` : "";
        this.overlayError = `Overlays could not be shown — ${type}${err && err.message ? err.message : String(err)}`;
        this.syncStatus();
      },
    );
  }

  hideOverlays() {
    this.overlayCanvas.hidden = true;
    this.root.dataset.dflOverlays = "0";
  }

  /**
   * Draw overlay planes (of the frame on screen) on the overlay canvas, at native size.
   *
   * @param {OverlayPlane[]} planes
   */
  drawOverlays(planes) {
    const f = this.current;
    if (!f) return;
    const { rows, columns } = f.header;
    const cv = this.overlayCanvas;
    if (cv.width !== columns || cv.height !== rows) {
      cv.width = columns;
      cv.height = rows;
    }
    const img = this.overlayCtx.createImageData(columns, rows);
    const out = new Uint32Array(img.data.buffer);
    /** @type {string[]} */
    const labels = [];
    planes.forEach((plane, k) => {
      if (plane.rows !== rows || plane.columns !== columns) {
        console.warn(`[dicomflow_lab viewer] overlay ${plane.group.toString(16)} is ${plane.columns}×${plane.rows}, the image ${columns}×${rows}: not drawn`);
        return;
      }
      const colour = OVERLAY_COLOURS[k % OVERLAY_COLOURS.length];
      const m = plane.mask;
      for (let i = 0; i < m.length; i++) if (m[i]) out[i] = colour;
      labels.push(plane.label || `Overlay ${plane.group.toString(16).toUpperCase()}`);
    });
    this.overlayCtx.putImageData(img, 0, 0);
    cv.hidden = labels.length === 0;
    this.root.dataset.dflOverlays = String(labels.length);
    this.overlayBtn.dataset.labels = labels.join("; ");
    this.overlayBtn.title = labels.length ? `Overlays (O): ${labels.join("; ")}` : "Overlays (O)";
    if (this.overlayError) {
      this.overlayError = "";
      this.syncStatus();
    }
  }

  /** Ask early for the overlays of neighbouring frames known to have some. @param {string} series @param {number} index */
  prefetchOverlays(series, index) {
    const n = this.nFrames(series);
    const reach = this.s.playing ? 4 : 2;
    for (let d = 1; d <= reach; d++) {
      for (const i of this.s.playing ? [(index + d) % n] : [index + d, index - d]) {
        if (i < 0 || i >= n) continue;
        const f = this.rt.peek(series, i);
        if (f && f.header.overlays !== 0 && !this.rt.overlayCache.has(Runtime.key(series, i))) {
          this.rt.overlays(series, i).catch(() => {});
        }
      }
    }
  }

  syncStatus() {
    const status = String(this.model.get("status") || "");
    const text = this.error || this.overlayError || status;
    this.statusText.textContent = text;
    this.statusText.classList.toggle("dfl-error", !!text);
    this.statusText.title = text;
  }

  syncSeriesStrip() {
    const list = this.model.get("series") || [];
    const active = this.s.series || this.model.get("series_key");
    const existing = new Map(Array.from(this.strip.children, (node) => [/** @type {HTMLElement} */ (node).dataset.key, node]));
    const items = list.map((/** @type {any} */ s) => {
      let item = /** @type {HTMLElement | undefined} */ (existing.get(s.key));
      if (!item) {
        const img = /** @type {HTMLImageElement} */ (h("img", { class: "dfl-thumb", alt: "", draggable: "false" }));
        const label = [s.number != null ? `#${s.number}` : "", s.modality || ""].filter(Boolean).join(" ");
        item = h(
          "button",
          { type: "button", class: "dfl-series", role: "option", "data-key": s.key, title: `${label} ${s.description || ""} — ${s.n_frames} image${s.n_frames === 1 ? "" : "s"}`.trim() },
          h("span", { class: "dfl-thumb-box" }, img, h("span", { class: "dfl-count", text: String(s.n_frames) })),
          h("span", { class: "dfl-series-label", text: label || "series" }),
          h("span", { class: "dfl-series-desc", text: s.description || "" }),
        );
        const uid = s.key;
        item.addEventListener("click", () => this.selectSeries(uid));
        this.rt.thumb(uid).then(
          (url) => {
            img.src = url;
          },
          () => img.classList.add("dfl-thumb-missing"),
        );
      }
      const on = s.key === active;
      item.classList.toggle("dfl-active", on);
      item.setAttribute("aria-selected", String(on));
      return item;
    });
    this.strip.replaceChildren(...items);
    this.strip.hidden = list.length === 0;
  }

  /** @param {string} uid */
  selectSeries(uid) {
    if (uid === this.s.series) return;
    const info = (this.model.get("series") || []).find((/** @type {any} */ s) => s.key === uid);
    const middle = info ? Math.floor((info.n_frames || 1) / 2) : 0;
    if (this.s.playing) this.togglePlay();
    this.s.wlTouched = false;
    // the kernel answers with the series' frame count, window and presets
    this.write({ series_key: uid, frame: middle, n_frames: info ? info.n_frames || 1 : 1 });
    this.s.series = uid;
    this.syncSeriesStrip();
    this.show(uid, middle);
    this.loadNotes();
  }

  dispose() {
    this.disposed = true;
    this.s.playing = false;
    for (const t of Object.values(this.timers)) clearTimeout(t);
    if (this.raf) cancelAnimationFrame(this.raf);
    for (const fn of this.cleanups) fn();
    if (this.gl) this.gl.dispose();
    this.gl = null;
    delete /** @type {any} */ (this.root).dflViewer;
    this.root.remove();
  }
}

/* ----------------------------------------------------------------- exports */

export default {
  /** @param {{model: any}} props */
  initialize({ model }) {
    const rt = runtimeFor(model);
    return () => {
      rt.dispose();
      const key = runtimeKey(model);
      if (key && RUNTIMES.get(key) === rt) RUNTIMES.delete(key);
      if (moduleRuntime === rt) moduleRuntime = null;
    };
  },
  /** @param {{model: any, el: HTMLElement}} props */
  render({ model, el }) {
    const view = new ViewerView(model, el, runtimeFor(model));
    return () => view.dispose();
  },
};

/** Pure pieces, for tests. */
export const _internals = { toTypedArray, modalityFunction, windowFunction, voiLutFunction, greyFunction, buildLut, buildRangeLut, autoWindow, directionLabel, GLRenderer, Runtime };
