"""Name a damaged file's container from its first bytes, so "corrupt AVI" and "not a media file" read differently."""

from __future__ import annotations

HEAD_BYTES = 512


def container_name(head: bytes) -> str | None:
    """Name the container format whose signature starts ``head``, or None if none is recognised."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"FLV"):
        return "FLV"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "ASF/WMV"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "MPEG-PS"
    if head.startswith(b"OggS"):
        return "Ogg"
    if len(head) > 188 and head[0] == head[188] == 0x47:
        return "MPEG-TS"
    return None


def invalid_data_problem(path: str) -> str:
    """Why FFmpeg found no media: a known container header means a damaged file, anything else not media."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES)
    except OSError:
        head = b""
    name = container_name(head)
    if name:
        return f"truncated or corrupt {name} file (invalid data)"
    return "not a media file (invalid data)"
