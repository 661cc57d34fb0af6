"""Znode path rules (`zkserver.tree.paths`): the ASCII fast path of `is_valid` agrees with
ZooKeeper's character ranges on every string."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from zkserver.tree.paths import is_valid

# PathUtils' illegal characters, as ranges of code points (Java's UTF-16 surrogates included).
_ILLEGAL = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff"
                      "\U00010000-\U0010ffff]")


def _reference(path: str) -> bool:
    if not path or path[0] != "/":
        return False
    if len(path) == 1:
        return True
    if path[-1] == "/" or "//" in path or _ILLEGAL.search(path):
        return False
    return all(seg not in (".", "..") for seg in path.split("/"))


_CHARS = st.sampled_from(["a", "Z", "0", " ", "-", ".", "/", "~", "\x00", "\x1f", "\x7f",
                          "\x80", "\x9f", "\xa0", "é", "\ud800", "\uf8ff", "\uf900",
                          "\ufff0", "\U0001f600"])


@given(st.lists(_CHARS, max_size=12).map("".join))
def test_is_valid_follows_zookeepers_rules(tail: str) -> None:
    for path in (tail, "/" + tail):
        assert is_valid(path) == _reference(path), repr(path)


def test_control_characters_and_delete_are_refused_in_ascii_paths() -> None:
    assert is_valid("/a b/c-d.e~")
    for bad in ("/a\x00", "/a\tb", "/a\x1f", "/a\x7f"):
        assert not is_valid(bad), repr(bad)
