// Click-to-call: a call button for any phone number, and the call-back of a missed call.
//
// One click sends one request with its own Idempotency-Key. While a number is being dialled
// (and for a few seconds after the answer) every call button for that number is disabled,
// so a double click cannot dial twice; the server refuses a repeat within its window anyway.

import { api, ApiError } from "/ui/shared/api.js";
import { t } from "/ui/shared/i18n.js";
import { el } from "/ui/shared/dom.js";
import { clickKey } from "./dom.js";

const LOCK_AFTER_MS = 4000;

const locked = new Map(); // number → timer id (or true while the request is in flight)
let notify = () => {};
let fallbackError = (error) => String(error);

/** Where the dialer reports what happened (the page's toast and error wording). */
export function configureDialer({ toast, errorText }) {
  notify = toast;
  fallbackError = errorText;
}

/** The user-facing text of a call-control error (its code translated when known). */
export function controlErrorText(error) {
  const detail = error instanceof ApiError ? error.detail : null;
  if (detail && typeof detail === "object" && typeof detail.code === "string") {
    const key = `control.error.${detail.code}`;
    const text = t(key, { message: detail.message || "" });
    if (text !== key) return text;
  }
  return fallbackError(error);
}

/** Whether `number` is being dialled now (its call buttons are disabled meanwhile). */
export function isLocked(number) {
  return locked.has(number);
}

function refreshButtons(number) {
  for (const button of document.querySelectorAll("[data-dial-number]")) {
    if (button.dataset.dialNumber === number) button.disabled = isLocked(number);
  }
}

function lock(number) {
  clearTimeout(locked.get(number));
  locked.set(number, true);
  refreshButtons(number);
}

function unlockLater(number, delay) {
  clearTimeout(locked.get(number));
  locked.set(
    number,
    setTimeout(() => {
      locked.delete(number);
      refreshButtons(number);
    }, delay),
  );
}

function announce(result, fallbackNumber) {
  const number = (result && result.display) || fallbackNumber;
  if (result && result.duplicate) notify(t("dial.duplicate", { number }));
  else if (result && result.status === "unknown") notify(t("dial.unknown", { number }));
  else notify(t("dial.calling", { number }));
}

/**
 * Send one dial request for `number` (locked while it runs). `path` defaults to
 * click-to-call; the worklist's call-back passes its own. Resolves with the server's answer,
 * or null when it failed (the failure is shown).
 */
export async function dial({ number, display = number, clientId = null, path = null }) {
  if (!number || isLocked(number)) return null;
  lock(number);
  const headers = { "Idempotency-Key": clickKey() };
  try {
    const result = path
      ? await api.post(path, undefined, { headers })
      : await api.post("/api/outbound-calls", { number, client_id: clientId }, { headers });
    announce(result, display);
    unlockLater(number, LOCK_AFTER_MS);
    return result;
  } catch (error) {
    notify(controlErrorText(error));
    unlockLater(number, 0);
    return null;
  }
}

/** A "Call" button that dials `number` (an E.164 or any written form) from the user's phone. */
export function dialButton({ number, display = number, clientId = null, testid = "dial-button" }) {
  const label = t("dial.call_number", { number: display });
  const button = el(
    "button",
    {
      type: "button",
      class: "btn btn--dial",
      testid,
      title: label,
      "aria-label": label,
      onclick: (event) => {
        event.stopPropagation();
        dial({ number, display, clientId });
      },
    },
    el("span", { class: "btn--dial__icon", "aria-hidden": "true" }),
    t("dial.call"),
  );
  button.dataset.dialNumber = number;
  button.disabled = isLocked(number);
  return button;
}
