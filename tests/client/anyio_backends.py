"""Run the client and recipe suites on both of AnyIO's backends, Trio and asyncio.

The rest of the suite runs under pytest-trio's `trio_mode`, which marks every async test for
Trio. The client and recipe test modules say `pytestmark = pytest.mark.anyio` instead, and
their conftests take from here (1) an `anyio_backend` fixture that parametrises every such test
over Trio and asyncio, (2) hooks that, once collection is finished (pytest-trio marks in
`pytest_collection_modifyitems`), hand those tests to AnyIO's plugin by removing pytest-trio's
marker from them.
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


@pytest.fixture(scope="module", params=BACKENDS)
def anyio_backend(request: Any) -> str:
    """Every async test of the suite runs on Trio and on asyncio."""
    return str(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_slow_on_asyncio(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    hand_to_anyio(session.items)  # after pytest-trio's trio_mode has marked them


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
