// A run's state folded from its event log (docs/events.md): alpha history per cell type, metrics, genotypes,
// candidates, evaluation. Pure data, no DOM, so the figures and the tests read the same object.

export const PARAM_FREE_OPS = new Set(["none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "identity"]);

export function createRunState() {
  return {
    lastSeq: 0,
    status: null,        // last status payload
    progress: null,      // last progress payload
    stage: null,         // the stage now running: the newest `status` event {state: running, stage}
    retrainEpochs: 0,    // retrain epochs finished (their `metric` events, stage retrain)
    alpha: { frames: [], cells: {} },   // frames[i] = {epoch, step, seq}; cells[ct] = {ops, edges, weights[], entropy[], share[]}
    metrics: [],         // metric payloads in order
    genotypes: [],       // {epoch, genotype}
    candidates: [],      // final candidate payloads
    evaluation: null,    // the newest evaluation payload
    evaluations: [],     // all of them: the retrain's (validation, with PR curves) and the evaluate stage's (test)
    logs: [],
  };
}

// Softmax per row unless the rows already are distributions: events may carry logits or weights.
export function rowWeights(alpha) {
  const isDist = alpha.every((row) => row.every((v) => v >= 0) && Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-3);
  if (isDist) return alpha.map((row) => row.slice());
  return alpha.map((row) => {
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

export function rowEntropy(weights) {
  return weights.map((row) => -row.reduce((a, p) => (p > 0 ? a + p * Math.log(p) : a), 0));
}

// Share of edges whose strongest op is parameter-free: what the DARTS collapse looks like in alpha.
export function paramFreeArgmaxShare(weights, ops) {
  if (!weights.length) return 0;
  let n = 0;
  for (const row of weights) {
    let best = 0;
    for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
    if (PARAM_FREE_OPS.has(ops[best])) n += 1;
  }
  return n / weights.length;
}

function edgeLabel(e) {
  if (Array.isArray(e)) return `${e[0]}→${e[1]}`;
  const m = typeof e === "string" && /^\D*(\d+)\D+(\d+)\D*$/.exec(e);  // "0->2", "(0, 2)"
  if (m) return `${m[1]}→${m[2]}`;
  if (e && typeof e === "object") return `${e.from ?? e[0]}→${e.to ?? e[1]}`;
  return String(e);
}

function applyAlpha(state, ev) {
  const p = ev.payload || {};
  const cells = p.cells || {};
  const frame = { epoch: p.epoch ?? null, step: p.step ?? null, seq: ev.seq };
  const index = state.alpha.frames.length;
  state.alpha.frames.push(frame);
  for (const [ct, c] of Object.entries(cells)) {
    if (!Array.isArray(c.alpha) || !c.alpha.length) continue;
    let cell = state.alpha.cells[ct];
    if (!cell) {
      cell = state.alpha.cells[ct] = { ops: [], edges: [], weights: [], entropy: [], share: [], frameIndex: [] };
    }
    const weights = rowWeights(c.alpha);
    cell.ops = c.ops || cell.ops || weights[0].map((_, k) => `op${k}`);
    cell.edges = (c.edges || cell.edges || weights.map((_, k) => k)).map(edgeLabel);
    cell.weights.push(weights);
    cell.entropy.push(Array.isArray(c.entropy) && c.entropy.length === weights.length ? c.entropy : rowEntropy(weights));
    const given = p.param_free_share && p.param_free_share[ct];
    cell.share.push(typeof given === "number" ? given : paramFreeArgmaxShare(weights, cell.ops));
    cell.frameIndex.push(index);
  }
}

// Fold one event into the state; returns its kind, or null when it was already seen (SSE replays overlap).
export function applyEvent(state, ev) {
  if (!ev || typeof ev.seq !== "number" || ev.seq <= state.lastSeq) return null;
  state.lastSeq = ev.seq;
  const p = ev.payload || {};
  switch (ev.kind) {
    case "alpha": applyAlpha(state, ev); break;
    case "metric":
      state.metrics.push({ ...p, seq: ev.seq });
      if (p.stage === "retrain" && typeof p.epoch === "number") state.retrainEpochs = Math.max(state.retrainEpochs, p.epoch + 1);
      break;
    case "genotype": state.genotypes.push({ epoch: p.epoch ?? null, genotype: p.genotype || p }); break;
    case "candidate": if (p.final !== false) state.candidates.push(p); break;
    case "evaluation": state.evaluation = p; state.evaluations.push(p); break;
    case "status": state.status = p; if (p.state === "running" && p.stage) state.stage = p.stage; break;
    case "progress": state.progress = p; break;
    case "log": state.logs.push({ ...p, time: ev.time, seq: ev.seq }); if (state.logs.length > 200) state.logs.shift(); break;
    default: break;
  }
  return ev.kind;
}

// The progress line of the stage now running, counting epochs from 1: {text, fraction}; fraction null is "no
// measure" (an indeterminate bar), so the search's 100% is never shown while the retrain or the evaluation runs.
// `run` is the API's run (its config gives the retrain's epochs); `terminal` says the run has ended.
export function progressLine(state, run, terminal = false) {
  const p = state.progress || {};
  const stage = state.stage || p.stage || null;
  const cfg = run.config || {};
  // The search's own last word (a `status` event succeeded or failed) ends the line before the worker's status does.
  const own = state.status && ["succeeded", "failed"].includes(state.status.state) ? state.status.state : null;
  if (terminal || own) {
    const ok = terminal ? run.status === "succeeded" : own === "succeeded";
    return { text: ok ? "finished" : [stage, terminal ? run.status : own].filter(Boolean).join(" · "), fraction: ok ? 1 : null };
  }
  if (stage === "search" || (!stage && state.progress)) {
    if (typeof p.fraction !== "number") {
      // A discrete search writes no progress events: its trials are its count.
      const n = state.candidates.length;
      return { text: n ? `search · trial ${n}` : "search", fraction: null };
    }
    const epoch = p.epoch != null && p.epochs ? `epoch ${Math.min(p.epoch + 1, p.epochs)}/${p.epochs}` : "";
    return { text: ["search", epoch, `${Math.round(p.fraction * 100)}%`].filter(Boolean).join(" · "), fraction: p.fraction };
  }
  if (stage === "retrain") {
    const epochs = (cfg.retrain || {}).epochs;
    if (!epochs) return { text: "retrain", fraction: null };
    const done = Math.min(state.retrainEpochs, epochs);
    return { text: `retrain · epoch ${Math.min(done + 1, epochs)}/${epochs}`, fraction: done / epochs };
  }
  if (stage) return { text: stage, fraction: null };  // decode, evaluate: short, with no count of their own
  return { text: "", fraction: run.progress || 0 };  // not started yet
}

export function applyEvents(state, events) {
  const kinds = new Set();
  for (const ev of events) {
    const k = applyEvent(state, ev);
    if (k) kinds.add(k);
  }
  return kinds;
}

export function latestGenotype(state) {
  return state.genotypes.length ? state.genotypes[state.genotypes.length - 1].genotype : null;
}

// Index of the alpha frame of `epoch` (the last one within it), or the latest frame at or before it.
export function frameAtEpoch(state, epoch) {
  let found = -1;
  state.alpha.frames.forEach((f, i) => { if (f.epoch !== null && f.epoch <= epoch) found = i; });
  return found;
}

// The newest evaluation that carries precision-recall curves.
export function prEvaluation(state) {
  return [...state.evaluations].reverse().find((e) => e.curves || e.pr || e.pr_curves) || null;
}
