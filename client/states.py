"""The session's connection state, as a value a program can read, await, or iterate.

ZooKeeper servers never send state changes; the client makes them up from what happens to its
connection. Programs need two things from them: "wait until connected (or until it is hopeless)"
and "tell me every change, in order" (a lock holder must stop trusting its lock the moment the
state leaves CONNECTED). `StateTracker` gives both without callbacks: `wait_for()` blocks until
the state is one of those asked for, and every `subscribe()` gets its own ordered stream of
transitions, which ends after a terminal state.
"""

from __future__ import annotations

import enum
from collections import deque

import anyio


class State(enum.Enum):
    CONNECTING = "CONNECTING"
    """Before the first session is established."""
    CONNECTED = "CONNECTED"
    READ_ONLY = "READ_ONLY"
    """Connected to a server that serves reads only (asked for with `can_be_read_only`)."""
    SUSPENDED = "SUSPENDED"
    """The connection dropped; the session may still be alive and the client is reconnecting."""
    EXPIRED = "EXPIRED"
    """The server said the session is gone. Terminal."""
    AUTH_FAILED = "AUTH_FAILED"
    """The server refused credentials while re-establishing the session. Terminal."""
    CLOSED = "CLOSED"
    """The program closed the client. Terminal."""

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def connected(self) -> bool:
        return self in (State.CONNECTED, State.READ_ONLY)


_TERMINAL = frozenset({State.EXPIRED, State.AUTH_FAILED, State.CLOSED})

# A subscriber that stops reading cannot make us hold more than this many transitions: the
# oldest are dropped, and the subscriber still sees the latest state last.
SUBSCRIBER_BACKLOG = 256


class StateTracker:
    def __init__(self) -> None:
        self.state = State.CONNECTING
        self._changed = anyio.Event()
        self._subscribers: set[StateStream] = set()

    def set(self, state: State) -> None:
        if state == self.state or self.state.terminal:
            return
        self.state = state
        self._changed.set()
        self._changed = anyio.Event()
        for sub in self._subscribers:
            sub._push(state)

    async def wait_for(self, *states: State) -> State:
        """Return once the state is one of `states` (at once if it already is)."""
        while self.state not in states:
            await self._changed.wait()
        return self.state

    async def wait_change(self) -> State:
        await self._changed.wait()
        return self.state

    def subscribe(self) -> StateStream:
        return StateStream(self)


class StateStream:
    """An async iterator over state transitions: first the current state, then every change.

    Iteration ends after a terminal state. Use it as `async with zk.states() as states:` (or
    just `async for`, which also unsubscribes when the stream ends)."""

    def __init__(self, tracker: StateTracker) -> None:
        self._tracker = tracker
        self._queue: deque[State] = deque([tracker.state], maxlen=SUBSCRIBER_BACKLOG)
        self._ready = anyio.Event()
        self._ready.set()
        self._finished = False
        tracker._subscribers.add(self)

    def _push(self, state: State) -> None:
        self._queue.append(state)
        self._ready.set()

    def close(self) -> None:
        self._tracker._subscribers.discard(self)
        self._finished = True

    def __aiter__(self) -> StateStream:
        return self

    async def __anext__(self) -> State:
        if self._finished:
            raise StopAsyncIteration
        while not self._queue:
            self._ready = anyio.Event()
            await self._ready.wait()
        state = self._queue.popleft()
        if state.terminal:
            self.close()
        return state

    async def __aenter__(self) -> StateStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
