"""Run the client and recipe suites on both of AnyIO's backends, Trio and asyncio.

The rest of the suite runs under pytest-trio's `trio_mode`, which marks every async test for
Trio. The client and recipe test modules say `pytestmark = pytest.mark.anyio` instead, and
their conftests (1) override `anyio_backend` to parametrise every such test over Trio and
asyncio, (2) once collection is finished (pytest-trio marks in `pytest_collection_modifyitems`),
hand those tests to AnyIO's plugin by removing pytest-trio's marker from them.
AnyIO's plugin also runs the async fixtures those tests use (it wraps them before pytest-trio
sees them), in the same event loop as the test.

The servers are subprocesses (zkserver on Trio, or Apache ZooKeeper), so a test's backend is
only the client's.
"""

from __future__ import annotations

from typing import Any

import pytest

BACKENDS = ["trio", "asyncio"]

SLOW_ON_ASYNCIO = frozenset({
    "test_pings_keep_an_idle_session",   # 6 s of idling per server, timers only
    "test_curator_sees_our_instances",   # a JVM per call; the protocol is the backend's least
    "test_we_see_curators_instances",    # concern, and the Trio runs keep them in the default
})
"""Tests whose asyncio runs go behind `-m slow` to keep the default suite's time: each is
long and exercises nothing the other asyncio tests do not (the Trio run stays in the default
suite)."""


def backend_param(request: Any) -> str:
    return str(request.param)


def mark_slow_on_asyncio(items: list[pytest.Item]) -> None:
    """Mark the asyncio runs of `SLOW_ON_ASYNCIO` slow (before `-m` deselects)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (isinstance(item, pytest.Function) and item.originalname in SLOW_ON_ASYNCIO
                and callspec is not None and callspec.params.get("anyio_backend") == "asyncio"):
            item.add_marker(pytest.mark.slow)


def hand_to_anyio(items: list[pytest.Item]) -> None:
    """Remove pytest-trio's `trio` marker from the tests AnyIO runs (marked `anyio`)."""
    for item in items:
        if (isinstance(item, pytest.Function) and item.get_closest_marker("anyio") is not None
                and "anyio_backend" in item.fixturenames):
            item.own_markers[:] = [m for m in item.own_markers if m.name != "trio"]
