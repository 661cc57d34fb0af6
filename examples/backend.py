"""The event loop an example runs on: `--backend trio` (the default) or `--backend asyncio`.

The client and recipes are the same on both (they are written on AnyIO); each example's
`main` runs unchanged under `trio.run` or `asyncio.run`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import anyio


def run(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run `fn(*args)` under the event loop named by `--backend` (Trio unless asyncio)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    known, _rest = parser.parse_known_args()
    return anyio.run(fn, *args, backend=known.backend)
