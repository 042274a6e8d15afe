// The live event stream with resume (see callcenter/realtime/api.py):
//
//   GET /api/realtime/snapshot → {last_ids, calls, user_id}
//   open ws(s)://host/ws, send {"type":"resume","last_ids":…}, receive {"type":"ready"},
//   then numbered events {id, topic, type, …}.
//
// The client tracks the last event id per topic. When the link breaks it reconnects with
// jittered exponential backoff and resumes from those ids, so nothing published meanwhile
// is lost. {"type":"reload"} or close code 4000 means the server no longer has the history:
// fetch a fresh snapshot and start over. Close code 4401 means the session is gone.
// A heartbeat goes out every `heartbeatMs`; if nothing at all arrives for 2.5× that, the
// link is treated as dead and replaced.
//
// Events may still repeat (a snapshot can already reflect an event that is then replayed):
// consumers must apply them idempotently, keyed by call id.

import { api, loginUrl } from "./api.js";

export const CLOSE_RELOAD = 4000;
export const CLOSE_BAD_REQUEST = 4400;
export const CLOSE_UNAUTHENTICATED = 4401;

export const Status = Object.freeze({
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
});

function parseId(id) {
  const text = String(id);
  const dash = text.lastIndexOf("-");
  if (dash < 0) return null;
  const seq = Number(text.slice(dash + 1));
  return Number.isInteger(seq) ? { epoch: text.slice(0, dash), seq } : null;
}

/** True when event id `next` comes after `seen` in the same stream (or the epoch changed). */
export function isAfter(next, seen) {
  if (!seen) return true;
  const a = parseId(next);
  const b = parseId(seen);
  if (!a || !b || a.epoch !== b.epoch) return true;
  return a.seq > b.seq;
}

function defaultWsUrl() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/ws`;
}

const noop = () => {};

export class EventClient {
  /**
   * @param {object} options
   * @param {(calls: object[], snapshot: object) => void} [options.onSnapshot]
   * @param {(event: object) => void} [options.onEvent]
   * @param {(status: "connected"|"reconnecting"|"offline") => void} [options.onStatus]
   * @param {() => void} [options.onUnauthorized]  default: go to /login?next=…
   * @param {() => Promise<object>} [options.fetchSnapshot]
   * @param {string} [options.wsUrl]
   * @param {number} [options.heartbeatMs=15000]
   * @param {number} [options.backoffBaseMs=500]
   * @param {number} [options.backoffMaxMs=15000]
   * @param {number} [options.offlineAfter=3]  failed attempts before the status says offline
   */
  constructor(options = {}) {
    this.onSnapshot = options.onSnapshot || noop;
    this.onEvent = options.onEvent || noop;
    this.onStatus = options.onStatus || noop;
    this.onUnauthorized =
      options.onUnauthorized || (() => window.location.assign(loginUrl()));
    this._fetchSnapshot =
      options.fetchSnapshot || (() => api.get(options.snapshotUrl || "/api/realtime/snapshot"));
    this._wsUrl = options.wsUrl || defaultWsUrl();
    this._heartbeatMs = options.heartbeatMs ?? 15000;
    this._silenceMs = this._heartbeatMs * 2.5;
    this._backoffBaseMs = options.backoffBaseMs ?? 500;
    this._backoffMaxMs = options.backoffMaxMs ?? 15000;
    this._offlineAfter = options.offlineAfter ?? 3;

    this._status = null;
    this._lastIds = {};
    this._userId = null;
    this._ws = null;
    this._ready = false;
    this._reloadAsked = false;
    this._attempts = 0;
    this._stopped = true;
    this._retryTimer = null;
    this._retryAction = null;
    this._watchdog = null;
    this._beat = null;
    this._onOnline = () => this._retryNow();
    this._onOffline = () => this._setStatus(Status.OFFLINE);
  }

  /** Fetch the snapshot and connect. */
  start() {
    if (!this._stopped) return;
    this._stopped = false;
    window.addEventListener("online", this._onOnline);
    window.addEventListener("offline", this._onOffline);
    this._setStatus(Status.RECONNECTING);
    this._boot();
  }

  /** Close the link for good (no reconnect). */
  stop() {
    this._stopped = true;
    window.removeEventListener("online", this._onOnline);
    window.removeEventListener("offline", this._onOffline);
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(1000, "bye");
    this._setStatus(Status.OFFLINE);
  }

  /** Drop the current link and resume from the last ids right away. */
  reconnect() {
    if (this._stopped) return;
    this._drop();
    this._attempts = 0;
    this._schedule(() => this._open(), 0);
  }

  /** "connected" | "reconnecting" | "offline". */
  get status() {
    return this._status;
  }

  /** The last event id seen per topic (a copy). */
  get lastIds() {
    return { ...this._lastIds };
  }

  get userId() {
    return this._userId;
  }

  /** The live WebSocket, if any (for diagnostics and tests). */
  get socket() {
    return this._ws;
  }

  // --- internals -------------------------------------------------------------------------

  _setStatus(status) {
    if (status === this._status) return;
    this._status = status;
    try {
      this.onStatus(status);
    } catch (error) {
      console.error("onStatus failed", error);
    }
  }

  async _boot() {
    if (this._stopped) return;
    let snapshot;
    try {
      snapshot = await this._fetchSnapshot();
    } catch (error) {
      if (this._stopped) return;
      if (error && error.status === 401) {
        this._stopped = true;
        this._setStatus(Status.OFFLINE);
        return; // api.js already sends the browser to /login
      }
      this._retry(() => this._boot());
      return;
    }
    if (this._stopped) return;
    this._lastIds = { ...(snapshot.last_ids || {}) };
    this._userId = snapshot.user_id ?? null;
    try {
      this.onSnapshot(snapshot.calls || [], snapshot);
    } catch (error) {
      console.error("onSnapshot failed", error);
    }
    this._open();
  }

  _open() {
    if (this._stopped) return;
    let ws;
    try {
      ws = new WebSocket(this._wsUrl);
    } catch (error) {
      console.error("cannot open the event socket", error);
      this._retry(() => this._open());
      return;
    }
    this._ws = ws;
    this._ready = false;
    this._reloadAsked = false;
    ws.addEventListener("open", () => {
      if (ws !== this._ws) return;
      ws.send(JSON.stringify({ type: "resume", last_ids: this._lastIds }));
    });
    ws.addEventListener("message", (message) => this._onMessage(ws, message));
    ws.addEventListener("close", (event) => this._onClose(ws, event.code));
    // An "error" is always followed by "close"; the close handler decides what to do.
    this._kick(ws);
  }

  _onMessage(ws, message) {
    if (ws !== this._ws) return;
    this._kick(ws);
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      console.warn("ignoring a message that is not JSON");
      return;
    }
    if (!data || typeof data !== "object") return;
    switch (data.type) {
      case "ready":
        this._ready = true;
        this._attempts = 0;
        this._startHeartbeat(ws);
        this._setStatus(Status.CONNECTED);
        return;
      case "heartbeat":
        return;
      case "reload":
        this._reloadAsked = true;
        return;
      default:
        break;
    }
    if (data.id === undefined || !data.topic) return;
    if (!isAfter(data.id, this._lastIds[data.topic])) return; // already seen
    this._lastIds[data.topic] = String(data.id);
    try {
      this.onEvent(data);
    } catch (error) {
      console.error("onEvent failed for", data.type, error);
    }
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._ready = false;
    this._stopTimers();
    if (this._stopped) return;
    if (code === CLOSE_UNAUTHENTICATED) {
      this._stopped = true;
      this._setStatus(Status.OFFLINE);
      this.onUnauthorized();
      return;
    }
    if (code === CLOSE_RELOAD || code === CLOSE_BAD_REQUEST || this._reloadAsked) {
      this._reloadAsked = false;
      this._retry(() => this._boot());
      return;
    }
    this._retry(() => this._open());
  }

  /** Forget the current socket (its late callbacks are ignored) and close it. */
  _drop() {
    const ws = this._ws;
    this._ws = null;
    this._ready = false;
    this._stopTimers();
    if (ws) {
      try {
        ws.close(4001, "replaced");
      } catch {
        /* already closing */
      }
    }
  }

  /** Nothing arrived for too long: the link is dead even if the browser has not noticed. */
  _kick(ws) {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => {
      if (ws !== this._ws || this._stopped) return;
      this._drop();
      this._retry(() => this._open());
    }, this._silenceMs);
  }

  _startHeartbeat(ws) {
    clearInterval(this._beat);
    this._beat = setInterval(() => {
      if (ws === this._ws && ws.readyState === WebSocket.OPEN) {
        ws.send('{"type":"heartbeat"}');
      }
    }, this._heartbeatMs);
  }

  _retry(action) {
    this._attempts += 1;
    const offline =
      this._attempts >= this._offlineAfter || (navigator.onLine === false);
    this._setStatus(offline ? Status.OFFLINE : Status.RECONNECTING);
    const ceiling = Math.min(
      this._backoffMaxMs,
      this._backoffBaseMs * 2 ** Math.min(this._attempts - 1, 16),
    );
    // Jitter: somewhere between half and all of the ceiling, so a server restart is not
    // met by every browser at the same instant.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._schedule(action, delay);
  }

  _schedule(action, delay) {
    clearTimeout(this._retryTimer);
    this._retryAction = action;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._retryAction = null;
      if (!this._stopped) action();
    }, delay);
  }

  _retryNow() {
    if (this._stopped || !this._retryAction) return;
    const action = this._retryAction;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._retryAction = null;
    this._setStatus(Status.RECONNECTING);
    action();
  }

  _stopTimers() {
    clearTimeout(this._watchdog);
    clearInterval(this._beat);
    this._watchdog = null;
    this._beat = null;
  }

  _clearTimers() {
    this._stopTimers();
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._retryAction = null;
  }
}
