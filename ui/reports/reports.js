// Reports: queue and agent figures for a range of days, charts by hour, plans, and for every
// number the list of calls behind it (its `drill` address from the API).
//
// Charts are SVG drawn with createElementNS: no library, no CDN, nothing inline (strict CSP).

import { api } from "/ui/shared/api.js";
import { el } from "/ui/shared/dom.js";
import { locale, mountLanguageSwitch, t } from "/ui/shared/i18n.js";
import { errorText, mountLogout, signedInUser, startFailed, toaster } from "/ui/shared/page.js";

const SVG = "http://www.w3.org/2000/svg";
const PER_PAGE = 50;
const TOAST_MS = 6000;
const QUEUE_COLUMNS = ["offered", "answered", "abandoned", "service_level", "asa", "abandon_rate"];
const EXTRA_QUEUE_COLUMNS = ["timed_out", "average_talk", "longest_wait"];
const AGENT_COLUMNS = [
  "offered",
  "answered",
  "missed",
  "talk_time",
  "aht",
  "wrap_up",
  "wrong_number",
  "completeness",
];
const PLAN_METRICS = ["deals", "closed", "calls_answered"];
const PLAN_PERIODS = ["day", "week", "month"];
const CALL_COLUMNS = [
  "ended_at",
  "queue",
  "agent_name",
  "caller_num",
  "wait_seconds",
  "talk_seconds",
  "end_reason",
  "outcome",
  "notes",
];

const state = {
  me: null,
  supervisor: false,
  tab: null,
  queueReport: null,
  agentReport: null,
  plans: null,
  assignees: [],
  drill: null, // {href, title, page, total}
};

const $ = (id) => document.getElementById(id);

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "testid") node.dataset.testid = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

const toast = toaster($("toast"), TOAST_MS);

// --- formatting ----------------------------------------------------------------------------

function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function formatValue(unit, value) {
  if (value === null || value === undefined) return "—";
  if (unit === "percent") {
    return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value)} %`;
  }
  if (unit === "seconds") return formatDuration(value);
  return new Intl.NumberFormat(locale()).format(value);
}

function formatWhen(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale(), {
    day: "2-digit",
    month: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date(iso));
}

function todayIso() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

// --- filters and addresses -----------------------------------------------------------------

function filters() {
  const queues = $("queues")
    .value.split(",")
    .map((q) => q.trim())
    .filter(Boolean);
  return { from: $("from").value, to: $("to").value, queues, agent: $("agent").value };
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (Array.isArray(value)) for (const v of value) search.append(key, v);
    else if (value !== "" && value !== null && value !== undefined) search.append(key, value);
  }
  return search.toString();
}

function reportQuery() {
  const f = filters();
  return query({ from: f.from, to: f.to, queue: f.queues, user_id: f.agent });
}

function updateExportLinks() {
  const suffix = reportQuery();
  for (const link of document.querySelectorAll("[data-export]")) {
    link.href = `/api/reports/${link.dataset.export}?${suffix}`;
    link.setAttribute("download", "");
  }
}

// --- tables --------------------------------------------------------------------------------

function kpiInfo(report, key) {
  return report.kpis.find((k) => k.key === key);
}

function kpiTitle(info) {
  return t(info.formula_key, Object.fromEntries(Object.entries(info.params || {})));
}

function numberCell(figure, info, label) {
  const text = formatValue(info.unit, figure.value);
  if (!figure.drill) return el("td", { class: "num" }, text);
  const button = el(
    "button",
    {
      type: "button",
      class: "num-link",
      testid: `figure-${info.key}`,
      "data-drill": figure.drill,
      title: t("reports.drill.hint"),
      onclick: () => openDrill(figure.drill, `${label} — ${t(info.name_key)}`),
    },
    text,
  );
  const cell = el("td", { class: "num" }, button);
  if (figure.numerator_drill && figure.denominator) {
    cell.append(
      el(
        "button",
        {
          type: "button",
          class: "num-sub",
          testid: `figure-${info.key}-numerator`,
          onclick: () => openDrill(figure.numerator_drill, `${label} — ${t(info.name_key)}`),
        },
        `${formatValue("calls", figure.numerator)} / ${formatValue("calls", figure.denominator)}`,
      ),
    );
  }
  return cell;
}

function headerRow(report, keys, firstLabel, extra = []) {
  return el(
    "tr",
    {},
    el("th", { scope: "col" }, firstLabel),
    keys.map((key) => {
      const info = kpiInfo(report, key);
      return el("th", { scope: "col", class: "num", title: kpiTitle(info) }, t(info.name_key));
    }),
    extra.map((label) => el("th", { scope: "col", class: "num" }, label)),
  );
}

function bodyRow(report, keys, row, label, extra = []) {
  return el(
    "tr",
    { testid: `row-${row.key}` },
    el("th", { scope: "row" }, label),
    keys.map((key) => numberCell(row.figures[key], kpiInfo(report, key), label)),
    extra,
  );
}

function renderQueues() {
  const report = state.queueReport;
  if (!report) return;
  $("timezone").textContent = t("reports.timezone", { tz: report.range.timezone });
  const keys = [...QUEUE_COLUMNS, ...EXTRA_QUEUE_COLUMNS];
  const table = $("queue-table");
  const rows = report.rows.map((row) => bodyRow(report, keys, row, row.label));
  table.replaceChildren(
    el("thead", {}, headerRow(report, keys, t("reports.col.queue"))),
    el(
      "tbody",
      {},
      rows.length ? rows : el("tr", {}, el("td", { colspan: keys.length + 1 }, t("reports.empty"))),
    ),
    el("tfoot", {}, bodyRow(report, keys, report.total, t("reports.total"))),
  );
  const hours = report.by_hour.filter((row) => row.figures.offered.value);
  $("hour-table").replaceChildren(
    el("thead", {}, headerRow(report, QUEUE_COLUMNS, t("reports.col.hour"))),
    el(
      "tbody",
      {},
      hours.length
        ? hours.map((row) => bodyRow(report, QUEUE_COLUMNS, row, row.label))
        : el("tr", {}, el("td", { colspan: QUEUE_COLUMNS.length + 1 }, t("reports.empty"))),
    ),
  );
  renderCharts(report);
}

function renderAgents() {
  const report = state.agentReport;
  if (!report) return;
  const reasons = [...new Set(report.rows.flatMap((row) => row.pauses.map((p) => p.reason)))].sort();
  const pauseLabels = [t("reports.col.pause_total"), ...reasons.map((r) => pauseReason(r))];
  const rows = report.rows.map((row) => {
    const paused = Object.fromEntries(row.pauses.map((p) => [p.reason, p.seconds]));
    const cells = [
      el("td", { class: "num", testid: "pause-total" }, formatDuration(row.pause_total_s)),
      ...reasons.map((r) => el("td", { class: "num" }, formatDuration(paused[r] || 0))),
    ];
    return bodyRow(report, AGENT_COLUMNS, row, row.label, cells);
  });
  $("agent-table").replaceChildren(
    el("thead", {}, headerRow(report, AGENT_COLUMNS, t("reports.col.agent"), pauseLabels)),
    el(
      "tbody",
      {},
      rows.length
        ? rows
        : el("tr", {}, el("td", { colspan: AGENT_COLUMNS.length + 2 }, t("reports.empty"))),
    ),
    state.supervisor
      ? el("tfoot", {}, bodyRow(report, AGENT_COLUMNS, report.total, t("reports.total")))
      : null,
  );
}

function pauseReason(reason) {
  const key = `reports.pause.${reason}`;
  const text = t(key);
  return text === key ? reason : text;
}

// --- charts --------------------------------------------------------------------------------

const CHART = { width: 640, height: 220, left: 36, bottom: 24, top: 10, right: 8 };

function chartFrame(max, ticks, format) {
  const root = svg("svg", {
    viewBox: `0 0 ${CHART.width} ${CHART.height}`,
    class: "chart__svg",
    role: "img",
  });
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  for (const tick of ticks) {
    const y = CHART.top + plotHeight - (tick / max) * plotHeight;
    root.append(
      svg("line", { x1: CHART.left, x2: CHART.width - CHART.right, y1: y, y2: y, class: "chart__grid" }),
      svg("text", { x: CHART.left - 4, y: y + 4, class: "chart__tick", "text-anchor": "end" }),
    );
    root.lastChild.textContent = format(tick);
  }
  for (let hour = 0; hour < 24; hour += 3) {
    const label = svg("text", {
      x: CHART.left + (hour + 0.5) * slot(),
      y: CHART.height - 6,
      class: "chart__tick",
      "text-anchor": "middle",
    });
    label.textContent = String(hour).padStart(2, "0");
    root.append(label);
  }
  return root;
}

function slot() {
  return (CHART.width - CHART.left - CHART.right) / 24;
}

function barRect(hour, offset, width, value, max, cls, tip, drill, title) {
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const height = max ? (value / max) * plotHeight : 0;
  const rect = svg("rect", {
    x: CHART.left + hour * slot() + offset,
    y: CHART.top + plotHeight - height,
    width,
    height: Math.max(height, value ? 1 : 0),
    class: cls,
    testid: "chart-bar",
  });
  const tooltip = svg("title");
  tooltip.textContent = tip;
  rect.append(tooltip);
  if (drill) {
    rect.classList.add("chart__bar--link");
    rect.addEventListener("click", () => openDrill(drill, title));
  }
  return rect;
}

function renderCharts(report) {
  const hours = report.by_hour;
  const sl = chartFrame(100, [0, 50, 80, 100], (v) => `${v}%`);
  const slInfo = kpiInfo(report, "service_level");
  for (const [hour, row] of hours.entries()) {
    const figure = row.figures.service_level;
    if (figure.value === null) continue;
    sl.append(
      barRect(
        hour,
        slot() * 0.15,
        slot() * 0.7,
        figure.value,
        100,
        "chart__bar chart__bar--sl",
        `${row.label}: ${formatValue("percent", figure.value)}`,
        figure.drill,
        `${row.label} — ${t(slInfo.name_key)}`,
      ),
    );
  }
  $("chart-sl").replaceChildren(sl);

  const top = Math.max(1, ...hours.map((row) => row.figures.offered.value || 0));
  const max = niceMax(top);
  const volume = chartFrame(max, [0, max / 2, max], (v) => formatValue("calls", Math.round(v)));
  for (const [hour, row] of hours.entries()) {
    const offered = row.figures.offered;
    const abandoned = row.figures.abandoned;
    if (!offered.value) continue;
    volume.append(
      barRect(
        hour,
        slot() * 0.1,
        slot() * 0.4,
        offered.value,
        max,
        "chart__bar chart__bar--offered",
        `${row.label}: ${t("kpi.offered.name")} ${offered.value}`,
        offered.drill,
        `${row.label} — ${t("kpi.offered.name")}`,
      ),
      barRect(
        hour,
        slot() * 0.5,
        slot() * 0.4,
        abandoned.value || 0,
        max,
        "chart__bar chart__bar--abandoned",
        `${row.label}: ${t("kpi.abandoned.name")} ${abandoned.value || 0}`,
        abandoned.drill,
        `${row.label} — ${t("kpi.abandoned.name")}`,
      ),
    );
  }
  $("chart-volume").replaceChildren(volume);
}

function niceMax(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

// --- drill-down ----------------------------------------------------------------------------

async function openDrill(href, title, page = 1) {
  state.drill = { href, title, page, total: 0 };
  $("drill").hidden = false;
  $("drill-title").textContent = title;
  try {
    const listed = await api.get(`${href}&page=${page}&per_page=${PER_PAGE}`);
    state.drill.total = listed.total;
    renderDrill(listed);
    $("drill").scrollIntoView({ block: "nearest" });
  } catch (error) {
    toast(errorText(error));
  }
}

function renderDrill(listed) {
  const drill = state.drill;
  $("drill-count").textContent = t("reports.drill.count", { count: listed.total });
  $("drill-count").dataset.total = String(listed.total);
  const exportHref = drill.href.replace("/api/reports/calls?", "/api/reports/calls.xlsx?");
  $("drill-export").href = exportHref;
  $("drill-export").setAttribute("download", "");
  const rows = listed.items.map((call) =>
    el(
      "tr",
      { testid: "drill-row", "data-call-id": call.id },
      CALL_COLUMNS.map((column) => el("td", { class: callClass(column) }, callCell(call, column))),
    ),
  );
  $("drill-table").replaceChildren(
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        CALL_COLUMNS.map((c) => el("th", { scope: "col", class: callClass(c) }, t(`reports.call.${c}`))),
      ),
    ),
    el("tbody", {}, rows),
  );
  const pages = Math.max(1, Math.ceil(listed.total / PER_PAGE));
  $("drill-page").textContent = t("reports.drill.page", { page: drill.page, pages });
  $("drill-prev").disabled = drill.page <= 1;
  $("drill-next").disabled = drill.page >= pages;
}

function callClass(column) {
  return column.endsWith("_seconds") ? "num" : "";
}

function callCell(call, column) {
  const value = call[column];
  if (value === null || value === undefined || value === "") return "";
  if (column === "ended_at") return formatWhen(value);
  if (column.endsWith("_seconds")) return formatDuration(value);
  if (column === "end_reason") return t(`end_reason.${value}`);
  if (column === "outcome") return t(`outcome.${value}`);
  if (column === "caller_num") return call.caller_name ? `${value} (${call.caller_name})` : value;
  return value;
}

// --- plans ---------------------------------------------------------------------------------

function renderPlans() {
  const progress = state.plans;
  if (!progress) return;
  const rows = progress.items.map((item) => {
    const target = item.target;
    const done = el("td", { class: "num", testid: "plan-done" }, `${item.done}/${target.target}`);
    if (item.drill) {
      done.replaceChildren(
        el(
          "button",
          {
            type: "button",
            class: "num-link",
            onclick: () => openDrill(item.drill, `${item.label} — ${t(`plan.metric.${target.metric}`)}`),
          },
          `${item.done}/${target.target}`,
        ),
      );
    }
    const share = Math.min(100, Math.round((100 * item.done) / target.target));
    const bar = el("progress", { max: 100, value: share, class: "plan-bar" });
    return el(
      "tr",
      { testid: "plan-row", "data-plan-id": target.id },
      el("th", { scope: "row" }, item.label || target.queue || ""),
      el("td", {}, t(`plan.metric.${target.metric}`)),
      el("td", {}, t(`plan.period.${target.period}`)),
      done,
      el("td", {}, bar),
      state.supervisor
        ? el(
            "td",
            {},
            el(
              "button",
              {
                type: "button",
                class: "btn btn--ghost",
                testid: "plan-delete",
                onclick: () => deletePlan(target.id),
              },
              t("reports.plan.delete"),
            ),
          )
        : null,
    );
  });
  $("plan-table").replaceChildren(
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        [
          "reports.plan.who",
          "reports.plan.metric",
          "reports.plan.period",
          "reports.plan.done",
          "reports.plan.progress",
        ].map((key) => el("th", { scope: "col" }, t(key))),
        state.supervisor ? el("th", {}) : null,
      ),
    ),
    el(
      "tbody",
      {},
      rows.length ? rows : el("tr", {}, el("td", { colspan: 6 }, t("reports.plan.none"))),
    ),
  );
}

function fillPlanForm() {
  $("plan-user").replaceChildren(
    el("option", { value: "" }, t("reports.plan.team_option")),
    state.assignees.map((u) => el("option", { value: u.id }, u.name || u.login)),
  );
  $("plan-metric").replaceChildren(
    PLAN_METRICS.map((m) => el("option", { value: m }, t(`plan.metric.${m}`))),
  );
  $("plan-period").replaceChildren(
    PLAN_PERIODS.map((p) => el("option", { value: p }, t(`plan.period.${p}`))),
  );
  $("agent").replaceChildren(
    el("option", { value: "" }, t("reports.filter.all_agents")),
    state.assignees.map((u) => el("option", { value: u.id }, u.name || u.login)),
  );
}

async function savePlan(event) {
  event.preventDefault();
  const userId = $("plan-user").value;
  const queue = $("plan-queue").value.trim();
  const body = {
    user_id: userId ? Number(userId) : null,
    queue: userId ? null : queue || null,
    metric: $("plan-metric").value,
    period: $("plan-period").value,
    target: Number($("plan-target").value),
  };
  try {
    await api.put("/api/plans", body);
    await loadPlans();
  } catch (error) {
    toast(errorText(error));
  }
}

async function deletePlan(id) {
  try {
    await api.delete(`/api/plans/${id}`);
    await loadPlans();
  } catch (error) {
    toast(errorText(error));
  }
}

// --- loading -------------------------------------------------------------------------------

async function loadPlans() {
  state.plans = await api.get("/api/plans/progress");
  renderPlans();
}

async function load() {
  updateExportLinks();
  const suffix = reportQuery();
  const tasks = [
    api.get(`/api/reports/agents?${suffix}`).then((report) => {
      state.agentReport = report;
      renderAgents();
    }),
    loadPlans(),
  ];
  if (state.supervisor) {
    tasks.push(
      api.get(`/api/reports/queues?${suffix}`).then((report) => {
        state.queueReport = report;
        renderQueues();
      }),
    );
  }
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) toast(errorText(failed.reason));
  document.body.dataset.loaded = "1";
}

function showTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  for (const panel of ["queues", "agents", "plans"]) {
    $(`panel-${panel}`).hidden = panel !== name;
  }
}

function rerender() {
  renderQueues();
  renderAgents();
  renderPlans();
  fillPlanForm();
}

async function main() {
  state.me = await signedInUser();
  state.supervisor = ["supervisor", "admin"].includes(state.me.role);
  $("user-name").textContent = state.me.name || state.me.login || "";
  document.body.classList.toggle("is-supervisor", state.supervisor);
  for (const node of document.querySelectorAll(".supervisor-only")) {
    node.hidden = !state.supervisor;
  }
  mountLanguageSwitch($("lang-switch"), {
    persist: true,
    onError: (error) => toast(errorText(error)),
  });
  window.addEventListener("localechange", rerender);

  const params = new URLSearchParams(window.location.search);
  $("from").value = params.get("from") || todayIso();
  $("to").value = params.get("to") || $("from").value;
  if (params.get("queue")) $("queues").value = params.getAll("queue").join(", ");

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => showTab(tab.dataset.tab));
  }
  $("drill-close").addEventListener("click", () => {
    $("drill").hidden = true;
  });
  $("drill-prev").addEventListener("click", () => {
    if (state.drill) openDrill(state.drill.href, state.drill.title, state.drill.page - 1);
  });
  $("drill-next").addEventListener("click", () => {
    if (state.drill) openDrill(state.drill.href, state.drill.title, state.drill.page + 1);
  });
  mountLogout($("logout"), { onError: (error) => toast(errorText(error)) });

  if (state.supervisor) {
    state.assignees = await api.get("/api/plans/assignees");
    $("plan-form").addEventListener("submit", savePlan);
  }
  fillPlanForm();
  showTab(state.supervisor ? "queues" : "agents");
  await load();
}

main().catch(
  startFailed((error) => {
    console.error(error);
    toast(errorText(error));
  }),
);
