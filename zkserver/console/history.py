"""The last minutes of the main metrics, sampled once a second for the console's charts.

The samples come from `zkserver.server.stats` (the figures `mntr` shows); requests per
second is the difference of the packets-received counter between two samples.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import attrs
import trio

from zkserver.server import stats

if TYPE_CHECKING:
    from zkserver.server.server import Server

INTERVAL = 1.0
KEEP = 300  # samples: five minutes


@attrs.frozen
class Sample:
    at: float  # trio clock seconds
    requests_per_s: float
    avg_latency: float
    outstanding: int
    znodes: int


class History:
    def __init__(self) -> None:
        self.samples: deque[Sample] = deque(maxlen=KEEP)

    async def run(self, server: Server) -> None:
        last_received: int | None = None
        last_at = trio.current_time()
        while True:
            now = trio.current_time()
            if server.is_serving():
                s = stats.summary(server)
                rate = 0.0
                if last_received is not None and now > last_at:
                    rate = max(0, s.received - last_received) / (now - last_at)
                last_received, last_at = s.received, now
                self.samples.append(Sample(now, rate, float(s.avg_latency), s.outstanding,
                                           s.node_count))
            await trio.sleep(INTERVAL)

    def series(self, field: str) -> list[float]:
        return [float(getattr(s, field)) for s in self.samples]
