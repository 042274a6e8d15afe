// The audit log reader for admins: who viewed, exported or changed which client's data and
// who listened to which recording (GET /api/audit, newest first, a page at a time).

import { api, ApiError } from "/ui/shared/api.js";
import { locale, mountLanguageSwitch, t } from "/ui/shared/i18n.js";
import { signedInUser, startFailed } from "/ui/shared/page.js";

const PAGE = 100;
const form = document.getElementById("audit-filters");
const rowsBox = document.getElementById("audit-rows");
const emptyBox = document.getElementById("audit-empty");
const moreButton = document.getElementById("audit-more");
const errorBox = document.getElementById("audit-error");

let entries = [];
let next = null;
let query = new URLSearchParams();

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function when(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "medium" }).format(
    new Date(iso),
  );
}

function render() {
  rowsBox.replaceChildren(
    ...entries.map((entry) => {
      const row = document.createElement("tr");
      row.dataset.testid = "audit-row";
      row.append(
        cell(when(entry.at)),
        cell(entry.user ? `${entry.user.name} (#${entry.user.id})` : "—"),
        cell(entry.action),
        cell(`${entry.entity} ${entry.entity_id}`),
        cell(JSON.stringify(entry.details), "audit__details"),
      );
      return row;
    }),
  );
  emptyBox.hidden = entries.length > 0;
  moreButton.hidden = next === null;
}

function showError(error) {
  errorBox.hidden = false;
  if (error instanceof ApiError && error.status === 403) errorBox.textContent = t("audit.forbidden");
  else errorBox.textContent = t("common.error.unexpected", { message: error.message || String(error) });
}

async function load(reset) {
  errorBox.hidden = true;
  const params = new URLSearchParams(query);
  params.set("limit", String(PAGE));
  if (!reset && next !== null) params.set("before", String(next));
  try {
    const page = await api.get(`/api/audit?${params}`);
    entries = reset ? page.items : [...entries, ...page.items];
    next = page.next_before;
    render();
  } catch (error) {
    showError(error);
  }
}

function readFilters() {
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const name of ["client_id", "user_id", "action"]) {
    const value = String(data.get(name) || "").trim();
    if (value) params.set(name, value);
  }
  for (const name of ["from", "to"]) {
    const value = String(data.get(name) || "");
    if (value) params.set(name, new Date(value).toISOString());
  }
  return params;
}

async function main() {
  const user = await signedInUser();
  document.getElementById("user-name").textContent = user.name || "";
  mountLanguageSwitch(document.getElementById("lang-switch"), { persist: true });
  window.addEventListener("localechange", render);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    query = readFilters();
    load(true);
  });
  moreButton.addEventListener("click", () => load(false));
  const preset = new URLSearchParams(window.location.search).get("client_id");
  if (preset) {
    form.elements.namedItem("client_id").value = preset;
    query = readFilters();
  }
  await load(true);
}

main().catch(startFailed(showError));
