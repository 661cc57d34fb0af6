"""A well-behaved client that keeps working while a test abuses the server.

`Canary` runs a kazoo session in a background thread that writes and reads its own node in a
loop. `check()` stops it and asserts what a hostile-input test promises: the canary's session
never broke (same session id, no errors, every read saw the write before it), and the server
process is alive and answers `ruok` with `imok`.
"""

from __future__ import annotations

import threading
import uuid

from kazoo.protocol.states import KazooState

from support.kz import kazoo_client, stop_kazoo
from support.wire import four_letter


class Canary:
    def __init__(self, server, interval: float = 0.01) -> None:
        self.server = server
        self.interval = interval
        self.path = f"/canary-{uuid.uuid4().hex}"
        self.errors: list[str] = []
        self.rounds = 0
        self.states: list[str] = []
        self._stop = threading.Event()
        self.zk = kazoo_client(server.hosts, start=False)
        self.zk.add_listener(lambda state: self.states.append(str(state)))
        self.zk.start(timeout=15)
        self.session_id = self.zk.client_id[0]
        self.zk.create(self.path, b"0")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                payload = str(i).encode()
                self.zk.set(self.path, payload)
                data, stat = self.zk.get(self.path)
                if data != payload:
                    self.errors.append(f"round {i}: read {data!r} after writing {payload!r}")
                self.rounds += 1
            except Exception as e:  # any failure of a plain read or write is a finding
                self.errors.append(f"round {i}: {type(e).__name__}: {e}")
                if len(self.errors) > 20:
                    return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        proc = self.server.proc
        dead = proc is not None and proc.poll() is not None
        self._thread.join(0.5 if dead else 10)  # a dead server: kazoo would retry for long
        if self._thread.is_alive() and not dead:
            self.errors.append("a canary read/write blocked for more than 10 s")

    def check(self) -> None:
        """Stop the loop; assert the canary and the server are unharmed."""
        self.stop()
        proc = self.server.proc
        assert proc is None or proc.poll() is None, (
            f"the server process died (exit status {proc.returncode}); see "
            f"{getattr(self.server, 'log_path', '?')}:\n{_tail(self.server)}")
        assert four_letter(self.server.port, "ruok") == "imok"
        assert not self.errors, "the canary session was harmed:\n" + "\n".join(self.errors[:10])
        assert self.rounds > 0, "the canary never completed a read/write round"
        assert self.zk.state == KazooState.CONNECTED
        assert self.zk.client_id[0] == self.session_id, "the canary's session was replaced"
        assert "LOST" not in self.states, f"the canary's session was lost: {self.states}"
        payload = b"final"
        self.zk.set(self.path, payload)
        assert self.zk.get(self.path)[0] == payload

    def close(self) -> None:
        """Stop the loop and the session (bounded, even when the server is gone)."""
        self.stop()
        stop_kazoo(self.zk)


def _tail(server) -> str:
    try:
        return server.log_path.read_text()[-3000:]
    except Exception:
        return ""
