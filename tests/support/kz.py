"""kazoo clients for tests: they fail fast instead of hanging when the server is gone.

A default KazooClient retries reconnecting forever, and every call made meanwhile waits for
that, so a test whose server crashed would hang instead of failing. These clients give up after
a few attempts (the calls then raise ConnectionLoss), and `stop_kazoo` never blocks for long.
"""

from __future__ import annotations

import threading

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry


def kazoo_client(hosts: str, timeout: float = 10.0, start: bool = True) -> KazooClient:
    zk = KazooClient(hosts=hosts, timeout=timeout,
                     connection_retry=KazooRetry(max_tries=5, delay=0.1, max_delay=1.0))
    if start:
        zk.start(timeout=15)
    return zk


def stop_kazoo(zk: KazooClient, timeout: float = 5.0) -> None:
    def shut() -> None:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass

    t = threading.Thread(target=shut, daemon=True)
    t.start()
    t.join(timeout)
