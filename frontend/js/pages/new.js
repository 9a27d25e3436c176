// New experiment and launch: the form built from the schema; the API's validation errors land next to their field.
// It starts from the schema's defaults, a copy of an experiment (?clone=ID), or a partial search of one block of
// a measured hand-designed run (?partial=RUN&block=NAME, from its "where to search first" diagram).
import { guard, me } from "../access.js";
import { api, ApiError } from "../api.js";
import { partialSearchOf } from "../block_diagram.js";
import { el, errorBox } from "../dom.js";
import { SchemaForm } from "../form.js";

export async function render(root, { params }) {
  let schema, initial;
  try {
    schema = await api("/api/schema/experiment");
    const from = Number(params.get("clone")) || null;
    const partial = Number(params.get("partial")) || null;
    if (partial) {
      const [run, measured] = await Promise.all([api(`/api/runs/${partial}`), api(`/api/runs/${partial}/sensitivity`)]);
      if (!measured.result) throw new Error(`run ${partial} has no 'where to search first' ranking yet (${measured.state})`);
      initial = partialSearchOf(schema.default, run, measured.result, params.get("block") || measured.result.first);
    } else {
      initial = from ? { ...(await api(`/api/experiments/${from}`)).config } : { ...schema.default, name: "" };
      if (from) initial.name = `${initial.name} (copy)`;
    }
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  const form = new SchemaForm(schema, initial);
  const general = el("div", { class: "form-error", role: "alert" });
  const submit = el("button", { type: "submit", class: "primary" }, "Create and launch");
  const createOnly = el("button", { type: "button" }, "Create only");
  // novalidate: the API is the one validator, so the browser must not block a submit the API would explain.
  const node = el("form", { novalidate: true, id: "experiment-form" }, form.root, general,
                  el("div", { class: "toolbar sticky" }, submit, createOnly));
  // A read token may fill in the form but not create: both buttons say so (js/access.js).
  me().then((who) => { guard(submit, who, "write"); guard(createOnly, who, "write"); });

  async function save(andLaunch) {
    general.textContent = "";
    form.clearErrors();
    submit.disabled = createOnly.disabled = true;
    try {
      const exp = await api("/api/experiments", { method: "POST", body: form.value });
      if (!andLaunch) { location.hash = `#/experiments/${exp.id}`; return; }
      try {
        const res = await api(`/api/experiments/${exp.id}/runs`, { method: "POST", body: {} });
        // A study over seeds (repeats) is read on its experiment page; one search on its run page.
        location.hash = res.repeats && res.repeats.length ? `#/experiments/${exp.id}?launched=${res.repeats.length}` : `#/runs/${res.run.id}`;
      } catch (err) {
        general.replaceChildren(`Experiment #${exp.id} was created, but the launch failed: ${err.message} `,
                                el("a", { href: `#/experiments/${exp.id}` }, "open it"));
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        form.showErrors(err.fields, general);
        if (!general.textContent) general.textContent = "Fix the fields marked in red.";
      } else {
        general.replaceChildren(errorBox(err));
      }
    } finally {
      submit.disabled = createOnly.disabled = false;
    }
  }
  node.addEventListener("submit", (ev) => { ev.preventDefault(); save(true); });
  createOnly.addEventListener("click", () => save(false));
  root.append(el("h1", {}, "New experiment"),
    initial.space && initial.space.search_blocks && initial.space.search_blocks.length && params.get("partial")
      ? el("p", { class: "muted", id: "partial-of" }, `A partial search of ${initial.space.search_blocks.join(", ")} in run `,
        el("a", { href: `#/runs/${params.get("partial")}` }, params.get("partial")), "'s network, prefilled from its ranking.") : "",
    el("p", { class: "muted" }, "Every field is the experiment file's field; defaults are the schema's. The search starts as soon as it is created."),
    node);
}
