"""New sessions are created, and answered, in the order the engine is handed their handshakes.

Each createSession is a transaction prepared when its handshake arrives, so the zxids, and with
them the ConnectResponses, follow handshake order however the commits are batched. (The server
hands the engine handshakes in accept order and writes the replies in this order:
tests/server/test_session_order.py.)
"""

from __future__ import annotations

import struct

import pytest
from support.wire import connect_request

from zkserver.engine import Client, Engine

NOW = 1_000
WALL = 1_700_000_000_000


@pytest.mark.parametrize("batches", [[11], [10, 1], [3, 3, 5], [1] * 11])
def test_connect_responses_follow_handshake_order(batches: list[int]) -> None:
    engine = Engine()
    answered: list[int] = []
    clients: list[Client] = []
    for i in range(11):
        client = engine.connect(("127.0.0.1", 1000 + i),
                                lambda i=i: answered.append(i) if clients[i].out else None,
                                NOW, WALL)
        clients.append(client)
        assert engine.handshake(client, connect_request(10_000), NOW, WALL)
    assert answered == [] and all(not c.out for c in clients)  # nothing before its commit
    commits = engine.take_commits()
    assert [txn.zxid for txn, _, _ in commits] == sorted(txn.zxid for txn, _, _ in commits)
    for size in batches:
        engine.apply_committed(commits[:size], NOW)
        commits = commits[size:]
    assert answered == list(range(11))
    sids = [struct.unpack_from(">iiq", bytes(c.out), 4)[2] for c in clients]
    assert sids == [c.session_id for c in clients] and len(set(sids)) == 11
