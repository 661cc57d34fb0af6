"""Waiting on a condition with a deadline, for the tests that drive real processes: a test
waits for what it needs to see, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(cond: Callable[[], T], timeout: float, what: str, poll: float = 0.02) -> T:
    """Call `cond` until it returns something true, and return that; fail, naming `what`,
    once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)
    return value
