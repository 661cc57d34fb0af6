"""How a znode's bytes and Stat are shown: text, pretty JSON, hex and base64; readable times.

Data is arbitrary bytes. It counts as text when it decodes as UTF-8 and holds no control
characters but tab and line breaks; otherwise it is binary and shown in hex first. Very large
values are shown in part (the whole is a download away), so a 1 MiB node never makes a page
the browser chokes on.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import attrs

from zkserver.proto.records import Stat

TEXT_LIMIT = 128 * 1024  # bytes shown as text / JSON
BINARY_LIMIT = 16 * 1024  # bytes shown as hex / base64
EDIT_LIMIT = 128 * 1024  # larger values are not offered for editing in a text box


@attrs.frozen
class DataViews:
    size: int
    is_text: bool
    text: str | None  # None for binary
    json: str | None  # pretty JSON when the text parses as JSON
    hex: str
    base64: str
    truncated_text: bool
    truncated_binary: bool


def is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r" or ord(c) == 127 for c in text)


def views(data: bytes | None) -> DataViews:
    raw = data or b""
    text_ok = is_text(raw[:TEXT_LIMIT]) if len(raw) <= TEXT_LIMIT else is_text(raw)
    text = None
    pretty = None
    if text_ok:
        text = raw[:TEXT_LIMIT].decode("utf-8", errors="replace")
        if len(raw) <= TEXT_LIMIT and raw.strip():
            try:
                pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = None
    part = raw[:BINARY_LIMIT]
    return DataViews(len(raw), text_ok, text, pretty, hexdump(part),
                     base64.b64encode(part).decode(), len(raw) > TEXT_LIMIT,
                     len(raw) > BINARY_LIMIT)


def hexdump(data: bytes) -> str:
    """Offset, sixteen bytes in hex, and the printable ASCII of each line."""
    lines = []
    for at in range(0, len(data), 16):
        row = data[at:at + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{at:08x}  {hexes:<47}  {shown}")
    return "\n".join(lines)


def decode_input(value: str, encoding: str) -> bytes:
    """A form's data field as bytes; raises ValueError for bad base64 or hex."""
    if encoding == "base64":
        return base64.b64decode("".join(value.split()), validate=True)
    if encoding == "hex":
        return bytes.fromhex("".join(value.split()))
    return value.replace("\r\n", "\n").encode("utf-8", errors="surrogateescape")


def zxid(value: int) -> str:
    return f"0x{value & 0xFFFFFFFFFFFFFFFF:x}"


def when(ms: int) -> str:
    if ms <= 0:
        return "—"
    try:
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d} UTC"


def stat_rows(s: Stat) -> list[tuple[str, str]]:
    """The Stat's fields, in ZooKeeper's order, formatted for a table."""
    owner = s.ephemeralOwner
    return [
        ("czxid", zxid(s.czxid)),
        ("mzxid", zxid(s.mzxid)),
        ("pzxid", zxid(s.pzxid)),
        ("ctime", f"{when(s.ctime)} ({s.ctime})"),
        ("mtime", f"{when(s.mtime)} ({s.mtime})"),
        ("version", str(s.version)),
        ("cversion", str(s.cversion)),
        ("aversion", str(s.aversion)),
        ("ephemeralOwner", f"0x{owner & 0xFFFFFFFFFFFFFFFF:x}" if owner else "0 (persistent)"),
        ("dataLength", str(s.dataLength)),
        ("numChildren", str(s.numChildren)),
    ]


PERMS = "rwcda"  # READ=1 WRITE=2 CREATE=4 DELETE=8 ADMIN=16


def perms_text(perms: int) -> str:
    return "".join(ch for bit, ch in zip((1, 2, 4, 8, 16), PERMS, strict=True) if perms & bit)


def perms_value(text: str) -> int:
    value = 0
    for ch in text.lower():
        if ch not in PERMS:
            raise ValueError(f"unknown permission {ch!r} (use letters of {PERMS})")
        value |= 1 << PERMS.index(ch)
    return value
