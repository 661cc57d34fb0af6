"""The client's SASL DIGEST-MD5 (client/sasl.py), against zkserver and Apache ZooKeeper, on Trio
and on asyncio.

Both servers read the same JAAS `Server` section and have the SASL authentication provider, so
every assertion holds for both: the client authenticates (whoAmI shows `sasl:bob`), reaches a
node only `sasl:bob` may read, fails with AUTH_FAILED on a wrong password, and authenticates
again on every new connection (a cut proxy in between).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from support import realzk
from support.process import ZkServerProcess
from support.realzk import RealZooKeeper, free_port

from tests.client.proxy import open_proxy
from zkserver import client
from zkserver.client import errors as E
from zkserver.client.states import State
from zkserver.proto import records as R

JAAS = """\
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bob-secret"
    user_carol="carol-secret";
};
"""
pytestmark = pytest.mark.anyio

SASL_CFG = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"]
BOB = {"mechanism": "DIGEST-MD5", "username": "bob", "password": "bob-secret"}
WAIT = 20


@pytest.fixture(scope="module", params=["zkserver", "zookeeper"])
def sasl_server(request: Any, tmp_path_factory: Any) -> Iterator[Any]:
    base = tmp_path_factory.mktemp(f"sasl-{request.param}")
    jaas = base / "jaas.conf"
    jaas.write_text(JAAS)
    flag = f"-Djava.security.auth.login.config={jaas}"
    if request.param == "zkserver":
        with ZkServerProcess(base / "srv", free_port(), extra=SASL_CFG,
                             env={"SERVER_JVMFLAGS": flag}) as s:
            yield s
    else:
        if not realzk.available():
            pytest.fail("Apache ZooKeeper is not installed; run tests/run.sh, which installs it")
        with RealZooKeeper(base / "srv", free_port(), extra=SASL_CFG,
                           env={"JDK_JAVA_OPTIONS": flag}) as s:
            yield s


@pytest.mark.compat(client="zkserver.client", feature="SASL")
async def test_digest_md5_authenticates(sasl_server: Any) -> None:
    acl = [R.ACL(31, R.Id("sasl", "bob"))]
    async with client.connect(sasl_server.hosts, sasl=BOB) as zk:
        ids = await zk.whoami()
        assert R.Id("sasl", "bob") in ids
        await zk.create("/client-sasl", b"only bob", acl=acl)
        assert (await zk.get("/client-sasl")).data == b"only bob"
    async with client.connect(sasl_server.hosts) as anonymous:
        with pytest.raises(E.NoAuthError):
            await anonymous.get("/client-sasl")
    carol = {**BOB, "username": "carol", "password": "carol-secret"}
    async with client.connect(sasl_server.hosts, sasl=carol) as zk:
        with pytest.raises(E.NoAuthError):
            await zk.get("/client-sasl")
    async with client.connect(sasl_server.hosts, sasl=BOB) as zk:
        await zk.delete("/client-sasl")


@pytest.mark.compat(client="zkserver.client", feature="SASL")
@pytest.mark.parametrize("username,password", [("bob", "wrong"), ("nobody", "nothing")])
async def test_wrong_credentials_end_in_auth_failed(sasl_server: Any, username: str,
                                                    password: str) -> None:
    with pytest.raises(E.AuthFailedError):
        async with client.connect(sasl_server.hosts, sasl={**BOB, "username": username,
                                                           "password": password}):
            pass


@pytest.mark.compat(client="zkserver.client", feature="SASL")
async def test_reconnecting_authenticates_again(sasl_server: Any) -> None:
    async with open_proxy("127.0.0.1", sasl_server.port) as proxy:
        async with client.connect(proxy.hosts, sasl=BOB, session_timeout=10) as zk:
            await zk.create("/client-sasl-again", b"x", acl=[R.ACL(31, R.Id("sasl", "bob"))])
            proxy.cut()
            with anyio.fail_after(WAIT):
                await zk.wait_for_state(State.SUSPENDED)
            proxy.restore()
            with anyio.fail_after(WAIT):
                await zk.wait_for_state(State.CONNECTED)
            assert proxy.connections >= 2
            assert R.Id("sasl", "bob") in await zk.whoami()
            assert (await zk.get("/client-sasl-again")).data == b"x"
            await zk.delete("/client-sasl-again")


def test_bad_options_fail_at_once() -> None:
    with pytest.raises(ValueError, match="unsupported SASL mechanism"):
        client.Client(sasl={"mechanism": "PLAIN", "username": "u", "password": "p"})
    with pytest.raises(ValueError, match="needs a username"):
        client.Client(sasl={"mechanism": "DIGEST-MD5"})
    assert "bob-secret" not in repr(client.Client(sasl=BOB)._sasl)
