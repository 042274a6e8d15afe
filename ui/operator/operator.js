// The operator's live page: the screen pop for every call ringing at, or taken by, this user.
//
// Cards are keyed by call id and every update is applied idempotently, so an event seen twice
// (a replay after reconnect, a snapshot that already reflects it) changes nothing.

import { api, ApiError } from "/ui/shared/api.js";
import { el } from "/ui/shared/dom.js";
import { EventClient } from "/ui/shared/event_client.js";
import { locale, mountLanguageSwitch, t } from "/ui/shared/i18n.js";
import { errorText, mountLogout, signedInUser, startFailed, toaster } from "/ui/shared/page.js";
import { dialButton, initControl } from "/ui/operator/control.js";
import { RecordingPanel } from "/ui/operator/recording.js";
import { CardCrm, initCrm } from "/ui/operator/crm.js";
import { initPlan } from "/ui/operator/plan.js";
import { formatWhen } from "/ui/operator/timeline.js";
import { WrongNumberNotice } from "/ui/operator/wrong_number.js";

const DEFAULT_OUTCOMES = [
  "completed",
  "call_back",
  "sale",
  "info",
  "complaint",
  "wrong_number",
  "in_progress",
];
const WITHDRAWN_VISIBLE_MS = 4000;
const TOAST_MS = 6000;

const STATE_RANK = { ringing: 0, withdrawn: 1, connected: 2, ended: 3 };

const board = document.getElementById("calls");
const emptyState = document.getElementById("empty");
const connBox = document.getElementById("conn-status");
const connText = document.getElementById("conn-text");
const toastBox = document.getElementById("toast");

/** @type {Map<number, CallCard>} */
const cards = new Map();
const eventLog = []; // {id, type, call} of the events applied, for diagnostics
const statusLog = []; // connection states in order, for diagnostics
let connectionState = "reconnecting";
let baseTitle = document.title;

// --- small helpers -------------------------------------------------------------------------

/** Replace the children of `node`, skipping empty slots. */
function fill(node, ...children) {
  const present = children.flat().filter((c) => c !== null && c !== undefined && c !== false);
  node.replaceChildren(...present);
}

function parseTime(iso) {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function formatDay(iso) {
  const ms = parseTime(iso);
  if (ms === null) return "";
  return new Intl.DateTimeFormat(locale(), { day: "2-digit", month: "short" }).format(ms);
}

const toast = toaster(toastBox, TOAST_MS);

// --- one call card -------------------------------------------------------------------------

class CallCard {
  constructor(call) {
    this.id = call.id;
    this.call = call;
    this.card = null; // the caller card from call.ringing / the snapshot
    this.partial = false; // the card came from a phone lookup (no history, no tasks)
    this.state = null;
    this.reason = null;
    this.outcomes = DEFAULT_OUTCOMES;
    this.pickedOwner = null;
    this.receivedAt = Date.now();
    this.removeTimer = null;
    this.saving = false;
    this.creating = false;
    this.createError = null;
    this.notesSaved = null; // "saving" | "saved" | null
    this.notesInFlight = null;
    // Changes to this call go to the server one at a time, so each call.updated the server
    // sends back already contains the change before it (a notes save on blur and an outcome
    // click must not race and publish a stale outcome).
    this.pending = Promise.resolve();

    this.el = el("article", { class: "pop", testid: "pop-card", "data-call-id": call.id });
    this.bar = el("div", { class: "pop__bar" });
    this.who = el("div", { class: "pop__who" });
    this.notice = el("div", { class: "pop__notice", testid: "pop-withdrawn-reason", hidden: true });
    this.details = el("div", { class: "pop__details" });
    this.outcomeBox = el("div", { class: "pop__outcomes", testid: "pop-outcomes", hidden: true });

    // Inputs live across renders so typing is never interrupted by an incoming event.
    this.nameInput = el("input", {
      class: "input",
      testid: "pop-new-name",
      maxlength: 255,
      autocomplete: "off",
    });
    this.nameLabel = el("span", { class: "field__label" });
    this.createButton = el("button", {
      type: "button",
      class: "btn btn--primary",
      testid: "pop-create-client",
      onclick: () => this.createClient(),
    });
    this.newCallerBox = el(
      "div",
      { class: "pop__new", testid: "pop-new-caller", hidden: true },
      el("label", { class: "pop__new-field" }, this.nameLabel, this.nameInput),
      this.createButton,
    );
    this.nameInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.createClient();
    });

    this.notesLabel = el("h3", { class: "pop__section-title" });
    this.notesInput = el("textarea", {
      class: "input pop__notes-input",
      testid: "pop-notes",
      rows: 2,
      maxlength: 10000,
    });
    this.notesInput.dataset.dirty = "";
    this.notesInput.addEventListener("input", () => {
      this.notesInput.dataset.dirty = "1";
      this.notesSaved = null;
      this.renderNotesState();
    });
    this.notesInput.addEventListener("blur", () => {
      if (this.notesInput.dataset.dirty) this.saveNotes();
    });
    this.notesInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.saveNotes();
    });
    this.notesButton = el("button", {
      type: "button",
      class: "btn",
      testid: "pop-notes-save",
      onclick: () => this.saveNotes(),
    });
    this.notesState = el("span", { class: "pop__notes-state", testid: "pop-notes-state" });
    this.notesBox = el(
      "div",
      { class: "pop__notes", hidden: true },
      this.notesLabel,
      this.notesInput,
      el("div", { class: "pop__notes-actions" }, this.notesButton, this.notesState),
    );

    this.el.append(
      this.bar,
      this.who,
      this.newCallerBox,
      this.notice,
      this.details,
      this.outcomeBox,
      this.notesBox,
    );
    this.recording = new RecordingPanel(call.id); // player and analysis once the call ended
    this.el.append(this.recording.el);
    this.crm = new CardCrm(this); // timeline, tags, task/meeting/note, company → person
    this.el.append(this.crm.el);
    this.wrongNumber = new WrongNumberNotice(call.id, {
      onUndone: (undone) => {
        this.call = { ...this.call, ...undone };
        this.render();
      },
      onError: (error) => toast(errorText(error)),
    });
    this.outcomeBox.before(this.wrongNumber.el); // closed by the rules: why, and the undo
  }

  /** The owner shown as "the caller": the one picked, the one the call was matched to. */
  owner() {
    const owners = (this.card && this.card.owners) || [];
    if (this.pickedOwner !== null && owners[this.pickedOwner]) return owners[this.pickedOwner];
    if (owners.length === 1) return owners[0];
    if (this.call.client_id) {
      const match = owners.find((o) => o.client_id === this.call.client_id);
      if (match) return match;
    }
    return null;
  }

  number() {
    return (this.card && (this.card.display || this.card.number)) || this.call.caller_num || "";
  }

  rawNumber() {
    return (this.card && this.card.number) || this.call.caller_num || "";
  }

  known() {
    return Boolean(this.card && this.card.owners && this.card.owners.length);
  }

  setState(next) {
    if (this.state !== null && next !== "ringing" && STATE_RANK[next] < STATE_RANK[this.state]) {
      return false; // never go back (an old event replayed after a newer one)
    }
    if (next === "ringing" && (this.state === "connected" || this.state === "ended")) return false;
    if (next !== "withdrawn") this.cancelRemoval();
    this.state = next;
    return true;
  }

  cancelRemoval() {
    clearTimeout(this.removeTimer);
    this.removeTimer = null;
  }

  elapsedSeconds() {
    if (this.state === "ended") {
      if (typeof this.call.talk_seconds === "number") return this.call.talk_seconds;
      const a = parseTime(this.call.answered_at);
      const b = parseTime(this.call.ended_at);
      return a !== null && b !== null ? (b - a) / 1000 : null;
    }
    const since = parseTime(this.call.answered_at) ?? this.receivedAt;
    return (Date.now() - since) / 1000;
  }

  tick() {
    const timer = this.bar.querySelector("[data-testid=pop-timer]");
    if (!timer) return;
    const seconds = this.elapsedSeconds();
    timer.textContent = seconds === null ? "" : formatDuration(seconds);
  }

  render() {
    this.el.dataset.state = this.state || "ringing";
    this.renderBar();
    this.renderWho();
    this.renderNewCaller();
    this.renderNotice();
    this.renderDetails();
    this.renderOutcomes();
    this.wrongNumber.update(this.call);
    this.renderNotes();
    this.recording.update(this.call, this.state === "ended");
    this.crm.render();
  }

  renderBar() {
    const state = this.state || "ringing";
    const pill = el(
      "span",
      { class: `pill pill--${state}`, testid: "pop-status", "data-state": state },
      el("span", { class: "pill__dot", "aria-hidden": "true" }),
      t(`call.state.${state}`),
    );
    const showTimer =
      state === "connected" || (state === "ended" && this.call.answered_at);
    const timer = showTimer
      ? el("span", { class: "pop__timer", testid: "pop-timer", "aria-label": t("call.talk_time") })
      : null;
    const meta = [];
    if (this.call.queue) meta.push(t("call.queue", { queue: this.call.queue }));
    if (this.call.direction && this.call.direction !== "inbound") {
      meta.push(t(`call.direction.${this.call.direction}`));
    }
    const started = parseTime(this.call.started_at);
    if (started !== null) {
      meta.push(
        new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(started),
      );
    }
    const close =
      state === "ended" || state === "withdrawn"
        ? el("button", {
            type: "button",
            class: "btn btn--ghost pop__close",
            testid: "pop-close",
            title: t("call.close"),
            "aria-label": t("call.close"),
            text: "×",
            onclick: () => removeCard(this.id),
          })
        : null;
    fill(
      this.bar,
      pill,
      timer,
      el("span", { class: "pop__meta" }, meta.join(" · ")),
      el("span", { class: "pop__spacer" }),
      close,
    );
    this.tick();
  }

  renderWho() {
    const owner = this.owner();
    const owners = (this.card && this.card.owners) || [];
    const callerName = (this.card && this.card.caller_name) || this.call.caller_name || "";
    const number = this.number();
    let title;
    if (owner) {
      const name = owner.client_name || owner.organization_name || "";
      title = el("h2", { class: "pop__name", testid: "pop-client-name" }, name);
    } else {
      title = el(
        "h2",
        { class: "pop__name", testid: "pop-caller-title" },
        callerName || number || t("call.unknown_number"),
      );
    }
    const org = [];
    if (owner && owner.client_id && owner.organization_name) {
      org.push(el("span", { testid: "pop-organization" }, owner.organization_name));
    }
    if (owner && owner.position) {
      org.push(el("span", { class: "pop__position", testid: "pop-position" }, owner.position));
    }
    const titleIsNumber = !owner && owners.length <= 1 && !callerName;
    const line = [
      el(
        "span",
        { class: titleIsNumber ? "visually-hidden" : "pop__number", testid: "pop-number" },
        number || t("call.unknown_number"),
      ),
    ];
    if (callerName && (owner || owners.length > 1)) {
      line.push(
        el(
          "span",
          { class: "pop__callerid", testid: "pop-caller-name" },
          t("call.caller_id", { name: callerName }),
        ),
      );
    }
    const dialable = (this.card && this.card.e164) || this.call.caller_e164;
    if (dialable && this.state === "ended") {
      line.push(dialButton({ number: dialable, display: number, clientId: owner && owner.client_id }));
    }
    const badges = [];
    if (!this.known() && this.card && !this.partial && this.card.e164) {
      badges.push(el("span", { class: "badge badge--new" }, t("call.new_caller")));
    }
    const children = [
      el("div", { class: "pop__line" }, ...line, ...badges),
      title,
      org.length ? el("div", { class: "pop__org" }, ...org) : null,
    ];
    if (owners.length > 1) {
      const options = owners.map((o, index) =>
        el(
          "button",
          {
            type: "button",
            class: "owner",
            testid: "pop-owner-option",
            "aria-pressed": String(index === this.pickedOwner),
            onclick: () => {
              this.pickedOwner = index;
              this.render();
            },
          },
          el("span", { class: "owner__name" }, o.client_name || o.organization_name || "—"),
          el(
            "span",
            { class: "owner__meta" },
            [o.client_name ? o.organization_name : null, o.position].filter(Boolean).join(" · "),
          ),
        ),
      );
      children.push(
        el(
          "div",
          { class: "pop__owners", testid: "pop-owners" },
          el("div", { class: "pop__owners-title" }, t("call.several_owners", { count: owners.length })),
          el("div", { class: "pop__owner-list" }, ...options),
        ),
      );
    }
    fill(this.who, children);
  }

  renderNewCaller() {
    const show =
      Boolean(this.card) &&
      !this.partial &&
      !this.known() &&
      Boolean(this.card.e164) &&
      this.state !== "withdrawn";
    this.newCallerBox.hidden = !show;
    if (!show) return;
    if (!this.nameInput.value && !this.nameInput.dataset.touched) {
      this.nameInput.value = (this.card.caller_name || "").trim() || this.number();
      this.nameInput.dataset.touched = "1";
    }
    this.nameLabel.textContent = t("call.new_caller_name");
    this.createButton.textContent = this.creating ? t("call.creating") : t("call.create_client");
    this.createButton.disabled = this.creating;
    let error = this.newCallerBox.querySelector(".pop__error");
    if (this.createError) {
      if (!error) {
        error = el("div", { class: "pop__error", testid: "pop-create-error", role: "alert" });
        this.newCallerBox.append(error);
      }
      error.textContent = this.createError;
    } else if (error) {
      error.remove();
    }
  }

  renderNotice() {
    if (this.state !== "withdrawn") {
      this.notice.hidden = true;
      return;
    }
    this.notice.hidden = false;
    this.notice.textContent = t(`call.withdrawn.${this.reason || "other"}`);
  }

  renderDetails() {
    if (!this.card || this.partial || this.state === "withdrawn") {
      this.details.replaceChildren();
      this.details.hidden = true;
      return;
    }
    const tasks = this.card.open_tasks || [];
    const calls = this.card.last_calls || [];
    if (!this.known() && !tasks.length && !calls.length) {
      this.details.replaceChildren();
      this.details.hidden = true;
      return;
    }
    this.details.hidden = false;
    const now = Date.now();
    const taskItems = tasks.map((task) => {
      const due = parseTime(task.due_at);
      const overdue = due !== null && due < now;
      return el(
        "li",
        { class: "task", testid: "pop-task" },
        el("span", { class: "task__title" }, task.title),
        due !== null
          ? el(
              "span",
              { class: overdue ? "task__due task__due--overdue" : "task__due" },
              t("call.task_due", { date: formatDay(task.due_at) }),
            )
          : null,
      );
    });
    const callItems = calls.map((c) =>
      el(
        "li",
        { class: "history", testid: "pop-last-call" },
        el("span", { class: "history__when" }, formatWhen(c.started_at)),
        el(
          "div",
          { class: "history__body" },
          el(
            "span",
            { class: c.outcome ? "tag" : "tag tag--muted" },
            c.outcome
              ? t(`outcome.${c.outcome}`)
              : t(`end_reason.${c.end_reason || c.status || "unknown"}`),
          ),
          c.agent_name ? el("span", { class: "history__agent" }, c.agent_name) : null,
          c.notes ? el("div", { class: "history__notes", title: c.notes }, c.notes) : null,
        ),
      ),
    );
    fill(
      this.details,
      el(
        "section",
        { class: "pop__section", testid: "pop-tasks" },
        el("h3", { class: "pop__section-title" }, t("call.open_tasks", { count: tasks.length })),
        taskItems.length
          ? el("ul", { class: "pop__list" }, ...taskItems)
          : el("p", { class: "pop__none" }, t("call.no_tasks")),
      ),
      el(
        "section",
        { class: "pop__section", testid: "pop-last-calls" },
        el("h3", { class: "pop__section-title" }, t("call.last_calls")),
        callItems.length
          ? el("ul", { class: "pop__list" }, ...callItems)
          : el("p", { class: "pop__none" }, t("call.no_calls")),
      ),
    );
  }

  renderOutcomes() {
    if (this.state !== "ended") {
      this.outcomeBox.hidden = true;
      return;
    }
    this.outcomeBox.hidden = false;
    const chosen = this.call.outcome;
    const buttons = this.outcomes.map((value) =>
      el(
        "button",
        {
          type: "button",
          class: `outcome outcome--${value}`,
          testid: `outcome-${value}`,
          "aria-pressed": String(chosen === value),
          disabled: this.saving ? true : undefined,
          onclick: () => this.chooseOutcome(value),
        },
        t(`outcome.${value}`),
      ),
    );
    fill(
      this.outcomeBox,
      el(
        "h3",
        { class: "pop__section-title" },
        chosen ? t("call.outcome_chosen") : t("call.outcome_prompt"),
      ),
      el("div", { class: "pop__outcome-list" }, ...buttons),
    );
  }

  renderNotes() {
    const show = this.state === "connected" || this.state === "ended";
    this.notesBox.hidden = !show;
    if (!show) return;
    this.notesLabel.textContent = t("call.notes");
    this.notesInput.placeholder = t("call.notes_placeholder");
    this.notesButton.textContent = t("call.notes_save");
    if (!this.notesInput.dataset.dirty && document.activeElement !== this.notesInput) {
      this.notesInput.value = this.call.notes || "";
    }
    this.renderNotesState();
  }

  renderNotesState() {
    const text =
      this.notesSaved === "saving"
        ? t("call.notes_saving")
        : this.notesSaved === "saved"
          ? t("call.notes_saved")
          : "";
    this.notesState.textContent = text;
  }

  /** PATCH /api/calls/{id} after the changes sent before it. */
  patch(body) {
    const sent = this.pending.then(() => api.patch(`/api/calls/${this.id}`, body));
    this.pending = sent.catch(() => undefined);
    return sent;
  }

  async chooseOutcome(value) {
    if (this.saving) return;
    const previous = this.call.outcome;
    this.call = { ...this.call, outcome: value };
    this.saving = true;
    this.renderOutcomes();
    try {
      const saved = await this.patch({ outcome: value });
      this.call = { ...this.call, outcome: saved.outcome, notes: saved.notes };
    } catch (error) {
      this.call = { ...this.call, outcome: previous };
      toast(errorText(error));
    } finally {
      this.saving = false;
      this.renderOutcomes();
    }
  }

  async saveNotes() {
    const notes = this.notesInput.value;
    if (notes === this.notesInFlight) return; // blur and the button click both ask
    if (!this.notesInput.dataset.dirty && notes === (this.call.notes || "")) {
      this.notesSaved = "saved";
      this.renderNotesState();
      return;
    }
    this.notesInFlight = notes;
    this.notesSaved = "saving";
    this.renderNotesState();
    try {
      const saved = await this.patch({ notes });
      if (this.notesInput.value === notes) this.notesInput.dataset.dirty = "";
      this.call = { ...this.call, notes: saved.notes };
      this.notesSaved = "saved";
    } catch (error) {
      this.notesSaved = null;
      toast(errorText(error));
    } finally {
      this.notesInFlight = null;
    }
    this.renderNotesState();
  }

  async createClient() {
    if (this.creating) return;
    const name = this.nameInput.value.trim() || this.number();
    const raw = this.rawNumber();
    this.creating = true;
    this.createError = null;
    this.renderNewCaller();
    try {
      const client = await api.post("/api/clients", {
        name,
        position: "",
        phones: [{ raw }],
      });
      this.card = {
        ...this.card,
        known: true,
        owners: [
          {
            phone_id: client.phones && client.phones[0] ? client.phones[0].id : null,
            client_id: client.id,
            client_name: client.name,
            organization_id: client.organization_id,
            organization_name: client.organization_name,
            position: client.position,
            shared: false,
          },
        ],
      };
      this.pickedOwner = 0;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        // Someone already gave this number a card: show whose it is.
        const owners = (error.detail && error.detail.owners) || [];
        if (owners.length) {
          this.card = { ...this.card, known: true, owners };
        } else {
          this.createError = t("call.create_taken");
        }
      } else if (error instanceof ApiError && error.status === 422) {
        this.createError = t("call.create_invalid", { message: error.message });
      } else {
        this.createError = errorText(error);
      }
    } finally {
      this.creating = false;
      this.render();
    }
  }

  /** Fill a card that arrived without caller details (a transfer, a snapshot of a talk). */
  async lookup() {
    const raw = this.call.caller_num;
    if (!raw || this.card) return;
    this.partial = true;
    this.card = { number: raw, display: raw, caller_name: this.call.caller_name, owners: [] };
    try {
      const found = await api.get(`/api/lookup?phone=${encodeURIComponent(raw)}`);
      if (this.partial && found && Array.isArray(found.owners)) {
        this.card = { ...this.card, known: found.owners.length > 0, owners: found.owners };
        this.render();
      }
    } catch {
      /* a number the lookup cannot read: the card shows the raw number */
    }
  }
}

// --- the board -----------------------------------------------------------------------------

function getOrCreate(call) {
  let card = cards.get(call.id);
  if (!card) {
    card = new CallCard(call);
    cards.set(call.id, card);
    board.prepend(card.el);
  }
  return card;
}

function removeCard(id) {
  const card = cards.get(id);
  if (!card) return;
  card.cancelRemoval();
  card.el.remove();
  cards.delete(id);
  refreshBoard();
}

function refreshBoard() {
  emptyState.hidden = cards.size > 0;
  const ringing = [...cards.values()].filter((c) => c.state === "ringing").length;
  document.title = ringing ? `(${ringing}) ${baseTitle}` : baseTitle;
}

function applyRinging(call, card) {
  const entry = getOrCreate(call);
  entry.call = { ...entry.call, ...call };
  if (card) {
    entry.card = card;
    entry.partial = false;
  }
  entry.setState("ringing");
  entry.render();
  refreshBoard();
}

function applyWithdrawn(call, reason) {
  const entry = cards.get(call.id);
  // A ringing card goes when someone else takes the call; a connected one when its
  // operator transfers the call on.
  const handedOver = Boolean(entry) && reason === "transferred" && entry.state === "connected";
  if (!entry || (entry.state !== "ringing" && !handedOver)) return;
  entry.call = { ...entry.call, ...call };
  entry.reason = reason;
  if (handedOver) entry.state = "withdrawn";
  else entry.setState("withdrawn");
  entry.render();
  entry.cancelRemoval();
  entry.removeTimer = setTimeout(() => {
    if (entry.state === "withdrawn") removeCard(entry.id);
  }, WITHDRAWN_VISIBLE_MS);
  refreshBoard();
}

function applyConnected(call) {
  const entry = getOrCreate(call);
  entry.call = { ...entry.call, ...call };
  if (entry.setState("connected") && entry.state === "connected") entry.receivedAt = Date.now();
  entry.render();
  if (!entry.card) entry.lookup();
  refreshBoard();
}

function applyEnded(call, outcomes) {
  const entry = getOrCreate(call);
  entry.call = { ...entry.call, ...call };
  if (Array.isArray(outcomes) && outcomes.length) {
    // Keep our preferred order, then anything new the server offers.
    entry.outcomes = [
      ...DEFAULT_OUTCOMES.filter((o) => outcomes.includes(o)),
      ...outcomes.filter((o) => !DEFAULT_OUTCOMES.includes(o)),
    ];
  }
  entry.setState("ended");
  entry.render();
  if (!entry.card) entry.lookup();
  refreshBoard();
}

function applyUpdated(call) {
  const entry = cards.get(call.id);
  if (!entry) return;
  // An outcome click in flight here wins over what an earlier change reports.
  const keep = entry.saving ? { outcome: entry.call.outcome } : {};
  entry.call = { ...entry.call, ...call, ...keep };
  entry.render();
}

function applySnapshot(items) {
  const live = new Set();
  for (const item of items) {
    if (!item || !item.call) continue;
    live.add(item.call.id);
    if (item.state === "connected") applyConnected(item.call);
    else applyRinging(item.call, item.card || null);
  }
  // Calls we showed that are no longer live: a ring is over; a talk of ours has ended.
  for (const entry of [...cards.values()]) {
    if (live.has(entry.id)) continue;
    if (entry.state === "ringing") removeCard(entry.id);
    else if (entry.state === "connected") applyEnded(entry.call, null);
  }
  refreshBoard();
}

function applyEvent(event) {
  const call = event.call;
  window.dispatchEvent(new CustomEvent("callcenter:event", { detail: event }));
  eventLog.push({ id: event.id, type: event.type, call: call ? call.id : null });
  if (eventLog.length > 500) eventLog.splice(0, eventLog.length - 500);
  if (!call || call.id === undefined || call.id === null) return;
  switch (event.type) {
    case "call.ringing":
      applyRinging(call, event.card || null);
      break;
    case "call.withdrawn":
      applyWithdrawn(call, event.reason);
      break;
    case "call.connected":
      applyConnected(call);
      break;
    case "call.ended":
      applyEnded(call, event.outcomes);
      break;
    case "call.updated":
      applyUpdated(call);
      break;
    default:
      break;
  }
}

function showConnection(state) {
  if (state !== connectionState || !statusLog.length) statusLog.push(state);
  connectionState = state;
  connBox.dataset.state = state;
  connText.dataset.i18n = `conn.${state}`;
  connText.textContent = t(`conn.${state}`);
}

function rerenderAll() {
  baseTitle = document.title.replace(/^\(\d+\) /, "");
  for (const card of cards.values()) card.render();
  showConnection(connectionState);
  refreshBoard();
}

// --- start ---------------------------------------------------------------------------------

async function main() {
  // The page stays hidden until it speaks the user's language (no flash of the other one).
  const user = await signedInUser();
  baseTitle = document.title;
  document.getElementById("user-name").textContent = user.name || user.login || "";
  document.getElementById("imports-link").hidden = !["supervisor", "admin"].includes(user.role);

  mountLanguageSwitch(document.getElementById("lang-switch"), {
    persist: true,
    onError: (error) => toast(errorText(error)),
  });
  window.addEventListener("localechange", rerenderAll);
  initControl({ toast, errorText });
  initCrm({ toast, errorText });
  initPlan({ onError: (error) => console.warn("plan progress:", error) });

  const client = new EventClient({
    onSnapshot: applySnapshot,
    onEvent: applyEvent,
    onStatus: showConnection,
  });
  window.callcenter = { events: client, eventLog, statusLog, cards };

  mountLogout(document.getElementById("logout"), {
    onError: (error) => toast(errorText(error)),
    beforeLeave: () => client.stop(),
  });

  setInterval(() => {
    for (const card of cards.values()) if (card.state === "connected") card.tick();
  }, 1000);

  refreshBoard();
  client.start();
}

main().catch(
  startFailed((error) => {
    console.error(error);
    toast(errorText(error));
  }),
);
