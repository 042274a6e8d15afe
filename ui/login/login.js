// The login page: POST /api/auth/login, then on to ?next= (or /operator).

import { api, ApiError, safeNext, setCsrfToken } from "/ui/shared/api.js";
import { initI18n, locale, mountLanguageSwitch, t } from "/ui/shared/i18n.js";

const form = document.getElementById("login-form");
const loginInput = document.getElementById("login");
const passwordInput = document.getElementById("password");
const submit = document.getElementById("login-submit");
const errorBox = document.getElementById("login-error");

const next = safeNext(new URLSearchParams(window.location.search).get("next"));
// A language picked on this page (in this tab, surviving a reload) is saved for the user who
// signs in next. Only an explicit pick counts: on a shared workstation the previous
// operator's language must not overwrite the next one's.
const CHOSEN_KEY = "cc_locale_chosen";

function chosenHere() {
  try {
    return window.sessionStorage.getItem(CHOSEN_KEY) === "1";
  } catch {
    return false;
  }
}

function markChosen(value) {
  try {
    if (value) window.sessionStorage.setItem(CHOSEN_KEY, "1");
    else window.sessionStorage.removeItem(CHOSEN_KEY);
  } catch {
    /* storage disabled: the choice applies to this page only */
  }
}

let shownError = null; // {key, params}: re-rendered when the language changes
let lockUntil = 0;
let lockTimer = null;

function showError(key, params = {}) {
  shownError = { key, params };
  renderError();
}

function renderError() {
  if (!shownError) {
    errorBox.hidden = true;
    errorBox.textContent = "";
    return;
  }
  const params = { ...shownError.params };
  if (shownError.key === "login.error.too_many") {
    params.seconds = Math.max(0, Math.ceil((lockUntil - Date.now()) / 1000));
  }
  errorBox.textContent = t(shownError.key, params);
  errorBox.hidden = false;
}

function clearError() {
  shownError = null;
  renderError();
}

function lockFor(seconds) {
  lockUntil = Date.now() + seconds * 1000;
  submit.disabled = true;
  clearInterval(lockTimer);
  lockTimer = setInterval(() => {
    if (Date.now() >= lockUntil) {
      clearInterval(lockTimer);
      submit.disabled = false;
      if (shownError && shownError.key === "login.error.too_many") clearError();
      return;
    }
    renderError();
  }, 1000);
}

async function onSubmit(event) {
  event.preventDefault();
  if (Date.now() < lockUntil) return;
  const login = loginInput.value.trim();
  const password = passwordInput.value;
  if (!login || !password) {
    showError("login.error.empty");
    (login ? passwordInput : loginInput).focus();
    return;
  }
  clearError();
  submit.disabled = true;
  try {
    const body = await api.post("/api/auth/login", { login, password }, { redirectOn401: false });
    setCsrfToken(body && body.csrf_token);
    const user = body && body.user;
    if (chosenHere() && user && user.locale !== locale()) {
      try {
        await api.put("/api/auth/me/locale", { locale: locale() }, { redirectOn401: false });
      } catch {
        /* the language can be switched again on the next page */
      }
    }
    markChosen(false);
    window.location.assign(next);
    return;
  } catch (error) {
    submit.disabled = false;
    passwordInput.value = "";
    if (!(error instanceof ApiError)) {
      showError("common.error.unexpected", { message: String(error) });
    } else if (error.status === 401) {
      showError("login.error.invalid");
      passwordInput.focus();
    } else if (error.status === 429) {
      const seconds = error.retryAfter ?? 60;
      lockFor(seconds);
      showError("login.error.too_many", { seconds });
    } else if (error.status === 403) {
      showError("login.error.forbidden", { message: error.message });
    } else if (error.status === 422) {
      showError("login.error.empty");
    } else if (error.status === 0) {
      showError("common.error.network");
    } else {
      showError("common.error.server", { status: error.status, message: error.message });
    }
  }
}

async function main() {
  await initI18n();
  mountLanguageSwitch(document.getElementById("lang-switch"), {
    onChoose: () => markChosen(true),
  });
  window.addEventListener("localechange", renderError);
  form.addEventListener("submit", onSubmit);
  // Already signed in (a second tab, the back button): go straight on.
  try {
    const me = await api.get("/api/auth/me", { redirectOn401: false });
    if (me && me.user) window.location.replace(next);
  } catch {
    /* not signed in: stay here */
  }
}

main().catch((error) => {
  document.documentElement.classList.remove("i18n-pending");
  console.error(error);
});
