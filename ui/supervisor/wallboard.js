// What the wallboard shows, worked out from the live queue views (no DOM here).
//
// A queue view is the payload of `queues.updated` (callcenter/queues/schemas.py QueueView):
// callers waiting (with `since`), agents per queue, today's KPIs (their registry definitions
// come in the snapshot only), the server's alarms and the queue's thresholds (`targets`).
// Waits tick on the client from `since`, against the server's clock (`ServerClock`), so a
// caller crossing the longest-wait threshold raises the alarm without waiting for the next
// update.

/** The server's clock as seen from here: the offset measured when a snapshot arrived. */
export class ServerClock {
  constructor() {
    this.offsetMs = 0;
  }

  /** `serverIso` is the snapshot's `at`; `sentAt`/`receivedAt` bracket the request. */
  sync(serverIso, sentAt, receivedAt) {
    const server = Date.parse(serverIso);
    if (!Number.isFinite(server)) return;
    this.offsetMs = server - (sentAt + receivedAt) / 2;
  }

  now() {
    return Date.now() + this.offsetMs;
  }
}

export function parseTime(iso) {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/** Seconds from `iso` to `nowMs` (null when `iso` is unknown), never negative. */
export function secondsSince(iso, nowMs) {
  const at = parseTime(iso);
  return at === null ? null : Math.max(0, (nowMs - at) / 1000);
}

/** 75 → "1:15", 3725 → "1:02:05"; null → "—". */
export function formatDuration(totalSeconds) {
  if (totalSeconds === null || totalSeconds === undefined || !Number.isFinite(totalSeconds)) {
    return "—";
  }
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** A KPI value as the tile shows it, by the registry's unit. */
export function formatKpi(value, unit, locale) {
  if (value === null || value === undefined) return "—";
  if (unit === "seconds") return formatDuration(value);
  if (unit === "percent") {
    return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(value)} %`;
  }
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(value);
}

/** `Local/101@agents;1`, `PJSIP/101-00000a`, `SIP/101` and `101` all give `101`
 * (the same rule as callcenter/calls/agents.py `extension_of`). */
export function extensionOf(interfaceName) {
  const text = String(interfaceName || "").trim();
  const match = /^(?:[A-Za-z0-9_]+\/)?([^@/;-]+)/.exec(text);
  return match ? match[1] : text;
}

export function queueKey(view) {
  return `${view.pbx}\u0000${view.queue}`;
}

/** The longest wait of the callers waiting now, in seconds (null when nobody waits). */
export function longestWait(view, nowMs) {
  let longest = null;
  for (const caller of view.waiting || []) {
    const wait = secondsSince(caller.since, nowMs) ?? caller.wait_s ?? null;
    if (wait !== null && (longest === null || wait > longest)) longest = wait;
  }
  return longest;
}

/**
 * The queue's alarms now, each {kind, ...figures} for its text: the longest wait against
 * `targets.alarm_longest_wait_s` (ticking here), the service level and "no agent" as the
 * server judged them at the view's time (they change only with events).
 */
export function alarmsOf(view, nowMs) {
  const alarms = [];
  const targets = view.targets || {};
  const limit = targets.alarm_longest_wait_s;
  const longest = longestWait(view, nowMs);
  if (limit !== null && limit !== undefined && longest !== null && longest >= limit) {
    alarms.push({ kind: "longest_wait", wait: longest, limit });
  }
  const server = new Set(view.alarms || []);
  if (server.has("service_level")) {
    const level = view.kpis && view.kpis.service_level ? view.kpis.service_level.value : null;
    alarms.push({ kind: "service_level", value: level, limit: targets.alarm_service_level_pct });
  }
  if (server.has("no_agent")) alarms.push({ kind: "no_agent" });
  return alarms;
}

export const AGENT_STATES = ["in_call", "ringing", "unavailable", "paused", "idle"];
const STATE_RANK = Object.fromEntries(AGENT_STATES.map((state, index) => [state, index]));

/** How many agents of the queue are in each state. */
export function agentCounts(view) {
  const counts = Object.fromEntries(AGENT_STATES.map((state) => [state, 0]));
  for (const agent of view.agents || []) {
    if (agent.state in counts) counts[agent.state] += 1;
  }
  return counts;
}

/**
 * One entry per agent interface across the queues shown: what they do (their calls and
 * device are the same in every queue; a pause is per queue), and their memberships.
 */
export function agentsAcross(views) {
  const byInterface = new Map();
  for (const view of views) {
    for (const agent of view.agents || []) {
      let entry = byInterface.get(agent.interface);
      if (!entry) {
        entry = {
          interface: agent.interface,
          extension: extensionOf(agent.interface),
          name: agent.name || "",
          state: agent.state,
          since: agent.since,
          call: agent.call,
          pauseReason: "",
          pausedSince: null,
          memberships: [],
        };
        byInterface.set(agent.interface, entry);
      }
      if (!entry.name && agent.name) entry.name = agent.name;
      if (STATE_RANK[agent.state] < STATE_RANK[entry.state]) {
        entry.state = agent.state;
        entry.since = agent.since;
        entry.call = agent.call;
      }
      if (agent.paused && !entry.pauseReason) {
        entry.pauseReason = agent.pause_reason || "";
        entry.pausedSince = agent.paused_since;
      }
      entry.memberships.push({ pbx: view.pbx, queue: view.queue, paused: Boolean(agent.paused) });
    }
  }
  const agents = [...byInterface.values()];
  for (const agent of agents) {
    agent.paused = agent.memberships.some((m) => m.paused);
    agent.pausedEverywhere = agent.memberships.every((m) => m.paused);
  }
  return agents.sort(
    (a, b) =>
      STATE_RANK[a.state] - STATE_RANK[b.state] ||
      (a.name || a.extension).localeCompare(b.name || b.extension) ||
      a.interface.localeCompare(b.interface),
  );
}

/** Every caller waiting in the queues shown, the longest waiting first. */
export function waitingAcross(views) {
  const callers = [];
  for (const view of views) {
    for (const caller of view.waiting || []) callers.push({ ...caller, queue: view.queue });
  }
  return callers.sort(
    (a, b) => (parseTime(a.since) ?? 0) - (parseTime(b.since) ?? 0) || a.position - b.position,
  );
}
