// The client card's timeline: every interaction with a person or an organisation, newest
// first, a page at a time (GET /api/{clients|organizations}/{id}/timeline?before=&limit=).

import { api } from "/ui/shared/api.js";
import { locale, t } from "/ui/shared/i18n.js";
import { el } from "/ui/shared/dom.js";

const PAGE = 10;

/** "29.11, 14:05" (the year only when it is not this one). */
export function formatWhen(iso) {
  const ms = Date.parse(iso || "");
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  const sameYear = date.getFullYear() === new Date().getFullYear();
  return new Intl.DateTimeFormat(locale(), {
    day: "2-digit",
    month: "2-digit",
    year: sameYear ? undefined : "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(date);
}

function formatTalk(seconds) {
  if (typeof seconds !== "number") return "";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function recordLabel(entry) {
  switch (entry.action) {
    case "create":
      return t("crm.record.created");
    case "update":
      return t("crm.record.updated", {
        fields: ((entry.details && entry.details.fields) || []).join(", "),
      });
    case "client.imported":
    case "organization.imported":
      return t("crm.record.imported");
    case "client.merged":
    case "organization.merged":
      return t("crm.record.merged");
    default:
      return entry.action;
  }
}

function kindLabel(entry) {
  switch (entry.kind) {
    case "call":
      return t("crm.kind.call");
    case "task":
      return t("crm.kind.task");
    case "meeting":
      return t("crm.kind.meeting");
    case "note":
      return t("crm.kind.note");
    default:
      return t("crm.kind.record");
  }
}

function callBody(entry) {
  const outcome = entry.outcome
    ? t(`outcome.${entry.outcome}`)
    : t(`end_reason.${entry.end_reason || entry.status || "unknown"}`);
  const facts = [
    el("span", { class: entry.outcome ? "tag" : "tag tag--muted" }, outcome),
    entry.talk_seconds ? el("span", {}, formatTalk(entry.talk_seconds)) : null,
    entry.agent_name ? el("span", {}, entry.agent_name) : null,
    entry.has_recording
      ? el("span", { class: "crm-entry__badge", testid: "crm-entry-recording" }, t("crm.call.recording"))
      : null,
  ];
  return [
    el("div", { class: "crm-entry__facts" }, ...facts),
    entry.notes ? el("div", { class: "crm-entry__text" }, entry.notes) : null,
  ];
}

function taskBody(entry) {
  let state;
  if (entry.done_at) state = el("span", { class: "tag" }, t("crm.task.done"));
  else if (entry.overdue) state = el("span", { class: "tag tag--overdue" }, t("crm.task.overdue"));
  else state = el("span", { class: "tag tag--muted" }, t("crm.task.open"));
  return [
    el("div", { class: "crm-entry__title" }, entry.title),
    el(
      "div",
      { class: "crm-entry__facts" },
      state,
      entry.due_at ? el("span", {}, t("crm.task.due", { date: formatWhen(entry.due_at) })) : null,
      entry.assignee ? el("span", {}, entry.assignee.name) : null,
    ),
    entry.result ? el("div", { class: "crm-entry__text" }, entry.result) : null,
  ];
}

function meetingBody(entry) {
  const people = (entry.participants || []).map((p) => p.name).join(", ");
  return [
    el("div", { class: "crm-entry__title" }, entry.subject),
    el(
      "div",
      { class: "crm-entry__facts" },
      entry.place ? el("span", {}, entry.place) : null,
      people ? el("span", {}, people) : null,
      entry.done_at ? null : el("span", { class: "tag tag--muted" }, t("crm.meeting.planned")),
    ),
    entry.result ? el("div", { class: "crm-entry__text" }, entry.result) : null,
  ];
}

function noteBody(entry) {
  return [
    el("div", { class: "crm-entry__text" }, entry.text),
    entry.author ? el("div", { class: "crm-entry__facts" }, entry.author.name) : null,
  ];
}

function recordBody(entry) {
  return [
    el(
      "div",
      { class: "crm-entry__facts" },
      el("span", {}, recordLabel(entry)),
      entry.user ? el("span", {}, entry.user.name) : null,
    ),
  ];
}

const BODIES = { call: callBody, task: taskBody, meeting: meetingBody, note: noteBody };

function entryElement(entry) {
  const body = (BODIES[entry.kind] || recordBody)(entry);
  return el(
    "li",
    {
      class: `crm-entry crm-entry--${entry.kind}`,
      testid: "crm-entry",
      "data-kind": entry.kind,
      "data-id": entry.id,
    },
    el(
      "div",
      { class: "crm-entry__head" },
      el("span", { class: "crm-entry__kind" }, kindLabel(entry)),
      el("span", { class: "crm-entry__when" }, formatWhen(entry.at)),
    ),
    el("div", { class: "crm-entry__body" }, ...body),
  );
}

export class Timeline {
  constructor({ onError }) {
    this.onError = onError;
    this.key = null;
    this.subject = null;
    this.items = [];
    this.next = null;
    this.loading = false;
    this.generation = 0;
    this.list = el("ul", { class: "crm-timeline__list" });
    this.more = el("button", {
      type: "button",
      class: "btn btn--ghost crm-timeline__more",
      testid: "crm-timeline-more",
      onclick: () => this.load(),
    });
    this.empty = el("p", { class: "pop__none", testid: "crm-timeline-empty", hidden: true });
    this.title = el("h3", { class: "pop__section-title" });
    this.el = el(
      "section",
      { class: "crm-timeline", testid: "crm-timeline" },
      this.title,
      this.list,
      this.empty,
      this.more,
    );
  }

  /** Follow `subject` ({kind: "client" | "organization", id}); loads when it changes. */
  show(subject) {
    const key = subject ? `${subject.kind}:${subject.id}` : null;
    if (key === this.key) {
      this.render();
      return;
    }
    this.key = key;
    this.subject = subject;
    this.reload();
  }

  reload() {
    this.generation += 1;
    this.items = [];
    this.next = null;
    this.loading = false;
    this.render();
    if (this.subject) this.load();
  }

  async load() {
    if (!this.subject || this.loading) return;
    const generation = this.generation;
    const base = this.subject.kind === "client" ? "clients" : "organizations";
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (this.next) params.set("before", this.next);
    this.loading = true;
    this.render();
    try {
      const page = await api.get(`/api/${base}/${this.subject.id}/timeline?${params}`);
      if (generation !== this.generation) return;
      this.items = [...this.items, ...page.items];
      this.next = page.next_before;
      this.loaded = true;
    } catch (error) {
      if (generation === this.generation) this.onError(error);
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.render();
      }
    }
  }

  /** Keep the entry of a call shown live (its status, outcome, notes) in step with it. */
  patchCall(call) {
    const index = this.items.findIndex((e) => e.kind === "call" && e.id === call.id);
    if (index < 0) return;
    const entry = this.items[index];
    const next = {
      ...entry,
      status: call.status ?? entry.status,
      end_reason: call.end_reason ?? entry.end_reason,
      outcome: call.outcome ?? entry.outcome,
      notes: call.notes ?? entry.notes,
      talk_seconds: call.talk_seconds ?? entry.talk_seconds,
    };
    const changed = ["status", "end_reason", "outcome", "notes", "talk_seconds"].some(
      (name) => next[name] !== entry[name],
    );
    if (!changed) return;
    this.items = this.items.map((e, i) => (i === index ? next : e));
    this.render();
  }

  render() {
    this.title.textContent = t("crm.timeline.title");
    this.list.replaceChildren(...this.items.map(entryElement));
    this.empty.hidden = this.loading || this.items.length > 0;
    this.empty.textContent = t("crm.timeline.empty");
    this.more.hidden = !this.next;
    this.more.disabled = this.loading;
    this.more.textContent = this.loading ? t("crm.timeline.loading") : t("crm.timeline.more");
    this.el.dataset.state = this.loading ? "loading" : "ready";
  }
}
