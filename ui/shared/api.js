// The one way the UI talks to the API: same-origin cookies, JSON both ways, the CSRF token
// on every mutation, a redirect to /login when the session is gone, and errors that say
// what went wrong.

const MUTATIONS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let csrfToken = null;

/** Remember the CSRF token from /api/auth/login or /api/auth/me. */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

export function getCsrfToken() {
  return csrfToken;
}

/** An HTTP error (status 0: the server could not be reached). */
export class ApiError extends Error {
  constructor(status, message, { detail = null, headers = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }

  /** Seconds from a Retry-After header, or null. */
  get retryAfter() {
    const raw = this.headers ? this.headers.get("Retry-After") : null;
    if (!raw) return null;
    const seconds = Number(raw);
    if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
    const at = Date.parse(raw);
    return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : null;
  }
}

/** The login page address that brings the user back here afterwards. */
export function loginUrl() {
  const here = window.location.pathname + window.location.search;
  return here.startsWith("/login") ? "/login" : `/login?next=${encodeURIComponent(here)}`;
}

/** A same-site path to go to after login, never another origin. */
export function safeNext(raw, fallback = "/operator") {
  if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//")) return fallback;
  if (raw.startsWith("/\\") || raw.startsWith("/login")) return fallback;
  return raw;
}

function describe(status, body, fallbackText) {
  const detail = body && typeof body === "object" ? body.detail : null;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc, msg}, ...]
    return detail
      .map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${d.msg}` : String(d.msg);
      })
      .join("; ");
  }
  if (detail && typeof detail === "object" && typeof detail.message === "string") {
    return detail.message;
  }
  return fallbackText || `HTTP ${status}`;
}

/**
 * Call the API. `body` is sent as JSON. Options: `redirectOn401` (default true),
 * `headers`, `signal`. Resolves with the parsed JSON (or null), rejects with ApiError.
 */
export async function request(method, path, options = {}) {
  const { body, redirectOn401 = true, headers = {}, signal } = options;
  const verb = method.toUpperCase();
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (MUTATIONS.has(verb) && csrfToken) sent["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method: verb,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "network error: the server could not be reached");
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (response.ok) return parsed;
  if (response.status === 401 && redirectOn401) {
    window.location.assign(loginUrl());
  }
  const message = describe(response.status, parsed, response.statusText || text.slice(0, 200));
  throw new ApiError(response.status, message, {
    detail: parsed ? parsed.detail : null,
    headers: response.headers,
  });
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, body, options) => request("POST", path, { ...options, body }),
  put: (path, body, options) => request("PUT", path, { ...options, body }),
  patch: (path, body, options) => request("PATCH", path, { ...options, body }),
  delete: (path, options) => request("DELETE", path, options),
};
