// The single-page UI's shell: the token (pasted, or handed over as #token=... by `make run`), and the hash router.
import { me } from "./access.js";
import { getToken, setToken } from "./api.js";
import { errorBox } from "./dom.js";

const ROUTES = [
  [/^#\/experiments\/(\d+)$/, "experiment"],
  [/^#\/runs\/(\d+)$/, "run"],
  [/^#\/new$/, "new"],
  [/^#\/compare$/, "compare"],
  [/^#\/experiments$/, "experiments"],
];

let cleanup = null;
let routed = 0;

// True when the address held a token (now stored): the header must then show the new identity at once.
function takeTokenFromUrl() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return false;
  setToken(decodeURIComponent(m[1]));
  // Out of the address bar and the history at once: the token is a password.
  history.replaceState(null, "", `${location.pathname}${location.search}#/experiments`);
  return true;
}

async function showWho() {
  const who = document.getElementById("whoami");
  const out = document.getElementById("sign-out");
  const input = document.getElementById("token-input");
  const signIn = document.querySelector("#token-form button[type=submit]");
  const show = (signedIn) => { out.hidden = !signedIn; input.hidden = signedIn; signIn.hidden = signedIn; };
  if (!getToken()) { who.textContent = "not signed in"; show(false); return; }
  const token = getToken();
  const info = await me();
  if (token !== getToken()) return;  // signed in again meanwhile: that call writes the header
  who.textContent = info.error || `${info.user ? info.user.name : "token"} (${info.scopes.join(", ")})`;
  show(!info.error);
}

// Under `make run`, /api/health/services says how often supervisord restarted each service; the header shows it.
async function showServices() {
  const el = document.getElementById("services");
  let body;
  try {
    const res = await fetch("/api/health/services", { headers: { Accept: "application/json" } });
    body = await res.json();
  } catch { el.hidden = true; return; }
  const services = body && body.detail;
  if (!services) { el.hidden = true; return; }
  const entries = Object.entries(services).filter(([name]) => name !== "service-events");
  const restarted = entries.filter(([, s]) => s.restarts > 0);
  const down = entries.filter(([, s]) => s.state !== "RUNNING");
  el.textContent = down.length ? `down: ${down.map(([n, s]) => `${n} (${s.state.toLowerCase()})`).join(", ")}`
    : restarted.length ? `restarts: ${restarted.map(([n, s]) => `${n} ${s.restarts}`).join(", ")}` : "services ok";
  el.title = entries.map(([n, s]) => `${n}: ${s.state}, ${s.restarts} restart(s)`).join("\n");
  el.className = `services${down.length ? " down" : restarted.length ? " restarted" : ""}`;
  el.hidden = false;
}

async function route() {
  if (takeTokenFromUrl()) showWho();
  const hash = location.hash.split("?")[0] || "#/experiments";
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  let page = "experiments", arg = null;
  for (const [re, name] of ROUTES) {
    const m = re.exec(hash);
    if (m) { page = name; arg = m[1] ? Number(m[1]) : null; break; }
  }
  if (cleanup) { try { cleanup(); } catch { /* a page that failed to start has nothing to stop */ } cleanup = null; }
  // Each render gets a box of its own: a render still loading when the next route starts (back pressed twice)
  // finishes into a detached box instead of beside the new page.
  const main = document.getElementById("page");
  const root = document.createElement("div");
  main.replaceChildren(root);
  main.dataset.page = page;
  const mine = ++routed;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
  try {
    const mod = await import(`./pages/${page}.js`);
    const stop = (await mod.render(root, { id: arg, params })) || null;
    if (mine === routed) cleanup = stop;
    else if (stop) stop();  // superseded while it loaded: stop its live updates now
  } catch (err) {
    console.error(err);
    root.append(errorBox(err));
  }
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token-input");
  setToken(input.value);
  input.value = "";
  showWho();
  route();
});
document.getElementById("sign-out").addEventListener("click", () => { setToken(""); showWho(); route(); });
window.addEventListener("hashchange", route);
// Another tab signed in or out: this one follows (same token store).
window.addEventListener("storage", (ev) => { if (ev.key === null || ev.key === "nasforge.token") { showWho(); route(); } });
takeTokenFromUrl();
showWho();
route();
showServices();
setInterval(showServices, 10000);

