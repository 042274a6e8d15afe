// Small DOM helpers for the operator page's call-control modules (no innerHTML anywhere).

/** An element with attributes (`class`, `text`, `testid`, `on<event>` handlers) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "testid") node.dataset.testid = value;
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A random key for one click (Idempotency-Key); crypto.randomUUID needs a secure context. */
export function clickKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `click-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
