"""Looking for a read-write server while connected to a read-only one.

A read-only server is an ensemble member cut off from its quorum. It drops its clients only
when it rejoins an ensemble, which may be never (it may be the member that stays partitioned
while the others serve), so a client that accepted it has to go and look. ZooKeeper's Java
client (`ClientCnxn.pingRwServer`) does it this way, and so do we:

* while the connection is read-only, ask one server of the connection string at a time the
  four-letter word `isro`, over a separate short TCP connection (TLS if the client uses TLS)
  with a 1 s timeout; an answer of `rw` is a server with a quorum;
* the first probe is due 100 ms after the previous one (or after the client started), and each
  wait is twice the last, up to 60 s; finding a read-write server starts the schedule over. The
  schedule belongs to the client, not to one connection, so a client that hops between
  read-only servers does not probe faster for it (the Java client keeps it the same way);
* on `rw`, close the read-only connection and connect to that server first.

Unlike the Java client, which takes the next server of its rotation (the one it is connected to
included), we probe only the other servers: the one we are on answers `ro` for as long as we are
on it.

`ProbeSchedule` is the timing, a plain object given the monotonic time; `seek_read_write` is
the loop, given the probe to run, so a test can drive it on a fake clock; `is_read_write` is the
probe.
"""

from __future__ import annotations

import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from .connection import TRANSPORT_ERRORS
from .hosts import Address

log = logging.getLogger(__name__)

FIRST_WAIT = 0.1  # ClientCnxn's minPingRwTimeout, 100 ms
LONGEST_WAIT = 60.0  # maxPingRwTimeout, 60 s
PROBE_TIMEOUT = 1.0  # the Java client's for connecting, and again for reading the answer
ANSWER_LIMIT = 64  # `isro` answers "rw", "ro" or "null"; more is not a ZooKeeper server
# A failed probe is a server not to move to, never a failure of the client (ValueError: a host
# name IDNA refuses).
PROBE_ERRORS: tuple[type[BaseException], ...] = (*TRANSPORT_ERRORS, ValueError)


class ReadWriteServerFound(Exception):
    """Why a read-only connection was closed: a read-write server answered at `address`."""

    def __init__(self, address: Address) -> None:
        super().__init__(f"read-write server found at {address}")
        self.address = address


class ProbeSchedule:
    """When the next `isro` probe is due: `first` after the last probe, doubling after each
    probe up to `longest`, back to `first` once a read-write server is found."""

    def __init__(self, now: float, first: float = FIRST_WAIT,
                 longest: float = LONGEST_WAIT) -> None:
        self.first = first
        self.longest = longest
        self.wait = first
        self.last = now

    @property
    def due(self) -> float:
        return self.last + self.wait

    def probed(self, now: float) -> None:
        self.last = now
        self.wait = min(self.wait * 2, self.longest)

    def found(self) -> None:
        self.wait = self.first


def others_after(addresses: Sequence[Address], here: Address | None) -> list[Address]:
    """The servers to probe, in connection-string order starting after `here` (the server we
    are on), without it."""
    if here not in addresses:
        return list(addresses)
    i = addresses.index(here)
    return [*addresses[i + 1:], *addresses[:i]]


async def seek_read_write(candidates: Sequence[Address], schedule: ProbeSchedule,
                          probe: Callable[[Address], Awaitable[bool]]) -> Address:
    """Probe `candidates` in turn, each when `schedule` says, until one is read-write; return
    it. Runs until cancelled if none ever is."""
    if not candidates:
        await anyio.sleep_forever()
    n = 0
    while True:
        await anyio.sleep_until(schedule.due)
        schedule.probed(anyio.current_time())
        addr = candidates[n % len(candidates)]
        n += 1
        if await probe(addr):
            schedule.found()
            return addr


async def is_read_write(addr: Address, ssl_context: _ssl.SSLContext | None = None,
                        timeout: float = PROBE_TIMEOUT) -> bool:
    """Ask `addr` `isro` on a connection of its own; True if it answers `rw`. A server that is
    down, slow, or answers anything else is not (yet) one to move to."""
    try:
        with anyio.fail_after(timeout):
            stream: anyio.abc.ByteStream = await anyio.connect_tcp(addr.host, addr.port)
        try:
            with anyio.fail_after(timeout):
                if ssl_context is not None:
                    stream = await TLSStream.wrap(stream, hostname=addr.host,
                                                  ssl_context=ssl_context,
                                                  standard_compatible=False)
                await stream.send(b"isro")
                if ssl_context is None:
                    await stream.send_eof()  # half-close, as the Java client does (not under TLS)
                answer = b""
                while len(answer) < ANSWER_LIMIT:
                    try:
                        answer += await stream.receive(ANSWER_LIMIT)
                    except anyio.EndOfStream:
                        break
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
    except PROBE_ERRORS as e:
        log.debug("isro probe of %s: %r", addr, e)
        return False
    log.debug("isro probe of %s: %r", addr, answer)
    return answer.strip() == b"rw"
