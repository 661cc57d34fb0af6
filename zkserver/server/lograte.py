"""At most one line per interval from a chatty logger, as ZooKeeper's RateLogger.

Cores read no clock, so a core that finds something worth saying on every request (a quota
passed) just logs it; the server decides here, at the edge and on the monotonic clock, which
of those lines reach the log.
"""

from __future__ import annotations

import logging
import math
import time


class OncePerInterval(logging.Filter):
    """Lets a record through only if none came through in the last `interval` seconds."""

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__()
        self.interval = interval
        self._last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True


def limit(logger: logging.Logger, interval: float = 1.0) -> None:
    """Rate-limit `logger`, once: servers that share a process share their loggers."""
    if not any(isinstance(f, OncePerInterval) for f in logger.filters):
        logger.addFilter(OncePerInterval(interval))
