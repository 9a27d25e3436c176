// A form generated from the experiment's JSON Schema (nas_core/config.py via /api/schema/experiment): one input
// per field, the API's validation errors shown next to the field they name. The schema is the only source.
import { el } from "./dom.js";

// The fields shown up front per object; the rest sit under "more" so the first screen stays short.
const PRIMARY = {
  "": ["name", "description", "seed", "repeats", "space", "data", "search", "launcher", "baseline"],
  space: ["macro", "cells", "depth", "channels", "normal_cells_per_scale"],
  data: ["source", "path", "tile_size", "num_tiles", "batch_size"],
  search: ["method", "epochs", "trials", "trial_epochs"],
  launcher: ["kind", "processes", "slurm"],
  "launcher.slurm": ["partition", "nodes", "gpus_per_node", "cpus_per_task", "mem", "time"],
  baseline: ["random", "seeds", "networks"],
  retrain: ["enabled", "epochs"],
  distributed: ["engine"],
  cell: ["ops", "nodes"],
};
// The cell types a macro-architecture is built of (nas_core.space.config.MACRO_CELL_TYPES); the schema names them
// only in prose, and switching the macro must switch the cell sections.
const MACRO_CELLS = { unet: ["normal", "down", "up"], "darts-classifier": ["normal", "reduce"] };
// Shown only when they apply.
const WHEN = {
  "launcher.slurm": (v) => v.launcher && v.launcher.kind === "slurm",
  "data.path": (v) => v.data && v.data.source === "prepared",
  "baseline.seeds": (v) => v.baseline && v.baseline.random,
};

const clone = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));

function getPath(obj, path) {
  return path.split(".").filter(Boolean).reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys[keys.length - 1]] = value;
}

// Where the schema's generated title says less than the question the user is answering.
const LABELS = {
  "baseline.random": "add a random-search baseline at equal budget",
  "baseline.seeds": "baseline seeds",
  "baseline.networks": "hand-designed baselines (each trained and evaluated beside every search)",
  repeats: "repeats (a study over seeds: seed, seed+1, ...)",
  "launcher.kind": "launcher",
  "data.source": "dataset",
  "data.path": "prepared dataset directory",
};

function title(key, s, path) {
  return LABELS[path] || (s && s.title) || key.replace(/_/g, " ");
}

export class SchemaForm {
  constructor(schema, initial) {
    this.schema = schema;
    this.value = clone(initial ?? schema.default ?? {});
    this.root = el("div", { class: "schema-form" });
    this.render();
  }

  resolve(s) {
    while (s && s.$ref) s = this.schema.$defs[s.$ref.split("/").pop()];
    return s || {};
  }

  // {inner, nullable}: Optional[X] is anyOf [X, null] in pydantic's schema.
  unwrap(s) {
    s = this.resolve(s);
    if (Array.isArray(s.anyOf)) {
      const rest = s.anyOf.filter((a) => a.type !== "null");
      if (rest.length === 1) return { inner: { ...this.resolve(rest[0]), title: s.title, description: s.description }, nullable: true };
    }
    return { inner: s, nullable: false };
  }

  render() {
    this.root.replaceChildren(this.objectFields("", this.schema));
    this.applyVisibility();
  }

  objectFields(path, s) {
    s = this.resolve(s);
    const primary = PRIMARY[path.replace(/^space\.cells\.[^.]+$/, "cell")] || null;
    const main = el("div", { class: "fields" });
    const more = el("div", { class: "fields" });
    for (const [key, sub] of Object.entries(s.properties || {})) {
      const p = path ? `${path}.${key}` : key;
      const node = this.field(p, key, sub);
      (primary && !primary.includes(key) ? more : main).append(node);
    }
    if (!more.children.length) return main;
    return el("div", {}, main, el("details", { class: "more" }, el("summary", {}, "more settings"), more));
  }

  field(path, key, rawSchema) {
    const { inner: s, nullable } = this.unwrap(rawSchema);
    const value = getPath(this.value, path);
    const wrap = el("div", { class: "field", "data-path": path });
    const error = el("div", { class: "field-error", role: "alert" });
    const help = s.description ? el("small", { class: "help" }, s.description) : null;
    const id = `f-${path.replace(/\./g, "-")}`;

    if (s.type === "object" && s.properties) {
      const fs = el("fieldset", { "data-path": path, class: "group" }, el("legend", {}, key.replace(/_/g, " ")));
      fs.append(error);
      if (help) fs.append(help);
      fs.append(this.objectFields(path, s));
      return fs;
    }
    if (s.type === "object" && s.additionalProperties && this.resolve(s.additionalProperties).properties) {
      return this.mapOfObjects(path, key, s, error);
    }
    if (s.type === "array" && this.resolve(s.items).properties) return this.listOfObjects(path, key, s, error, help);
    let input;
    if (nullable && (Array.isArray(s.enum) || s.type === "boolean")) {
      // Optional choice: "(default)" leaves it to the engine (null), which a checkbox or a bare select cannot say.
      const choices = s.type === "boolean" ? [[true, "on"], [false, "off"]] : s.enum.map((v) => [v, String(v)]);
      input = el("select", { id, name: path }, el("option", { value: "" }, "(default)"),
                 ...choices.map(([v, text]) => el("option", { value: JSON.stringify(v) }, text)));
      input.value = value == null ? "" : JSON.stringify(value);
      input.addEventListener("change", () => this.set(path, input.value === "" ? null : JSON.parse(input.value)));
    } else if (Array.isArray(s.enum)) {
      input = el("select", { id, name: path }, ...s.enum.map((v) => el("option", { value: String(v) }, String(v))));
      input.value = String(value ?? s.default ?? s.enum[0]);
      input.addEventListener("change", () => {
        const v = s.type === "integer" || s.type === "number" ? Number(input.value) : input.value;
        this.set(path, v);
        if (path === "space.macro") this.switchMacro(v);
      });
    } else if (s.type === "boolean") {
      input = el("input", { id, name: path, type: "checkbox" });
      input.checked = Boolean(value);
      input.addEventListener("change", () => this.set(path, input.checked));
    } else if (s.type === "integer" || s.type === "number") {
      input = el("input", { id, name: path, type: "number", step: s.type === "integer" ? "1" : "any" });
      if (s.minimum !== undefined) input.min = s.minimum;
      if (s.maximum !== undefined) input.max = s.maximum;
      input.value = value ?? "";
      if (nullable) input.placeholder = "default";
      input.addEventListener("input", () => {
        const t = input.value.trim();
        // An unparsable entry is sent as typed, so the API names it; the form does not second-guess the schema.
        this.set(path, t === "" ? (nullable ? null : t) : Number.isFinite(Number(t)) ? Number(t) : t);
      });
    } else if (s.type === "string") {
      const long = key === "description";
      input = el(long ? "textarea" : "input", { id, name: path, ...(long ? { rows: 2 } : { type: "text" }) });
      input.value = value ?? "";
      if (nullable) input.placeholder = "(none)";
      input.addEventListener("input", () => this.set(path, input.value === "" && nullable ? null : input.value));
    } else if (s.type === "array" && this.resolve(s.items).type === "string") {
      return this.stringList(path, key, s, value, error, help);
    } else if (s.type === "array" && ["number", "integer"].includes(this.resolve(s.items).type)) {
      input = el("input", { id, name: path, type: "text", placeholder: nullable ? "default" : "comma-separated" });
      input.value = Array.isArray(value) ? value.join(", ") : "";
      input.addEventListener("input", () => {
        const t = input.value.trim();
        this.set(path, t === "" ? (nullable ? null : []) : t.split(/[,\s]+/).filter(Boolean).map((x) => (Number.isFinite(Number(x)) ? Number(x) : x)));
      });
    } else {
      // Anything richer (edge lists, op parameters) is edited as JSON.
      input = el("textarea", { id, name: path, rows: 2, class: "json", placeholder: nullable ? "default (JSON)" : "JSON" });
      input.value = value == null || (typeof value === "object" && !Object.keys(value).length) ? "" : JSON.stringify(value);
      input.addEventListener("input", () => {
        const t = input.value.trim();
        if (t === "") return this.set(path, nullable ? null : s.type === "array" ? [] : {});
        try { this.set(path, JSON.parse(t)); error.textContent = ""; } catch { error.textContent = "not valid JSON yet"; }
      });
    }
    const label = el("label", { for: id }, title(key, s, path));
    if (s.type === "boolean") wrap.append(el("div", { class: "check" }, input, label));
    else wrap.append(label, input);
    if (help) wrap.append(help);
    wrap.append(error);
    return wrap;
  }

  // Op sets: a checkbox per known op (the defaults and what is set), plus a free list for registered extras.
  stringList(path, key, s, value, error, help) {
    const known = [...new Set([...(getPath(this.schema.default, path.replace(/cells\.[^.]+/, "cells.normal")) || []),
                               ...(value || [])])];
    const wrap = el("div", { class: "field", "data-path": path }, el("label", {}, title(key, s)));
    const boxes = el("div", { class: "checks" });
    const extra = el("input", { type: "text", name: `${path}.extra`, placeholder: "more, comma-separated" });
    const sync = () => {
      const chosen = [...boxes.querySelectorAll("input:checked")].map((b) => b.value);
      const more = extra.value.split(/[,\s]+/).filter(Boolean).filter((x) => !chosen.includes(x));
      this.set(path, [...chosen, ...more]);
    };
    for (const op of known) {
      const box = el("input", { type: "checkbox", value: op, name: path });
      box.checked = (value || []).includes(op);
      box.addEventListener("change", sync);
      boxes.append(el("label", { class: "check" }, box, op));
    }
    extra.addEventListener("input", sync);
    wrap.append(boxes, extra);
    if (help) wrap.append(help);
    wrap.append(error);
    return wrap;
  }

  mapOfObjects(path, key, s, error) {
    const fs = el("fieldset", { "data-path": path, class: "group cells" }, el("legend", {}, title(key, s)), error);
    const entries = Object.keys(getPath(this.value, path) || {});
    const grid = el("div", { class: "cell-grid" });
    for (const name of entries) {
      const sub = el("fieldset", { "data-path": `${path}.${name}`, class: "group cell" }, el("legend", {}, `${name} cell`),
                     el("div", { class: "field-error", role: "alert" }));
      sub.append(this.objectFields(`${path}.${name}`, s.additionalProperties));
      grid.append(sub);
    }
    fs.append(grid);
    return fs;
  }

  // A list of objects (baseline.networks): each entry its own fieldset of the item schema's fields, with remove;
  // "add" appends an entry of the schema's defaults (an enum's first choice where there is none).
  listOfObjects(path, key, s, error, help) {
    const item = this.resolve(s.items);
    const noun = key.replace(/s$/, "");
    const fs = el("fieldset", { "data-path": path, class: "group list" }, el("legend", {}, title(key, s, path)), error);
    if (help) fs.append(help);
    const entries = getPath(this.value, path) || [];
    entries.forEach((_, i) => {
      const remove = el("button", { type: "button", class: "remove", "aria-label": `remove ${noun} ${i + 1}` }, "remove");
      remove.addEventListener("click", () => { entries.splice(i, 1); this.set(path, entries); this.render(); });
      fs.append(el("fieldset", { "data-path": `${path}.${i}`, class: "group entry" }, el("legend", {}, `${noun} ${i + 1}`),
        el("div", { class: "field-error", role: "alert" }), this.objectFields(`${path}.${i}`, item), remove));
    });
    const add = el("button", { type: "button", class: "add", "data-add": path }, `add ${noun}`);
    add.addEventListener("click", () => { this.set(path, [...entries, this.defaults(item)]); this.render(); });
    fs.append(add);
    return fs;
  }

  defaults(s) {
    const out = {};
    for (const [k, p] of Object.entries(this.resolve(s).properties || {})) {
      const { inner } = this.unwrap(p);
      const v = p.default ?? inner.default ?? (Array.isArray(inner.enum) ? inner.enum[0] : undefined);
      if (v !== undefined) out[k] = clone(v);
    }
    return out;
  }

  switchMacro(macro) {
    const want = MACRO_CELLS[macro];
    if (!want) return;
    const cells = this.value.space.cells || {};
    const template = cells.normal || Object.values(cells)[0] || {};
    this.value.space.cells = Object.fromEntries(want.map((t) => [t, cells[t] || clone(template)]));
    this.render();
  }

  set(path, v) {
    setPath(this.value, path, v);
    this.clearError(path);
    this.applyVisibility();
  }

  applyVisibility() {
    for (const [path, when] of Object.entries(WHEN)) {
      const node = this.root.querySelector(`[data-path="${path}"]`);
      if (node) node.hidden = !when(this.value);
    }
  }

  // Show each error at the deepest field it names that exists; what matches nothing goes to `fallback`.
  showErrors(errors, fallback) {
    this.clearErrors();
    const unplaced = [];
    let first = null;
    for (const e of errors) {
      let node = null;
      for (let p of e.paths) {
        for (; p && !node; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
          node = this.root.querySelector(`[data-path="${CSS.escape(p)}"]`);
        }
        if (node) break;
      }
      if (!node) { unplaced.push(e); continue; }
      node.classList.add("invalid");
      node.hidden = false;
      const box = node.querySelector(":scope > .field-error");
      box.textContent = box.textContent ? `${box.textContent}; ${e.msg}` : e.msg;
      for (let d = node.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
      first ||= node;
    }
    if (fallback) fallback.textContent = unplaced.map((e) => (e.path ? `${e.path}: ${e.msg}` : e.msg)).join("; ");
    if (first) first.scrollIntoView({ block: "center" });
  }

  clearError(path) {
    const node = this.root.querySelector(`[data-path="${CSS.escape(path)}"]`);
    if (!node) return;
    node.classList.remove("invalid");
    const box = node.querySelector(":scope > .field-error");
    if (box) box.textContent = "";
  }

  clearErrors() {
    for (const n of this.root.querySelectorAll(".invalid")) n.classList.remove("invalid");
    for (const n of this.root.querySelectorAll(".field-error")) n.textContent = "";
  }
}
