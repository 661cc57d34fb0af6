"""Handshakes completed in the order the connections came, as ZooKeeper's one pipeline does.

ZooKeeper runs every session creation through one ordered request pipeline, so a client that
opens ten sessions and then an eleventh finds all ten connected once the eleventh is. zkserver's
engine already gives new sessions their createSession zxids, and so their ConnectResponses, in
the order it is handed the handshakes; two things of Trio's could still reorder them:

* Connections whose first bytes arrived together are woken in one scheduler batch, which Trio
  runs in a random order. So a connection does not hand its handshake to the engine directly:
  it `admit`s it, and after one checkpoint (every connection woken in the same batch has then
  admitted its own) the handshakes waiting are run in the order the connections were accepted.
* Each connection's sender task writes its own socket, again in a random order within a batch.
  So a handshake that created a session takes a ticket, and its connection's first write waits
  until every earlier ticket's ConnectResponse is written (or its connection is gone).

Only new sessions take tickets: a resumed session is answered at once, as in ZooKeeper.
"""

from __future__ import annotations

from collections.abc import Callable

import trio


class HandshakeOrder:
    """One server's order of handshakes: accept numbers in, tickets out."""

    def __init__(self) -> None:
        self._accepted = 0
        self._waiting: list[tuple[int, Callable[[], int]]] = []
        self._results: dict[int, int] = {}
        self._issued = 0
        self._next = 1  # the ticket whose ConnectResponse goes out next
        self._done: set[int] = set()
        self._moved = trio.Event()

    def accepted(self) -> int:
        """A connection was accepted: its number (accept order)."""
        self._accepted += 1
        return self._accepted

    async def admit(self, number: int, run: Callable[[], int]) -> int:
        """Run connection `number`'s handshake (`run`) in accept order among the handshakes
        that arrived in the same scheduler batch; returns what `run` returned."""
        self._waiting.append((number, run))
        await trio.lowlevel.cancel_shielded_checkpoint()
        if number not in self._results:  # the first of the batch to resume runs them all
            waiting = sorted(self._waiting, key=lambda w: w[0])
            self._waiting.clear()
            for n, r in waiting:
                self._results[n] = r()
        return self._results.pop(number)

    def ticket(self) -> int:
        """A handshake that created a session: its place in the order of ConnectResponses."""
        self._issued += 1
        return self._issued

    async def turn(self, ticket: int) -> None:
        """Wait until every ConnectResponse with an earlier ticket is written."""
        while self._next < ticket:
            await self._moved.wait()

    def sent(self, ticket: int) -> None:
        """`ticket`'s ConnectResponse is written, or its connection is gone without it."""
        if ticket < self._next or ticket in self._done:
            return
        self._done.add(ticket)
        while self._next in self._done:
            self._done.discard(self._next)
            self._next += 1
        self._moved.set()
        self._moved = trio.Event()
