// Call control on the operator's page: the pause control in the header, the missed-calls
// worklist, and the call buttons (see dialer.js). operator.js calls initControl() once and
// forwards every live event as a "callcenter:event" window event.

import { configureDialer } from "./dialer.js";
import { mountPresence } from "./presence.js";
import { mountWorklist } from "./worklist.js";

export { dialButton } from "./dialer.js";

export function initControl({ toast, errorText }) {
  configureDialer({ toast, errorText });
  const parts = [];
  const header = document.getElementById("agent-presence");
  if (header) parts.push(mountPresence(header, { toast }));
  const worklist = document.getElementById("worklist");
  if (worklist) parts.push(mountWorklist(worklist, { toast }));
  window.addEventListener("callcenter:event", (event) => {
    for (const part of parts) part.onEvent(event.detail);
  });
  window.addEventListener("localechange", () => {
    for (const part of parts) part.render();
  });
  return parts;
}
