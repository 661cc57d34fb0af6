"""Znode path rules, as ZooKeeper's PathUtils enforces them.

Java validates UTF-16 units, so every code point above U+FFFF (a surrogate pair in Java) is
illegal too; Python sees whole code points and must reject those explicitly.
"""

from __future__ import annotations

import re

# U+0000-U+001F, U+007F-U+009F, U+D800-U+F8FF, U+FFF0-U+FFFF and anything beyond the BMP.
_BAD_CHARS = re.compile(
    "[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff\U00010000-\U0010ffff]")

SYSTEM_PATHS = frozenset({"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"})


def is_valid(path: str | None) -> bool:
    """True when `path` is a legal znode path."""
    if not path or path[0] != "/":
        return False
    if len(path) == 1:
        return True
    if path[-1] == "/" or "//" in path:
        return False
    if path.isascii():
        # In ASCII the non-printable characters are exactly U+0000-U+001F and U+007F: two C
        # calls where the pattern's search took a twentieth of a create's CPU.
        if not path.isprintable():
            return False
    elif _BAD_CHARS.search(path):
        return False
    if "/." in path:
        for seg in path.split("/"):
            if seg == "." or seg == "..":
                return False
    return True


def parent_of(path: str) -> str:
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


def name_of(path: str) -> str:
    return path[path.rfind("/") + 1:]


def join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else parent + "/" + name


def ancestors(path: str) -> list[str]:
    """Every proper ancestor of `path`, nearest first, ending with "/"."""
    out = []
    while path != "/":
        path = parent_of(path)
        out.append(path)
    return out


def is_under(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or lies below it (component-aware)."""
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")
