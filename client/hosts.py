"""Connection strings and chroot paths.

`"h1:2181,h2:2181/app"` names the servers of one ensemble and, after the first `/`, a chroot: the
client prefixes every path it sends with the chroot and strips it from every path it gets back,
so a program can be moved under another root without changing its paths. The server never
learns about the chroot.
"""

from __future__ import annotations

import random
import re

import attrs

DEFAULT_PORT = 2181


@attrs.frozen
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@attrs.frozen
class ConnectString:
    """A parsed connection string: the servers (in the order to try them) and the chroot."""

    addresses: tuple[Address, ...]
    chroot: str | None

    @classmethod
    def parse(cls, text: str, *, shuffle: bool = True, rng: random.Random | None = None,
              ) -> ConnectString:
        text = text.strip()
        slash = text.find("/")
        hosts_part, chroot = (text, None) if slash < 0 else (text[:slash], text[slash:])
        if chroot is not None:
            chroot = chroot.rstrip("/") or None
            if chroot is not None:
                validate_path(chroot)
        addresses = [_parse_host(h) for h in hosts_part.split(",") if h.strip()]
        if not addresses:
            raise ValueError(f"no servers in connection string {text!r}")
        if shuffle:
            (rng or random).shuffle(addresses)
        return cls(tuple(addresses), chroot)


def _parse_host(item: str) -> Address:
    item = item.strip()
    if item.startswith("["):  # [v6]:port
        end = item.index("]")
        host, rest = item[1:end], item[end + 1:]
        port = int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
        return Address(host, port)
    if item.count(":") == 1:
        host, port_text = item.split(":")
        return Address(host, int(port_text))
    return Address(item, DEFAULT_PORT)


# Characters ZooKeeper refuses in paths: controls, surrogates and the private-use area, the
# U+FFF0-U+FFFF specials, and anything beyond the BMP (Java sees it as a surrogate pair).
_BAD_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\uffff]|[^\x00-\uffff]")
_BAD_SEGMENT = re.compile(r"//|/\.\.?(?:/|$)")


def validate_path(path: str, sequential: bool = False) -> None:
    """Refuse, before sending, what the server would refuse as BADARGUMENTS, with a message that
    names the problem. A sequential create may end with `/`: the server appends the counter.

    It runs on every call, so it is a handful of C-speed checks rather than a loop."""
    if not isinstance(path, str) or not path:
        raise ValueError("path must be a non-empty string")
    if path[0] != "/":
        raise ValueError(f"path must start with '/': {path!r}")
    if path == "/" and not sequential:
        return
    check = path + "1" if sequential else path
    if check[-1] == "/":
        raise ValueError(f"path must not end with '/': {path!r}")
    if _BAD_SEGMENT.search(check):
        raise ValueError(f"empty or relative segment in path {path!r}")
    bad = _BAD_CHAR.search(check)
    if bad:
        raise ValueError(f"invalid character U+{ord(bad.group()):04X} in path {path!r}")


class Chroot:
    """Maps the program's paths to the server's and back."""

    __slots__ = ("root", "_prefix")

    def __init__(self, root: str | None) -> None:
        self.root = root
        self._prefix = (root or "") + "/"

    def to_server(self, path: str) -> str:
        if self.root is None:
            return path
        return self.root if path == "/" else self.root + path

    def to_client(self, path: str) -> str:
        if self.root is None:
            return path
        if path == self.root:
            return "/"
        if path.startswith(self._prefix):
            return path[len(self.root):]
        return path  # outside the chroot (cannot happen for our own requests)
