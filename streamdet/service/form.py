"""A multipart/form-data body read as it arrives: the `file` part straight into a spool file, counted against
the upload limit, the other parts as short text fields (python-multipart's streaming parser).

Nothing of the body is held in memory beyond a chunk and the text fields, so the size limit holds for
uploads of any size and a client sending more is cut off at the limit, not after the whole body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
MAX_FIELDS = 32


class FormError(Exception):
    """The body is not a usable multipart form: the message says why."""


class TooLarge(Exception):
    """The file part is larger than the upload limit."""


@dataclass
class Form:
    """What the body held: its text fields, and the file part (a spool file) with the client's name for it."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    size: int = 0


class FormReader:
    """Feed the body's chunks with `feed`, then `finish`; `open_file` gives the spool file for the file part."""

    def __init__(self, content_type: str, open_file: Callable[[], tuple[Path, BinaryIO]], max_bytes: int) -> None:
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise FormError("expected a multipart/form-data body with a boundary")
        self.form = Form()
        self.max_bytes = max_bytes
        self._open_file = open_file
        self._out: BinaryIO | None = None
        self._name: str | None = None
        self._text: bytearray | None = None
        self._header = [bytearray(), bytearray()]
        self._headers: dict[str, str] = {}
        self._ended = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field, "on_header_value": self._header_value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end,
        })

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body (`TooLarge` past the limit, `FormError` on a malformed body)."""
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise FormError(f"malformed multipart body ({exc})") from None

    def finish(self) -> Form:
        """The form, once the whole body has been fed (`FormError` if it ended early)."""
        if not self._ended:
            raise FormError("the multipart body ended before its closing boundary")
        return self.form

    def close(self) -> None:
        """Close the spool file (the caller removes it if the form is not used)."""
        if self._out is not None:
            self._out.close()
            self._out = None

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header[0].decode("latin-1").strip().lower()] = self._header[1].decode("latin-1").strip()
        self._header = [bytearray(), bytearray()]

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise FormError("a form part has no name")
        if name == FILE_FIELD:
            if self.form.path is not None:
                raise FormError("more than one file part")
            self.form.path, self._out = self._open_file()
            self.form.filename = params.get(b"filename", b"").decode("utf-8", "replace") or None
        else:
            if name in self.form.fields or len(self.form.fields) >= MAX_FIELDS:
                raise FormError(f"form field {name!r} given twice, or more than {MAX_FIELDS} fields")
            self._text = bytearray()
        self._name = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self.form.size += end - start
            if self.form.size > self.max_bytes:
                raise TooLarge()
            self._out.write(data[start:end])
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise FormError(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._text is not None:
            self.form.fields[self._name or ""] = self._text.decode("utf-8", "replace")
            self._text = None
        self.close()

    def _end(self) -> None:
        self._ended = True
