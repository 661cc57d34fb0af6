"""Replies written straight to the client sockets at the end of a driver step.

A connection's sender task (connection.py) cost every reply two scheduling passes on top of
the step that made it: its wake-up, and the checkpoint trio's `send_all` takes after writing.
A driver step (a client's frames handled, a member message or a durable log round carried
out) now runs inside `with server.flusher:`: replies the engine queues meanwhile are noted, and when
the outermost step ends each noted connection gets one non-blocking write of everything it
has queued — the batch of replies that step made leaves in one write per connection, as the
sender would have sent it. Whatever the socket does not take (a full buffer), any error, a
TLS stream, a connection that must wait its turn for a ConnectResponse or is to close, and
any reply made outside a step (timers, admin) goes to the sender task as before.
"""

from __future__ import annotations

from typing import Protocol


class Outlet(Protocol):
    """A connection's end that the flusher writes through (connection.py's `Connection`)."""

    queued: bool

    def flush(self) -> None: ...


class Flusher:
    """Counts nested steps; the outermost one's end writes what the steps queued."""

    __slots__ = ("depth", "pending")

    def __init__(self) -> None:
        self.depth = 0
        self.pending: list[Outlet] = []

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.pending:
            pending, self.pending = self.pending, []
            for outlet in pending:
                outlet.queued = False
                outlet.flush()

    def note(self, outlet: Outlet) -> bool:
        """Whether `outlet` will be flushed at the end of the current step (False: no step
        is running, the caller wakes its sender)."""
        if not self.depth:
            return False
        if not outlet.queued:
            outlet.queued = True
            self.pending.append(outlet)
        return True
