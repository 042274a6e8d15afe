"""API shapes of imports and import templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from callcenter.imports.mapping import Field as ImportField


class ImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    file_name: str
    file_kind: str
    size_bytes: int
    sha256: str
    status: str
    sheets: list[str]
    sheet: str | None
    headers: list[str]
    mapping: dict[str, list[str]]
    """Field → the header names of its columns (guessed on upload, then as chosen)."""
    fields: list[str] = Field(default_factory=lambda: [f.value for f in ImportField])
    """Every field a column can be mapped to."""
    region: str
    area_code: str
    counts: dict[str, int]
    report: dict[str, Any]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def samples(self) -> dict[str, list[str]]:
        """Header → its first (up to 3) non-empty values, for the mapping step."""
        found = self.report.get("samples")
        return found if isinstance(found, dict) else {}

    progress_done: int
    progress_total: int
    error_code: str | None
    error_message: str | None
    uploaded_by: int | None
    created_at: datetime
    previewed_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    undone_at: datetime | None


class MappingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: dict[str, str | list[str]] | None = Field(default=None, max_length=32)
    """Field → header name(s); omitted: keep the current (guessed) mapping."""
    template: str | None = Field(default=None, max_length=128)
    """Use a saved template's mapping instead."""
    region: str | None = Field(default=None, min_length=2, max_length=2)
    area_code: str | None = Field(default=None, max_length=8, pattern=r"^\d*$")
    sheet: str | None = Field(default=None, max_length=255)
    save_as: str | None = Field(default=None, min_length=1, max_length=128)
    """Also save the mapping as a template under this name."""


class PreviewRow(BaseModel):
    line: int
    decision: str
    reason: str | None
    message: str
    target_line: int | None
    target_id: int | None
    client_id: int | None
    name: str | None
    organization_id: int | None
    organization: str | None
    cells: dict[str, str] | None = None
    """A rejected row's cells of the mapped columns (header → value)."""


class PreviewPage(BaseModel):
    items: list[PreviewRow]
    total: int
    offset: int
    limit: int
    counts: dict[str, int]


class LimitsOut(BaseModel):
    max_upload_bytes: int
    max_rows: int


class UndoOut(BaseModel):
    batch: ImportOut
    undone: dict[str, int]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    mapping: dict[str, str | list[str]] = Field(max_length=32)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    mapping: dict[str, list[str]]
    created_at: datetime
    updated_at: datetime
