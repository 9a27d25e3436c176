// The API over HTTP: bearer token from localStorage, JSON in and out, errors with the field paths the API names.

const TOKEN_KEY = "nasforge.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token.trim());
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(messageOf(status, body));
    this.status = status;
    this.body = body;
    this.fields = fieldErrors(body);
  }
}

function messageOf(status, body) {
  if (body && typeof body.message === "string" && body.message) return body.message;
  if (body && typeof body.detail === "string") return body.detail;
  if (status === 401) return "not signed in: paste an API token (top right)";
  return `request failed with HTTP ${status}`;
}

// [{loc: ["body", "space", "depth"], msg}] or "data.path: ..." -> [{path: "space.depth", msg}].
// Model-level messages often start with the field they are about ("cells.up: macro ... needs"): keep it.
export function fieldErrors(body) {
  const out = [];
  const detail = body && body.detail;
  const items = Array.isArray(detail) ? detail : typeof detail === "string" ? [{ loc: [], msg: detail }] : [];
  for (const e of items) {
    const loc = (e.loc || []).filter((p, i) => !(i === 0 && (p === "body" || p === "query" || p === "path")));
    let msg = String(e.msg || "").replace(/^Value error, /, "");
    const head = /^([A-Za-z_][\w\[\].]*): /.exec(msg);
    const base = loc.map(String).join(".");
    const paths = [];
    if (head) {
      const rel = head[1].replace(/\[(\d+)\]/g, ".$1");
      if (base) paths.push(`${base}.${rel}`);
      paths.push(rel);
      msg = msg.slice(head[0].length);
    }
    paths.push(base);
    out.push({ paths, path: paths[0], msg });
  }
  return out;
}

export async function api(path, { method = "GET", body, query, raw = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
  }
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (raw) {
    if (!res.ok) throw new ApiError(res.status, null);
    return res;
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// All events of a run after `since`, page by page (the API caps a page).
export async function allEvents(runId, { since = 0, kind } = {}) {
  const out = [];
  for (;;) {
    const page = await api(`/api/runs/${runId}/events`, { query: { since, kind, limit: 5000 } });
    const items = Array.isArray(page) ? page : page.items || [];
    out.push(...items);
    if (items.length < 5000) return out;
    since = items[items.length - 1].seq;
  }
}

// EventSource cannot send headers, and a token in a URL ends up in access logs: the stream is opened with a
// ticket the API makes for that one path, valid about a minute (the browser's reconnects reuse it meanwhile).
export async function streamUrl(runId, since) {
  const path = `/api/runs/${runId}/stream`;
  const { ticket } = await api("/api/streams/ticket", { method: "POST", body: { path } });
  const url = new URL(path, location.origin);
  url.searchParams.set("since", String(since));
  url.searchParams.set("ticket", ticket);
  return url.toString();
}
