// Message catalogues (ui/i18n/<locale>.json), t(key, params), and the language switch.
//
// Markup is translated through attributes:
//   data-i18n="key"               → textContent
//   data-i18n-placeholder="key"   → placeholder
//   data-i18n-title="key"         → title
//   data-i18n-aria-label="key"    → aria-label
// Russian is the product's default; English is the other language.

import { api } from "./api.js";

export const LOCALES = ["ru", "en"];
export const DEFAULT_LOCALE = "ru";
const STORAGE_KEY = "cc_locale";
const LABELS = { ru: "RU", en: "EN" };
const NAMES = { ru: "Русский", en: "English" };

const catalogues = new Map();
let current = DEFAULT_LOCALE;
let messages = {};
let fallback = {};

function supported(locale) {
  if (!locale) return null;
  const short = String(locale).toLowerCase().slice(0, 2);
  return LOCALES.includes(short) ? short : null;
}

function stored() {
  try {
    return supported(window.localStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function remember(locale) {
  try {
    window.localStorage.setItem(STORAGE_KEY, locale);
  } catch {
    /* private mode: the server copy still holds the choice */
  }
}

/** The locale to start with when the server has not said: saved, then <html lang>, navigator. */
export function initialLocale() {
  return (
    stored() ||
    supported(document.documentElement.getAttribute("lang")) ||
    supported(navigator.language) ||
    DEFAULT_LOCALE
  );
}

// Catalogue parts: the core `<locale>.json`, then one file per area (`<part>/<locale>.json`),
// so each area of the UI keeps its messages beside the others without editing one big file.
export const PARTS = ["", "supervisor", "crm", "imports", "reports"];

async function loadPart(locale, part) {
  const path = part ? `/ui/i18n/${part}/${locale}.json` : `/ui/i18n/${locale}.json`;
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`cannot load ${path}: HTTP ${response.status}`);
  return response.json();
}

async function load(locale) {
  if (!catalogues.has(locale)) {
    const parts = await Promise.all(PARTS.map((part) => loadPart(locale, part)));
    catalogues.set(locale, Object.assign({}, ...parts));
  }
  return catalogues.get(locale);
}

/** The current locale ("ru" or "en"). */
export function locale() {
  return current;
}

/** The message `key` in the current language; `{name}` replaced from params. */
export function t(key, params = {}) {
  let text = messages[key];
  if (typeof text !== "string") text = fallback[key];
  if (typeof text !== "string") return key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/** Translate every data-i18n* element under `root`. */
export function translate(root = document) {
  const scope = root.querySelectorAll ? root : document;
  const apply = (attr, set) => {
    if (root.nodeType === 1 && root.hasAttribute(attr)) set(root, root.getAttribute(attr));
    for (const el of scope.querySelectorAll(`[${attr}]`)) set(el, el.getAttribute(attr));
  };
  apply("data-i18n", (el, key) => {
    el.textContent = t(key);
  });
  apply("data-i18n-placeholder", (el, key) => el.setAttribute("placeholder", t(key)));
  apply("data-i18n-title", (el, key) => el.setAttribute("title", t(key)));
  apply("data-i18n-aria-label", (el, key) => el.setAttribute("aria-label", t(key)));
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = title.textContent;
}

/**
 * Switch to `locale`: load its catalogue, translate the page, remember the choice locally
 * and, with `persist`, for the user on the server (PUT /api/auth/me/locale).
 */
export async function setLocale(next, { persist = false } = {}) {
  const chosen = supported(next) || DEFAULT_LOCALE;
  const [loaded, base] = await Promise.all([load(chosen), load(DEFAULT_LOCALE)]);
  messages = loaded;
  fallback = base;
  const changed = chosen !== current;
  current = chosen;
  document.documentElement.setAttribute("lang", chosen);
  remember(chosen);
  translate(document);
  document.documentElement.classList.remove("i18n-pending");
  for (const button of document.querySelectorAll("[data-locale-option]")) {
    button.setAttribute("aria-pressed", String(button.dataset.localeOption === chosen));
  }
  if (persist) {
    await api.put("/api/auth/me/locale", { locale: chosen });
  }
  if (changed || persist) {
    window.dispatchEvent(new CustomEvent("localechange", { detail: { locale: chosen } }));
  }
  return chosen;
}

/** Load the catalogue for `preferred` (or the initial locale) and translate the page. */
export async function initI18n(preferred) {
  current = null;
  return setLocale(supported(preferred) || initialLocale());
}

/**
 * A RU | EN switch inside `container`. `onChoose(locale)` runs after the page switched
 * (the operator page saves it for the user); errors go to `onError`.
 */
export function mountLanguageSwitch(container, { persist = false, onChoose, onError } = {}) {
  container.replaceChildren();
  container.classList.add("lang-switch");
  container.setAttribute("role", "group");
  container.setAttribute("data-i18n-aria-label", "common.language");
  container.setAttribute("aria-label", t("common.language"));
  for (const code of LOCALES) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "lang-switch__option";
    button.textContent = LABELS[code];
    button.title = NAMES[code];
    button.lang = code;
    button.dataset.localeOption = code;
    button.dataset.testid = `lang-${code}`;
    button.setAttribute("aria-pressed", String(code === current));
    button.addEventListener("click", async () => {
      if (code === current) return;
      try {
        await setLocale(code, { persist });
        if (onChoose) onChoose(code);
      } catch (error) {
        if (onError) onError(error);
      }
    });
    container.append(button);
  }
}
