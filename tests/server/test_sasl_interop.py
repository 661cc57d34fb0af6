"""SASL DIGEST-MD5 with real clients, zkserver and Apache ZooKeeper configured the same way.

Both servers read one JAAS file (`Server` section: DigestLoginModule with `user_bob`), zkserver
through `SERVER_JVMFLAGS=-Djava.security.auth.login.config=...` as zkServer.sh users set it,
ZooKeeper through the same flag handed to its JVM, and both have
`authProvider.1=...SASLAuthenticationProvider` in zoo.cfg. The same scripts then run against
each: zkCli.sh with a JAAS `Client` section creates a node only `sasl:bob` may touch and an
unauthenticated zkCli is refused on it; kazoo authenticates with `sasl_options`, and wrong
credentials, an unknown user and an unknown mechanism fail as ZooKeeper makes them fail.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import make_acl
from support import realzk
from support.clis import ZKCLI, ZkCli, zkcli_output
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

JAAS = """\
// the server's users, and the identity zkCli.sh logs in with
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bob-secret";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bob-secret";
};
"""
SASL_CFG = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"]


@pytest.fixture(scope="module")
def jaas_file(tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("jaas") / "jaas.conf"
    path.write_text(JAAS)
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: Any, jaas_file: Path) -> Iterator[dict[str, str]]:
    """zkserver and Apache ZooKeeper, both with the JAAS file and the SASL provider."""
    if not realzk.available():
        pytest.fail("Apache ZooKeeper is not installed; run tests/run.sh, which installs it")
    base = tmp_path_factory.mktemp("sasl-servers")
    flag = f"-Djava.security.auth.login.config={jaas_file}"
    ours = ZkServerProcess(base / "zkserver", free_port(), extra=SASL_CFG,
                           env={"SERVER_JVMFLAGS": flag})
    # The java launcher reads JDK_JAVA_OPTIONS: the flag reaches ZooKeeper's JVM as zkServer.sh
    # would pass it.
    theirs = RealZooKeeper(base / "realzk", free_port(), extra=SASL_CFG,
                           env={"JDK_JAVA_OPTIONS": flag})
    with ours, theirs:
        yield {"zkserver": ours.hosts, "zookeeper": theirs.hosts}


def _zkcli_script(hosts: str, jaas_file: Path, monkeypatch: pytest.MonkeyPatch,
                  path: str) -> list[str]:
    out: list[str] = []
    base_flags = "-Xmx128m -XX:TieredStopAtLevel=1"
    with monkeypatch.context() as m:
        m.setenv("CLIENT_JVMFLAGS", f"{base_flags} -Djava.security.auth.login.config={jaas_file}")
        with ZkCli(hosts) as cli:
            cli.wait_for(r"WatchedEvent state:SaslAuthenticated type:None path:null", timeout=60)
            for command in (f"create {path} secret sasl:bob:cdrwa", f"getAcl {path}",
                            f"get {path}", "whoami", f"create {path}/child x"):
                out += [f"authenticated> {command}", *cli.run(command)]
            cli.close()
    with monkeypatch.context() as m:
        m.setenv("CLIENT_JVMFLAGS", base_flags)
        with ZkCli(hosts) as cli:
            for command in (f"get {path}", f"ls {path}", f"create {path}/other x",
                            f"setAcl {path} world:anyone:cdrwa", "whoami"):
                out += [f"anonymous> {command}", *cli.run(command)]
            cli.close()
    return [line for line in out if not line.startswith("ip: ")]  # the client's port differs


@pytest.mark.compat(client="zkCli.sh", feature="SASL")
def test_zkcli_sasl_acl_same_as_zookeeper(servers: dict[str, str], jaas_file: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _zkcli_script(servers["zkserver"], jaas_file, monkeypatch, "/zkcli-sasl")
    theirs = _zkcli_script(servers["zookeeper"], jaas_file, monkeypatch, "/zkcli-sasl")
    assert ours == theirs
    assert "sasl: bob" in ours
    assert "Insufficient permission : /zkcli-sasl" in ours


def _kazoo_script(hosts: str, path: str, **sasl: str) -> list[str]:
    """What a kazoo client sees: how start ends, whether a create with a sasl ACL (and a read)
    works, and whether kazoo then reports AUTH_FAILED.

    kazoo reports CONNECTED before its SASL exchange and fails queued requests with whichever
    exception its threads reach first, so a failure is recorded as such, not by its class.
    Its `start` waits for CONNECTED and then checks that the client is still connected: a
    server that refuses the SASL exchange at once can have made it AUTH_FAILED in between, and
    `start` then raises its timeout at once. So how start ends is what the client went
    through (CONNECTED, seen by a listener), not that check."""
    zk = KazooClient(hosts, sasl_options=dict(sasl), connection_retry={"max_tries": 0},
                     timeout=10)
    auth_failed = threading.Event()
    connected = threading.Event()

    def listen(state: str) -> None:
        if state == "CONNECTED":
            connected.set()
        if zk.client_state == "AUTH_FAILED":
            auth_failed.set()

    zk.add_listener(listen)
    seen: list[str] = []
    try:
        zk.start(timeout=15)
        seen.append("start: CONNECTED")  # (`client_state` may be AUTH_FAILED by now)
    except zk.handler.timeout_exception:
        seen.append("start: CONNECTED" if connected.is_set() else "start: KazooTimeoutError")
    except KazooException as e:
        seen.append(f"start: {type(e).__name__}")
    try:
        zk.create(path, b"v", acl=[make_acl("sasl", sasl.get("username", ""), all=True)])
        seen.append(f"get: {zk.get(path)[0]!r}")
        zk.delete(path)
    except KazooException:
        seen.append("create: failed")
        seen.append(f"AUTH_FAILED: {auth_failed.wait(5.0)}")
    zk.stop()
    zk.close()
    return seen


@pytest.mark.compat(client="kazoo", feature="SASL")
@pytest.mark.parametrize("case", [
    dict(mechanism="DIGEST-MD5", username="bob", password="bob-secret"),
    dict(mechanism="DIGEST-MD5", username="bob", password="wrong"),
    dict(mechanism="DIGEST-MD5", username="mallory", password="mallory-secret"),
    dict(mechanism="DIGEST-MD5", username="super", password="adminsecret"),
], ids=["right", "wrong-password", "unknown-user", "super-user"])
def test_kazoo_sasl_same_as_zookeeper(servers: dict[str, str], case: dict[str, str]) -> None:
    ours = _kazoo_script(servers["zkserver"], "/kazoo-sasl", **case)
    theirs = _kazoo_script(servers["zookeeper"], "/kazoo-sasl", **case)
    assert ours == theirs
    if case["password"] in ("wrong", "mallory-secret"):
        assert ours == ["start: CONNECTED", "create: failed", "AUTH_FAILED: True"]


def test_unknown_user_with_a_known_password_is_refused(servers: dict[str, str]) -> None:
    """ZooKeeper 3.8 deliberately not followed: its callback handler keeps the last known user
    name across connections, so an unknown user who sends the password of the user who
    authenticated last is let in under the unknown name. zkserver refuses it."""
    seen = _kazoo_script(servers["zkserver"], "/kazoo-sasl-mallory", mechanism="DIGEST-MD5",
                         username="mallory", password="bob-secret")
    assert seen == ["start: CONNECTED", "create: failed", "AUTH_FAILED: True"]


def _as_user(hosts: str, user: str, password: str) -> KazooClient:
    zk = KazooClient(hosts, sasl_options={"mechanism": "DIGEST-MD5", "username": user,
                                          "password": password},
                     connection_retry={"max_tries": 0}, timeout=10)
    zk.start(timeout=15)
    return zk


def _super_script(hosts: str) -> list[str]:
    """A SASL user named `super` matches every `sasl` ACL (but is no super user elsewhere)."""
    bob = _as_user(hosts, "bob", "bob-secret")
    bob.create("/only-bob", b"b", acl=[make_acl("sasl", "bob", all=True)])
    bob.create("/only-digest", b"d", acl=[make_acl("digest", "x:y", all=True)])
    admin = _as_user(hosts, "super", "adminsecret")
    seen = []
    for path in ("/only-bob", "/only-digest"):
        try:
            seen.append(f"{path}: {admin.get(path)[0]!r}")
        except KazooException as e:
            seen.append(f"{path}: {type(e).__name__}")
    admin.stop()
    bob.delete("/only-bob")
    bob.stop()
    return seen


def test_a_sasl_user_named_super_matches_every_sasl_acl(servers: dict[str, str]) -> None:
    ours = _super_script(servers["zkserver"])
    assert ours == _super_script(servers["zookeeper"])
    assert ours == ["/only-bob: b'b'", "/only-digest: NoAuthError"]


@pytest.fixture(scope="module")
def requiring_servers(tmp_path_factory: Any, jaas_file: Path) -> Iterator[dict[str, str]]:
    """Both servers with `sessionRequireClientSASLAuth=true`."""
    base = tmp_path_factory.mktemp("sasl-required")
    flag = f"-Djava.security.auth.login.config={jaas_file}"
    extra = [*SASL_CFG, "sessionRequireClientSASLAuth=true"]
    ours = ZkServerProcess(base / "zkserver", free_port(), extra=extra,
                           env={"SERVER_JVMFLAGS": flag})
    theirs = RealZooKeeper(base / "realzk", free_port(), extra=extra,
                           env={"JDK_JAVA_OPTIONS": flag})
    with ours, theirs:
        yield {"zkserver": ours.hosts, "zookeeper": theirs.hosts}


@pytest.mark.compat(client="kazoo", feature="SASL")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("case", [
    None,
    dict(mechanism="DIGEST-MD5", username="bob", password="bob-secret"),
    dict(mechanism="DIGEST-MD5", username="bob", password="wrong"),
], ids=["anonymous", "right", "wrong-password"])
def test_required_sasl_same_as_zookeeper(requiring_servers: dict[str, str],
                                         case: dict[str, str] | None) -> None:
    def script(hosts: str) -> list[str]:
        if case is not None:
            return _kazoo_script(hosts, "/required", **case)
        zk = KazooClient(hosts, connection_retry={"max_tries": 0}, timeout=10)
        seen = []
        try:
            zk.start(timeout=15)
            seen.append(f"exists: {zk.exists('/')is not None}")
        except KazooException as e:
            seen.append(f"{type(e).__name__}")
        zk.stop()
        zk.close()
        return seen

    ours = script(requiring_servers["zkserver"])
    assert ours == script(requiring_servers["zookeeper"])
    if case is None:
        assert ours == ["SessionClosedRequireSaslError"]
    elif case["password"] == "wrong":
        assert ours[:2] == ["start: CONNECTED", "create: failed"]


@pytest.mark.compat(client="zkCli.sh", feature="SASL")
def test_zkcli_with_a_wrong_password_same_as_zookeeper(servers: dict[str, str], jaas_file: Path,
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "bad-client.conf"
    bad.write_text(JAAS.replace('password="bob-secret"', 'password="not-it"'))
    env = {**os.environ, "CLIENT_JVMFLAGS": "-Xmx128m -XX:TieredStopAtLevel=1 "
                                            f"-Djava.security.auth.login.config={bad}"}

    def run(hosts: str) -> list[str]:
        """The command's result, and whether the AuthFailed event came (zkCli's event thread
        prints it wherever it happens to be, so only its presence is compared)."""
        proc = subprocess.run([ZKCLI, "-server", hosts, "ls", "/"], capture_output=True,
                              text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        raw = proc.stdout + proc.stderr
        return [*(line for line in zkcli_output(proc) if "KeeperErrorCode" in line),
                f"AuthFailed event: {'state:AuthFailed type:None' in raw}"]

    ours = run(servers["zkserver"])
    assert ours == run(servers["zookeeper"])
    assert ours == ["KeeperErrorCode = AuthFailed for /", "AuthFailed event: True"]
