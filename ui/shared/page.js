// What every signed-in page does the same way: learn who is signed in and speak their
// language, a logout button, a toast, and the common error messages.

import { api, ApiError, setCsrfToken } from "/ui/shared/api.js";
import { initI18n, t } from "/ui/shared/i18n.js";

/**
 * The signed-in user (`{}` when the session has none). The catalogue is loaded in the user's
 * language before anything is shown, and also when /api/auth/me failed, so that the error is
 * worded in it; the failure is then rethrown (a 401 is already on its way to /login).
 */
export async function signedInUser() {
  let me = null;
  let failure = null;
  try {
    me = await api.get("/api/auth/me");
  } catch (error) {
    failure = error;
  }
  await initI18n(me && me.user ? me.user.locale : undefined);
  if (failure) throw failure;
  setCsrfToken(me.csrf_token);
  return me.user || {};
}

/**
 * Log out on a click of `button` and go to /login; an expired session (401) counts as logged
 * out. `onError(error)` shows any other failure; `beforeLeave()` runs just before leaving.
 */
export function mountLogout(button, { onError, beforeLeave = () => {} }) {
  button.addEventListener("click", async () => {
    try {
      await api.post("/api/auth/logout", {});
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) {
        onError(error);
        return;
      }
    }
    beforeLeave();
    window.location.assign("/login");
  });
}

/**
 * The handler for a page's failed start: the page is shown (no longer waiting for its
 * language) and `show(error)` reports the error, except a 401, which is on its way to /login.
 */
export function startFailed(show) {
  return (error) => {
    document.documentElement.classList.remove("i18n-pending");
    if (error instanceof ApiError && error.status === 401) return;
    show(error);
  };
}

/**
 * A toast in `box` that hides itself after `ms`. The returned function shows a message;
 * with a `kind`, that is also set as the box's data-kind (for styling).
 */
export function toaster(box, ms) {
  let timer = null;
  return (message, kind) => {
    box.textContent = message;
    if (kind !== undefined) box.dataset.kind = kind;
    box.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => {
      box.hidden = true;
    }, ms);
  };
}

/** An API or other error in the user's language (the messages common to every page). */
export function errorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 0) return t("common.error.network");
    if (error.status === 403) return t("common.error.forbidden");
    return t("common.error.server", { status: error.status, message: error.message });
  }
  return t("common.error.unexpected", { message: String(error) });
}
