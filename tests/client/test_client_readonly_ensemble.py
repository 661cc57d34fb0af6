"""zkserver.client in read-only mode against real ensembles, zkserver's and Apache ZooKeeper
3.9.5's, with the same assertions (tests/client/test_client_readonly.py covers the protocol
against a scripted server).

Two of three members are killed; the survivor serves read-only after its grace period:

* a client that had a session of the ensemble presents it there and hears it expired (a
  terminal EXPIRED, as ZooKeeper's Java client ends a session the server calls expired);
* a new client with `can_be_read_only` gets READ_ONLY, reads, and has its writes refused;
* the two members come back: the client leaves the survivor, because its `isro` probes find a
  read-write member or because the survivor rejoins and closes its connections, whichever comes
  first (tests/client/test_client_rwsearch_ensemble.py keeps the survivor partitioned, so that
  only the probes can move it); the client, which has never seen a read-write server, asks for
  a new session (session id 0, as the Java client's `seenRwServerBefore`) instead of presenting
  its read-only one; it gets CONNECTED with a new session and writes again.

Only on Trio: the client's protocol code is the same on asyncio (the rest of the client suite
runs both), and each run here starts two ensembles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from support import realzk
from support.readonly_ensembles import OursRO, TheirsRO
from support.realzk import four_letter

from zkserver import client
from zkserver.client import State
from zkserver.client import errors as E

pytestmark = pytest.mark.anyio

SURVIVOR, STOPPED = 1, (2, 3)


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def isro(side: Any) -> str:
    try:
        return await anyio.to_thread.run_sync(four_letter, "127.0.0.1", side.port(SURVIVOR),
                                              "isro")
    except OSError:
        return "(no answer)"


async def until_isro(side: Any, answer: str, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while await isro(side) != answer:
            await anyio.sleep(0.05)


@pytest.mark.parametrize("kind", ["zkserver", "zookeeper"])
async def test_read_only_and_back_to_read_write(tmp_path: Path, kind: str) -> None:
    if kind == "zookeeper" and not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed; tests/run.sh fetches it")
    with (OursRO if kind == "zkserver" else TheirsRO)(tmp_path) as side:
        # On the survivor: its reply means the survivor has applied it.
        async with client.connect(f"127.0.0.1:{side.port(SURVIVOR)}") as rw:
            await rw.create("/ro-data", b"before")
        async with client.connect(side.hosts(), can_be_read_only=True,
                                  session_timeout=10) as before:
            for i in STOPPED:
                side.kill(i)
            with anyio.fail_after(60):
                assert await before.wait_for_state(State.EXPIRED) == State.EXPIRED
        await until_isro(side, "ro", 30)

        async with client.connect(side.hosts(), can_be_read_only=True, session_timeout=10,
                                  connect_timeout=30) as ro:
            assert ro.state == State.READ_ONLY
            ro_session = ro.session_id
            assert (await ro.get("/ro-data")).data == b"before"
            assert sorted((await ro.get_children("/")).children) == ["ro-data", "zookeeper"]
            with pytest.raises(E.NotReadOnlyError):
                await ro.create("/fred", b"")

            for i in STOPPED:
                side.restart(i)
            with anyio.fail_after(90):
                await ro.wait_for_state(State.SUSPENDED)
                assert await ro.wait_for_state(State.CONNECTED, State.EXPIRED) \
                    == State.CONNECTED
            assert ro.session_id not in (0, ro_session)
            await ro.create("/after", b"x")
            assert (await ro.get("/after")).data == b"x"
