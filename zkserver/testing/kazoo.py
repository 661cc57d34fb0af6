"""Run kazoo-style test suites (`KazooTestCase`, `KazooTestHarness`) on zkserver, without Java.

kazoo's harness finds its cluster through one function, `kazoo.testing.harness.
get_global_cluster()`, which launches Apache ZooKeeper JVMs from ZOOKEEPER_PATH (or _CLASSPATH,
_VERSION). `install()` replaces that function with one returning a `Cluster` of zkserver
processes shaped like kazoo's (indexable servers with `address`, `client_port`, `running`,
`run()`, `stop()`, `reset()`, `destroy()`; `start()`, `stop()`, `terminate()` on the whole), so
`self.client`, `self.cluster`, `self.servers`, `self.hosts` and `expire_session` all work
unchanged. Three routes, pick one:

* pytest with zkserver installed: nothing to do. The plugin calls `install()` when the collected
  tests import kazoo's harness and none of ZOOKEEPER_PATH, ZOOKEEPER_CLASSPATH,
  ZOOKEEPER_VERSION is set (set one of them to get kazoo's Java cluster back).
* any runner (`python -m unittest`, nose...): import the drop-in classes from here instead of
  kazoo, `from zkserver.testing.kazoo import KazooTestCase, KazooTestHarness`.
* or call `zkserver.testing.kazoo.install()` once (a conftest, a test package's __init__).

The cluster has ZOOKEEPER_CLUSTER_SIZE servers (default 3, as kazoo's), started once per process
and stopped at exit, as kazoo's is. It has the superuser "super" with password "test", as
kazoo's harness configures. What zkserver leaves out (TLS client ports, Kerberos) stays out.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from kazoo.testing import harness as _harness

from zkserver.testing.servers import TestEnsemble, TestServer

# "super:test", the digest kazoo's harness gives its Java servers.
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


class Server:
    """One server as kazoo's harness sees it (`ManagedZooKeeper`'s attributes)."""

    def __init__(self, cluster: Cluster, server: TestServer) -> None:
        self._cluster = cluster
        self._server = server

    @property
    def address(self) -> str:
        return self._server.hosts

    @property
    def client_port(self) -> int:
        return self._server.port

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def running(self) -> bool:
        return self._server.running

    def run(self) -> None:
        """Start this server; wait until it serves if the rest of its ensemble is up (alone it
        cannot, so a caller starting servers one by one is not kept waiting)."""
        self._server.launch()
        if all(s.running for s in self._cluster):
            self._cluster.wait_serving()

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Stop, and forget the data."""
        self._server.stop()
        shutil.rmtree(self._server.data_dir, ignore_errors=True)
        self._server.write_config()

    def destroy(self) -> None:
        self._server.kill()

    def get_logs(self, num_lines: int = 100) -> list[str]:
        return self._server.log_tail(1 << 20).splitlines(keepends=True)[-num_lines:]


class Cluster:
    """A zkserver ensemble (or one standalone server, for size 1) shaped like kazoo's
    `ZookeeperCluster`."""

    def __init__(self, size: int = 3) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="zkserver-kazoo-"))
        lines = [f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"]
        if size == 1:
            self._ensemble = None
            self._members = [TestServer(self._dir / "s1", config_lines=lines)]
        else:
            self._ensemble = TestEnsemble(self._dir, size, config_lines=lines)
            self._members = self._ensemble.members
        self._servers = [Server(self, m) for m in self._members]

    def __getitem__(self, i: int) -> Server:
        return self._servers[i]

    def __iter__(self):  # noqa: ANN204 (an iterator of Server)
        return iter(self._servers)

    def __len__(self) -> int:
        return len(self._servers)

    def wait_serving(self) -> None:
        if self._ensemble is not None:
            self._ensemble.wait_serving()
        else:
            self._members[0].wait_serving()

    def start(self) -> None:
        for m in self._members:
            m.launch()
        self.wait_serving()

    def stop(self) -> None:
        for m in self._members:
            m.stop()

    def reset(self) -> None:
        for s in self._servers:
            s.reset()

    def terminate(self) -> None:
        for m in self._members:
            m.kill()

    def remove(self) -> None:
        self.terminate()
        shutil.rmtree(self._dir, ignore_errors=True)

    def get_logs(self) -> list[str]:
        return [line for s in self._servers for line in s.get_logs()]


_cluster: Cluster | None = None


def get_cluster() -> Cluster:
    """The process's cluster, created (not started: the harness starts it) on first use."""
    global _cluster
    if _cluster is None:
        _cluster = Cluster(int(os.environ.get("ZOOKEEPER_CLUSTER_SIZE", "3")))
        atexit.register(_cluster.remove)
    return _cluster


def shutdown() -> None:
    """Stop the process's cluster and remove its files now rather than at exit (a later
    `get_cluster()` makes a new one)."""
    global _cluster
    if _cluster is not None:
        _cluster.remove()
        atexit.unregister(_cluster.remove)
        _cluster = None


def install() -> None:
    """Make kazoo's harness (and every `KazooTestCase`) use zkserver."""
    _harness.get_global_cluster = get_cluster


class KazooTestHarness(_harness.KazooTestHarness):
    """kazoo's `KazooTestHarness` on zkserver (a drop-in: same methods and attributes)."""

    @property
    def cluster(self) -> Cluster:  # type: ignore[override]
        return get_cluster()


class KazooTestCase(KazooTestHarness):
    """kazoo's `KazooTestCase` on zkserver: `self.client` is a started, chrooted KazooClient."""

    def setUp(self) -> None:
        self.setup_zookeeper()

    def tearDown(self) -> None:
        self.teardown_zookeeper()
