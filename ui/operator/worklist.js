// The missed-calls worklist: callers of the operator's queues whom nobody took and nobody has
// reached since, newest first, with a one-click call-back and a "done" button.
//
// GET /api/worklist/missed; POST .../{call_id}/call-back (dials like click-to-call) and
// .../{call_id}/close. The list is re-read every minute, after every action, and soon after
// a call of this operator ends or is withdrawn.

import { api } from "/ui/shared/api.js";
import { locale, t } from "/ui/shared/i18n.js";
import { controlErrorText, dial, isLocked } from "./dialer.js";
import { el } from "/ui/shared/dom.js";

const REFRESH_MS = 60_000;
const AFTER_CALL_MS = 1500;
const PAGE_SIZE = 50;

function formatWhen(iso) {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return new Intl.DateTimeFormat(locale(), {
    day: today ? undefined : "2-digit",
    month: today ? undefined : "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).format(date);
}

export function mountWorklist(section, { toast }) {
  const state = { items: [], total: 0, loaded: false, closing: new Set() };
  let timer = null;
  let soon = null;

  const count = el("span", { class: "worklist__count", testid: "worklist-count" });
  const list = el("ul", { class: "worklist__items", testid: "worklist-items" });
  const empty = el("p", { class: "worklist__empty", testid: "worklist-empty" });
  const title = el("h2", { class: "worklist__title" });
  const refreshButton = el("button", {
    type: "button",
    class: "btn btn--ghost worklist__refresh",
    testid: "worklist-refresh",
    onclick: () => refresh(),
  });
  section.replaceChildren(
    el("div", { class: "worklist__head" }, title, count, refreshButton),
    list,
    empty,
  );

  async function refresh() {
    clearTimeout(timer);
    try {
      const page = await api.get(`/api/worklist/missed?per_page=${PAGE_SIZE}`);
      state.items = page.items || [];
      state.total = page.total || 0;
      state.loaded = true;
    } catch (error) {
      toast(controlErrorText(error));
    }
    render();
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function callBack(item) {
    const result = await dial({
      number: item.e164,
      display: item.display,
      path: `/api/worklist/missed/${item.call_id}/call-back`,
    });
    if (result) refresh();
  }

  async function close(item) {
    if (state.closing.has(item.call_id)) return;
    state.closing.add(item.call_id);
    render();
    try {
      await api.post(`/api/worklist/missed/${item.call_id}/close`, { resolution: "done" });
    } catch (error) {
      toast(controlErrorText(error));
    } finally {
      state.closing.delete(item.call_id);
    }
    refresh();
  }

  function renderItem(item) {
    const who = item.client_name || item.caller_name || item.display;
    const facts = [
      formatWhen(item.started_at),
      t("worklist.queue", { queue: item.queue }),
      t(`end_reason.${item.end_reason}`),
    ];
    if (item.missed_count > 1) facts.push(t("worklist.missed_times", { count: item.missed_count }));
    if (item.attempts > 0) facts.push(t("worklist.attempts", { count: item.attempts }));
    const callButton = el("button", {
      type: "button",
      class: "btn btn--primary btn--dial",
      testid: "worklist-call-back",
      text: t("worklist.call_back"),
      title: t("dial.call_number", { number: item.display }),
      onclick: () => callBack(item),
    });
    callButton.dataset.dialNumber = item.e164;
    callButton.disabled = isLocked(item.e164);
    const row = el(
      "li",
      { class: "worklist__item", testid: "worklist-item" },
      el(
        "div",
        { class: "worklist__who" },
        el("span", { class: "worklist__name", testid: "worklist-name" }, who),
        who !== item.display
          ? el("span", { class: "worklist__number", testid: "worklist-number" }, item.display)
          : null,
      ),
      el("div", { class: "worklist__facts" }, facts.join(" · ")),
      el(
        "div",
        { class: "worklist__actions" },
        callButton,
        el("button", {
          type: "button",
          class: "btn",
          testid: "worklist-done",
          disabled: state.closing.has(item.call_id) || undefined,
          text: t("worklist.done"),
          onclick: () => close(item),
        }),
      ),
    );
    row.dataset.callId = String(item.call_id);
    if (item.attempts > 0) row.dataset.attempted = "1";
    return row;
  }

  function render() {
    title.textContent = t("worklist.title");
    refreshButton.textContent = t("worklist.refresh");
    count.textContent = state.loaded ? String(state.total) : "";
    count.hidden = !state.total;
    list.replaceChildren(...state.items.map(renderItem));
    empty.textContent = t("worklist.empty");
    empty.hidden = !state.loaded || state.items.length > 0;
    section.dataset.count = String(state.total);
  }

  function onEvent(event) {
    // A call of this operator ended, or one that rang here lost its caller: the list may
    // have changed.
    if (event && (event.type === "call.ended" || event.type === "call.withdrawn")) {
      clearTimeout(soon);
      soon = setTimeout(refresh, AFTER_CALL_MS);
    }
  }

  render();
  refresh();
  return { refresh, render, onEvent };
}
