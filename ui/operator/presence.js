// The operator's own pause state in the header: "Available" or "Paused: Lunch", a Pause
// button with the reasons the server offers (free text with "other"), and Resume.
//
// GET /api/control/me says what the PBX reports now; POST /api/agents/me/pause|unpause act;
// "agent.pause" events (a supervisor paused this operator) keep it current.

import { api } from "/ui/shared/api.js";
import { t } from "/ui/shared/i18n.js";
import { controlErrorText } from "./dialer.js";
import { el } from "/ui/shared/dom.js";

/** The label of a pause reason: a known code in the user's language, else the text itself. */
export function reasonLabel(reason) {
  if (!reason) return "";
  const key = `pause_reason.${reason}`;
  const text = t(key);
  return text === key ? reason : text;
}

export function mountPresence(container, { toast }) {
  const state = {
    loaded: false,
    extensions: [],
    pbx: "unavailable",
    paused: null,
    reason: "",
    reasons: [],
    maxLength: 64,
    otherReason: "other",
    open: false,
    busy: false,
    chosen: "",
  };
  const textInput = el("input", {
    class: "input presence__text",
    testid: "pause-text",
    autocomplete: "off",
  });
  textInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") submitPause();
    if (event.key === "Escape") close();
  });

  function visibleState() {
    if (state.paused === true) return "paused";
    if (state.pbx !== "ok") return "unknown";
    return state.paused === false ? "available" : "no_queue";
  }

  function close() {
    state.open = false;
    render();
  }

  async function refresh() {
    try {
      const me = await api.get("/api/control/me");
      state.extensions = me.extensions || [];
      state.pbx = me.pbx;
      state.paused = me.paused;
      state.reason = me.reason || "";
      state.reasons = me.pause_reasons || [];
      state.maxLength = me.reason_max_length || 64;
      state.otherReason = me.other_reason || "other";
      if (!state.reasons.includes(state.chosen)) state.chosen = state.reasons[0] || "";
    } catch (error) {
      state.pbx = "unknown";
      toast(controlErrorText(error));
    }
    state.loaded = true;
    render();
  }

  async function submitPause() {
    if (state.busy || !state.chosen) return;
    const body = { reason: state.chosen };
    if (state.chosen === state.otherReason && textInput.value.trim()) {
      body.text = textInput.value.trim();
    }
    state.busy = true;
    render();
    try {
      const result = await api.post("/api/agents/me/pause", body);
      state.paused = true;
      state.reason = result.reason;
      state.open = false;
      textInput.value = "";
    } catch (error) {
      toast(controlErrorText(error));
    } finally {
      state.busy = false;
      render();
    }
  }

  async function resume() {
    if (state.busy) return;
    state.busy = true;
    render();
    try {
      await api.post("/api/agents/me/unpause", {});
      state.paused = false;
      state.reason = "";
    } catch (error) {
      toast(controlErrorText(error));
    } finally {
      state.busy = false;
      render();
    }
  }

  function renderForm() {
    const select = el("select", {
      class: "input presence__reason",
      testid: "pause-reason",
      "aria-label": t("control.pause_reason"),
      onchange: (event) => {
        state.chosen = event.target.value;
        render();
      },
    });
    for (const code of state.reasons) {
      const option = el("option", { value: code }, reasonLabel(code));
      option.selected = code === state.chosen;
      select.append(option);
    }
    const other = state.chosen === state.otherReason;
    textInput.maxLength = state.maxLength;
    textInput.placeholder = t("control.pause_text");
    textInput.hidden = !other;
    return el(
      "div",
      { class: "presence__form", testid: "pause-form", role: "dialog" },
      el("label", { class: "presence__label" }, t("control.pause_reason"), select),
      textInput,
      el(
        "div",
        { class: "presence__actions" },
        el("button", {
          type: "button",
          class: "btn btn--primary",
          testid: "pause-submit",
          disabled: state.busy || undefined,
          text: t("control.pause_submit"),
          onclick: submitPause,
        }),
        el("button", {
          type: "button",
          class: "btn",
          testid: "pause-cancel",
          text: t("control.cancel"),
          onclick: close,
        }),
      ),
    );
  }

  function render() {
    const hidden = !state.loaded || !state.extensions.length || state.pbx === "unavailable";
    container.hidden = hidden;
    if (hidden) {
      container.replaceChildren();
      return;
    }
    const shown = visibleState();
    const label =
      shown === "paused"
        ? state.reason
          ? t("control.presence.paused", { reason: reasonLabel(state.reason) })
          : t("control.presence.paused_plain")
        : t(`control.presence.${shown}`);
    const pill = el(
      "span",
      { class: `presence__state presence__state--${shown}`, testid: "presence-state" },
      el("span", { class: "presence__dot", "aria-hidden": "true" }),
      label,
    );
    pill.dataset.state = shown;
    const action =
      shown === "paused"
        ? el("button", {
            type: "button",
            class: "btn btn--ghost",
            testid: "unpause-button",
            disabled: state.busy || undefined,
            text: t("control.resume"),
            onclick: resume,
          })
        : el("button", {
            type: "button",
            class: "btn btn--ghost",
            testid: "pause-button",
            "aria-expanded": String(state.open),
            disabled: shown !== "available" || undefined,
            text: t("control.pause"),
            onclick: () => {
              state.open = !state.open;
              render();
              if (state.open) container.querySelector("[data-testid=pause-reason]")?.focus();
            },
          });
    container.replaceChildren(pill, action, state.open && shown === "available" ? renderForm() : "");
  }

  function onEvent(event) {
    if (!event || event.type !== "agent.pause") return;
    if (!state.extensions.includes(event.extension)) return;
    state.paused = Boolean(event.paused);
    state.reason = event.paused ? event.reason || "" : "";
    render();
  }

  refresh();
  return { refresh, render, onEvent };
}
