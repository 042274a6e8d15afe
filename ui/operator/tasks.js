// Tasks, meetings and notes from a call card, and the operator's overdue list.
//
// One click on "Task" makes a task about the caller, due tomorrow, assigned to me
// (POST /api/calls/{id}/task). "Meeting" opens a small form (POST /api/meetings; a result
// given logs a meeting that already took place). Due reminders arrive as "task.reminder".

import { api } from "/ui/shared/api.js";
import { t } from "/ui/shared/i18n.js";
import { el } from "/ui/shared/dom.js";
import { formatWhen } from "./timeline.js";

const OVERDUE_REFRESH_MS = 60_000;

/** A datetime-local value for `date` in the browser's time zone, to the minute. */
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** The buttons and small forms under a call card's caller. */
export class CardActions {
  /** `crm`: the card's CRM part (subject(), personName(), contacts(), call(), reload()). */
  constructor(crm, { toast, errorText }) {
    this.crm = crm;
    this.toast = toast;
    this.errorText = errorText;
    this.busy = false;
    this.taskButton = el("button", {
      type: "button",
      class: "btn",
      testid: "crm-task",
      onclick: () => this.createTask(),
    });
    this.meetingButton = el("button", {
      type: "button",
      class: "btn",
      testid: "crm-meeting",
      onclick: () => this.toggle(this.meetingForm),
    });
    this.noteButton = el("button", {
      type: "button",
      class: "btn",
      testid: "crm-note",
      onclick: () => this.toggle(this.noteForm),
    });
    this.status = el("span", { class: "crm__status", testid: "crm-status", role: "status" });

    this.subjectInput = el("input", { class: "input", testid: "crm-meeting-subject", maxlength: 255 });
    this.whenInput = el("input", { class: "input", type: "datetime-local", testid: "crm-meeting-when" });
    this.placeInput = el("input", { class: "input", testid: "crm-meeting-place", maxlength: 255 });
    this.resultInput = el("textarea", {
      class: "input",
      rows: 2,
      maxlength: 10000,
      testid: "crm-meeting-result",
    });
    this.people = el("div", { class: "crm-form__people", testid: "crm-meeting-people" });
    this.meetingLabels = {
      subject: el("span"),
      when: el("span"),
      place: el("span"),
      result: el("span"),
      people: el("span", { class: "crm-form__label" }),
    };
    this.meetingSave = el("button", {
      type: "submit",
      class: "btn btn--primary",
      testid: "crm-meeting-save",
    });
    this.meetingCancel = el("button", {
      type: "button",
      class: "btn btn--ghost",
      onclick: () => this.hide(this.meetingForm),
    });
    this.meetingForm = el(
      "form",
      { class: "crm-form", testid: "crm-meeting-form", hidden: true },
      this.labelled(this.meetingLabels.subject, this.subjectInput),
      el(
        "div",
        { class: "crm-form__row" },
        this.labelled(this.meetingLabels.when, this.whenInput),
        this.labelled(this.meetingLabels.place, this.placeInput),
      ),
      el("div", { class: "crm-form__field" }, this.meetingLabels.people, this.people),
      this.labelled(this.meetingLabels.result, this.resultInput),
      el("div", { class: "crm-form__actions" }, this.meetingSave, this.meetingCancel),
    );
    this.meetingForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveMeeting();
    });

    this.noteInput = el("textarea", { class: "input", rows: 2, maxlength: 10000, testid: "crm-note-text" });
    this.noteSave = el("button", { type: "submit", class: "btn btn--primary", testid: "crm-note-save" });
    this.noteCancel = el("button", {
      type: "button",
      class: "btn btn--ghost",
      onclick: () => this.hide(this.noteForm),
    });
    this.noteForm = el(
      "form",
      { class: "crm-form", testid: "crm-note-form", hidden: true },
      this.noteInput,
      el("div", { class: "crm-form__actions" }, this.noteSave, this.noteCancel),
    );
    this.noteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveNote();
    });

    this.el = el(
      "div",
      { class: "crm__actions" },
      el("div", { class: "crm__buttons" }, this.taskButton, this.meetingButton, this.noteButton, this.status),
      this.meetingForm,
      this.noteForm,
    );
  }

  labelled(label, control) {
    label.className = "crm-form__label";
    return el("label", { class: "crm-form__field" }, label, control);
  }

  render() {
    this.taskButton.textContent = t("crm.action.task");
    this.meetingButton.textContent = t("crm.action.meeting");
    this.noteButton.textContent = t("crm.action.note");
    for (const button of [this.taskButton, this.meetingButton, this.noteButton]) {
      button.disabled = this.busy;
    }
    this.meetingLabels.subject.textContent = t("crm.meeting.subject");
    this.meetingLabels.when.textContent = t("crm.meeting.when");
    this.meetingLabels.place.textContent = t("crm.meeting.place");
    this.meetingLabels.result.textContent = t("crm.meeting.result");
    this.meetingLabels.people.textContent = t("crm.meeting.participants");
    this.resultInput.placeholder = t("crm.meeting.result_hint");
    this.meetingSave.textContent = t("crm.meeting.save");
    this.meetingCancel.textContent = t("crm.cancel");
    this.noteInput.placeholder = t("crm.note.placeholder");
    this.noteSave.textContent = t("crm.note.save");
    this.noteCancel.textContent = t("crm.cancel");
  }

  say(text) {
    this.status.textContent = text;
  }

  toggle(form) {
    if (form.hidden) this.open(form);
    else this.hide(form);
  }

  hide(form) {
    form.hidden = true;
  }

  open(form) {
    for (const other of [this.meetingForm, this.noteForm]) other.hidden = other !== form;
    if (form === this.meetingForm) this.prepareMeeting();
    form.hidden = false;
    const first = form.querySelector("input, textarea");
    if (first) first.focus();
  }

  prepareMeeting() {
    const name = this.crm.personName();
    this.subjectInput.value = name ? t("crm.meeting.default_subject", { name }) : "";
    const now = new Date();
    now.setSeconds(0, 0);
    this.whenInput.value = localInputValue(now);
    this.placeInput.value = "";
    this.resultInput.value = "";
    const subject = this.crm.subject();
    const picked = subject && subject.kind === "client" ? subject.id : null;
    const boxes = this.crm.contacts().map((person) =>
      el(
        "label",
        { class: "crm-form__person" },
        el("input", {
          type: "checkbox",
          value: person.client_id,
          checked: person.client_id === picked,
          testid: "crm-meeting-person",
        }),
        person.position ? `${person.name} · ${person.position}` : person.name,
      ),
    );
    this.people.replaceChildren(...boxes);
    this.people.parentElement.hidden = boxes.length === 0;
  }

  async run(action) {
    if (this.busy) return;
    this.busy = true;
    this.render();
    try {
      await action();
    } catch (error) {
      this.toast(this.errorText(error));
    } finally {
      this.busy = false;
      this.render();
    }
  }

  createTask() {
    return this.run(async () => {
      const name = this.crm.personName();
      const body = name ? { title: t("crm.task.default_title", { name }) } : {};
      const task = await api.post(`/api/calls/${this.crm.call().id}/task`, body);
      this.say(t("crm.task.created", { date: formatWhen(task.due_at) }));
      this.crm.reload();
    });
  }

  saveMeeting() {
    return this.run(async () => {
      const subject = this.crm.subject();
      const when = new Date(this.whenInput.value);
      if (!this.subjectInput.value.trim() || Number.isNaN(when.getTime())) {
        this.say(t("crm.meeting.incomplete"));
        return;
      }
      const participants = [...this.people.querySelectorAll("input:checked")].map((box) =>
        Number(box.value),
      );
      const call = this.crm.call();
      const body = {
        subject: this.subjectInput.value.trim(),
        starts_at: when.toISOString(),
        place: this.placeInput.value.trim(),
        participant_ids: participants,
        call_id: call.id,
        client_id: subject && subject.kind === "client" ? subject.id : null,
        organization_id: subject && subject.kind === "organization" ? subject.id : null,
      };
      const result = this.resultInput.value.trim();
      if (result) body.result = result;
      await api.post("/api/meetings", body);
      this.hide(this.meetingForm);
      this.say(result ? t("crm.meeting.logged") : t("crm.meeting.planned_ok"));
      this.crm.reload();
    });
  }

  saveNote() {
    return this.run(async () => {
      const text = this.noteInput.value.trim();
      const subject = this.crm.subject();
      if (!text || !subject) return;
      const base = subject.kind === "client" ? "clients" : "organizations";
      await api.post(`/api/${base}/${subject.id}/notes`, { text, call_id: this.crm.call().id });
      this.noteInput.value = "";
      this.hide(this.noteForm);
      this.say(t("crm.note.saved"));
      this.crm.reload();
    });
  }
}

// --- the overdue list ------------------------------------------------------------------------

class OverduePanel {
  constructor(box, { toast, errorText }) {
    this.box = box;
    this.toast = toast;
    this.errorText = errorText;
    this.tasks = [];
    this.meetings = [];
    this.closing = null; // "task:12" while its result input shows
    this.resultInput = el("input", { class: "input", testid: "crm-overdue-result", maxlength: 10000 });
  }

  async refresh() {
    try {
      const [tasks, meetings] = await Promise.all([
        api.get("/api/tasks?overdue=true&per_page=50"),
        api.get("/api/meetings?overdue=true&per_page=50"),
      ]);
      this.tasks = tasks.items;
      this.meetings = meetings.items;
      this.render();
    } catch (error) {
      this.toast(this.errorText(error));
    }
  }

  async close(kind, id) {
    const result = this.resultInput.value.trim();
    if (!result) {
      this.resultInput.focus();
      return;
    }
    try {
      await api.post(`/api/${kind === "task" ? "tasks" : "meetings"}/${id}/close`, { result });
      this.closing = null;
      this.resultInput.value = "";
      await this.refresh();
    } catch (error) {
      this.toast(this.errorText(error));
    }
  }

  item(kind, entry) {
    const key = `${kind}:${entry.id}`;
    const who = entry.client_name || entry.organization_name || "";
    const when = kind === "task" ? entry.due_at : entry.ends_at || entry.starts_at;
    const closing = this.closing === key;
    const button = el("button", {
      type: "button",
      class: "btn",
      testid: "crm-overdue-close",
      text: closing ? t("crm.overdue.confirm") : t("crm.overdue.close"),
      onclick: () => {
        if (closing) {
          this.close(kind, entry.id);
        } else {
          this.closing = key;
          this.resultInput.value = "";
          this.render();
          this.resultInput.focus();
        }
      },
    });
    if (closing) this.resultInput.placeholder = t("crm.overdue.result");
    return el(
      "li",
      { class: "crm-overdue__item", testid: "crm-overdue-item", "data-kind": kind },
      el(
        "div",
        { class: "crm-overdue__text" },
        el("span", { class: "crm-overdue__title" }, kind === "task" ? entry.title : t("crm.overdue.meeting", { subject: entry.subject })),
        el("span", { class: "crm-overdue__meta" }, [who, formatWhen(when)].filter(Boolean).join(" · ")),
      ),
      closing ? this.resultInput : null,
      button,
    );
  }

  render() {
    const items = [
      ...this.tasks.map((task) => this.item("task", task)),
      ...this.meetings.map((meeting) => this.item("meeting", meeting)),
    ];
    this.box.hidden = items.length === 0;
    this.box.replaceChildren(
      el("h2", { class: "crm-overdue__heading" }, t("crm.overdue.title", { count: items.length })),
      el("ul", { class: "crm-overdue__list" }, ...items),
    );
  }
}

/** The overdue list on the page and the reminders that come over the live stream. */
export function mountOverdue(box, { toast, errorText }) {
  const panel = new OverduePanel(box, { toast, errorText });
  panel.refresh();
  setInterval(() => panel.refresh(), OVERDUE_REFRESH_MS);
  window.addEventListener("callcenter:event", (event) => {
    const detail = event.detail || {};
    if (detail.type !== "task.reminder" || !detail.reminder) return;
    const reminder = detail.reminder;
    toast(
      reminder.kind === "meeting"
        ? t("crm.reminder.meeting", { title: reminder.title, date: formatWhen(reminder.at) })
        : t("crm.reminder.task", { title: reminder.title, date: formatWhen(reminder.at) }),
    );
    panel.refresh();
  });
  window.addEventListener("localechange", () => panel.render());
  return panel;
}
