// Following a run live: the stored history first, then the SSE stream (resumed by the browser with
// Last-Event-ID), with polling as the fallback; redraws are throttled so a burst of events costs one frame.
import { allEvents, api, streamUrl } from "./api.js";
import { names } from "./names.js";

export const MAX_REDRAWS_PER_S = 5;

// Calls `fn` at most once per `ms`; the last call in a burst always runs (trailing), so nothing is left stale.
// The gap is counted from the end of the previous run: a slow redraw still leaves the page time to breathe.
export function throttle(fn, ms = 1000 / MAX_REDRAWS_PER_S) {
  let last = -Infinity, timer = null;
  const wrapped = () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(() => {
      timer = null;
      try { fn(); } finally { last = performance.now(); }
    }, wait);
  };
  wrapped.cancel = () => { clearTimeout(timer); timer = null; };
  return wrapped;
}

export class RunFollower {
  // onEvents(events) gets every event once, in seq order; onEnd(info) when the run has finished.
  constructor(runId, { onEvents, onEnd, onError }) {
    Object.assign(this, { runId, onEvents, onEnd: onEnd || (() => {}), onError: onError || (() => {}) });
    this.lastSeq = 0;
    this.closed = false;
    this.source = null;
    this.poll = null;
    this.reopened = false;
  }

  deliver(events) {
    const fresh = events.filter((e) => e.seq > this.lastSeq).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return;
    this.lastSeq = fresh[fresh.length - 1].seq;
    this.onEvents(fresh);
  }

  async start() {
    try {
      this.deliver(await allEvents(this.runId));
    } catch (err) {
      this.onError(err);
    }
    if (!this.closed) await this.open();
    return this;
  }

  async open() {
    let url;
    try {
      url = await streamUrl(this.runId, this.lastSeq);
    } catch (err) {
      this.onError(err);
      if (!this.closed) this.startPolling();
      return;
    }
    if (this.closed) return;
    const src = new EventSource(url);
    this.source = src;
    src.onmessage = (msg) => {
      this.reopened = false;  // the stream works again: a later expiry may reopen once more
      try { this.deliver([JSON.parse(msg.data)]); } catch (err) { this.onError(err); }
    };
    src.addEventListener("end", (msg) => {
      src.close();
      this.onEnd(JSON.parse(msg.data || "{}"));
    });
    src.onerror = () => {
      // CLOSED means the browser gave up (an HTTP error, not a dropped connection). The first time, the ticket
      // has likely expired during a reconnect: open again with a fresh one; after that, poll instead.
      if (src.readyState !== EventSource.CLOSED || this.closed) return;
      if (this.source === src && !this.reopened) {
        this.reopened = true;
        this.open();
      } else this.startPolling();
    };
  }

  startPolling() {
    if (this.poll) return;
    this.poll = setInterval(async () => {
      try {
        this.deliver(await allEvents(this.runId, { since: this.lastSeq }));
        const [run, { terminal }] = await Promise.all([api(`/api/runs/${this.runId}`), names()]);
        if (terminal.has(run.status)) {
          this.stopPolling();
          this.onEnd({ status: run.status, last_seq: this.lastSeq });
        }
      } catch (err) { this.onError(err); }
    }, 2000);
  }

  stopPolling() { clearInterval(this.poll); this.poll = null; }

  close() {
    this.closed = true;
    if (this.source) this.source.close();
    this.stopPolling();
  }
}
