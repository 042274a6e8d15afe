// The notice on a call card that the wrong-number rules closed the call: why, with the
// numbers the rules used, in the reader's language, and the one-click undo.
//
// The server sends each rule that fired as {rule, params} (`wrong_number_verdicts`); the
// English `reason` is only the fallback for a rule this page does not know yet.

import { api } from "/ui/shared/api.js";
import { locale, t } from "/ui/shared/i18n.js";
import { el } from "/ui/shared/dom.js";

/** Whether the rules closed this call and nobody has undone it. */
export function isAutoClosed(call) {
  return (
    call.outcome === "wrong_number" && Boolean(call.auto_closed_at) && !call.wrong_number_undone_at
  );
}

function seconds(value) {
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(number)) return "?";
  // The server already rounds to as few decimals as keep a time on its side of the limit.
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 3 }).format(number);
}

/** One rule's reason, in the page's language. */
export function verdictText(verdict) {
  const p = verdict.params || {};
  switch (verdict.rule) {
    case "short_answer":
      return t("wrong_number.rule.short_answer", {
        talk: seconds(p.talk_s),
        limit: seconds(p.limit_s),
      });
    case "caller_hung_up":
      return t("wrong_number.rule.caller_hung_up", {
        talk: seconds(p.talk_s),
        limit: seconds(p.limit_s),
      });
    case "no_caller_speech":
      return t("wrong_number.rule.no_caller_speech", {
        speech: seconds(p.speech_s),
        limit: seconds(p.limit_s),
      });
    case "known_number":
      return t("wrong_number.rule.known_number", { number: p.number, count: p.count });
    case "pattern":
      return t("wrong_number.rule.pattern", { number: p.number, entry: p.entry });
    default:
      return verdict.reason || "";
  }
}

export class WrongNumberNotice {
  /** `onUndone(call)` gets the call as the server returns it after the undo. */
  constructor(callId, { onUndone, onError }) {
    this.callId = callId;
    this.onUndone = onUndone;
    this.onError = onError;
    this.busy = false;
    this.el = el("div", { class: "wrong-number", testid: "pop-auto-closed", hidden: true });
  }

  update(call) {
    if (!isAutoClosed(call)) {
      this.el.hidden = true;
      this.el.replaceChildren();
      return;
    }
    this.el.hidden = false;
    const verdicts = Array.isArray(call.wrong_number_verdicts) ? call.wrong_number_verdicts : [];
    const reasons = verdicts.length
      ? verdicts.map((v) => el("li", { testid: "pop-auto-closed-reason" }, verdictText(v)))
      : [el("li", { testid: "pop-auto-closed-reason" }, call.wrong_number_reason || "")];
    this.el.replaceChildren(
      el(
        "div",
        { class: "wrong-number__head" },
        el("strong", { class: "wrong-number__title" }, t("wrong_number.auto_closed")),
        el("button", {
          type: "button",
          class: "btn wrong-number__undo",
          testid: "pop-auto-closed-undo",
          disabled: this.busy ? true : undefined,
          text: this.busy ? t("wrong_number.undoing") : t("wrong_number.undo"),
          onclick: () => this.undo(),
        }),
      ),
      el("ul", { class: "wrong-number__reasons" }, ...reasons),
    );
  }

  async undo() {
    if (this.busy) return;
    this.busy = true;
    const button = this.el.querySelector("[data-testid=pop-auto-closed-undo]");
    if (button) {
      button.disabled = true;
      button.textContent = t("wrong_number.undoing");
    }
    try {
      const call = await api.post(`/api/calls/${this.callId}/wrong-number/undo`, {});
      this.busy = false;
      this.onUndone(call);
    } catch (error) {
      this.busy = false;
      this.onError(error);
      if (button) {
        button.disabled = false;
        button.textContent = t("wrong_number.undo");
      }
    }
  }
}
