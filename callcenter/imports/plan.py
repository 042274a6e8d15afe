"""Deciding, for every row, what the import does: pure, on the rows and an index of the base.

A row describes a person, an organisation, or a person of an organisation. The same card is
found by E.164 number (with its extension), e-mail, and for organisations INN or the name
without its legal form. Rows are taken in file order, as if each were applied in turn:

- ``create``: the row's card is new;
- ``update``: the row's card is in the base and the row changes it (non-empty values replace,
  numbers are added; a person's name is replaced only by a more complete compatible one);
- ``unchanged``: the row's card is in the base and the row adds nothing;
- ``merge``: an earlier row of the file already made or matched the same card: this row's
  values are merged into it (``target_line`` / ``target_id`` say which);
- ``reject``: with a reason (see :class:`RejectReason`); a rejected row changes nothing.

A number or e-mail that points at a card whose name does not agree with the row's, or at two
cards at once, rejects the row: the import never merges two existing cards by itself.
Probable duplicates (a compatible name among the same organisation's contacts; the same
organisation name with another INN) become merge suggestions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from callcenter.clients.merge import more_complete_name, names_compatible, organization_name_key
from callcenter.imports.normalize import (
    NormalRow,
    OrgValues,
    PersonValues,
    PhoneValue,
    RejectReason,
    RowRejected,
    RowResult,
)

PhoneKey = tuple[str, str]
CardKind = Literal["client", "organization"]


class Decision(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    MERGE = "merge"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class BaseClient:
    id: int
    name: str
    position: str
    email: str | None
    organization_id: int | None
    notes: str


@dataclass(frozen=True, slots=True)
class BaseOrganization:
    id: int
    name: str
    inn: str | None
    email: str | None
    notes: str


@dataclass(slots=True)
class BaseIndex:
    """What the planner needs to know of the base, for the keys of one file."""

    phone_owners: dict[PhoneKey, list[tuple[CardKind, int]]] = field(default_factory=dict)
    shared_keys: set[PhoneKey] = field(default_factory=set)
    clients_by_email: dict[str, list[int]] = field(default_factory=dict)
    org_by_inn: dict[str, int] = field(default_factory=dict)
    orgs_by_name_key: dict[str, list[int]] = field(default_factory=dict)
    clients: dict[int, BaseClient] = field(default_factory=dict)
    organizations: dict[int, BaseOrganization] = field(default_factory=dict)
    contacts: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    """Organisation id → its persons (id, name), for near-duplicate suggestions."""


@dataclass(eq=False, slots=True)
class Card:
    """A person or organisation as the import leaves it (new, or one of the base)."""

    kind: CardKind
    ref: int
    existing_id: int | None
    values: dict[str, Any]
    base: dict[str, Any] | None
    org: Card | None = None
    """A person's organisation."""
    base_org_id: int | None = None
    new_phones: list[tuple[PhoneValue, bool]] = field(default_factory=list)
    """Numbers to add, each with whether it is shared with another card."""
    phone_keys: set[PhoneKey] = field(default_factory=set)
    first_line: int | None = None
    """The first row that made or touched this card."""

    @property
    def label(self) -> str:
        return str(self.values.get("name") or "")

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Field → (before, after) for a card of the base; empty for new cards."""
        if self.base is None:
            return {}
        out = {k: (self.base[k], v) for k, v in self.values.items() if self.base.get(k) != v}
        if self.kind == "client":
            after_org = self.org.existing_id if self.org else None
            if self.org is not None and self.org.existing_id is None:
                out["organization_id"] = (self.base_org_id, None)  # resolved when applied
            elif after_org != self.base_org_id:
                out["organization_id"] = (self.base_org_id, after_org)
        return out


@dataclass(frozen=True, slots=True)
class RowPlan:
    line: int
    decision: Decision
    reason: RejectReason | None = None
    message: str = ""
    client: Card | None = None
    organization: Card | None = None
    target_line: int | None = None
    target_id: int | None = None


@dataclass(frozen=True, slots=True)
class MergeSuggestion:
    kind: CardKind
    card: Card
    other: Card
    reason: str


@dataclass(slots=True)
class Plan:
    rows: list[RowPlan]
    cards: list[Card]
    suggestions: list[MergeSuggestion]

    def counts(self) -> dict[str, int]:
        """Rows per decision, and what the import writes."""
        decided = Counter(r.decision.value for r in self.rows)
        out = {d.value: decided.get(d.value, 0) for d in Decision}
        out["rows"] = len(self.rows)
        for kind in ("client", "organization"):
            cards = [c for c in self.cards if c.kind == kind]
            out[f"{kind}s_created"] = sum(1 for c in cards if c.existing_id is None)
            out[f"{kind}s_updated"] = sum(
                1 for c in cards if c.existing_id is not None and c.changes()
            )
        out["phones_added"] = sum(len(c.new_phones) for c in self.cards)
        out["suggestions"] = len(self.suggestions)
        return out

    def rejects(self) -> Counter[str]:
        return Counter(r.reason.value for r in self.rows if r.reason is not None)


class _Rejected(Exception):
    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _describe(card: Card) -> str:
    where = f"card {card.existing_id}" if card.existing_id else f"row {card.first_line}"
    return f"{card.label or '?'} ({where})"


class _Planner:
    def __init__(self, index: BaseIndex) -> None:
        self.index = index
        self.cards: list[Card] = []
        self.suggestions: list[MergeSuggestion] = []
        self._suggested: set[tuple[int, int]] = set()
        self.client_cards: dict[int, Card] = {}
        self.org_cards: dict[int, Card] = {}
        self.phone_claims: dict[PhoneKey, list[Card]] = {}
        self.email_claims: dict[str, list[Card]] = {}
        self.inn_claims: dict[str, Card] = {}
        self.name_claims: dict[str, list[Card]] = {}
        self.colleagues: dict[int, list[Card]] = {}
        """Organisation card ref → the new persons the file adds to it."""

    # -- cards of the base, made on first use ----------------------------------------------

    def _new_card(self, kind: CardKind, existing_id: int | None, values: dict[str, Any]) -> Card:
        card = Card(
            kind=kind,
            ref=len(self.cards),
            existing_id=existing_id,
            values=values,
            base=dict(values) if existing_id is not None else None,
        )
        self.cards.append(card)
        return card

    def org_card(self, org_id: int) -> Card:
        card = self.org_cards.get(org_id)
        if card is None:
            base = self.index.organizations[org_id]
            card = self._new_card(
                "organization",
                org_id,
                {"name": base.name, "inn": base.inn, "email": base.email, "notes": base.notes},
            )
            self.org_cards[org_id] = card
        return card

    def client_card(self, client_id: int) -> Card:
        card = self.client_cards.get(client_id)
        if card is None:
            base = self.index.clients[client_id]
            card = self._new_card(
                "client",
                client_id,
                {
                    "name": base.name,
                    "position": base.position,
                    "email": base.email,
                    "notes": base.notes,
                },
            )
            card.base_org_id = base.organization_id
            if (
                base.organization_id is not None
                and base.organization_id in self.index.organizations
            ):
                card.org = self.org_card(base.organization_id)
            self.client_cards[client_id] = card
        return card

    def _base_card(self, kind: CardKind, card_id: int) -> Card:
        return self.client_card(card_id) if kind == "client" else self.org_card(card_id)

    # -- who holds a key ------------------------------------------------------------------

    def phone_owners(self, key: PhoneKey) -> list[Card]:
        owners = self.phone_claims.get(key)
        if owners is None:
            base = self.index.phone_owners.get(key, [])
            owners = [self._base_card(kind, card_id) for kind, card_id in base]
            for owner in owners:
                owner.phone_keys.add(key)
            self.phone_claims[key] = owners
        return owners

    def email_owners(self, email: str) -> list[Card]:
        owners = self.email_claims.get(email)
        if owners is None:
            owners = [self.client_card(i) for i in self.index.clients_by_email.get(email, [])]
            self.email_claims[email] = owners
        return owners

    def _is_shared(self, key: PhoneKey) -> bool:
        return key in self.index.shared_keys

    # -- organisations --------------------------------------------------------------------

    def _org_candidates(self, name_key: str) -> list[Card]:
        base = [self.org_card(i) for i in sorted(self.index.orgs_by_name_key.get(name_key, []))]
        in_file = [c for c in self.name_claims.get(name_key, []) if c.existing_id is None]
        return base + in_file

    def resolve_org(self, org: OrgValues) -> tuple[Card | None, list[Card]]:
        """The card the row's organisation is (None: a new one), and near-duplicates."""
        if org.inn:
            found = self.inn_claims.get(org.inn)
            if found is None and org.inn in self.index.org_by_inn:
                found = self.org_card(self.index.org_by_inn[org.inn])
                self.inn_claims[org.inn] = found
            if found is not None:
                return found, []
        if not org.name_key:
            return None, []
        candidates = self._org_candidates(org.name_key)
        same = [c for c in candidates if org.inn is None or c.values["inn"] is None]
        others = [c for c in candidates if c not in same]
        if same:
            return same[0], same[1:] + others
        return None, others

    # -- one row --------------------------------------------------------------------------

    def process(self, row: NormalRow) -> RowPlan:
        try:
            org_card, org_near = self._check_org(row.org) if row.org else (None, [])
            person_match, person_phones = (
                self._check_person(row.person, org_card) if row.person else (None, [])
            )
        except _Rejected as rejected:
            return RowPlan(row.line, Decision.REJECT, rejected.reason, rejected.message)
        return self._commit(row, org_card, org_near, person_match, person_phones)

    def _check_org(self, org: OrgValues) -> tuple[Card | None, list[Card]]:
        card, near = self.resolve_org(org)
        if card is None and not org.name:
            raise _Rejected(
                RejectReason.MISSING_NAME, f"INN {org.inn} is not in the base and has no name"
            )
        for phone in org.phones:
            for owner in self.phone_owners(phone.key):
                if owner is not card and not self._is_shared(phone.key):
                    raise _Rejected(
                        RejectReason.PHONE_CONFLICT,
                        f"{phone.raw!r} belongs to {_describe(owner)}",
                    )
        return card, near

    def _check_person(
        self, person: PersonValues, org_card: Card | None
    ) -> tuple[Card | None, list[PhoneValue]]:
        candidates: list[Card] = []
        why: dict[int, tuple[RejectReason, str]] = {}
        phones: list[PhoneValue] = []
        for phone in person.phones:
            if self._is_shared(phone.key):
                phones.append(phone)
                continue
            owners = self.phone_owners(phone.key)
            if org_card is not None and org_card in owners:
                continue  # the organisation's own number, listed again for the person
            phones.append(phone)
            for owner in owners:
                if owner.kind == "organization":
                    raise _Rejected(
                        RejectReason.PHONE_CONFLICT,
                        f"{phone.raw!r} belongs to organisation {_describe(owner)}",
                    )
                if owner not in candidates:
                    candidates.append(owner)
                    why[owner.ref] = (RejectReason.PHONE_CONFLICT, phone.raw)
        for email in person.emails:
            for owner in self.email_owners(email):
                if owner not in candidates:
                    candidates.append(owner)
                    why[owner.ref] = (RejectReason.EMAIL_CONFLICT, email)
        if len(candidates) > 1:
            names = ", ".join(_describe(c) for c in candidates[:3])
            raise _Rejected(RejectReason.AMBIGUOUS_MATCH, f"matches several cards: {names}")
        if candidates:
            match = candidates[0]
            if not names_compatible(match.label, person.name):
                reason, key = why[match.ref]
                raise _Rejected(reason, f"{key!r} belongs to {_describe(match)}")
            return match, phones
        return None, phones

    def _commit(
        self,
        row: NormalRow,
        org_card: Card | None,
        org_near: list[Card],
        person_match: Card | None,
        person_phones: list[PhoneValue],
    ) -> RowPlan:
        changed = False
        created: Card | None = None
        if row.org is not None:
            if org_card is None:
                org_card = self._new_card(
                    "organization",
                    None,
                    {"name": row.org.name, "inn": None, "email": None, "notes": ""},
                )
                created = org_card
            changed |= self._apply_org(org_card, row.org)
            changed |= self._add_phones(org_card, row.org.phones)
            for other in org_near:
                self._suggest("organization", org_card, other, "org_name")
        client_card: Card | None = None
        if row.person is not None:
            if person_match is None:
                client_card = self._new_card(
                    "client",
                    None,
                    {"name": row.person.name, "position": "", "email": None, "notes": ""},
                )
                created = client_card
                self._suggest_colleagues(client_card, org_card, row.person.name)
            else:
                client_card = person_match
            changed |= self._apply_person(client_card, row.person, org_card)
            changed |= self._add_phones(client_card, person_phones)
            for email in row.person.emails:
                owners = self.email_claims.setdefault(email, [])
                if client_card not in owners:
                    owners.append(client_card)
        primary = client_card if client_card is not None else org_card
        assert primary is not None  # a normal row has a person or an organisation
        if primary is created:
            plan = RowPlan(row.line, Decision.CREATE, client=client_card, organization=org_card)
        elif primary.first_line is not None:
            plan = RowPlan(
                row.line,
                Decision.MERGE,
                client=client_card,
                organization=org_card,
                target_line=primary.first_line if primary.existing_id is None else None,
                target_id=primary.existing_id,
            )
        else:
            decision = Decision.UPDATE if changed or created is not None else Decision.UNCHANGED
            plan = RowPlan(row.line, decision, client=client_card, organization=org_card)
        for card in (org_card, client_card):
            if card is not None and card.first_line is None:
                card.first_line = row.line
        return plan

    def _apply_org(self, card: Card, org: OrgValues) -> bool:
        values = card.values
        before = dict(values)
        if org.name and organization_name_key(values["name"]) != org.name_key:
            if values["name"]:
                self._unclaim_name(card)
            values["name"] = org.name
        if org.name_key and card not in self.name_claims.get(org.name_key, []):
            self.name_claims.setdefault(org.name_key, []).append(card)
        if org.inn and values["inn"] is None:
            values["inn"] = org.inn
            self.inn_claims[org.inn] = card
        if org.email and (values["email"] or "").lower() != org.email.lower():
            values["email"] = org.email
        values["notes"] = _append_notes(values["notes"], org.notes)
        return values != before

    def _unclaim_name(self, card: Card) -> None:
        key = organization_name_key(card.values["name"])
        claims = self.name_claims.get(key, [])
        if card in claims:
            claims.remove(card)

    def _apply_person(self, card: Card, person: PersonValues, org_card: Card | None) -> bool:
        values = card.values
        before = dict(values)
        if values["name"] != person.name:
            values["name"] = more_complete_name(values["name"], person.name)
        if person.position:
            values["position"] = person.position
        if person.email and (values["email"] or "").lower() != person.email.lower():
            values["email"] = person.email
        values["notes"] = _append_notes(values["notes"], person.notes)
        org_changed = org_card is not None and card.org is not org_card
        if org_card is not None:
            card.org = org_card
        return org_changed or values != before

    def _add_phones(self, card: Card, phones: Iterable[PhoneValue]) -> bool:
        added = False
        for phone in phones:
            if phone.key in card.phone_keys:
                continue
            shared = self._is_shared(phone.key)
            card.phone_keys.add(phone.key)
            card.new_phones.append((phone, shared))
            owners = self.phone_claims.setdefault(phone.key, [])
            if card not in owners:
                owners.append(card)
            added = True
        return added

    def _suggest(self, kind: CardKind, card: Card, other: Card, reason: str) -> None:
        pair = (min(card.ref, other.ref), max(card.ref, other.ref))
        if card is other or pair in self._suggested:
            return
        self._suggested.add(pair)
        self.suggestions.append(MergeSuggestion(kind, card, other, reason))

    def _suggest_colleagues(self, card: Card, org_card: Card | None, name: str) -> None:
        if org_card is None:
            return
        if org_card.existing_id is not None:
            for client_id, other_name in self.index.contacts.get(org_card.existing_id, []):
                if names_compatible(name, other_name) and client_id in self.index.clients:
                    self._suggest("client", card, self.client_card(client_id), "name")
        peers = self.colleagues.setdefault(org_card.ref, [])
        for other in peers:
            if names_compatible(name, other.label):
                self._suggest("client", card, other, "name")
        peers.append(card)


def _append_notes(current: str, incoming: str) -> str:
    if not incoming or incoming in current:
        return current
    return f"{current}\n{incoming}" if current else incoming


def plan_rows(rows: Iterable[RowResult], index: BaseIndex) -> Plan:
    """Every row's decision, the cards as the import leaves them, and merge suggestions."""
    planner = _Planner(index)
    decided: list[RowPlan] = []
    for row in rows:
        if isinstance(row, RowRejected):
            decided.append(RowPlan(row.line, Decision.REJECT, row.reason, row.message))
        else:
            decided.append(planner.process(row))
    cards = [c for c in planner.cards if c.existing_id is None or c.changes() or c.new_phones]
    return Plan(decided, cards, planner.suggestions)
