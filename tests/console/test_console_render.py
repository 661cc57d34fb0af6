"""How the console shows bytes and Stats, without a server."""

from __future__ import annotations

import pytest

from zkserver.console import render
from zkserver.proto.records import Stat


def test_text_json_and_binary():
    v = render.views(b'{"a": [1, 2]}')
    assert v.is_text and v.text == '{"a": [1, 2]}'
    assert v.json == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert render.views(b"plain\ttext\n").json is None
    for binary in (b"\xff\xfe", b"a\x00b", b"\x1b[31m", b"\x7f"):
        v = render.views(binary)
        assert not v.is_text and v.text is None and v.json is None, binary
    assert render.views(None).size == 0 and render.views(None).is_text


def test_large_values_are_cut():
    v = render.views(b"x" * (render.TEXT_LIMIT + 1))
    assert v.truncated_text and len(v.text) == render.TEXT_LIMIT and v.json is None
    assert v.truncated_binary and v.hex.count("\n") == render.BINARY_LIMIT // 16 - 1


def test_hexdump():
    assert render.hexdump(b"AB\x00" + bytes(range(16))).splitlines()[0] == (
        "00000000  41 42 00 00 01 02 03 04 05 06 07 08 09 0a 0b 0c  AB" + "." * 14)


def test_decode_input():
    assert render.decode_input("aGk=\n", "base64") == b"hi"
    assert render.decode_input("68 69", "hex") == b"hi"
    assert render.decode_input("a\r\nb", "text") == b"a\nb"
    assert render.decode_input("\udcff", "text") == b"\xff"  # bytes that were not UTF-8
    with pytest.raises(ValueError):
        render.decode_input("!!", "base64")
    with pytest.raises(ValueError):
        render.decode_input("0g", "hex")


def test_perms_and_stat():
    assert render.perms_text(31) == "rwcda" and render.perms_text(1 | 16) == "ra"
    assert render.perms_value("cdrwa") == 31
    with pytest.raises(ValueError):
        render.perms_value("rx")
    stat = Stat(czxid=0x100000001, mzxid=2, ctime=1_700_000_000_123, mtime=0, version=3,
                cversion=4, aversion=5, ephemeralOwner=0x1a2b, dataLength=6, numChildren=7,
                pzxid=8)
    rows = dict(render.stat_rows(stat))
    assert rows["czxid"] == "0x100000001"
    assert rows["ctime"] == "2023-11-14 22:13:20.123 UTC (1700000000123)"
    assert rows["mtime"] == "— (0)"
    assert rows["ephemeralOwner"] == "0x1a2b"
    assert rows["numChildren"] == "7"
