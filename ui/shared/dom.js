// Building DOM nodes without innerHTML (strict CSP): one helper for every page.

/**
 * An element with attributes and children. Attributes: `class`, `text` (textContent),
 * `testid` (data-testid), `on<event>` handlers, `true` for a bare attribute; `undefined`,
 * `null` and `false` leave an attribute out. Children are nodes or text; empty slots
 * (`null`, `undefined`, `false`) are skipped and arrays are flattened.
 */
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
