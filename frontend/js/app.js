// The single-page UI's shell: the token (pasted, or handed over as #token=... by `make run`), and the hash router.
import { api, getToken, setToken } from "./api.js";
import { errorBox } from "./dom.js";

const ROUTES = [
  [/^#\/experiments\/(\d+)$/, "experiment"],
  [/^#\/runs\/(\d+)$/, "run"],
  [/^#\/new$/, "new"],
  [/^#\/compare$/, "compare"],
  [/^#\/experiments$/, "experiments"],
];

let cleanup = null;

function takeTokenFromUrl() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  // Out of the address bar and the history at once: the token is a password.
  history.replaceState(null, "", `${location.pathname}${location.search}#/experiments`);
}

async function showWho() {
  const who = document.getElementById("whoami");
  const out = document.getElementById("sign-out");
  const input = document.getElementById("token-input");
  const signIn = document.querySelector("#token-form button[type=submit]");
  const show = (signedIn) => { out.hidden = !signedIn; input.hidden = signedIn; signIn.hidden = signedIn; };
  if (!getToken()) { who.textContent = "not signed in"; show(false); return; }
  try {
    const me = await api("/api/users/me");
    who.textContent = `${me.user ? me.user.name : "token"} (${me.scopes.join(", ")})`;
    show(true);
  } catch (err) {
    who.textContent = err.status === 401 ? "token rejected" : "API unreachable";
    show(false);
  }
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
  takeTokenFromUrl();
  const hash = location.hash.split("?")[0] || "#/experiments";
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  let page = "experiments", arg = null;
  for (const [re, name] of ROUTES) {
    const m = re.exec(hash);
    if (m) { page = name; arg = m[1] ? Number(m[1]) : null; break; }
  }
  if (cleanup) { try { cleanup(); } catch { /* a page that failed to start has nothing to stop */ } cleanup = null; }
  const root = document.getElementById("page");
  root.replaceChildren();
  root.dataset.page = page;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
  try {
    const mod = await import(`./pages/${page}.js`);
    cleanup = (await mod.render(root, { id: arg, params })) || null;
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
takeTokenFromUrl();
showWho();
route();
showServices();
setInterval(showServices, 10000);

