// The run page's evaluation tab, using what the run made: why the precision-recall panel is empty, the sample
// predictions the evaluate stage wrote (samples/index.json and its PNGs), "Download model" (ONNX, TorchScript) and
// a predict panel (uploaded tiles, or a test scene against its truth -> overlays). Files come through the API with
// the bearer token (an <img src> cannot send one), so each is fetched as a blob and shown by an object URL.
import { api } from "./api.js";
import { el, errorBox } from "./dom.js";

const RETRAINED = "checkpoints/retrain.pt";
const SAMPLES = "samples/index.json";
const FORMATS = [["onnx", "ONNX"], ["torchscript", "TorchScript"]];
const MAX_TILES = 8; // backend/inference.py MAX_TILES: more are refused there

// Why a PR panel has nothing to draw: the evaluate stage's own words (metrics `pr_empty_reason`) or, from a run
// older than them, what an empty curve can only mean.
export function prEmptyText(evaluation) {
  if (!evaluation) return "";
  const why = evaluation.pr_empty_reason;
  return `no precision-recall curve: ${why || "the test split gave no object to rank (no predicted or no ground-truth objects)"}`;
}

async function blobUrl(path, query) {
  const res = await api(path, { raw: true, query });
  return URL.createObjectURL(await res.blob());
}

// One box per run page, kept between redraws: what was fetched once (samples, artifacts) is not fetched again.
function box(panel, run) {
  let b = panel.querySelector("#use-model");
  if (b && b.dataset.run === String(run.id)) return b;
  b = el("section", { id: "use-model", "data-run": run.id },
    el("p", { class: "muted", id: "pr-empty", hidden: true }),
    el("div", { id: "eval-samples" }), el("div", { id: "model-download", hidden: true }), el("div", { id: "predict-panel", hidden: true }));
  b.state = { checkedAt: -Infinity, artifacts: null, samples: false };
  panel.append(b);
  return b;
}

export async function showUse(panel, run, evaluation, prDrawn) {
  const b = box(panel, run);
  const pr = b.querySelector("#pr-empty");
  pr.hidden = prDrawn || !evaluation;
  pr.textContent = pr.hidden ? "" : prEmptyText(evaluation);
  const s = b.state;
  // The artifacts appear as the run goes (retrain, then evaluate): look again now and then until both are there;
  // at once when the evaluation has come, since its samples were written before it.
  if (s.samples && s.artifacts && s.artifacts.has(RETRAINED)) return;
  if (!evaluation && performance.now() - s.checkedAt < 5000) return;
  s.checkedAt = performance.now();
  s.artifacts = new Set((await api(`/api/runs/${run.id}/artifacts`)).map((a) => a.path));
  if (s.artifacts.has(RETRAINED) && b.querySelector("#model-download").hidden) {
    downloads(b.querySelector("#model-download"), run);
    predictPanel(b.querySelector("#predict-panel"), run);
  }
  if (!s.samples && s.artifacts.has(SAMPLES)) {
    s.samples = true;
    await samples(b.querySelector("#eval-samples"), run).catch((err) => b.querySelector("#eval-samples").replaceChildren(errorBox(err)));
  }
}

async function samples(target, run) {
  const index = await api(`/api/runs/${run.id}/artifacts/${SAMPLES}`);
  const legend = Object.entries(index.legend || {}).map(([name, rgb]) => el("span", { class: "chip" },
    el("span", { class: "swatch", style: `background: rgb(${rgb.join(",")})` }), ` ${name}`));
  const figures = await Promise.all((index.samples || []).map(async (s) => {
    const fg = typeof s.foreground_iou === "number" ? `foreground IoU ${s.foreground_iou.toFixed(2)}` : "no foreground in truth or prediction";
    return el("figure", { class: "eval-sample" },
      el("img", { src: await blobUrl(`/api/runs/${run.id}/artifacts/samples/${s.file}`), alt: `test tile ${s.tile}: ${(index.panels || []).join(", ")}` }),
      el("figcaption", {}, `${s.scene || `tile ${s.tile}`} · ${fg}`));
  }));
  target.replaceChildren(el("h3", {}, "Sample predictions on test tiles"),
    el("p", { class: "muted" }, `each: ${(index.panels || []).join(" | ")}; `, ...legend), el("div", { class: "eval-samples" }, figures));
}

function downloads(target, run) {
  const note = el("span", { class: "muted" });
  const buttons = FORMATS.map(([fmt, label]) => el("button", { type: "button", "data-format": fmt, onclick: async (ev) => {
    ev.target.disabled = true;
    note.textContent = ` exporting to ${label} (built once, then kept in the run directory)…`;
    try {
      const url = await blobUrl(`/api/runs/${run.id}/export`, { format: fmt });
      const a = el("a", { href: url, download: `nasforge-run-${run.id}${fmt === "onnx" ? ".onnx" : ".pt"}`, hidden: true });
      target.append(a);
      a.click();
      note.textContent = ` ${label} file downloaded; its card (genotype, classes, normalisation) is in the artifacts under exports/${fmt}/`;
    } catch (err) {
      note.replaceChildren(errorBox(err));
    } finally {
      ev.target.disabled = false;
    }
  } }, `Download model (${label})`));
  target.replaceChildren(el("h3", {}, "Use the retrained network"), el("div", { class: "toolbar" }, ...buttons, note));
  target.hidden = false;
}

const asBase64 = (file) => new Promise((resolve, reject) => {
  const r = new FileReader();
  r.onload = () => resolve(String(r.result).split(",", 2)[1]);
  r.onerror = () => reject(r.error);
  r.readAsDataURL(file);
});

function predictPanel(target, run) {
  const files = el("input", { type: "file", accept: "image/png,image/jpeg", multiple: true, id: "predict-files", "aria-label": "tiles to predict" });
  const scene = el("select", { id: "predict-scene", "aria-label": "test scene" }, el("option", { value: "" }, "a test scene…"));
  const out = el("div", { class: "eval-samples", id: "predict-out" });
  const note = el("span", { class: "muted" });
  const show = (result) => out.replaceChildren(...result.overlays.map((o) => el("figure", { class: "eval-sample" },
    el("img", { src: `data:image/png;base64,${o.png}`, alt: `prediction on ${o.name}` }),
    el("figcaption", {}, `${o.name} · ${(100 * o.foreground).toFixed(1)}% foreground`))));
  const predictWith = async (body) => {
    note.textContent = " predicting…";
    try {
      show(await api(`/api/runs/${run.id}/predict`, { method: "POST", body }));
      note.textContent = " green: predicted foreground" + (body.scene ? "; red: false positives, blue: misses" : "");
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  };
  const fromFiles = el("button", { type: "button", id: "predict-upload", onclick: async () => {
    const chosen = [...files.files].slice(0, MAX_TILES);
    if (!chosen.length) { note.textContent = " choose PNG or JPEG tiles first"; return; }
    predictWith({ tiles: await Promise.all(chosen.map(async (f) => ({ name: f.name, data: await asBase64(f) }))) });
  } }, "Predict tiles");
  const fromScene = el("button", { type: "button", id: "predict-test-scene", onclick: () => scene.value ? predictWith({ scene: scene.value }) : null }, "Predict scene");
  api(`/api/runs/${run.id}/test-scenes`).then((names) => scene.append(...names.map((n) => el("option", { value: n }, n)))).catch(() => {});
  target.replaceChildren(el("h3", {}, "Predict"),
    el("p", { class: "muted" }, `up to ${MAX_TILES} PNG or JPEG tiles (2 MiB, 1024 px a side each), predicted in memory and not stored; or a scene of the run's test split, drawn against its truth`),
    el("div", { class: "toolbar" }, files, fromFiles, scene, fromScene, note), out);
  target.hidden = false;
}
