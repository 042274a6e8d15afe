"""Receiving an upload: multipart parsed as it streams in, the file written to disk with a
running byte count, so an oversized upload is refused before it is stored whole (let alone
parsed). Starlette's own form parser would spool the complete file first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from python_multipart.multipart import MultipartParser, parse_options_header

_MAX_FIELD_BYTES: Final = 1024
_MAX_FIELDS: Final = 16
_MULTIPART_OVERHEAD: Final = 64 * 1024
"""Room for the boundaries and the small form fields beside the file."""


class UploadError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UploadTooLarge(UploadError):
    def __init__(self, limit: int) -> None:
        super().__init__("too_large", f"the upload is larger than {limit} bytes")


@dataclass(slots=True)
class Upload:
    path: Path
    """A temporary file in the data dir (the caller moves or deletes it)."""
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


class _Receiver:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.buffer = bytearray()
        self.file: IO[bytes] | None = None
        self.path: Path | None = None
        self.size = 0
        self.upload_name: str | None = None
        self.fields: dict[str, str] = {}

    def on_part_begin(self) -> None:
        self.headers = {}
        self.buffer = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self.filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        if self.filename is not None:
            if self.file is not None:
                raise UploadError("several_files", "send one file per upload")
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.directory)
            self.file = os.fdopen(handle, "wb")
            self.path = Path(name)
            self.upload_name = self.filename

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.filename is not None and self.file is not None:
            self.size += end - start
            if self.size > self.max_bytes:
                raise UploadTooLarge(self.max_bytes)
            self.file.write(data[start:end])
            return
        self.buffer += data[start:end]
        if len(self.buffer) > _MAX_FIELD_BYTES:
            raise UploadError("field_too_large", f"form field {self.name!r} is too large")

    def on_part_end(self) -> None:
        if self.filename is None:
            if len(self.fields) >= _MAX_FIELDS:
                raise UploadError("too_many_fields", "too many form fields")
            self.fields[self.name] = self.buffer.decode("utf-8", "replace")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def receive_upload(
    content_type: str,
    content_length: int | None,
    body: AsyncIterator[bytes],
    directory: Path,
    max_bytes: int,
) -> Upload:
    """Stream a multipart body with one file part into `directory`; UploadError if refused."""
    if content_length is not None and content_length > max_bytes + _MULTIPART_OVERHEAD:
        raise UploadTooLarge(max_bytes)
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError("not_multipart", "send the file as multipart/form-data")
    receiver = _Receiver(directory, max_bytes)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        receiver.discard()
        raise
    except Exception as exc:
        receiver.discard()
        raise UploadError("bad_multipart", f"unreadable upload: {exc}") from exc
    receiver.close()
    if receiver.path is None or receiver.upload_name is None:
        raise UploadError("no_file", "the upload has no file part")
    return Upload(receiver.path, receiver.upload_name, receiver.size, receiver.fields)
