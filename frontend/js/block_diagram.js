// Where to search first, on a hand-designed run's page: the button that measures its blocks (POST
// /api/runs/ID/sensitivity, docs/search.md), the network drawn as a U coloured by each block's score, and the
// partial search of a block that clicking it opens in the new-experiment form (js/pages/new.js).
import { guard } from "./access.js";
import { api, ApiError } from "./api.js";
import { el, errorBox } from "./dom.js";

const POLL_MS = 1500;
const BUSY = new Set(["queued", "running"]);

// Score 0 (little room: the network leans on the block) to 1 (most room: search here), pale blue to orange.
export function scoreColour(score) {
  const s = Math.max(0, Math.min(1, Number(score) || 0));
  return `hsl(${Math.round(210 - 185 * s)}, ${Math.round(45 + 40 * s)}%, ${Math.round(88 - 28 * s)}%)`;
}

const signed = (x) => (typeof x === "number" ? `${x >= 0 ? "+" : ""}${x.toFixed(4)}` : "?");

// Where a block sits in the U: its level from its channels (doubled per level down), its arm from its role.
// Encoder (down) blocks go down the left, decoder (up) blocks up the right, a normal block at the deepest
// level is the bottleneck at the bottom, the stem and the head are on top.
function place(block, channels, depth) {
  if (block.role === "head") return { row: 0, col: 2 * depth + 2 };
  const level = Math.round(Math.log2(block.out_channels / channels));
  if (block.role === "down") return { row: level, col: level };
  if (block.role === "up") return { row: level + 1, col: 2 * depth + 1 - level };
  if (level === 0) return { row: 0, col: 0 };
  return { row: depth + 1, col: depth + 1 };
}

function tooltip(b, n) {
  const shape = `${b.in_channels}${b.skip_channels ? `+${b.skip_channels}` : ""} → ${b.out_channels} channels`;
  return [`${b.name} (${b.role}, ${shape})`, `rank ${b.rank} of ${n} · score ${b.score.toFixed(3)}`,
    `gain ${signed(b.gain)}: best random ${b.role} cell in its place minus the fine-tuned network`,
    `drop ${signed(b.drop)}: IoU lost with the block ablated (${b.ablation})`,
    `importance ${(b.taylor_share ?? 0).toFixed(3)}: its share of gradient × weight`,
    "click: a partial search of this block"].join("\n");
}

// The ranked U of `result` (RUN/sensitivity.json); `onPick(block)` when a block is clicked. The buttons are in
// rank order (the grid places them), so the first is the block to search first.
export function blockDiagram(result, onPick) {
  const net = result.network_config || {};
  const depth = net.depth || 1;
  const n = result.blocks.length;
  const grid = el("div", { class: "block-diagram", id: "block-diagram",
    style: `grid-template-columns: repeat(${2 * depth + 3}, minmax(5.5rem, 1fr))` });
  const ranked = [...result.blocks].sort((a, b) => a.rank - b.rank);
  for (const b of ranked) {
    const { row, col } = place(b, net.channels || b.out_channels, depth);
    grid.append(el("button", { type: "button", class: `block${b.rank === 1 ? " first" : ""}`,
      "data-block": b.name, "data-rank": b.rank, "data-score": b.score, title: tooltip(b, n),
      style: `grid-row: ${row + 1}; grid-column: ${col + 1}; background: ${scoreColour(b.score)}`,
      onclick: () => onPick(b) },
      el("span", { class: "rank" }, `#${b.rank}`), el("span", { class: "name" }, b.name),
      el("span", { class: "score" }, b.score.toFixed(2))));
  }
  // The classifier is no cell's place: drawn for the shape, not ranked.
  grid.append(el("div", { class: "block head", title: "head: the classifier, no cell's place (not ranked)",
    style: `grid-row: 1; grid-column: ${2 * depth + 3}` }, el("span", { class: "name" }, "head")));
  const legend = el("div", { class: "block-legend" }, "score: ", el("span", { class: "muted" }, "0 the network leans on it "),
    el("span", { class: "ramp", style: `background: linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(scoreColour).join(", ")})` }),
    el("span", { class: "muted" }, " 1 most room, search here"));
  return el("div", {}, grid, legend);
}

// The largest node count up to `most` whose concatenation fills `channels` (as nas_core.sensitivity's cells).
function nodesFor(channels, most = 4) {
  for (let k = Math.min(most, channels); k > 1; k -= 1) if (channels % k === 0) return k;
  return 1;
}

const clone = (x) => JSON.parse(JSON.stringify(x ?? null));

// A new experiment: a DARTS partial search of `blockName` in run `run`'s network, the other blocks starting from
// its retrained weights (not frozen), on the run's data, seed and retrain budget; the rest are `defaults`.
export function partialSearchOf(defaults, run, result, blockName) {
  const b = result.blocks.find((x) => x.name === blockName);
  if (!b) throw new Error(`run ${run.id}'s ranking has no block ${blockName}; its blocks: ${result.blocks.map((x) => x.name).join(", ")}`);
  const net = result.network_config;
  const cfg = run.config || {};
  const base = clone(defaults);
  return {
    ...base,
    name: `partial ${b.name} of run ${run.id}`,
    description: `Partial search of block ${b.name} (${b.role}) of run ${run.id}'s ${net.name} (channels ${net.channels}, `
      + `depth ${net.depth}): rank ${b.rank} of ${result.blocks.length} in 'where to search first' (score ${b.score.toFixed(3)}); `
      + "the other blocks start from the run's retrained weights.",
    seed: cfg.seed ?? base.seed,
    data: clone(cfg.data ?? base.data),
    space: {
      ...(base.space || {}), macro: net.name, channels: net.channels, depth: net.depth, backbone: clone(net.backbone || {}),
      in_channels: result.in_channels, num_classes: result.num_classes, search_blocks: [b.name],
      // The schema's cell of that role (its ops shown ticked in the form), with nodes that divide the block's width.
      cells: { [b.role]: { ...clone((base.space && base.space.cells && base.space.cells[b.role]) || {}),
        nodes: b.cell_nodes || nodesFor(b.out_channels) } },
      init_from: result.checkpoint, freeze: false,
    },
    search: { ...(base.search || {}), method: "darts" },
    retrain: clone(cfg.retrain ?? base.retrain),
    // Measured as every search is: against random search at equal compute (the default) and against the
    // hand-designed network it starts from, trained from scratch beside it.
    baseline: { ...(base.baseline || {}), networks: [clone(net)] },
  };
}

// The section on the run page. `update(run)` after the run changes (it shows once the run has succeeded);
// `measured()` when the run's log holds a `sensitivity` event: only then is there a ranking to read (the API says
// 404 when there is none, which the page need not ask to learn).
export function sensitivityPanel(run, whoPromise) {
  const button = el("button", { type: "button", class: "primary", id: "sensitivity-start" }, "Where to search first");
  const state = el("span", { class: "muted", id: "sensitivity-state" }, "not measured yet");
  const message = el("div", {});
  const diagram = el("div", { id: "sensitivity-result" });
  const root = el("section", { class: "sensitivity", id: "sensitivity", hidden: true },
    el("h2", {}, "Where to search first"),
    el("p", { class: "muted" }, "Ranks this network's blocks by the room they leave: the IoU lost when a block is ablated, "
      + "the gain of random cells in its place, its gradient importance. Click a block for a partial search of it."),
    el("div", { class: "toolbar" }, button, state), message, diagram);
  // A network that predicts only background leaves every block the same IoU to lose or gain: the ranking would
  // be ties. Said before the user spends the minutes.
  const idle = el("p", { class: "warning", id: "sensitivity-background-only", hidden: true },
    "This network predicts only background, so every block measures alike and the ranking says little; "
    + "train it longer first (retrain.epochs), then measure.");
  root.insertBefore(idle, message);
  let timer = null, current = run;
  whoPromise.then(([who, ownerId]) => guard(button, who, "write", ownerId));

  const show = (res) => {
    const busy = BUSY.has(res.state);
    root.dataset.state = res.state;
    if (!button.dataset.refused) button.disabled = busy;
    button.textContent = busy ? "Measuring…" : res.result ? "Measure again" : "Where to search first";
    state.textContent = busy ? `${res.state}: fine-tuning each block's variants (a minute for a small network)`
      : res.state === "done" ? `search first: ${res.result.first}` : "";
    message.replaceChildren(res.state === "failed" ? errorBox(new Error(`the measure failed: ${res.reason}`)) : "");
    if (res.result && res.result.blocks && (!busy || !diagram.childElementCount)) {
      diagram.replaceChildren(blockDiagram(res.result, (b) => { location.hash = `#/new?partial=${current.id}&block=${encodeURIComponent(b.name)}`; }));
    }
    clearTimeout(timer);
    if (busy) timer = setTimeout(poll, POLL_MS);
  };
  const poll = async () => {
    try { show(await api(`/api/runs/${current.id}/sensitivity`)); } catch (err) {
      if (err instanceof ApiError && err.status === 404) { show({ state: "none" }); state.textContent = "not measured yet"; }
      else message.replaceChildren(errorBox(err));
    }
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try { show(await api(`/api/runs/${current.id}/sensitivity`, { method: "POST" })); } catch (err) {
      button.disabled = false;
      message.replaceChildren(errorBox(err));
      if (err instanceof ApiError && err.status === 409) poll();  // measured already (another tab): follow it
    }
  });
  const update = (r) => {
    current = r;
    root.hidden = !(r.network && r.status === "succeeded");
    idle.hidden = !(r.headline && r.headline.background_only);
  };
  update(run);
  const measured = () => { if (!BUSY.has(root.dataset.state)) poll(); };
  return { root, update, measured, stop: () => clearTimeout(timer) };
}
