// What the signed-in token may do, from GET /api/users/me (its user and scopes), asked once per token: controls
// the token cannot use are disabled with a tooltip naming the missing scope, instead of failing after the click.
import { api, getToken } from "./api.js";

let cached = { token: null, me: null };

// {user, scopes, run_id}; a missing or refused token gives no scopes and `error` says why.
export function me() {
  const token = getToken();
  if (cached.token !== token || !cached.me) {
    const none = (error) => ({ user: null, scopes: [], run_id: null, error });
    const pending = token ? api("/api/users/me").catch((err) => {
      cached = { token: null, me: null };  // asked again next time: the API may be back, the token renewed
      return none(err.status === 401 ? "token rejected" : "API unreachable");
    }) : Promise.resolve(none("not signed in"));
    cached = { token, me: pending };
  }
  return cached.me;
}

// Why `who` may not change a thing owned by `ownerId` with `scope`, or "" when it may (backend/api/deps.py:
// writers change their own experiments, admins any).
export function refusal(who, scope, ownerId) {
  if (!who.scopes.includes(scope) && !who.scopes.includes("admin")) {
    return `needs the ${scope} scope; this token has ${who.scopes.length ? who.scopes.join(", ") : "no scope"}`;
  }
  if (ownerId != null && !who.scopes.includes("admin") && who.user && who.user.id !== ownerId) {
    return "only the experiment's owner or an admin can change it";
  }
  return "";
}

// Disable `control` (a button, or a form's submit buttons) when `who` may not use it, saying why in its tooltip.
export function guard(control, who, scope, ownerId) {
  const why = refusal(who, scope, ownerId);
  const targets = control.tagName === "FORM" ? [...control.querySelectorAll("button, input, select")] : [control];
  for (const t of targets) {
    if (why) { t.disabled = true; t.title = why; t.dataset.refused = scope; }
  }
  if (why && control.tagName !== "FORM") control.setAttribute("aria-disabled", "true");
  return !why;
}
