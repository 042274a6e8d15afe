// The client card on a call: who is calling (the person picked on a company number), the
// card's tags, the task / meeting / note actions, and the timeline of every interaction.
//
// operator.js makes one CardCrm per call card, appends its `el`, and calls `render()` whenever
// the card renders; CardCrm loads data only when the person or organisation shown changes.

import { api } from "/ui/shared/api.js";
import { t } from "/ui/shared/i18n.js";
import { el } from "/ui/shared/dom.js";
import { CardActions, mountOverdue } from "./tasks.js";
import { Timeline } from "./timeline.js";

let shared = {
  toast: () => {},
  errorText: (error) => String(error),
};
let knownTags = null; // every tag name, for the suggestions; loaded once per page

/** Wire the CRM parts of the page (the overdue list, reminders); called once by operator.js. */
export function initCrm({ toast, errorText }) {
  shared = { toast, errorText };
  const box = document.getElementById("crm-overdue");
  if (box) mountOverdue(box, shared);
}

async function tagSuggestions() {
  if (knownTags === null) {
    knownTags = [];
    try {
      knownTags = (await api.get("/api/tags")).map((tag) => tag.name);
    } catch {
      /* suggestions are a convenience */
    }
  }
  return knownTags;
}

let listCounter = 0;

export class CardCrm {
  /** `card`: operator.js's CallCard (call, card, state, owner(), render()). */
  constructor(card) {
    this.card = card;
    this.picking = false;
    this.followed = null; // the owner pick already sent to the server
    this.tags = [];
    this.tagsKey = null;
    listCounter += 1;
    this.listId = `crm-tag-list-${listCounter}`;

    this.picker = el("div", { class: "crm__picker", testid: "crm-picker", hidden: true });
    this.tagList = el("ul", { class: "crm__tag-list", testid: "crm-tags" });
    this.tagInput = el("input", {
      class: "input crm__tag-input",
      testid: "crm-tag-input",
      maxlength: 64,
      list: this.listId,
      autocomplete: "off",
    });
    this.tagOptions = el("datalist", { id: this.listId });
    this.tagInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.addTag();
      }
    });
    this.tagInput.addEventListener("focus", async () => {
      const names = await tagSuggestions();
      this.tagOptions.replaceChildren(...names.map((name) => el("option", { value: name })));
    });
    this.tagsBox = el("div", { class: "crm__tags" }, this.tagList, this.tagInput, this.tagOptions);
    this.actions = new CardActions(this, shared);
    this.timeline = new Timeline({ onError: (error) => shared.toast(shared.errorText(error)) });
    this.el = el(
      "div",
      { class: "crm", testid: "crm", hidden: true },
      this.picker,
      this.tagsBox,
      this.actions.el,
      this.timeline.el,
    );
  }

  call() {
    return this.card.call;
  }

  /** The company's persons when the company's own number called, else none. */
  contacts() {
    return (this.card.card && this.card.card.contacts) || [];
  }

  /** Whose card this is: the person on the call, else the organisation. */
  subject() {
    const call = this.card.call;
    if (call.client_id) return { kind: "client", id: call.client_id };
    const owner = this.card.owner();
    if (owner && owner.client_id) return { kind: "client", id: owner.client_id };
    const organization = call.organization_id || (owner && owner.organization_id);
    return organization ? { kind: "organization", id: organization } : null;
  }

  /** The name to put in default subjects: the person's, else the organisation's. */
  personName() {
    const call = this.card.call;
    const picked = this.contacts().find((p) => p.client_id === call.client_id);
    if (picked) return picked.name;
    const owner = this.card.owner();
    return (owner && (owner.client_name || owner.organization_name)) || "";
  }

  reload() {
    this.timeline.reload();
  }

  render() {
    const state = this.card.state;
    const subject = this.subject();
    // Shown to the operator handling the call, not to everyone whose phone rings.
    const show = Boolean(subject) && (state === "connected" || state === "ended");
    this.el.hidden = !show;
    if (!show) return;
    this.followOwnerPick();
    this.renderPicker();
    this.renderTags(subject);
    this.actions.render();
    this.timeline.show(subject);
    this.timeline.patchCall(this.card.call);
  }

  renderPicker() {
    const people = this.contacts();
    this.picker.hidden = people.length === 0;
    if (!people.length) return;
    const chosen = this.card.call.client_id;
    const option = (clientId, name, meta) =>
      el(
        "button",
        {
          type: "button",
          class: "owner",
          testid: "crm-pick",
          "data-client-id": clientId === null ? "" : clientId,
          "aria-pressed": String(chosen === clientId || (!chosen && clientId === null)),
          disabled: this.picking ? true : undefined,
          onclick: () => this.pick(clientId),
        },
        el("span", { class: "owner__name" }, name),
        meta ? el("span", { class: "owner__meta" }, meta) : null,
      );
    const owner = this.card.owner();
    this.picker.replaceChildren(
      el("div", { class: "pop__owners-title" }, t("crm.picker.title")),
      el(
        "div",
        { class: "pop__owner-list" },
        ...people.map((p) => option(p.client_id, p.name, p.position)),
        option(null, t("crm.picker.company"), owner ? owner.organization_name : ""),
      ),
    );
  }

  /** A person chosen among several owners of a shared number is the call's person too. */
  followOwnerPick() {
    if (this.card.pickedOwner === null) return;
    const owner = this.card.owner();
    const wanted = owner ? owner.client_id : null;
    if (!wanted || wanted === this.card.call.client_id || wanted === this.followed) return;
    this.followed = wanted;
    this.pick(wanted);
  }

  async pick(clientId) {
    if (this.picking || this.card.call.client_id === clientId) return;
    this.picking = true;
    this.renderPicker();
    try {
      const saved = await api.put(`/api/calls/${this.card.call.id}/client`, { client_id: clientId });
      this.card.call = {
        ...this.card.call,
        client_id: saved.client_id,
        organization_id: saved.organization_id,
      };
    } catch (error) {
      shared.toast(shared.errorText(error));
    } finally {
      this.picking = false;
      this.card.render();
    }
  }

  tagsPath(subject) {
    return `/api/${subject.kind === "client" ? "clients" : "organizations"}/${subject.id}/tags`;
  }

  renderTags(subject) {
    const key = `${subject.kind}:${subject.id}`;
    if (key !== this.tagsKey) {
      this.tagsKey = key;
      this.tags = [];
      api
        .get(this.tagsPath(subject))
        .then((tags) => {
          if (this.tagsKey === key) {
            this.tags = tags;
            this.renderTags(subject);
          }
        })
        .catch((error) => shared.toast(shared.errorText(error)));
    }
    this.tagInput.placeholder = t("crm.tags.add");
    this.tagInput.setAttribute("aria-label", t("crm.tags.add"));
    this.tagList.replaceChildren(
      ...this.tags.map((tag) =>
        el(
          "li",
          { class: "crm__tag", testid: "crm-tag" },
          el("span", {}, tag.name),
          el("button", {
            type: "button",
            class: "crm__tag-remove",
            testid: "crm-tag-remove",
            title: t("crm.tags.remove"),
            "aria-label": t("crm.tags.remove"),
            text: "×",
            onclick: () => this.removeTag(subject, tag),
          }),
        ),
      ),
    );
  }

  async addTag() {
    const name = this.tagInput.value.trim();
    const subject = this.subject();
    if (!name || !subject) return;
    try {
      this.tags = await api.post(this.tagsPath(subject), { names: [name] });
      this.tagInput.value = "";
      if (knownTags !== null && !knownTags.includes(name)) knownTags = null;
      this.renderTags(subject);
    } catch (error) {
      shared.toast(shared.errorText(error));
    }
  }

  async removeTag(subject, tag) {
    try {
      await api.delete(`${this.tagsPath(subject)}/${tag.id}`);
      this.tags = this.tags.filter((other) => other.id !== tag.id);
      this.renderTags(subject);
    } catch (error) {
      shared.toast(shared.errorText(error));
    }
  }
}
