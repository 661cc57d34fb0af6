"""A test module written the kazoo way (`KazooTestCase`, `self.client`, `self.cluster`), run on
zkserver through the drop-in `zkserver.testing.kazoo`: no Java, no ZOOKEEPER_PATH."""

from __future__ import annotations

import threading

from kazoo.protocol.states import KazooState

from zkserver.testing import kazoo as zkkazoo
from zkserver.testing.kazoo import KazooTestCase


def tearDownModule() -> None:  # noqa: N802 (unittest's name)
    zkkazoo.shutdown()


class TestKazooWay(KazooTestCase):
    def test_client_is_chrooted_and_connected(self) -> None:
        assert self.client.connected
        assert self.client.get_children("/") == []
        self.client.create("/a/b", b"hi", makepath=True)
        assert self.client.get("/a/b")[0] == b"hi"
        assert self.hosts.startswith(self.servers + "/kazootests")

    def test_cluster_has_three_servers(self) -> None:
        assert len(list(self.cluster)) == 3
        assert all(s.running for s in self.cluster)
        assert self.servers == ",".join(s.address for s in self.cluster)

    def test_lock_recipe(self) -> None:
        lock = self.client.Lock("/lock", "me")
        with lock:
            assert lock.contenders() == ["me"]

    def test_survives_a_server_restart(self) -> None:
        self.client.create("/kept", b"1")
        self.cluster[0].stop()
        assert not self.cluster[0].running
        self.client.retry(self.client.set, "/kept", b"2")
        self.cluster[0].run()
        other = self._get_client()
        other.start()
        assert other.get("/kept")[0] == b"2"

    def test_expire_session(self) -> None:
        # kazoo's harness expires the session on the client's side: the client then gets a
        # new session from the server.
        before = self.client.client_id[0]
        self.expire_session(threading.Event)
        assert self.client.state == KazooState.CONNECTED
        assert self.client.client_id[0] != before
