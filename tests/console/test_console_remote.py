"""The console answers only browsers on this host unless `admin.console.allowRemote=true`.

The AdminServer binds every address by default (as ZooKeeper's); the console writes to the
tree, so it must not open to the network just because the admin port is.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from zkserver.config import parse_config
from zkserver.console.app import Console
from zkserver.server.admin import Request

CSS = "/console/static/console.css"


def _console(tmp_path: Path, *extra: str) -> Console:
    cfg = parse_config("\n".join([f"dataDir={tmp_path}", "clientPort=2181", *extra]) + "\n",
                       cwd=str(tmp_path))
    return Console(SimpleNamespace(config=cfg), None, None)  # type: ignore[arg-type]


async def test_other_hosts_are_refused_by_default(tmp_path: Path) -> None:
    console = _console(tmp_path)
    for peer in ("192.0.2.7", "fd00::9", ""):
        reply = await console.handle(Request("GET", CSS, {}, b"", peer))
        assert reply.status == 403, peer
        assert b"admin.console.allowRemote" in reply.body
    for peer in ("127.0.0.1", "::1"):
        assert (await console.handle(Request("GET", CSS, {}, b"", peer))).status == 200


async def test_allow_remote_opens_the_console(tmp_path: Path) -> None:
    console = _console(tmp_path, "admin.console.allowRemote=true")
    assert (await console.handle(Request("GET", CSS, {}, b"", "192.0.2.7"))).status == 200
