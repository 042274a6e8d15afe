// The operator's plan progress in the header: "3/10 deals today", live.
//
// Counters come from GET /api/plans/progress (the same definitions as the reports). They are
// read again when this user's calls change (an outcome set here or elsewhere arrives as
// call.updated), when a supervisor changes the plan (plan.changed), and every minute (a new
// day starts a new period).

import { api } from "/ui/shared/api.js";
import { t } from "/ui/shared/i18n.js";

const REFRESH_EVENTS = new Set(["call.updated", "call.ended", "plan.changed", "task.updated"]);
const DEBOUNCE_MS = 300;
const PERIODIC_MS = 60_000;

/** Mount the widget in #plan-widget; `onError(error)` reports a failed refresh. */
export function initPlan({ onError } = {}) {
  const box = document.getElementById("plan-widget");
  if (!box) return null;
  let items = [];
  let timer = null;

  function render() {
    box.hidden = items.length === 0;
    box.replaceChildren(
      ...items.map((item) => {
        const target = item.target;
        const met = item.done >= target.target;
        const node = document.createElement("span");
        node.className = met ? "plan-chip plan-chip--met" : "plan-chip";
        node.dataset.testid = "plan-item";
        node.dataset.metric = target.metric;
        node.dataset.done = String(item.done);
        node.title = met ? t("plan.widget.done") : t("plan.widget.title");
        node.textContent = t("plan.widget.item", {
          done: item.done,
          target: target.target,
          metric: t(`plan.metric.${target.metric}`),
          period: t(`plan.period.${target.period}`),
        });
        return node;
      }),
    );
  }

  async function refresh() {
    try {
      const progress = await api.get("/api/plans/progress");
      items = progress.items || [];
      render();
    } catch (error) {
      if (onError) onError(error);
    }
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  window.addEventListener("callcenter:event", (event) => {
    if (event.detail && REFRESH_EVENTS.has(event.detail.type)) soon();
  });
  window.addEventListener("localechange", render);
  setInterval(refresh, PERIODIC_MS);
  refresh();
  return { refresh };
}
