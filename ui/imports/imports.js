// The import page: upload a file → map its columns → preview every row's decision → run in the
// background with live progress → report, rejected rows to download, and undo of the batch.
//
// API: /api/imports (callcenter/imports/api.py). Progress comes as `import.progress` events on
// the user's realtime topic; GET /api/imports/{id} is polled as a fallback, so a lost socket
// only slows the bar down. The batch id is kept in the address (?batch=ID): a reload, or a
// return later to undo, lands on the same batch at the step its status implies.

import { api, ApiError, getCsrfToken, loginUrl } from "/ui/shared/api.js";
import { el } from "/ui/shared/dom.js";
import { EventClient } from "/ui/shared/event_client.js";
import { locale, mountLanguageSwitch, t } from "/ui/shared/i18n.js";
import { mountLogout, signedInUser, startFailed, toaster } from "/ui/shared/page.js";

const SUPERVISOR_ROLES = new Set(["supervisor", "admin"]);
const STEPS = ["file", "mapping", "preview", "run", "report"];
const DECISIONS = ["create", "update", "merge", "unchanged", "reject"];
const FINISHED = new Set(["done", "failed", "undone"]);
const RUNNING = new Set(["queued", "running"]);
const REPORT_COUNTS = [
  "rows",
  "create",
  "update",
  "merge",
  "unchanged",
  "reject",
  "clients_created",
  "clients_updated",
  "organizations_created",
  "organizations_updated",
  "phones_added",
  "suggestions",
];
const PAGE_SIZE = 50;
const POLL_MS = 3000;
const TOAST_MS = 6000;
const RECENT_LIMIT = 10;

const state = {
  batch: null,
  templates: [],
  recent: [],
  step: "file",
  filter: "", // "" = every decision
  offset: 0,
  page: null, // the last preview page: {items, total, offset, limit, counts}
  progress: null, // {done, total, status} from the newest event or poll
  pollTimer: null,
  undoing: false,
  limits: null, // {max_upload_bytes, max_rows} from the server
};

const $ = (id) => document.getElementById(id);

// --- small helpers -------------------------------------------------------------------------

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/** The message for `key`, or null when the catalogue has none (t() echoes unknown keys). */
function known(key, params) {
  const text = t(key, params);
  return text === key ? null : text;
}

function number(value) {
  return new Intl.NumberFormat(locale()).format(value);
}

function formatWhen(iso) {
  const ms = iso ? Date.parse(iso) : NaN;
  if (!Number.isFinite(ms)) return "";
  return new Intl.DateTimeFormat(locale(), {
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(ms);
}

const toast = toaster($("toast"), TOAST_MS);

const MB = 1024 * 1024;

/** A file size in words: megabytes from 1 MB up, kilobytes below. */
function size(bytes) {
  if (bytes >= MB) {
    const n = new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(bytes / MB);
    return t("imports.size.mb", { n });
  }
  return t("imports.size.kb", { n: number(Math.max(1, Math.ceil(bytes / 1024))) });
}

/** A refused mapping in words: by its reason, with the field and column it is about. */
function mappingErrorText(detail) {
  if (typeof detail.reason !== "string") return null;
  return known(`imports.mapping_error.${detail.reason}`, {
    field: detail.field ? fieldLabel(detail.field) : "",
    column: detail.column || "",
  });
}

/** A server error in the user's language: by its code when it has one (see api.py). */
function errorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 0) return t("common.error.network");
    if (error.status === 403) return t("imports.error.forbidden");
    const detail = error.detail && typeof error.detail === "object" ? error.detail : null;
    const code = detail && typeof detail.code === "string" ? detail.code : null;
    if (code === "bad_mapping") {
      const text = mappingErrorText(detail);
      if (text) return text;
    }
    if (code) {
      const text = known(`imports.error.${code}`, { message: detail.message || "" });
      if (text) return text;
    }
    if (error.status === 404) return t("imports.error.not_found");
    return t("common.error.server", { status: error.status, message: error.message });
  }
  return t("common.error.unexpected", { message: String(error) });
}

/** Error boxes on show → what they say, as a function, so a language switch re-words them. */
const shownErrors = new Map();

function codeOf(error) {
  return error instanceof ApiError && error.detail && typeof error.detail.code === "string"
    ? error.detail.code
    : "";
}

/**
 * Show `error` in `box`: an error, or a function giving the text in the current language.
 * The box's data-code is the API's error code (or `code`), for styling and tests.
 */
function showError(box, error, code = codeOf(error)) {
  const words = typeof error === "function" ? error : () => errorText(error);
  shownErrors.set(box, words);
  box.textContent = words();
  box.dataset.code = code;
  box.hidden = false;
}

function clearError(box) {
  shownErrors.delete(box);
  box.hidden = true;
  box.textContent = "";
  delete box.dataset.code;
}

function setBusy(box, busy, key) {
  box.hidden = !busy;
  box.textContent = busy ? t(key) : "";
}

/** POST a file as multipart (api.js speaks JSON only); errors as ApiError like api.js. */
async function uploadFile(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const headers = { Accept: "application/json" };
  const csrf = getCsrfToken();
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch("/api/imports", {
      method: "POST",
      body: form,
      headers,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network error: the server could not be reached");
  }
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (response.ok) return parsed;
  if (response.status === 401) window.location.assign(loginUrl());
  const detail = parsed ? parsed.detail : null;
  const message =
    detail && typeof detail === "object" ? detail.message : detail || response.statusText;
  throw new ApiError(response.status, String(message), { detail, headers: response.headers });
}

// --- steps ---------------------------------------------------------------------------------

/** Show the panel(s) of `step`; the run panel stays above the report once a run started. */
function showStep(step, { focus = true } = {}) {
  state.step = step;
  const current = STEPS.indexOf(step);
  for (const name of STEPS) {
    const panel = $(`step-${name}`);
    panel.hidden = !(name === step || (name === "run" && step === "report"));
  }
  for (const item of $("steps").querySelectorAll("[data-step]")) {
    const index = STEPS.indexOf(item.dataset.step);
    item.dataset.state = index < current ? "done" : index === current ? "current" : "todo";
    if (index === current) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
  if (focus) {
    const heading = $(`step-${step}`).querySelector(".panel__title");
    if (heading) heading.focus();
  }
}

function rememberBatch(batch) {
  const url = new URL(window.location.href);
  if (batch) url.searchParams.set("batch", String(batch.id));
  else url.searchParams.delete("batch");
  window.history.replaceState(null, "", url.pathname + url.search);
}

/** The step a batch's status belongs to. */
function stepOf(batch) {
  if (batch.status === "uploaded") return "mapping";
  if (batch.status === "previewed") return "preview";
  if (RUNNING.has(batch.status)) return "run";
  return "report";
}

async function openBatch(batch, { focus = true } = {}) {
  state.batch = batch;
  rememberBatch(batch);
  const step = stepOf(batch);
  if (step === "mapping" || step === "preview") {
    renderMapping();
    fillRegion();
  }
  if (step === "preview") {
    state.filter = "";
    state.offset = 0;
    await loadPreview();
  }
  if (step === "run" || step === "report") {
    state.progress = {
      done: batch.progress_done,
      total: batch.progress_total,
      status: batch.status,
    };
    renderProgress();
  }
  if (step === "run") startPolling();
  if (step === "report") {
    resetReport();
    renderReport();
  }
  showStep(step, { focus });
}

// --- 1. the file ---------------------------------------------------------------------------

async function onUpload(event) {
  event.preventDefault();
  const errorBox = $("upload-error");
  clearError(errorBox);
  const input = $("file-input");
  const file = input.files && input.files[0];
  if (!file) {
    showError(errorBox, () => t("imports.error.no_file_chosen"));
    input.focus();
    return;
  }
  if (file.size === 0) {
    showError(errorBox, () => t("imports.error.empty_file"));
    input.focus();
    return;
  }
  const limit = state.limits ? state.limits.max_upload_bytes : 0;
  if (limit && file.size > limit) {
    // Refused here, before a byte is sent; the server refuses it too (413) if it comes.
    const words = () =>
      t("imports.error.file_over_limit", { size: size(file.size), limit: size(limit) });
    showError(errorBox, words, "too_large");
    input.focus();
    return;
  }
  const button = $("upload-button");
  button.disabled = true;
  setBusy($("upload-busy"), true, "imports.file.busy");
  try {
    const batch = await uploadFile(file);
    input.value = "";
    await openBatch(batch);
  } catch (error) {
    showError(errorBox, error);
    input.focus();
  } finally {
    button.disabled = false;
    setBusy($("upload-busy"), false);
  }
}

async function loadLimits() {
  try {
    state.limits = await api.get("/api/imports/limits");
  } catch {
    state.limits = null; // the server still refuses what is too large
  }
  renderLimits();
}

function renderLimits() {
  const box = $("file-limit");
  const limits = state.limits;
  box.hidden = !limits;
  box.textContent = limits
    ? t("imports.file.limit", {
        size: size(limits.max_upload_bytes),
        rows: number(limits.max_rows),
      })
    : "";
}

async function loadRecent() {
  try {
    const batches = await api.get("/api/imports");
    state.recent = Array.isArray(batches) ? batches.slice(0, RECENT_LIMIT) : [];
  } catch {
    state.recent = [];
  }
  renderRecent();
}

function renderRecent() {
  const box = $("recent");
  const list = $("recent-list");
  box.hidden = state.recent.length === 0;
  list.replaceChildren(
    ...state.recent.map((batch) =>
      el(
        "li",
        { class: "recent__item", testid: "recent-import", "data-batch-id": batch.id },
        el("a", {
          href: `/imports?batch=${encodeURIComponent(batch.id)}`,
          text: batch.file_name,
          onclick: (event) => {
            event.preventDefault();
            openBatch(batch).catch((error) => toast(errorText(error)));
          },
        }),
        el("span", { class: "recent__when", text: formatWhen(batch.created_at) }),
        statusBadge(batch.status),
      ),
    ),
  );
}

function statusBadge(status) {
  return el("span", {
    class: `status status--${status}`,
    "data-status": status,
    text: known(`imports.status.${status}`) || status,
  });
}

// --- 2. mapping ----------------------------------------------------------------------------

/** Header → the field it is mapped to in `mapping` (field → headers). */
function fieldByHeader(mapping) {
  const out = new Map();
  for (const [field, headers] of Object.entries(mapping || {})) {
    for (const header of headers) out.set(header, field);
  }
  return out;
}

function fieldLabel(field) {
  return known(`imports.field.${field}`) || field;
}

function renderMapping(mapping = null) {
  const batch = state.batch;
  $("mapping-file").textContent = batch.file_name;
  const sheetField = $("sheet-field");
  const sheets = batch.sheets || [];
  sheetField.hidden = sheets.length < 2;
  $("sheet-select").replaceChildren(
    ...sheets.map((name) =>
      el("option", { value: name, text: name, selected: name === batch.sheet }),
    ),
  );
  const chosen = fieldByHeader(mapping || batch.mapping);
  const samples = batch.samples || {};
  const rows = (batch.headers || []).map((header, index) => {
    const id = `map-${index}`;
    const select = el(
      "select",
      { class: "input", id, testid: "mapping-select", "data-header": header },
      el("option", { value: "", text: t("imports.mapping.skip") }),
      ...(batch.fields || []).map((field) =>
        el("option", {
          value: field,
          text: fieldLabel(field),
          selected: chosen.get(header) === field,
        }),
      ),
    );
    return el(
      "tr",
      { testid: "mapping-row", "data-header": header, "data-mapped": chosen.get(header) || "" },
      el("th", { scope: "row" }, el("label", { for: id, class: "mapping__header", text: header })),
      el("td", {}, select),
      el(
        "td",
        {},
        el(
          "ul",
          { class: "mapping__samples", testid: "mapping-samples" },
          ...(samples[header] || []).map((value) => el("li", { text: value, title: value })),
        ),
      ),
    );
  });
  $("mapping-rows").replaceChildren(...rows);
  for (const select of $("mapping-rows").querySelectorAll("select")) {
    select.addEventListener("change", () => {
      select.closest("tr").dataset.mapped = select.value;
    });
  }
  renderTemplates();
}

/** The batch's region and area code into the inputs (on opening it, not on every render). */
function fillRegion() {
  $("region").value = state.batch.region || "RU";
  $("area-code").value = state.batch.area_code ?? "";
}

/** The mapping the selects show now, as the API takes it (field → headers, file order). */
function chosenMapping() {
  const mapping = {};
  for (const select of $("mapping-rows").querySelectorAll("select")) {
    if (!select.value) continue;
    (mapping[select.value] ||= []).push(select.dataset.header);
  }
  return mapping;
}

function renderTemplates() {
  const box = $("template-apply");
  box.hidden = state.templates.length === 0;
  const select = $("template-select");
  const previous = select.value;
  select.replaceChildren(
    ...state.templates.map((tpl) =>
      el("option", { value: tpl.name, text: tpl.name, selected: tpl.name === previous }),
    ),
  );
}

async function loadTemplates() {
  try {
    const templates = await api.get("/api/import-templates");
    state.templates = Array.isArray(templates) ? templates : [];
  } catch {
    state.templates = [];
  }
  if (state.batch) renderTemplates();
}

/** Put a saved template's columns into the selects (only the headers this file has). */
function applyTemplate() {
  const name = $("template-select").value;
  const template = state.templates.find((tpl) => tpl.name === name);
  if (!template) return;
  const headers = new Set(state.batch.headers || []);
  const mapping = {};
  let missing = 0;
  for (const [field, columns] of Object.entries(template.mapping || {})) {
    const present = columns.filter((c) => headers.has(c));
    missing += columns.length - present.length;
    if (present.length) mapping[field] = present;
  }
  renderMapping(mapping);
  const note = missing
    ? t("imports.template.applied_missing", { name, missing })
    : t("imports.template.applied", { name });
  toast(note);
  const first = $("mapping-rows").querySelector("select");
  if (first) first.focus();
}

async function onSheetChange() {
  const errorBox = $("mapping-error");
  clearError(errorBox);
  const sheet = $("sheet-select").value;
  try {
    const batch = await api.put(`/api/imports/${state.batch.id}/mapping`, { sheet });
    state.batch = batch;
    renderMapping();
  } catch (error) {
    $("sheet-select").value = state.batch.sheet || "";
    showError(errorBox, error);
  }
}

async function onMappingSubmit(event) {
  event.preventDefault();
  const errorBox = $("mapping-error");
  clearError(errorBox);
  const mapping = chosenMapping();
  if (!Object.keys(mapping).length) {
    showError(errorBox, () => t("imports.error.nothing_mapped"));
    return;
  }
  const region = $("region").value.trim().toUpperCase();
  const areaCode = $("area-code").value.trim();
  if (!/^[A-Z]{2}$/.test(region)) {
    showError(errorBox, () => t("imports.error.bad_region"));
    $("region").focus();
    return;
  }
  if (!/^\d*$/.test(areaCode)) {
    showError(errorBox, () => t("imports.error.bad_area_code"));
    $("area-code").focus();
    return;
  }
  const body = { mapping, region, area_code: areaCode };
  if ($("save-template").checked) {
    const name = $("template-name").value.trim();
    if (!name) {
      showError(errorBox, () => t("imports.error.template_name"));
      $("template-name").focus();
      return;
    }
    body.save_as = name;
  }
  const button = $("mapping-submit");
  button.disabled = true;
  setBusy($("mapping-busy"), true, "imports.mapping.busy");
  try {
    state.batch = await api.put(`/api/imports/${state.batch.id}/mapping`, body);
    if (body.save_as) {
      $("save-template").checked = false;
      $("template-name").value = "";
      $("template-name-field").hidden = true;
      loadTemplates();
    }
    state.filter = "";
    state.offset = 0;
    await loadPreview();
    showStep("preview");
  } catch (error) {
    showError(errorBox, error);
  } finally {
    button.disabled = false;
    setBusy($("mapping-busy"), false);
  }
}

// --- 3. preview ----------------------------------------------------------------------------

async function loadPreview() {
  const params = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE_SIZE) });
  if (state.filter) params.set("decision", state.filter);
  state.page = await api.get(`/api/imports/${state.batch.id}/preview?${params}`);
  renderPreview();
}

function renderFilters() {
  const box = $("preview-filters");
  const hadFocus = box.contains(document.activeElement);
  const counts = (state.page && state.page.counts) || state.batch.counts || {};
  const options = [["", counts.rows ?? 0], ...DECISIONS.map((d) => [d, counts[d] ?? 0])];
  box.replaceChildren(
    ...options.map(([decision, count]) => {
      const id = `filter-${decision || "all"}`;
      const input = el("input", {
        type: "radio",
        name: "decision",
        id,
        value: decision,
        class: "filter__input",
        testid: `filter-${decision || "all"}`,
        checked: state.filter === decision,
      });
      input.addEventListener("change", () => {
        state.filter = decision;
        state.offset = 0;
        loadPreview().catch((error) => showError($("preview-error"), error));
      });
      const label = decision ? t(`imports.decision.${decision}`) : t("imports.preview.all");
      return el(
        "label",
        { class: `filter filter--${decision || "all"}`, for: id },
        input,
        el("span", { class: "filter__name", text: label }),
        el("span", {
          class: "filter__count",
          testid: `count-${decision || "rows"}`,
          "data-count": count,
          text: number(count),
        }),
      );
    }),
  );
  // Arrow keys move through the radios and each move reloads the page of rows: keep the
  // keyboard where it was.
  if (hadFocus) box.querySelector("input:checked")?.focus();
}

function decisionBadge(decision) {
  return el("span", {
    class: `decision decision--${decision}`,
    "data-decision": decision,
    text: known(`imports.decision.${decision}`) || decision,
  });
}

/** Why a row got its decision, in words: a reject reason, or where a merge goes. */
function rowExplanation(row) {
  if (row.decision === "reject") {
    const reason = known(`imports.reason.${row.reason}`) || row.reason || "";
    return el(
      "span",
      { class: "reason" },
      el("span", { class: "reason__name", "data-reason": row.reason || "", text: reason }),
      row.message ? el("span", { class: "reason__detail", text: row.message }) : null,
      rejectedCells(row.cells),
    );
  }
  if (row.decision === "merge") {
    if (row.target_id) return t("imports.preview.merge_into_card", { id: row.target_id });
    if (row.target_line) return t("imports.preview.merge_into_line", { line: row.target_line });
  }
  if ((row.decision === "update" || row.decision === "unchanged") && row.client_id) {
    return t("imports.preview.existing_card", { id: row.client_id });
  }
  if ((row.decision === "update" || row.decision === "unchanged") && row.organization_id) {
    return t("imports.preview.existing_org", { id: row.organization_id });
  }
  return "";
}

/** A rejected row's cells (mapped column → value), so the table shows what was refused. */
function rejectedCells(cells) {
  const filled = Object.entries(cells || {}).filter(([, value]) => value.trim());
  if (!filled.length) return null;
  return el(
    "dl",
    { class: "reason__cells", testid: "reject-cells", "aria-label": t("imports.preview.cells") },
    ...filled.flatMap(([header, value]) => [el("dt", { text: header }), el("dd", { text: value })]),
  );
}

function renderPreview() {
  renderFilters();
  const page = state.page || { items: [], total: 0, offset: 0, limit: PAGE_SIZE };
  const rows = page.items.map((row) =>
    el(
      "tr",
      { testid: "preview-row", "data-line": row.line, "data-decision": row.decision },
      el("td", { class: "num", text: row.line }),
      el("td", {}, decisionBadge(row.decision)),
      el("td", { text: row.name || "" }),
      el("td", { text: row.organization || "" }),
      el("td", {}, rowExplanation(row)),
    ),
  );
  if (!rows.length) {
    const none = el("td", { colspan: 5, class: "empty", text: t("imports.preview.none") });
    rows.push(el("tr", {}, none));
  }
  $("preview-rows").replaceChildren(...rows);
  const from = page.total ? page.offset + 1 : 0;
  const to = Math.min(page.offset + page.items.length, page.total);
  $("preview-page").textContent = t("imports.preview.page", {
    from: number(from),
    to: number(to),
    total: number(page.total),
  });
  $("preview-prev").disabled = page.offset <= 0;
  $("preview-next").disabled = page.offset + page.items.length >= page.total;
  const counts = page.counts || {};
  const writes = (counts.create || 0) + (counts.update || 0) + (counts.merge || 0);
  $("run-button").disabled = writes === 0;
}

function turnPage(direction) {
  state.offset = Math.max(0, state.offset + direction * PAGE_SIZE);
  loadPreview().catch((error) => showError($("preview-error"), error));
}

async function onRun() {
  const errorBox = $("preview-error");
  clearError(errorBox);
  const button = $("run-button");
  button.disabled = true;
  // The run panel is up before the answer: a small file can finish, and its last progress
  // event arrive over the socket, before the POST's own answer does.
  state.progress = { done: 0, total: 0, status: "queued" };
  renderProgress();
  showStep("run");
  try {
    const batch = await api.post(`/api/imports/${state.batch.id}/run`, {});
    if (FINISHED.has(state.progress.status)) return; // the report is already on its way
    state.batch = batch;
    startPolling();
  } catch (error) {
    state.progress = null;
    showStep("preview");
    showError(errorBox, error);
  } finally {
    button.disabled = false;
  }
}

// --- 4. run --------------------------------------------------------------------------------

function percentOf(progress) {
  if (!progress) return 0;
  if (progress.status === "done" || progress.status === "undone") return 100;
  if (!progress.total) return 0;
  return Math.min(100, Math.floor((progress.done * 100) / progress.total));
}

function renderProgress() {
  const progress = state.progress || { done: 0, total: 0, status: "queued" };
  const percent = percentOf(progress);
  const bar = $("run-progress");
  bar.dataset.status = progress.status;
  bar.setAttribute("aria-valuenow", String(percent));
  let text;
  if (progress.status === "queued") text = t("imports.run.queued");
  else if (progress.status === "failed") text = t("imports.run.failed");
  else if (progress.status === "running" && !progress.total) text = t("imports.run.preparing");
  else {
    text = t("imports.run.progress", {
      percent,
      done: number(progress.status === "done" ? progress.total : progress.done),
      total: number(progress.total),
    });
  }
  bar.setAttribute("aria-valuetext", text);
  const track = svg("svg", {
    class: "progress__track",
    width: "100%",
    height: "14",
    "aria-hidden": "true",
    focusable: "false",
  });
  // An SVG width attribute, not a style: nothing inline for the strict CSP.
  track.append(
    svg("rect", { class: "progress__fill", x: 0, y: 0, height: 14, width: `${percent}%` }),
  );
  bar.replaceChildren(track);
  $("run-progress-text").textContent = text;
  $("run-hint").hidden = !RUNNING.has(progress.status);
  $("run-title").textContent = t(
    progress.status === "done" || progress.status === "undone"
      ? "imports.run.title_done"
      : progress.status === "failed"
        ? "imports.run.title_failed"
        : "imports.run.title",
  );
}

function applyProgress(update) {
  if (!state.batch || update.batch_id !== state.batch.id) return;
  const previous = state.progress || { done: 0, total: 0 };
  // Events and polls race; a step back in the count is an older message.
  if (!FINISHED.has(update.status) && update.done < previous.done) return;
  state.progress = { done: update.done, total: update.total, status: update.status };
  renderProgress();
  if (FINISHED.has(update.status)) finishRun();
}

function startPolling() {
  stopPolling();
  const tick = async () => {
    state.pollTimer = null;
    if (!state.batch || !RUNNING.has(state.batch.status)) return;
    try {
      const batch = await api.get(`/api/imports/${state.batch.id}`);
      if (!state.batch || batch.id !== state.batch.id) return;
      state.batch = batch;
      applyProgress({
        batch_id: batch.id,
        status: batch.status,
        done: batch.progress_done,
        total: batch.progress_total,
      });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) {
        console.warn("import status:", error);
      }
    }
    if (state.batch && RUNNING.has(state.batch.status)) {
      state.pollTimer = setTimeout(tick, POLL_MS);
    }
  };
  state.pollTimer = setTimeout(tick, POLL_MS);
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

let finishing = null;
/** The run is over: fetch the batch (counts and report) once and show the report. */
function finishRun() {
  if (finishing || state.step === "report") return finishing;
  stopPolling();
  const id = state.batch.id;
  finishing = api
    .get(`/api/imports/${id}`)
    .then((batch) => {
      if (!state.batch || state.batch.id !== id) return;
      state.batch = batch;
      resetReport();
      renderReport();
      showStep("report");
      loadRecent();
    })
    .catch((error) => toast(errorText(error)))
    .finally(() => {
      finishing = null;
    });
  return finishing;
}

function onEvent(event) {
  if (event.type !== "import.progress") return;
  applyProgress(event);
}

// --- 5. report -----------------------------------------------------------------------------

function renderReport() {
  const batch = state.batch;
  const status = $("report-status");
  status.replaceChildren(statusBadge(batch.status));
  status.dataset.status = batch.status;

  const failure = $("report-failure");
  if (batch.status === "failed") {
    const reason =
      known(`imports.error.${batch.error_code}`, { message: batch.error_message || "" }) ||
      t("imports.report.failed", { message: batch.error_message || batch.error_code || "" });
    failure.textContent = reason;
    failure.hidden = false;
  } else {
    failure.hidden = true;
  }

  const counts = batch.counts || {};
  $("report-counts").replaceChildren(
    ...REPORT_COUNTS.filter((key) => key in counts).map((key) =>
      el(
        "div",
        { class: "counts__item", testid: `report-${key}`, "data-count": counts[key] },
        el("dt", { text: t(`imports.count.${key}`) }),
        el("dd", { text: number(counts[key]) }),
      ),
    ),
  );

  const report = batch.report || {};
  const rejects = Object.entries(report.rejects || {}).filter(([, n]) => n > 0);
  $("report-rejects").hidden = rejects.length === 0;
  $("report-reasons").replaceChildren(
    ...rejects.map(([reason, n]) =>
      el(
        "li",
        { testid: "report-reason", "data-reason": reason },
        el("span", { text: known(`imports.reason.${reason}`) || reason }),
        el("span", { class: "reasons__count", text: number(n) }),
      ),
    ),
  );

  const downloadable = (batch.status === "done" || batch.status === "undone") && rejects.length > 0;
  $("report-downloads").hidden = !downloadable;
  $("rejected-csv").href = `/api/imports/${batch.id}/rejected.csv`;
  $("rejected-xlsx").href = `/api/imports/${batch.id}/rejected.xlsx`;

  $("undo-box").hidden = batch.status !== "done";
  if (batch.status !== "done") closeUndo();
  renderUndoQuestion();
}

/** A report shown anew (another batch, or this one finished): no leftovers of the last one. */
function resetReport() {
  closeUndo();
  clearError($("report-error"));
}

function closeUndo() {
  $("undo-confirm").hidden = true;
  $("undo-button").hidden = false;
}

function renderUndoQuestion() {
  const counts = state.batch.counts || {};
  $("undo-question").textContent = t("imports.undo.question", {
    created: number((counts.clients_created || 0) + (counts.organizations_created || 0)),
    updated: number((counts.clients_updated || 0) + (counts.organizations_updated || 0)),
    phones: number(counts.phones_added || 0),
  });
}

function askUndo() {
  renderUndoQuestion();
  $("undo-button").hidden = true;
  $("undo-confirm").hidden = false;
  $("undo-no").focus();
}

function cancelUndo() {
  closeUndo();
  $("undo-button").focus();
}

/** 409 undo_conflict: which cards changed since, so the user knows what blocks the undo. */
function undoConflictText(error) {
  const detail = error.detail || {};
  // references: {"table.column": count}; edited: {"client": [ids], ...}
  const size = (group) =>
    Object.values(group || {}).reduce(
      (sum, v) => sum + (Array.isArray(v) ? v.length : Number(v) || 0),
      0,
    );
  return t("imports.error.undo_conflict", {
    references: number(size(detail.references)),
    edited: number(size(detail.edited)),
  });
}

async function confirmUndo() {
  if (state.undoing) return;
  state.undoing = true;
  const errorBox = $("report-error");
  clearError(errorBox);
  $("undo-yes").disabled = true;
  try {
    const result = await api.post(`/api/imports/${state.batch.id}/undo`, {});
    state.batch = result.batch;
    renderReport();
    $("report-title").focus();
    toast(t("imports.undo.done"));
    loadRecent();
  } catch (error) {
    if (codeOf(error) === "undo_conflict") {
      showError(errorBox, () => undoConflictText(error), "undo_conflict");
    } else {
      showError(errorBox, error);
    }
    cancelUndo();
  } finally {
    state.undoing = false;
    $("undo-yes").disabled = false;
  }
}

function startOver() {
  stopPolling();
  state.batch = null;
  state.page = null;
  state.progress = null;
  rememberBatch(null);
  clearError($("upload-error"));
  showStep("file");
  loadRecent();
}

// --- language ------------------------------------------------------------------------------

function rerender() {
  for (const [box, words] of shownErrors) box.textContent = words();
  renderLimits();
  if (!state.batch) {
    renderRecent();
    return;
  }
  if (state.step === "mapping") renderMapping(chosenMapping());
  if (state.step === "preview") renderPreview();
  if (state.step === "run" || state.step === "report") renderProgress();
  if (state.step === "report") renderReport();
  renderRecent();
}

// --- start ---------------------------------------------------------------------------------

function wire() {
  $("upload-form").addEventListener("submit", onUpload);
  $("mapping-form").addEventListener("submit", onMappingSubmit);
  $("mapping-back").addEventListener("click", startOver);
  $("sheet-select").addEventListener("change", onSheetChange);
  $("template-apply-button").addEventListener("click", applyTemplate);
  $("save-template").addEventListener("change", () => {
    const on = $("save-template").checked;
    $("template-name-field").hidden = !on;
    if (on) $("template-name").focus();
  });
  $("preview-prev").addEventListener("click", () => turnPage(-1));
  $("preview-next").addEventListener("click", () => turnPage(1));
  $("preview-back").addEventListener("click", () => {
    renderMapping();
    showStep("mapping");
  });
  $("run-button").addEventListener("click", onRun);
  $("undo-button").addEventListener("click", askUndo);
  $("undo-no").addEventListener("click", cancelUndo);
  $("undo-yes").addEventListener("click", confirmUndo);
  $("undo-confirm").addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancelUndo();
  });
  $("start-over").addEventListener("click", startOver);
}

function showForbidden() {
  $("wizard").hidden = true;
  $("forbidden").hidden = false;
}

async function main() {
  const user = await signedInUser();
  $("user-name").textContent = user.name || user.login || "";
  mountLanguageSwitch($("lang-switch"), {
    persist: true,
    onError: (error) => toast(errorText(error)),
  });
  window.addEventListener("localechange", rerender);
  mountLogout($("logout"), { onError: (error) => toast(errorText(error)) });

  if (!SUPERVISOR_ROLES.has(user.role)) {
    showForbidden();
    return;
  }
  $("wizard").hidden = false;
  wire();

  // Progress events from the first moment, so a run started here is never missed.
  const events = new EventClient({ onEvent });
  window.callcenter = { events, state };
  window.addEventListener("beforeunload", () => events.stop());
  events.start();

  loadTemplates();
  loadLimits();
  const wanted = Number(new URL(window.location.href).searchParams.get("batch"));
  if (Number.isInteger(wanted) && wanted > 0) {
    try {
      await openBatch(await api.get(`/api/imports/${wanted}`), { focus: false });
      return;
    } catch (error) {
      rememberBatch(null);
      toast(errorText(error));
    }
  }
  showStep("file", { focus: false });
  loadRecent();
}

main().catch(
  startFailed((error) => {
    console.error(error);
    toast(errorText(error));
  }),
);
