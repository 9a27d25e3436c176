// The names several tiers share (methods, event kinds, status states, run statuses), fetched once from
// /api/schema/names: each is defined once (nas_core, backend/models.py) and never restated in the UI.
import { api } from "./api.js";

let pending = null;

// {methods, discrete_methods, event_kinds, status_states, run_statuses, terminal, retriable, discrete, ...}
export function names() {
  if (!pending) {
    pending = api("/api/schema/names").then((n) => ({
      ...n,
      terminal: new Set(n.terminal_statuses),
      retriable: new Set(n.retriable_statuses),
      discrete: new Set(n.discrete_methods),
    }));
    pending.catch(() => { pending = null; });  // a failed fetch is tried again by the next caller
  }
  return pending;
}

// The headline IoU as the server states it (backend/headline.py): the value with what it is, or "no IoU yet".
// The server's `background_only` flag (a foreground IoU near zero) is said beside it, wherever an IoU is shown.
export const BACKGROUND_ONLY = "predicts only background";

export function headlineText(h) {
  if (!h || typeof h.value !== "number") return h && h.label ? h.label : "no IoU yet";
  return `${h.label}: ${h.value.toFixed(3)}${h.background_only ? ` · ⚠ ${BACKGROUND_ONLY}` : ""}`;
}
