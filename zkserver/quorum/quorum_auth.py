"""Quorum SASL on the member links: carries the frames of zkserver/auth/quorum_sasl.py's
exchanges on a freshly opened (or accepted) stream, before the link's first message.

`Links` (transport.py) calls `as_learner` on a stream it opened, after TLS and before it
announces its server id, and `as_server` on a stream it accepted, before it reads the id. Every
exchange has a deadline (`AUTH_TIMEOUT`), so a member that never finishes ties up only its own
connection; frames are capped at `quorum_sasl.MAX_FRAME`, so an oversized token is refused
before it is buffered. A GSSAPI learner step may ask the KDC for a ticket: it runs in a thread.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import trio

from zkserver.auth import quorum_sasl
from zkserver.auth.digest_md5 import SaslError
from zkserver.auth.quorum_sasl import QuorumSasl
from zkserver.proto.frames import FrameError

log = logging.getLogger(__name__)

AUTH_TIMEOUT = 5.0
_LEN = struct.Struct(">I")
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


class _FrameReader:
    """Frames off a stream one at a time, each at most `quorum_sasl.MAX_FRAME` long; what
    was read past the last one stays in `buf` for the link to go on with."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                return False
            self.buf += data
        return True

    async def frame(self) -> bytes | None:
        """The next frame, or None when the stream ends first; FrameError if too long."""
        if not await self._fill(4):
            return None
        n = _LEN.unpack_from(self.buf)[0]
        if n > quorum_sasl.MAX_FRAME:
            raise FrameError(f"frame length {n} over {quorum_sasl.MAX_FRAME}")
        if not await self._fill(4 + n):
            return None
        body = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        return body


class QuorumAuth:
    def __init__(self, settings: QuorumSasl, timeout: float = AUTH_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._kerberos = settings.learner_kerberos is not None

    async def _call(self, fn: Any, *args: Any) -> Any:
        if self._kerberos:  # may talk to the KDC: never on the event loop
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
        return fn(*args)

    async def as_learner(self, stream: trio.abc.Stream, host: str, sid: int, name: str
                         ) -> bool:
        """Authenticate to the member `sid` at `host` on `stream`, which we opened. False
        if the link must not be used (we failed and quorum.auth.learnerRequireSasl is on)."""
        error: str | None = None
        exchange = None
        try:
            with trio.fail_after(self.timeout):
                exchange = await self._call(self.settings.start_learner, host)
                frame: bytes | None = await self._call(exchange.first)
                reader = _FrameReader(stream)
                while frame is not None:
                    await stream.send_all(_frame(frame))
                    answer = await reader.frame()
                    if answer is None:
                        error = "the server closed the connection"
                        break
                    frame = await self._call(exchange.receive, answer)
                if error is None:
                    error = exchange.error
        except trio.TooSlowError:
            error = f"no answer within {self.timeout:g}s"
        except SaslError as e:
            error = str(e)
        except (FrameError, *_STREAM_ERRORS) as e:
            error = f"connection failed: {e}"
        if error is None and exchange is not None and exchange.accepted:
            log.debug("%s: authenticated to server %d (%s)", name, sid, self.settings.mechanism)
            return True
        if self.settings.learner_require:
            log.warning("%s: quorum SASL authentication to server %d (%s) failed: %s; not "
                        "using the connection (quorum.auth.learnerRequireSasl)", name, sid, host,
                        error)
            return False
        log.warning("%s: quorum SASL authentication to server %d (%s) failed: %s; continuing "
                    "(quorum.auth.learnerRequireSasl=false)", name, sid, host, error)
        return True

    async def as_server(self, stream: trio.abc.Stream, peer: str, name: str
                        ) -> tuple[list[bytes], bytes] | None:
        """Authenticate the member that opened `stream` from address `peer`. None if the
        connection must be closed; else what was read past the exchange (whole frames, and
        the bytes of a partial one) for the link to go on with."""
        reader = _FrameReader(stream)
        exchange = None
        error: str | None = None
        try:
            with trio.fail_after(self.timeout):
                while True:
                    frame = await reader.frame()
                    if frame is None:
                        return None
                    if exchange is None and not quorum_sasl.is_auth_frame(frame):
                        error = "it did not authenticate (no quorum SASL there?)"
                        if self.settings.server_require:
                            break
                        log.warning("%s: the member at %s %s; continuing "
                                    "(quorum.auth.serverRequireSasl=false)", name, peer, error)
                        return [frame], bytes(reader.buf)
                    if exchange is None:
                        exchange = self.settings.start_server()
                    await stream.send_all(_frame(exchange.receive(frame)))
                    if exchange.done:
                        error = exchange.error
                        break
        except trio.TooSlowError:
            error = f"it did not finish authenticating within {self.timeout:g}s"
        except FrameError as e:
            error = f"it sent a bad authentication frame ({e})"
        except _STREAM_ERRORS:
            return None
        except SaslError as e:
            error = str(e)
        if exchange is not None and exchange.authenticated and error is None:
            log.info("%s: member at %s authenticated as %s", name, peer, exchange.identity)
            return [], bytes(reader.buf)
        if self.settings.server_require or exchange is None or not exchange.done:
            log.warning("%s: refused the member at %s: quorum SASL authentication failed: %s",
                        name, peer, error)
            return None
        log.warning("%s: the member at %s failed quorum SASL authentication: %s; continuing "
                    "(quorum.auth.serverRequireSasl=false)", name, peer, error)
        return [], bytes(reader.buf)
