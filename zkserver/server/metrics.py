"""Metrics: the Prometheus endpoint, and the summaries behind it and the admin server's `monitor`.

    metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
    metricsProvider.httpHost=0.0.0.0
    metricsProvider.httpPort=7000

`GET /metrics` answers Prometheus' text format (0.0.4) the way ZooKeeper's provider (Prometheus
simpleclient 0.9) writes it, under ZooKeeper's names, so existing scrape configs, alerts and
dashboards keep working:

* every number `mntr` shows, as a gauge named like the mntr key without `zk_`
  (`znode_count`, `num_alive_connections`, `avg_latency`, `packets_received`, ...);
* counters ZooKeeper keeps in ServerMetrics where zkserver has the same event
  (`bytes_received_count`, `connection_request_count`, `connection_rejected`,
  `unsuccessful_handshake`);
* summaries with `{quantile="0.5",}` lines, `_count` and `_sum` (`fsynctime`: each write and
  sync of the transaction log, in ms);
* the `process_*` metrics every Prometheus client exports (cpu, memory, open files).

Values are printed as Java prints doubles (`5.0`, `1.2345678E7`). ZooKeeper's `jvm_*` metrics
have no meaning here and are left out.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from typing import TYPE_CHECKING, Any

import trio

from zkserver.server import stats
from zkserver.server.admin import Response, serve_http

if TYPE_CHECKING:
    from zkserver.server.server import Server

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WINDOW = 60.0  # ZooKeeper rotates its Prometheus summaries every 60 s


def java_double(x: float) -> str:
    """Java's Double.toString: `5.0`, `0.001`, `1.0E7`, `1.2345E-4`, `NaN`, `Infinity`."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    exp = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    if whole == "0":
        digits = frac.lstrip("0")
        point = exp - (len(frac) - len(digits))  # x = 0.<digits> * 10**point
    else:
        digits = whole + frac
        point = len(whole) + exp
    digits = digits.rstrip("0") or "0"
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


class Summary:
    """Count, sum and quantiles over the last one to two minutes (ZooKeeper's rotation).

    `add` is called by the log's thread between a sync and the round's reply: it only appends
    to a list (atomic under the GIL) and folds the values in under the lock once every
    `FOLD` of them; readers fold what is left first."""

    FOLD = 64

    def __init__(self, name: str, quantiles: tuple[float, ...] = (0.5,)) -> None:
        self.name = name
        self.quantiles = quantiles
        self._count = 0
        self._total = 0.0
        self._min: float | None = None
        self._max: float | None = None
        self._incoming: list[float] = []
        self._current: list[float] = []
        self._previous: list[float] = []
        self._rotated = time.monotonic()
        self._lock = threading.Lock()  # the log's thread folds, and so do readers

    def add(self, value: float) -> None:
        self._incoming.append(value)
        if len(self._incoming) >= self.FOLD:
            self._fold()

    def _fold(self) -> None:
        with self._lock:
            n = len(self._incoming)  # the thread may append meanwhile: past n, kept
            incoming = self._incoming[:n]
            del self._incoming[:n]
            self._rotate()
            if incoming:
                self._count += len(incoming)
                self._total += sum(incoming)
                low, high = min(incoming), max(incoming)
                self._min = low if self._min is None else min(self._min, low)
                self._max = high if self._max is None else max(self._max, high)
                self._current += incoming

    @property
    def count(self) -> int:
        self._fold()
        return self._count

    @property
    def total(self) -> float:
        self._fold()
        return self._total

    @property
    def min(self) -> float | None:
        self._fold()
        return self._min

    @property
    def max(self) -> float | None:
        self._fold()
        return self._max

    def _rotate(self) -> None:
        now = time.monotonic()
        if now - self._rotated >= WINDOW:
            self._previous = self._current if now - self._rotated < 2 * WINDOW else []
            self._current = []
            self._rotated = now

    def values(self) -> dict[float, float]:
        """The quantiles of the recent window (NaN when it saw nothing, as Prometheus)."""
        self._fold()
        with self._lock:
            self._rotate()
            sample = sorted(self._previous + self._current)
        if not sample:
            return {q: math.nan for q in self.quantiles}
        return {q: sample[min(len(sample) - 1, int(q * len(sample)))] for q in self.quantiles}


class TimedLog:
    """Wraps the transaction log so every append (write + sync) lands in `fsynctime`."""

    def __init__(self, log: Any, summary: Summary) -> None:
        self._log = log
        self._summary = summary

    def append(self, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return self._log.append(*args, **kwargs)
        finally:
            self._summary.add((time.monotonic() - start) * 1000)

    def synced(self, ms: float) -> None:
        """A sync the committer had the kernel do (no `append` here to time it)."""
        self._summary.add(ms)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


class Metrics:
    """The metric objects of one server."""

    def __init__(self) -> None:
        self.fsynctime = Summary("fsynctime")

    @property
    def summaries(self) -> list[Summary]:
        return [self.fsynctime]


def _process() -> list[tuple[str, str, float]]:
    """The `process_*` metrics Prometheus clients export (Linux /proc; empty elsewhere)."""
    out: list[tuple[str, str, float]] = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.append(("process_cpu_seconds_total", "counter", usage.ru_utime + usage.ru_stime))
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            btime = next(int(ln.split()[1]) for ln in f if ln.startswith("btime"))
        out.append(("process_start_time_seconds", "gauge", btime + int(fields[19]) / ticks))
        out.append(("process_virtual_memory_bytes", "gauge", float(fields[20])))
        out.append(("process_resident_memory_bytes", "gauge",
                    float(fields[21]) * os.sysconf("SC_PAGE_SIZE")))
        out.append(("process_open_fds", "gauge", float(len(os.listdir("/proc/self/fd")))))
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    out.append(("process_max_fds", "gauge",
                float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])))
    return out


def _family(lines: list[str], name: str, kind: str) -> None:
    lines.append(f"# HELP {name} {name}")
    lines.append(f"# TYPE {name} {kind}")


def prometheus_text(server: Server) -> str:
    lines: list[str] = []
    for name, value in stats.gauges(server).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # version, server_state, peer_state: text, not numbers
        _family(lines, name, "gauge")
        lines.append(f"{name} {java_double(value)}")
    for name, value in stats.counters(server).items():
        _family(lines, name, "counter")
        lines.append(f"{name} {java_double(value)}")
    for s in server.metrics.summaries:
        _family(lines, s.name, "summary")
        for q, v in s.values().items():
            lines.append(f'{s.name}{{quantile="{q}",}} {java_double(v)}')
        lines.append(f"{s.name}_count {java_double(s.count)}")
        lines.append(f"{s.name}_sum {java_double(s.total)}")
    for name, kind, value in _process():
        _family(lines, name, kind)
        lines.append(f"{name} {java_double(value)}")
    return "\n".join(lines) + "\n"


def handler(server: Server):  # noqa: ANN201 - see admin.Handler
    def handle(method: str, target: str) -> Response:
        path = target.split("?", 1)[0].rstrip("/")
        if path == "/metrics":
            return 200, CONTENT_TYPE, prometheus_text(server).encode()
        return 404, "text/plain", b"not found\n"

    return handle


async def serve(server: Server, *,
                task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
                ) -> None:
    cfg = server.config
    port = cfg.metrics_http_port if cfg.metrics_http_port is not None else 7000
    await serve_http(handler(server), cfg.metrics_http_host, port, "metrics endpoint",
                     task_status=task_status)
