"""`async with recipe:` for recipes whose life is one `_lifetime()` context manager.

Caches, sessions, latches and discovery run helper tasks for as long as they are entered; locks,
semaphores and multi-locks are held for as long. Each writes that lifetime once, as an
`@asynccontextmanager` method, and gets `__aenter__`/`__aexit__` from here instead of repeating
the hand-off to the manager it opened.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Self


class Lifetime:
    """Enter and leave the context manager that `_lifetime()` returns."""

    _cm: AbstractAsyncContextManager[Any] | None = None

    def _lifetime(self) -> AbstractAsyncContextManager[Self]:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        cm = self._lifetime()
        result = await cm.__aenter__()
        self._cm = cm
        return result

    async def __aexit__(self, *exc: Any) -> bool | None:
        cm, self._cm = self._cm, None
        assert cm is not None, "left without being entered"
        return await cm.__aexit__(*exc)
