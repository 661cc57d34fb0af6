"""The flusher: replies noted during a step are written once, when the outermost step ends."""

from __future__ import annotations

from zkserver.server.flush import Flusher


class Outlet:
    def __init__(self) -> None:
        self.queued = False
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def test_outside_a_step_the_caller_wakes_its_sender() -> None:
    flusher = Flusher()
    assert flusher.note(Outlet()) is False


def test_a_connection_is_flushed_once_when_the_outermost_step_ends() -> None:
    flusher = Flusher()
    a, b = Outlet(), Outlet()
    with flusher:
        assert flusher.note(a)
        with flusher:  # a batch carried out inside a message's step
            assert flusher.note(a)
            assert flusher.note(b)
        assert (a.flushes, b.flushes) == (0, 0)  # the inner end writes nothing yet
    assert (a.flushes, b.flushes) == (1, 1)
    assert not a.queued and not b.queued
    with flusher:
        flusher.note(a)
    assert a.flushes == 2


def test_a_step_that_raises_still_flushes() -> None:
    flusher = Flusher()
    a = Outlet()
    try:
        with flusher:
            flusher.note(a)
            raise RuntimeError("digest mismatch")
    except RuntimeError:
        pass
    assert a.flushes == 1 and flusher.depth == 0
