// Small helpers for the operator page's call-control modules (the DOM helper: ui/shared/dom.js).

/** A random key for one click (Idempotency-Key); crypto.randomUUID needs a secure context. */
export function clickKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `click-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
