// A page's view state in the address bar (#/route?key=value...), so that a view can be shared or bookmarked and the
// back button returns to it. Pages read their state from the params the router hands them (a shared URL opened in
// a fresh tab is the same view) and write it back here:
// - `push`: a step the back button should undo (a tab, a filter, a sort, the colour scale) -> a history entry;
// - `replace`: a continuous control (the epoch slider while it moves) -> the current entry is updated in place.
// Neither fires `hashchange`, so the page is not rendered again; going back or forward does fire it, and the
// router renders the page from the restored params (app.js).

function hashOf(route, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return `${route}${s ? `?${s}` : ""}`;
}

export function currentRoute() {
  return (location.hash || "#/experiments").split("?")[0];
}

export function currentParams() {
  return Object.fromEntries(new URLSearchParams(location.hash.split("?")[1] || ""));
}

// Params equal to their page's default are left out of the URL, so the plain route and the default view match.
export function withoutDefaults(params, defaults = {}) {
  return Object.fromEntries(Object.entries(params).filter(([k, v]) => v !== undefined && v !== null && v !== ""
    && String(v) !== String(defaults[k] ?? "")));
}

// The URL with `changes` merged into the current params; `{key: null}` removes one.
export function urlWith(changes, defaults = {}) {
  return `${location.pathname}${location.search}${hashOf(currentRoute(), withoutDefaults({ ...currentParams(), ...changes }, defaults))}`;
}

function write(method, changes, defaults) {
  const url = urlWith(changes, defaults);
  if (url === `${location.pathname}${location.search}${location.hash}`) return;
  history[method]({ nasforge: true }, "", url);
}

export const push = (changes, defaults) => write("pushState", changes, defaults);
export const replace = (changes, defaults) => write("replaceState", changes, defaults);

// Navigate to another view (a new page render): the router sees the hash change.
export function go(route, params = {}, defaults = {}) {
  location.hash = hashOf(route, withoutDefaults(params, defaults));
}

