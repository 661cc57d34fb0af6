"""The session tracker: ids, passwords and expiry deadlines, driven by the caller's clock.

Deadlines are bucketed to multiples of tickTime, as ZooKeeper's ExpiryQueue does: a session
expires at the first tick boundary after `last activity + timeout`, so one timer per tick serves
every session. Nothing here reads a clock: every call takes `now`, milliseconds on the caller's
*monotonic* clock, so that a step of the wall clock neither ends live sessions nor keeps silent
ones alive. Only the session ids are seeded from the wall clock (see `SessionTracker`).
"""

from __future__ import annotations

import hmac

CONTAINER_MARKER = 1 << 63  # 0x8000000000000000 as unsigned: never a session id
_U64 = (1 << 64) - 1


_LCG_MULT = 0x5DEECE66D
_LCG_MASK = (1 << 48) - 1


def java_random_bytes(seed: int, n: int) -> bytes:
    """`new java.util.Random(seed).nextBytes(new byte[n])`, bit for bit."""
    state = (seed ^ _LCG_MULT) & _LCG_MASK
    out = bytearray()
    while len(out) < n:
        state = (state * _LCG_MULT + 0xB) & _LCG_MASK
        rnd = state >> 16  # nextInt(): the top 32 of 48 bits
        for _ in range(min(4, n - len(out))):
            out.append(rnd & 0xFF)
            rnd >>= 8
    return bytes(out)


class SessionInfo:
    __slots__ = ("id", "timeout", "expire_at", "closing")

    def __init__(self, sid: int, timeout: int) -> None:
        self.id = sid
        self.timeout = timeout
        self.expire_at = 0
        self.closing = False


class SessionTracker:
    def __init__(self, tick_time: int, server_id: int, wall: int) -> None:
        self.tick = tick_time
        # ZooKeeper: the server id in the top byte, a millisecond clock below it. The clock here
        # is the wall clock at start (`wall`, ms), not the monotonic one ZooKeeper 3.5+ uses:
        # ids must not repeat across restarts (sessions, and their ephemerals, outlive a
        # restarted member of an ensemble), and a monotonic clock starts again from zero at
        # every boot. Nothing else here depends on it.
        base = ((wall << 24) & _U64) >> 8
        self.next_id = base | (server_id << 56)
        self.sessions: dict[int, SessionInfo] = {}
        self.buckets: dict[int, set[int]] = {}

    def new_id(self) -> int:
        sid = self.next_id
        self.next_id += 1
        if sid == CONTAINER_MARKER or sid == 0:
            return self.new_id()
        return sid if sid < (1 << 63) else sid - (1 << 64)

    def password(self, sid: int) -> bytes:
        """ZooKeeper's own session password, so every server of an ensemble (and an Apache
        ZooKeeper whose data was imported) agrees on it without sharing a secret."""
        return java_random_bytes(sid ^ 0xB3415C00, 16)

    def check_password(self, sid: int, passwd: bytes | None) -> bool:
        return sid != 0 and passwd is not None and hmac.compare_digest(self.password(sid), passwd)

    def _bucket_of(self, t: int) -> int:
        return (t // self.tick + 1) * self.tick

    def add(self, sid: int, timeout: int, now: int) -> SessionInfo:
        info = self.sessions.get(sid)
        if info is None:
            info = self.sessions[sid] = SessionInfo(sid, timeout)
        info.timeout = timeout
        self.touch(sid, now)
        return info

    def get(self, sid: int) -> SessionInfo | None:
        return self.sessions.get(sid)

    def alive(self, sid: int) -> bool:
        info = self.sessions.get(sid)
        return info is not None and not info.closing

    def touch(self, sid: int, now: int) -> bool:
        """Push the session's deadline out; False if it is unknown or closing."""
        info = self.sessions.get(sid)
        if info is None or info.closing:
            return False
        at = self._bucket_of(now + info.timeout)
        if at != info.expire_at:
            old = self.buckets.get(info.expire_at)
            if old is not None:
                old.discard(sid)
                if not old:
                    del self.buckets[info.expire_at]
            self.buckets.setdefault(at, set()).add(sid)
            info.expire_at = at
        return True

    def set_closing(self, sid: int) -> None:
        info = self.sessions.get(sid)
        if info is not None:
            info.closing = True

    def remove(self, sid: int) -> None:
        info = self.sessions.pop(sid, None)
        if info is None:
            return
        bucket = self.buckets.get(info.expire_at)
        if bucket is not None:
            bucket.discard(sid)
            if not bucket:
                del self.buckets[info.expire_at]

    def next_deadline(self) -> int | None:
        return min(self.buckets) if self.buckets else None

    def expired(self, now: int) -> list[int]:
        """Sessions whose deadline has passed; they are marked closing and leave the buckets."""
        out: list[int] = []
        for at in sorted(t for t in self.buckets if t <= now):
            for sid in sorted(self.buckets.pop(at)):
                info = self.sessions[sid]
                info.closing = True
                info.expire_at = 0
                out.append(sid)
        return out
