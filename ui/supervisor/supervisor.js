// The supervisors' wallboard: every queue live (tiles with today's KPIs and alarms), who
// waits, what each agent does, and the supervisor's actions on agents.
//
// Live through the resume protocol (ui/shared/event_client.js): the snapshot carries the
// whole board (`queues`, a BoardSnapshot), then each `queues.updated` event replaces one
// queue's view. Waits and "since" timers tick here every second from the views' times.
// `?tv=1` is the wall-TV mode (dark, big type, no buttons); `?queue=a&queue=b` shows only
// those queues.

import { api, ApiError } from "/ui/shared/api.js";
import { el } from "/ui/shared/dom.js";
import { EventClient } from "/ui/shared/event_client.js";
import { locale, mountLanguageSwitch, t } from "/ui/shared/i18n.js";
import {
  errorText as commonErrorText,
  mountLogout,
  signedInUser,
  startFailed,
  toaster,
} from "/ui/shared/page.js";
import {
  agentCounts,
  agentsAcross,
  alarmsOf,
  formatDuration,
  formatKpi,
  longestWait,
  queueKey,
  secondsSince,
  ServerClock,
  waitingAcross,
} from "/ui/supervisor/wallboard.js";

const TOAST_MS = 6000;
const RENDER_FALLBACK_MS = 100;
const SUPERVISOR_ROLES = new Set(["supervisor", "admin"]);
const DEFAULT_PAUSE_REASONS = ["lunch", "break", "training", "meeting", "other"];

const params = new URLSearchParams(window.location.search);
const tvMode = params.get("tv") === "1";
const onlyQueues = new Set(params.getAll("queue").filter(Boolean));

const wall = document.getElementById("wall");
const tilesBox = document.getElementById("tiles");
const noQueues = document.getElementById("no-queues");
const waitingRows = document.getElementById("waiting-rows");
const waitingNone = document.getElementById("waiting-none");
const agentRows = document.getElementById("agent-rows");
const agentsNone = document.getElementById("agents-none");
const legendList = document.getElementById("legend-list");
const connBox = document.getElementById("conn-status");
const connText = document.getElementById("conn-text");
const staleBanner = document.getElementById("stale");
const clockBox = document.getElementById("clock");
const toastBox = document.getElementById("toast");

const clock = new ServerClock();
/** @type {Map<string, object>} queue key → the latest QueueView */
const views = new Map();
/** @type {Map<string, QueueTile>} */
const tiles = new Map();
/** @type {Map<string, {row: HTMLElement, signature: string}>} agent interface → row */
const agentRowCache = new Map();
/** @type {Map<string, object>} KPI key → its registry definition */
const definitions = new Map();
const eventLog = []; // {id, type, queue} of the events applied, for diagnostics
const statusLog = [];
let connectionState = "reconnecting";
let everConnected = false;
let renderPending = false;
let pauseReasons = DEFAULT_PAUSE_REASONS;
let otherReason = "other";
let reasonMaxLength = 64;

// --- texts that depend on a value the server sends (literal keys, so the i18n test sees them)

const STATE_TEXT = {
  idle: () => t("supervisor.state.idle"),
  ringing: () => t("supervisor.state.ringing"),
  in_call: () => t("supervisor.state.in_call"),
  paused: () => t("supervisor.state.paused"),
  unavailable: () => t("supervisor.state.unavailable"),
};

const COUNT_TEXT = {
  idle: (count) => t("supervisor.count.idle", { count }),
  ringing: (count) => t("supervisor.count.ringing", { count }),
  in_call: (count) => t("supervisor.count.in_call", { count }),
  paused: (count) => t("supervisor.count.paused", { count }),
  unavailable: (count) => t("supervisor.count.unavailable", { count }),
};

const SPY_TEXT = {
  listen: {
    button: () => t("supervisor.action.listen"),
    done: (values) => t("supervisor.spy.listen", values),
  },
  whisper: {
    button: () => t("supervisor.action.whisper"),
    done: (values) => t("supervisor.spy.whisper", values),
  },
  barge: {
    button: () => t("supervisor.action.barge"),
    done: (values) => t("supervisor.spy.barge", values),
  },
};

/** A pause reason: the label of a configured code (`pause_reason.*`), else the free text. */
function reasonText(reason) {
  const key = `pause_reason.${reason}`;
  const label = t(key);
  return label === key ? reason : label;
}

function alarmText(alarm) {
  switch (alarm.kind) {
    case "longest_wait":
      return t("supervisor.alarm.longest_wait", {
        wait: formatDuration(alarm.wait),
        limit: formatDuration(alarm.limit),
      });
    case "service_level":
      return t("supervisor.alarm.service_level", {
        value: formatKpi(alarm.value, "percent", locale()),
        limit: formatKpi(alarm.limit, "percent", locale()),
      });
    default:
      return t("supervisor.alarm.no_agent");
  }
}

// --- small helpers -------------------------------------------------------------------------

/** A "since" timer: its text is refreshed every second by `tick()`. */
function timer(since, testid) {
  const node = el("span", { class: "timer", testid });
  if (since) node.dataset.since = since;
  node.textContent = formatDuration(secondsSince(since, clock.now()));
  return node;
}

function callerText(call) {
  if (!call) return "";
  const name = (call.caller_name || "").trim();
  const number = (call.caller_num || "").trim();
  if (name && number && name !== number) return `${name} (${number})`;
  return name || number || t("supervisor.caller.unknown");
}

function errorText(error) {
  if (error instanceof ApiError) {
    // Call control answers {code, message}; each code has a message (`control.error.*`).
    const detail = error.detail && typeof error.detail === "object" ? error.detail : {};
    if (detail.code) {
      const key = `control.error.${detail.code}`;
      const text = t(key, { message: detail.message || error.message });
      if (text !== key) return text;
    }
  }
  return commonErrorText(error);
}

const showToast = toaster(toastBox, TOAST_MS);

function toast(message, kind = "error") {
  showToast(message, kind);
}

function shownViews() {
  const all = [...views.values()];
  return onlyQueues.size ? all.filter((view) => onlyQueues.has(view.queue)) : all;
}

function agentLabel(agent) {
  return agent.name || agent.extension;
}

// --- a queue tile --------------------------------------------------------------------------

class QueueTile {
  constructor(view) {
    this.view = view;
    this.name = el("h2", { class: "tile__name", testid: "tile-name" });
    this.settingsButton = el("button", {
      type: "button",
      class: "btn tile__settings wall-actions",
      testid: "tile-settings",
      onclick: () => openSettings(this.view),
    });
    this.waiting = el("span", { class: "big__value", testid: "tile-waiting" });
    this.longest = el("span", { class: "big__value", testid: "tile-longest" });
    this.waitingLabel = el("span", { class: "big__label" });
    this.longestLabel = el("span", { class: "big__label" });
    this.alarms = el("ul", { class: "tile__alarms", testid: "tile-alarms", "aria-live": "polite" });
    this.kpis = el("dl", { class: "tile__kpis" });
    this.kpiItems = new Map();
    this.agents = el("p", { class: "tile__agents", testid: "tile-agents" });
    this.target = el("p", { class: "tile__agents", testid: "tile-target" });
    this.alarmSignature = null;
    this.locale = null;
    this.el = el(
      "article",
      { class: "tile", testid: "queue-tile", "data-queue": view.queue },
      el("div", { class: "tile__head" }, this.name, this.settingsButton),
      this.alarms,
      el(
        "div",
        { class: "tile__big" },
        el("div", { class: "big" }, this.waitingLabel, this.waiting),
        el("div", { class: "big" }, this.longestLabel, this.longest),
      ),
      this.kpis,
      this.agents,
      this.target,
    );
  }

  update(view) {
    this.view = view;
    this.name.textContent = view.queue;
    this.name.title = view.queue;
    this.settingsButton.textContent = t("supervisor.tile.settings");
    this.settingsButton.setAttribute(
      "aria-label",
      t("supervisor.tile.settings_for", { queue: view.queue }),
    );
    this.el.setAttribute("aria-label", t("supervisor.tile.label", { queue: view.queue }));
    this.waitingLabel.textContent = t("supervisor.tile.waiting");
    this.longestLabel.textContent = t("supervisor.tile.longest");
    this.waiting.textContent = String((view.waiting || []).length);
    this.updateKpis(view);
    const counts = agentCounts(view);
    this.agents.replaceChildren(
      ...Object.entries(counts)
        .filter(([state, count]) => count > 0 || state === "idle")
        .map(([state, count]) =>
          el("span", { "data-state": state }, COUNT_TEXT[state](count)),
        ),
    );
    this.target.textContent = t("supervisor.tile.target", {
      t: formatKpi(view.service_level_s, "calls", locale()),
    });
    this.alarmSignature = null;
    this.tick(clock.now());
  }

  updateKpis(view) {
    const kpis = Object.values(view.kpis || {});
    const wanted = new Set(kpis.map((kpi) => kpi.key));
    for (const [key, item] of this.kpiItems) {
      if (!wanted.has(key)) {
        item.box.remove();
        this.kpiItems.delete(key);
      }
    }
    let previous = null;
    for (const kpi of kpis) {
      let item = this.kpiItems.get(kpi.key);
      if (!item) {
        const formulaId = `kpi-${cssSafe(view.pbx)}-${cssSafe(view.queue)}-${kpi.key}`;
        item = {
          label: el("dt", { class: "kpi__label" }),
          value: el("dd", { class: "kpi__value", testid: `kpi-${kpi.key}` }),
          formula: el("span", { class: "kpi__formula", id: formulaId, role: "tooltip" }),
        };
        item.box = el(
          "div",
          {
            class: "kpi",
            tabindex: tvMode ? undefined : "0",
            testid: "kpi",
            "data-kpi": kpi.key,
            "aria-describedby": formulaId,
          },
          item.label,
          item.value,
          item.formula,
        );
        this.kpiItems.set(kpi.key, item);
      }
      // The registry's order; a box is moved only when it is out of place (a moved box
      // would lose the keyboard focus that shows its formula).
      const expected = previous ? previous.nextSibling : this.kpis.firstChild;
      if (expected !== item.box) this.kpis.insertBefore(item.box, expected);
      previous = item.box;
      const definition = definitionOf(kpi);
      item.label.textContent = t(definition.name_key);
      item.value.textContent = formatKpi(kpi.value, definition.unit, locale());
      item.value.classList.toggle(
        "kpi__value--bad",
        kpi.key === "service_level" && (view.alarms || []).includes("service_level"),
      );
      item.formula.replaceChildren(...formulaLines(kpi, view));
    }
  }

  tick(now) {
    const view = this.view;
    this.longest.textContent = formatDuration(longestWait(view, now));
    const alarms = alarmsOf(view, now);
    const texts = alarms.map(alarmText);
    const signature = texts.join("\n");
    if (signature === this.alarmSignature) return;
    this.alarmSignature = signature;
    this.el.dataset.alarm = String(alarms.length > 0);
    this.alarms.replaceChildren(
      ...alarms.map((alarm, index) =>
        el(
          "li",
          { class: "tile__alarm", testid: "tile-alarm", "data-alarm": alarm.kind },
          texts[index],
        ),
      ),
    );
  }
}

/** A KPI's registry definition: sent with the values in a snapshot, else the last one seen
 * for its key (`queues.updated` carries only values). Its texts and units are the same for
 * every queue; the queue's own T is the view's `service_level_s`. */
function definitionOf(kpi) {
  if (kpi.definition) {
    definitions.set(kpi.key, kpi.definition);
    return kpi.definition;
  }
  return (
    definitions.get(kpi.key) || {
      key: kpi.key,
      unit: "calls",
      name_key: kpi.key,
      formula_key: kpi.key,
      params: {},
    }
  );
}

function cssSafe(text) {
  return String(text).replace(/[^\w-]/g, "_");
}

/** The formula of a KPI in `view`'s queue, its two sides with today's figures, and the
 * short-call rule. */
function formulaLines(kpi, view) {
  const d = definitionOf(kpi);
  const p = d.params || {};
  const level = view.service_level_s ?? p.t;
  const figures = { t: formatKpi(level, "calls", locale()), n: formatKpi(p.n, "calls", locale()) };
  const lines = [el("strong", {}, t(d.name_key)), el("span", {}, t(d.formula_key, figures))];
  const number = (value) =>
    value === null || value === undefined
      ? "—"
      : new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value);
  if (d.denominator_key) {
    for (const [key, value] of [
      [d.numerator_key, kpi.numerator],
      [d.denominator_key, kpi.denominator],
    ]) {
      lines.push(
        el("span", {}, t("supervisor.kpi.part", { what: t(key, figures), value: number(value) })),
      );
    }
  }
  if (d.short_call_rule_key) lines.push(el("em", {}, t(d.short_call_rule_key, figures)));
  return lines.flatMap((line, index) => (index ? [el("br"), line] : [line]));
}

// --- rendering -----------------------------------------------------------------------------

function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  // Animation frames pause in a hidden tab; the timer keeps a background wallboard current.
  const fallback = setTimeout(render, RENDER_FALLBACK_MS);
  requestAnimationFrame(() => {
    clearTimeout(fallback);
    render();
  });
}

function render() {
  if (!renderPending) return;
  renderPending = false;
  const shown = shownViews();
  renderTiles(shown);
  renderWaiting(shown);
  renderAgents(shown);
  renderLegend(shown);
  refreshStale();
}

function renderTiles(shown) {
  const wanted = new Set(shown.map(queueKey));
  for (const [key, tile] of tiles) {
    if (!wanted.has(key)) {
      tile.el.remove();
      tiles.delete(key);
    }
  }
  let previous = null;
  for (const view of shown) {
    const key = queueKey(view);
    let tile = tiles.get(key);
    if (!tile) {
      tile = new QueueTile(view);
      tiles.set(key, tile);
    }
    if (tile.view !== view || !tile.el.isConnected || tile.locale !== locale()) {
      tile.locale = locale();
      tile.update(view);
    }
    const expected = previous ? previous.nextSibling : tilesBox.firstChild;
    if (expected !== tile.el) tilesBox.insertBefore(tile.el, expected);
    previous = tile.el;
  }
  noQueues.hidden = shown.length > 0;
}

function renderWaiting(shown) {
  const callers = waitingAcross(shown);
  waitingRows.replaceChildren(
    ...callers.map((caller) =>
      el(
        "tr",
        { testid: "waiting-row", "data-call-key": caller.call_key, "data-queue": caller.queue },
        el("td", { class: "grid__num grid__strong", testid: "waiting-position" }, caller.position),
        el(
          "td",
          { testid: "waiting-caller" },
          el(
            "span",
            { class: "grid__strong" },
            caller.caller_name || caller.caller_num || t("supervisor.caller.unknown"),
          ),
          caller.caller_name && caller.caller_num
            ? el("span", { class: "grid__sub" }, caller.caller_num)
            : null,
        ),
        el("td", { testid: "waiting-queue" }, caller.queue),
        el("td", { class: "grid__num grid__strong" }, timer(caller.since, "waiting-wait")),
      ),
    ),
  );
  waitingNone.hidden = callers.length > 0;
}

function renderAgents(shown) {
  const agents = agentsAcross(shown);
  const currentLocale = locale();
  const wanted = new Set(agents.map((agent) => agent.interface));
  for (const [key, cached] of agentRowCache) {
    if (!wanted.has(key)) {
      cached.row.remove();
      agentRowCache.delete(key);
    }
  }
  let previous = null;
  for (const agent of agents) {
    const signature = JSON.stringify([currentLocale, agent]);
    let cached = agentRowCache.get(agent.interface);
    if (!cached || cached.signature !== signature) {
      const row = agentRow(agent);
      if (cached) cached.row.replaceWith(row);
      cached = { row, signature };
      agentRowCache.set(agent.interface, cached);
    }
    // Move rows only when the order changed: a moved row loses the keyboard focus.
    const expected = previous ? previous.nextSibling : agentRows.firstChild;
    if (expected !== cached.row) agentRows.insertBefore(cached.row, expected);
    previous = cached.row;
  }
  agentsNone.hidden = agents.length > 0;
}

function agentRow(agent) {
  const label = agentLabel(agent);
  let detail = null;
  if ((agent.state === "in_call" || agent.state === "ringing") && agent.call) {
    const caller = callerText(agent.call);
    detail =
      agent.state === "in_call"
        ? t("supervisor.agent.talking_with", { caller })
        : t("supervisor.agent.ringing_from", { caller });
  } else if (agent.state === "paused") {
    detail = reasonText(agent.pauseReason) || t("supervisor.agent.no_reason");
  }
  if (agent.paused && agent.state !== "paused") {
    // Finishing a call while paused: the pause still shows.
    detail = [detail, t("supervisor.agent.paused_too", { reason: reasonText(agent.pauseReason) })]
      .filter(Boolean)
      .join(" · ");
  }
  if (agent.paused && !agent.pausedEverywhere) {
    const queues = agent.memberships.filter((m) => m.paused).map((m) => m.queue);
    detail = [detail, t("supervisor.agent.paused_in", { queues: queues.join(", ") })]
      .filter(Boolean)
      .join(" · ");
  }
  const since = agent.state === "paused" ? agent.pausedSince || agent.since : agent.since;
  const chips = agent.memberships.map((membership) =>
    el(
      "span",
      { class: "chip", testid: "agent-queue", "data-queue": membership.queue },
      el("span", { testid: "agent-queue-name" }, membership.queue),
      el("button", {
        type: "button",
        class: "chip__remove wall-actions",
        testid: "agent-remove",
        text: "×",
        title: t("supervisor.action.remove", { agent: label, queue: membership.queue }),
        "aria-label": t("supervisor.action.remove", { agent: label, queue: membership.queue }),
        onclick: () => confirmRemove(agent, membership.queue),
      }),
    ),
  );
  const actions = [];
  if (agent.paused) {
    actions.push(
      el("button", {
        type: "button",
        class: "btn",
        testid: "agent-unpause",
        text: t("supervisor.action.unpause"),
        onclick: (event) => unpause(agent, event.currentTarget),
      }),
    );
  } else {
    actions.push(
      el("button", {
        type: "button",
        class: "btn",
        testid: "agent-pause",
        text: t("supervisor.action.pause"),
        onclick: () => openPause(agent),
      }),
    );
  }
  if (agent.state === "in_call") {
    for (const mode of ["listen", "whisper", "barge"]) {
      actions.push(
        el("button", {
          type: "button",
          class: "btn",
          testid: `agent-${mode}`,
          text: SPY_TEXT[mode].button(),
          onclick: (event) => spy(agent, mode, event.currentTarget),
        }),
      );
    }
  }
  return el(
    "tr",
    {
      testid: "agent-row",
      "data-interface": agent.interface,
      "data-extension": agent.extension,
      "data-state": agent.state,
    },
    el(
      "td",
      {},
      el("span", { class: "grid__strong", testid: "agent-name" }, label),
      el("span", { class: "grid__sub" }, t("supervisor.agent.extension", { ext: agent.extension })),
    ),
    el(
      "td",
      {},
      el(
        "span",
        { class: `state state--${agent.state}`, testid: "agent-state", "data-state": agent.state },
        STATE_TEXT[agent.state] ? STATE_TEXT[agent.state]() : agent.state,
      ),
      detail ? el("span", { class: "agent__detail", testid: "agent-detail" }, detail) : null,
    ),
    el("td", { class: "grid__num" }, since ? timer(since, "agent-since") : "—"),
    el("td", {}, el("div", { class: "chips" }, chips)),
    el("td", { class: "wall-actions" }, el("div", { class: "actions" }, actions)),
  );
}

function renderLegend(shown) {
  const first = shown.find((view) => view.kpis && Object.keys(view.kpis).length);
  if (!first) {
    legendList.replaceChildren();
    return;
  }
  const items = [];
  for (const kpi of Object.values(first.kpis)) {
    const d = definitionOf(kpi);
    const figures = { t: "T", n: formatKpi(d.params ? d.params.n : null, "calls", locale()) };
    let text = t(d.formula_key, figures);
    if (d.short_call_rule_key) text += `. ${t(d.short_call_rule_key, figures)}`;
    items.push(el("dt", {}, t(d.name_key)), el("dd", { "data-kpi": kpi.key }, text));
  }
  items.push(el("dt", {}, "T"), el("dd", {}, t("supervisor.legend.t")));
  legendList.replaceChildren(...items);
}

function tick() {
  const now = clock.now();
  clockBox.textContent = new Intl.DateTimeFormat(locale(), {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date(now));
  for (const node of document.querySelectorAll("[data-since]")) {
    node.textContent = formatDuration(secondsSince(node.dataset.since, now));
  }
  for (const tile of tiles.values()) tile.tick(now);
}

function refreshStale() {
  staleBanner.hidden = connectionState === "connected" || !everConnected;
}

function rerenderAll() {
  for (const tile of tiles.values()) tile.locale = null;
  agentRowCache.clear();
  agentRows.replaceChildren();
  renderPending = true;
  render();
  showConnection(connectionState);
  tick();
}

// --- live updates --------------------------------------------------------------------------

function applySnapshot(_calls, snapshot) {
  const board = snapshot && snapshot.queues;
  if (!board) {
    showForbidden();
    return;
  }
  views.clear();
  for (const view of board.queues || []) views.set(queueKey(view), view);
  scheduleRender();
}

function applyEvent(event) {
  eventLog.push({ id: event.id, type: event.type, queue: event.queue ? event.queue.queue : null });
  if (eventLog.length > 500) eventLog.splice(0, eventLog.length - 500);
  if (event.type !== "queues.updated" || !event.queue || !event.queue.queue) return;
  views.set(queueKey(event.queue), event.queue);
  scheduleRender();
}

function showConnection(state) {
  if (state !== connectionState || !statusLog.length) statusLog.push(state);
  connectionState = state;
  if (state === "connected") everConnected = true;
  connBox.dataset.state = state;
  connText.dataset.i18n = `conn.${state}`;
  connText.textContent = t(`conn.${state}`);
  refreshStale();
}

// --- dialogs and actions -------------------------------------------------------------------

function setupDialog(dialog, onSubmit) {
  const form = dialog.querySelector("form");
  const error = dialog.querySelector("[role=alert]");
  const submit = form.querySelector("[type=submit]");
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => dialog.close());
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await onSubmit();
      dialog.close();
    } catch (failure) {
      error.textContent =
        failure instanceof Error && failure.userText ? failure.userText : errorText(failure);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return { error };
}

function invalid(text) {
  const failure = new Error(text);
  failure.userText = text;
  return failure;
}

// Queue settings (thresholds)

const settingsDialog = document.getElementById("settings-dialog");
const settingsFields = {
  title: document.getElementById("settings-title"),
  maxWait: document.getElementById("settings-max-wait"),
  minLevel: document.getElementById("settings-min-sl"),
  target: document.getElementById("settings-sl-target"),
  noAgent: document.getElementById("settings-no-agent"),
};
let settingsQueue = null;

function openSettings(view) {
  settingsQueue = view.queue;
  const targets = view.targets || {};
  const f = settingsFields;
  f.title.textContent = t("supervisor.settings.title", { queue: view.queue });
  f.maxWait.value = targets.alarm_longest_wait_s ?? "";
  f.minLevel.value = targets.alarm_service_level_pct ?? "";
  f.target.value = targets.service_level_s ?? "";
  f.target.placeholder = String(view.service_level_s ?? "");
  f.noAgent.checked = targets.alarm_no_agent !== false;
  settingsDialog.querySelector("[role=alert]").hidden = true;
  settingsDialog.showModal();
  f.maxWait.focus();
}

function optionalNumber(input, { integer }) {
  const raw = input.value.trim();
  if (!raw) return null;
  const value = Number(raw);
  const min = Number(input.min);
  const max = Number(input.max);
  const inRange = Number.isFinite(value) && value >= min && value <= max;
  if (!inRange || (integer && !Number.isInteger(value))) {
    const label = input.closest("label").querySelector(".field__label").textContent;
    throw invalid(t("supervisor.settings.invalid", { field: label, min, max }));
  }
  return value;
}

async function saveSettings() {
  const f = settingsFields;
  const body = {
    alarm_longest_wait_s: optionalNumber(f.maxWait, { integer: true }),
    alarm_service_level_pct: optionalNumber(f.minLevel, { integer: false }),
    service_level_s: optionalNumber(f.target, { integer: true }),
    alarm_no_agent: f.noAgent.checked,
  };
  await api.put(`/api/queues/${encodeURIComponent(settingsQueue)}/settings`, body);
  toast(t("supervisor.settings.saved", { queue: settingsQueue }), "ok");
}

// Pause with a reason

const pauseDialog = document.getElementById("pause-dialog");
const pauseTitle = document.getElementById("pause-title");
const pauseReasonsBox = document.getElementById("pause-reasons");
const pauseOther = document.getElementById("pause-other");
let pauseAgent = null;

function openPause(agent) {
  pauseAgent = agent;
  pauseTitle.textContent = t("supervisor.pause.title", { agent: agentLabel(agent) });
  const legend = pauseReasonsBox.querySelector("legend");
  const options = pauseReasons.map((code, index) =>
    el(
      "label",
      { class: "reason" },
      el("input", {
        type: "radio",
        name: "pause-reason",
        value: code,
        testid: `pause-reason-${code}`,
        checked: index === 0,
      }),
      reasonText(code),
    ),
  );
  pauseReasonsBox.replaceChildren(legend, ...options);
  pauseOther.value = "";
  pauseOther.maxLength = reasonMaxLength;
  pauseDialog.querySelector("[role=alert]").hidden = true;
  pauseDialog.showModal();
}

async function confirmPause() {
  const chosen = pauseReasonsBox.querySelector("input[name=pause-reason]:checked");
  const reason = chosen ? chosen.value : otherReason;
  const text = pauseOther.value.trim();
  if (reason === otherReason && !text) throw invalid(t("supervisor.pause.other_needed"));
  const agent = pauseAgent;
  await api.post(`/api/agents/${encodeURIComponent(agent.extension)}/pause`, {
    reason,
    text: reason === otherReason ? text : "",
    interface: agent.interface,
  });
  toast(t("supervisor.pause.done", { agent: agentLabel(agent) }), "ok");
}

async function unpause(agent, button) {
  button.disabled = true;
  try {
    await api.post(`/api/agents/${encodeURIComponent(agent.extension)}/unpause`, {
      interface: agent.interface,
    });
    toast(t("supervisor.unpause.done", { agent: agentLabel(agent) }), "ok");
  } catch (error) {
    toast(errorText(error));
  } finally {
    button.disabled = false;
  }
}

// Listen, whisper, barge

async function spy(agent, mode, button) {
  button.disabled = true;
  try {
    await api.post(`/api/agents/${encodeURIComponent(agent.extension)}/spy`, { mode });
    toast(SPY_TEXT[mode].done({ agent: agentLabel(agent) }), "ok");
  } catch (error) {
    toast(errorText(error));
  } finally {
    button.disabled = false;
  }
}

// Queue membership

const confirmDialog = document.getElementById("confirm-dialog");
const confirmText = document.getElementById("confirm-text");
let removal = null;

function confirmRemove(agent, queue) {
  removal = { agent, queue };
  confirmText.textContent = t("supervisor.remove.question", { agent: agentLabel(agent), queue });
  confirmDialog.querySelector("[role=alert]").hidden = true;
  confirmDialog.showModal();
}

async function removeMember() {
  const { agent, queue } = removal;
  const query = new URLSearchParams({ interface: agent.interface });
  const member = `${encodeURIComponent(agent.extension)}/queues/${encodeURIComponent(queue)}`;
  await api.delete(`/api/agents/${member}?${query}`);
  toast(t("supervisor.remove.done", { agent: agentLabel(agent), queue }), "ok");
}

const addDialog = document.getElementById("add-dialog");
const addQueue = document.getElementById("add-queue");
const addAgent = document.getElementById("add-agent");
const addOptions = document.getElementById("add-agent-options");

function openAdd() {
  const queues = [...new Set([...views.values()].map((view) => view.queue))].sort();
  addQueue.replaceChildren(...queues.map((queue) => el("option", { value: queue }, queue)));
  const agents = agentsAcross([...views.values()]);
  addOptions.replaceChildren(
    ...agents.map((agent) => el("option", { value: agent.extension }, agentLabel(agent))),
  );
  addAgent.value = "";
  addDialog.querySelector("[role=alert]").hidden = true;
  addDialog.showModal();
  addAgent.focus();
}

async function addMember() {
  const queue = addQueue.value;
  const wanted = addAgent.value.trim();
  if (!queue) throw invalid(t("supervisor.add.queue_needed"));
  if (!wanted) throw invalid(t("supervisor.add.agent_needed"));
  const known = agentsAcross([...views.values()]).find(
    (agent) => agent.extension === wanted || agent.interface === wanted,
  );
  const extension = known ? known.extension : wanted;
  const body = known ? { interface: known.interface } : {};
  await api.put(
    `/api/agents/${encodeURIComponent(extension)}/queues/${encodeURIComponent(queue)}`,
    body,
  );
  toast(t("supervisor.add.done", { agent: known ? agentLabel(known) : extension, queue }), "ok");
}

// --- page modes ----------------------------------------------------------------------------

function setupTvMode() {
  document.documentElement.classList.toggle("tv", tvMode);
  const toggle = document.getElementById("tv-toggle");
  const next = new URLSearchParams(params);
  if (tvMode) next.delete("tv");
  else next.set("tv", "1");
  const query = next.toString();
  toggle.href = query ? `/supervisor?${query}` : "/supervisor";
  toggle.dataset.i18n = tvMode ? "supervisor.tv.exit" : "supervisor.tv.enter";
  toggle.textContent = t(toggle.dataset.i18n);
  const fullscreen = document.getElementById("fullscreen");
  fullscreen.hidden = !tvMode || !document.fullscreenEnabled;
  fullscreen.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
  });
}

function showForbidden() {
  wall.hidden = true;
  document.getElementById("forbidden").hidden = false;
  for (const node of document.querySelectorAll(".wall-only")) node.hidden = true;
}

async function loadPauseReasons() {
  try {
    const mine = await api.get("/api/control/me");
    if (Array.isArray(mine.pause_reasons) && mine.pause_reasons.length) {
      pauseReasons = mine.pause_reasons;
    }
    otherReason = mine.other_reason || otherReason;
    reasonMaxLength = mine.reason_max_length || reasonMaxLength;
  } catch {
    /* the defaults stay; the server checks the reason anyway */
  }
}

// --- start ---------------------------------------------------------------------------------

async function main() {
  const user = await signedInUser();
  document.getElementById("user-name").textContent = user.name || user.login || "";
  setupTvMode();
  mountLanguageSwitch(document.getElementById("lang-switch"), {
    persist: true,
    onError: (error) => toast(errorText(error)),
  });
  window.addEventListener("localechange", rerenderAll);
  let client = null;
  mountLogout(document.getElementById("logout"), {
    onError: (error) => toast(errorText(error)),
    beforeLeave: () => client && client.stop(),
  });

  if (!SUPERVISOR_ROLES.has(user.role)) {
    showForbidden();
    return;
  }
  wall.hidden = false;

  setupDialog(settingsDialog, saveSettings);
  setupDialog(pauseDialog, confirmPause);
  setupDialog(confirmDialog, removeMember);
  setupDialog(addDialog, addMember);
  document.getElementById("add-member").addEventListener("click", openAdd);
  pauseOther.addEventListener("input", () => {
    if (!pauseOther.value.trim()) return;
    const other = pauseReasonsBox.querySelector(`input[value="${CSS.escape(otherReason)}"]`);
    if (other) other.checked = true;
  });
  if (!tvMode) loadPauseReasons();

  client = new EventClient({
    fetchSnapshot: async () => {
      const sentAt = Date.now();
      const snapshot = await api.get("/api/realtime/snapshot");
      if (snapshot && snapshot.queues) clock.sync(snapshot.queues.at, sentAt, Date.now());
      return snapshot;
    },
    onSnapshot: applySnapshot,
    onEvent: applyEvent,
    onStatus: showConnection,
  });
  window.callcenter = { events: client, eventLog, statusLog, views };
  window.addEventListener("beforeunload", () => client.stop());

  tick();
  setInterval(tick, 1000);
  client.start();
}

main().catch(
  startFailed((error) => {
    console.error(error);
    toast(errorText(error));
  }),
);
