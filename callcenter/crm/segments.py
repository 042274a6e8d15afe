"""Segments (saved client filters) and their export as a CSV mailing list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from callcenter.crm.ranking import AbcClass, RankBasis
from callcenter.spreadsheets import neutralise


class SegmentFilter(BaseModel):
    """Which clients belong to a segment; every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, max_length=20)
    """Tag names, on the client or on the client's organisation."""
    tags_match: Literal["any", "all"] = "any"
    organization_id: int | None = None
    last_call_after: AwareDatetime | None = None
    last_call_before: AwareDatetime | None = None
    """The client's latest call started in this range (clients never called do not match)."""
    abc_classes: list[AbcClass] = Field(default_factory=list, max_length=3)
    """Clients never ranked count as C."""
    abc_basis: RankBasis = "calls"
    """Which ranking `abc_classes` refers to."""
    has_phone: bool | None = None
    has_email: bool | None = None

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: list[str]) -> list[str]:
        return sorted({clean_tag_name(t) for t in tags if t.strip()})


def clean_tag_name(name: str) -> str:
    """A tag as stored: trimmed, inner whitespace collapsed, at most 64 characters."""
    return " ".join(name.split())[:64]


@dataclass(frozen=True, slots=True)
class MailingRow:
    name: str
    organization: str
    position: str
    email: str
    phones: tuple[str, ...]
    """E.164 numbers."""


MAILING_HEADER = ("name", "organization", "position", "email", "phones")


def mailing_csv(rows: Iterable[MailingRow]) -> str:
    """The mailing list as CSV text: a header, then one line per client, phones joined by
    "; ". Starts with a byte-order mark so spreadsheets read it as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(MAILING_HEADER)
    for row in rows:
        cells = (row.name, row.organization, row.position, row.email, "; ".join(row.phones))
        writer.writerow([neutralise(cell) for cell in cells])
    return out.getvalue()
