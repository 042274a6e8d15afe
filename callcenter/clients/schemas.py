"""API shapes of organisations, clients (contact persons) and phones."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from callcenter.clients.models import PhoneKind


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw: str = Field(min_length=1, max_length=64)
    kind: PhoneKind = PhoneKind.OTHER
    shared: bool = False
    """Several cards may hold this number (a switchboard); a lookup then lists them all."""


class PhoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    raw: str
    e164: str
    extension: str
    kind: PhoneKind
    shared: bool
    client_id: int | None
    organization_id: int | None


class OrganizationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    inn: str | None = Field(default=None, pattern=r"^\d{10}(\d{2})?$")
    email: EmailStr | None = None
    notes: str = Field(default="", max_length=10_000)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)


class OrganizationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    inn: str | None = Field(default=None, pattern=r"^\d{10}(\d{2})?$")
    email: EmailStr | None = None
    notes: str | None = Field(default=None, max_length=10_000)


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    organization_id: int | None = None
    position: str = Field(default="", max_length=128)
    email: EmailStr | None = None
    notes: str = Field(default="", max_length=10_000)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)


class ClientPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    organization_id: int | None = None
    position: str | None = Field(default=None, max_length=128)
    email: EmailStr | None = None
    notes: str | None = Field(default=None, max_length=10_000)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    organization_id: int | None
    organization_name: str | None = None
    position: str
    email: str | None
    notes: str
    phones: list[PhoneOut] = Field(default_factory=list)
    created_at: datetime


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    inn: str | None
    email: str | None
    notes: str
    phones: list[PhoneOut] = Field(default_factory=list)
    contacts: list[ClientOut] = Field(default_factory=list)
    created_at: datetime


class Owner(BaseModel):
    """Who a number belongs to: a person (maybe of an organisation) or an organisation."""

    phone_id: int
    client_id: int | None
    client_name: str | None
    organization_id: int | None
    organization_name: str | None
    position: str | None
    shared: bool


class LookupOut(BaseModel):
    query: str
    e164: str
    extension: str | None
    owners: list[Owner]
    ambiguous: bool
    """True when more than one card holds the number: the operator picks."""
