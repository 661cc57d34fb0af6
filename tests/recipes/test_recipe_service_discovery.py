"""Service registry and discovery: the cache converges to the live set while providers come,
go, lose connections and have their sessions expire; strategies; and Apache Curator's
ServiceDiscovery (Java, compiled here) sees our instances while we see its."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.recipes.recipe_support import SESSION, Chaos, connect, make_root, proxied
from zkserver.recipes.service_discovery import (
    RandomStrategy,
    RoundRobinStrategy,
    ServiceCache,
    ServiceDiscovery,
    ServiceInstance,
    ServiceProvider,
    StickyStrategy,
)
from zkserver.recipes.session import Session

pytestmark = pytest.mark.anyio

JAVA_SOURCE = (Path(__file__).resolve().parents[1] / "support" / "curator"
               / "CuratorDiscovery.java")
JARS = ["curator-x-discovery", "curator-recipes", "curator-framework", "curator-client",
        "zookeeper", "zookeeper-jute", "jackson-core", "jackson-databind",
        "jackson-annotations", "guava", "slf4j-api", "slf4j-nop"]


def ids(instances: list[ServiceInstance]) -> set[str]:
    return {i.id for i in instances}


def test_instance_json_is_curators() -> None:
    curator_json = (b'{"name":"svc","id":"i1","address":"10.0.0.1","port":80,"sslPort":null,'
                    b'"payload":{"@class":"java.util.LinkedHashMap","zone":"a","w":3},'
                    b'"registrationTimeUTC":1795537394830,"serviceType":"DYNAMIC",'
                    b'"uriSpec":{"parts":[{"value":"scheme","variable":true},'
                    b'{"value":"://","variable":false},{"value":"address","variable":true},'
                    b'{"value":":","variable":false},{"value":"port","variable":true}]}}')
    instance = ServiceInstance.from_json(curator_json)
    assert instance.payload == {"zone": "a", "w": 3}
    assert instance.payload_class == "java.util.LinkedHashMap"
    assert instance.uri_spec == "{scheme}://{address}:{port}"
    assert instance.build_uri("https") == "https://10.0.0.1:80"
    assert instance.enabled
    again = json.loads(instance.to_json())
    original = json.loads(curator_json)
    assert again == {**original, "enabled": True}


async def test_registry_converges_to_the_live_set(zks: Any, root: str, hosts: str) -> None:
    expected: set[str] = set()
    scopes: dict[str, anyio.CancelScope] = {}

    async def provider(instance_id: str, hosts: str, task_status: Any) -> None:
        with anyio.CancelScope() as scope:
            scopes[instance_id] = scope
            async with Session(hosts, session_timeout=SESSION, connect_timeout=3,
                               request_timeout=5) as session:
                async with ServiceDiscovery(session, "/services") as discovery:
                    await discovery.register(ServiceInstance(
                        name="api", id=instance_id, address="127.0.0.1", port=8000,
                        payload={"n": instance_id}))
                    expected.add(instance_id)
                    task_status.started()
                    await anyio.sleep_forever()
        expected.discard(instance_id)

    async def converged(cache: ServiceCache) -> None:
        with anyio.fail_after(15):
            await cache.wait_for(lambda instances: ids(instances) == expected)

    async with connect(hosts) as watcher_zk:
        async with ServiceCache(watcher_zk, "/services", "api") as cache, \
                proxied(zks) as p0, proxied(zks) as p1, proxied(zks) as p2, \
                proxied(zks) as p3:
            proxies = {"a": p0, "b": p1, "c": p2, "d": p3}
            async with anyio.create_task_group() as tasks:
                for name in ("a", "b", "c"):
                    await tasks.start(provider, name, proxies[name].hosts + root)
                await converged(cache)
                await Chaos([p0, p1, p2], seed=21).run(3.0)
                await converged(cache)  # expired sessions re-registered, blips invisible
                scopes["b"].cancel()  # a provider goes away
                await anyio.sleep(0)
                expected.discard("b")
                await converged(cache)
                await tasks.start(provider, "d", proxies["d"].hosts + root)  # one arrives
                await converged(cache)
                p0.cut()  # a provider's session expires and stays away: its instance goes
                await anyio.sleep(SESSION * 2 + 0.5)
                expected.discard("a")
                await converged(cache)
                p0.restore()
                expected.add("a")  # its Session reconnects and registers again
                await converged(cache)
                tasks.cancel_scope.cancel()
            assert ids(cache.instances()) <= {"a", "b", "c", "d"}


async def test_registration_heals_and_unregister_wins(hosts: str) -> None:
    async with connect(hosts) as zk, connect(hosts) as admin:
        async with ServiceDiscovery(zk, "/services") as discovery:
            instance = ServiceInstance(name="api", id="x", address="h", port=1)
            await discovery.register(instance)
            await admin.delete("/services/api/x")  # someone removes our node: it comes back
            with anyio.fail_after(5):
                while await admin.exists("/services/api/x") is None:
                    await anyio.sleep(0.02)
            stat = await admin.exists("/services/api/x")
            assert stat is not None and stat.ephemeralOwner == zk.session_id
            instance.port = 2
            await discovery.update(instance)  # in place: same node, new data
            after = await admin.exists("/services/api/x")
            assert after is not None and after.czxid == stat.czxid
            found = await discovery.query_for_instance("api", "x")
            assert found is not None and found.port == 2
            assert await discovery.query_for_names() == ["api"]
            await discovery.unregister(instance)
            await anyio.sleep(0.3)
            assert await admin.exists("/services/api/x") is None
            assert await discovery.query_for_instances("api") == []


def test_provider_strategies() -> None:
    class FakeCache:
        def __init__(self) -> None:
            self.list = [ServiceInstance(name="s", id=i) for i in ("a", "b", "c")]

        def instances(self) -> list[ServiceInstance]:
            return list(self.list)

    cache = FakeCache()
    rr = ServiceProvider(cache, RoundRobinStrategy())  # type: ignore[arg-type]
    assert [rr.get_instance().id for _ in range(4)] == ["a", "b", "c", "a"]  # type: ignore[union-attr]
    sticky = ServiceProvider(cache, StickyStrategy())  # type: ignore[arg-type]
    first = sticky.get_instance()
    assert first is not None and all(sticky.get_instance() == first for _ in range(5))
    cache.list = [i for i in cache.list if i.id != first.id]
    second = sticky.get_instance()
    assert second is not None and second.id != first.id
    rnd = ServiceProvider(cache, RandomStrategy())  # type: ignore[arg-type]
    assert {rnd.get_instance().id for _ in range(30)} == {i.id for i in cache.list}  # type: ignore[union-attr]
    rr.note_error(cache.list[0])
    rr.note_error(cache.list[0])
    assert all(rr.get_instance() != cache.list[0] for _ in range(4))  # treated as down
    cache.list = []
    assert rr.get_instance() is None


# -- Apache Curator ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curator_main(tmp_path_factory: Any) -> Iterator[list[str]]:
    """The Java program, compiled; yields the command that runs it."""
    if shutil.which("javac") is None:
        pytest.fail("javac is missing (Java 17 JDK)")
    jars = [f"/usr/share/java/{j}.jar" for j in JARS]
    missing = [j for j in jars if not os.path.exists(j)]
    if missing:
        pytest.fail(f"missing jars {missing}: run the README's test command "
                    "(installs libcurator-discovery-java)")
    out = tmp_path_factory.mktemp("curator")
    classpath = ":".join(jars)
    subprocess.run(["javac", "-nowarn", "-cp", classpath, "-d", str(out), str(JAVA_SOURCE)],
                   check=True, capture_output=True, timeout=120)
    yield ["java", "-cp", f"{classpath}:{out}", "CuratorDiscovery"]


async def java(cmd: list[str], *args: str) -> list[str]:
    result = await anyio.run_process([*cmd, *args], check=False)
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    return result.stdout.decode().splitlines()


@pytest.mark.compat(client="curator", feature="recipes")
async def test_curator_sees_our_instances(any_server: Any, root: str,
                                          curator_main: list[str]) -> None:
    await make_root(any_server.hosts, root)
    async with connect(any_server.hosts, root) as zk:
        async with ServiceDiscovery(zk, "/services") as discovery:
            for i, port in ((1, 9001), (2, 9002)):
                await discovery.register(ServiceInstance(
                    name="api", id=f"py{i}", address="127.0.0.1", port=port,
                    payload={"lang": "python"}, uri_spec="{scheme}://{address}:{port}"))
            connect_string = any_server.hosts + root
            lines = await java(curator_main, "query", connect_string, "/services", "api")
            instances = sorted(line for line in lines if line.startswith("INSTANCE"))
            assert instances == ["INSTANCE py1 127.0.0.1 9001 {lang=python} DYNAMIC",
                                 "INSTANCE py2 127.0.0.1 9002 {lang=python} DYNAMIC"]
            assert any(line in ("PROVIDER py1", "PROVIDER py2") for line in lines), lines
            await java(curator_main, "await", connect_string, "/services", "api", "py1,py2",
                       "10")
            await discovery.unregister(ServiceInstance(name="api", id="py1"))
            await java(curator_main, "await", connect_string, "/services", "api", "py2", "10")


@pytest.mark.compat(client="curator", feature="recipes")
async def test_we_see_curators_instances(any_server: Any, root: str,
                                         curator_main: list[str]) -> None:
    await make_root(any_server.hosts, root)
    connect_string = any_server.hosts + root
    async with connect(any_server.hosts, root) as zk:
        async with ServiceCache(zk, "/services", "api") as cache, \
                ServiceDiscovery(zk, "/services") as discovery:
            await discovery.register(ServiceInstance(name="api", id="py", address="h", port=1))
            proc = await anyio.open_process(
                [*curator_main, "register", connect_string, "/services", "api", "j1", "7001"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                assert proc.stdout is not None and proc.stdin is not None
                with anyio.fail_after(30):
                    line = b""
                    while not line.endswith(b"\n"):
                        line += await proc.stdout.receive(1)
                assert line == b"REGISTERED j1\n"
                with anyio.fail_after(10):
                    await cache.wait_for(lambda instances: ids(instances) == {"py", "j1"})
                j1 = next(i for i in cache.instances() if i.id == "j1")
                assert (j1.address, j1.port, j1.payload) == ("127.0.0.1", 7001, {"lang": "java"})
                assert j1.payload_class == "java.util.LinkedHashMap"
                assert j1.build_uri("http") == "http://127.0.0.1:7001"
                provider = ServiceProvider(cache, RoundRobinStrategy())
                assert {provider.get_instance().id for _ in range(2)} == {"py", "j1"}  # type: ignore[union-attr]
                await proc.stdin.aclose()  # Curator unregisters
                with anyio.fail_after(20):
                    await proc.wait()
                with anyio.fail_after(10):
                    await cache.wait_for(lambda instances: ids(instances) == {"py"})
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
