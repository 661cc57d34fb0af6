"""Every operation, against both servers, with kazoo's test suite as the checklist."""

from __future__ import annotations

import anyio
import pytest

from zkserver import client
from zkserver.client import CreateMode, Perm

pytestmark = pytest.mark.anyio


async def test_connect_state_and_session(zk: client.Client) -> None:
    assert zk.state == client.State.CONNECTED
    assert zk.connected
    assert zk.session_id != 0
    assert len(zk.session_password) == 16
    assert zk.negotiated_timeout == 4000


@pytest.mark.compat(client="zkserver.client", feature="basic operations")
async def test_create_get_set_delete(zk: client.Client) -> None:
    assert await zk.create("/node", b"one") == "/node"
    data, stat = await zk.get("/node")
    assert data == b"one"
    assert stat.version == 0 and stat.dataLength == 3 and stat.ephemeralOwner == 0
    stat2 = await zk.set("/node", b"two")
    assert stat2.version == 1 and stat2.mzxid > stat.mzxid
    assert (await zk.get("/node")).data == b"two"
    await zk.delete("/node")
    assert await zk.exists("/node") is None


async def test_null_and_empty_data_differ(zk: client.Client) -> None:
    await zk.create("/empty", b"")
    await zk.create("/null", None)
    assert (await zk.get("/empty")).data == b""
    assert (await zk.get("/null")).data is None
    assert (await zk.get("/null")).stat.dataLength == 0


async def test_create_returns_path_without_chroot(zk: client.Client, root: str,
                                                  admin: client.Client) -> None:
    assert zk.chroot == root
    await zk.create("/a")
    assert await admin.exists(root + "/a") is not None
    assert (await admin.get_children(root)).children == ["a"]


async def test_errors(zk: client.Client) -> None:
    with pytest.raises(client.NoNodeError) as info:
        await zk.get("/missing")
    assert info.value.path == "/missing"
    await zk.create("/e")
    with pytest.raises(client.NodeExistsError):
        await zk.create("/e")
    with pytest.raises(client.NoNodeError):
        await zk.create("/no/parent")
    with pytest.raises(client.BadVersionError):
        await zk.set("/e", b"x", version=5)
    with pytest.raises(client.BadVersionError):
        await zk.delete("/e", version=5)
    await zk.create("/e/child")
    with pytest.raises(client.NotEmptyError):
        await zk.delete("/e")
    await zk.create("/eph", mode=CreateMode.EPHEMERAL)
    with pytest.raises(client.NoChildrenForEphemeralsError):
        await zk.create("/eph/child")
    with pytest.raises(ValueError):
        await zk.get("relative")


async def test_versioned_set_and_delete(zk: client.Client) -> None:
    await zk.create("/v", b"0")
    stat = await zk.set("/v", b"1", version=0)
    stat = await zk.set("/v", b"2", version=stat.version)
    assert stat.version == 2
    await zk.delete("/v", version=2)
    assert await zk.exists("/v") is None


@pytest.mark.compat(client="zkserver.client", feature="basic operations")
async def test_create_modes(zk: client.Client) -> None:
    await zk.create("/seq")
    p1 = await zk.create("/seq/n-", mode=CreateMode.PERSISTENT_SEQUENTIAL)
    p2 = await zk.create("/seq/n-", mode=CreateMode.EPHEMERAL_SEQUENTIAL)
    assert p1 == "/seq/n-0000000000"
    assert p2 == "/seq/n-0000000001"
    eph = await zk.create("/eph", mode=CreateMode.EPHEMERAL)
    assert (await zk.exists(eph)).ephemeralOwner == zk.session_id
    assert (await zk.exists(p2)).ephemeralOwner == zk.session_id
    cont = await zk.create_with_stat("/cont", b"c", mode=CreateMode.CONTAINER)
    assert cont.path == "/cont" and cont.stat is not None
    assert cont.stat.ephemeralOwner == 0
    ttl = await zk.create_with_stat("/ttl", b"t", mode=CreateMode.PERSISTENT_WITH_TTL,
                                    ttl=60_000)
    assert ttl.path == "/ttl" and ttl.stat.ephemeralOwner == 0
    seq_ttl = await zk.create("/seq/t-", mode=CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
                              ttl=60_000)
    assert seq_ttl == "/seq/t-0000000002"
    with pytest.raises(ValueError):
        await zk.create("/bad", mode=CreateMode.PERSISTENT_WITH_TTL)
    with pytest.raises(ValueError):
        await zk.create("/bad", ttl=5)


async def test_create_with_stat(zk: client.Client) -> None:
    created = await zk.create_with_stat("/s", b"abc")
    assert created.path == "/s"
    assert created.stat == await zk.exists("/s")
    path, stat = created
    assert stat.dataLength == 3


async def test_make_parents_and_ensure_path(zk: client.Client) -> None:
    assert await zk.create("/a/b/c", b"x", make_parents=True) == "/a/b/c"
    assert (await zk.get("/a/b/c")).data == b"x"
    await zk.ensure_path("/a/b/d/e")
    await zk.ensure_path("/a/b/d/e")
    assert await zk.exists("/a/b/d/e") is not None


async def test_recursive_delete(zk: client.Client) -> None:
    await zk.ensure_path("/t/x/y")
    await zk.ensure_path("/t/z")
    await zk.delete("/t", recursive=True)
    assert await zk.exists("/t") is None
    await zk.delete("/t", recursive=True)  # already gone: fine


@pytest.mark.compat(client="zkserver.client", feature="basic operations")
async def test_children_with_stat(zk: client.Client) -> None:
    await zk.create("/p")
    for name in ("b", "a", "c"):
        await zk.create(f"/p/{name}")
    children, stat = await zk.get_children("/p")
    assert sorted(children) == ["a", "b", "c"]
    assert stat.numChildren == 3
    assert stat.cversion == 3
    assert (await zk.get_children("/p/a")).children == []
    with pytest.raises(client.NoNodeError):
        await zk.get_children("/nope")


async def test_root_of_chroot(zk: client.Client) -> None:
    await zk.create("/r1")
    children, stat = await zk.get_children("/")
    assert children == ["r1"]
    assert (await zk.exists("/")).numChildren == 1


@pytest.mark.compat(client="zkserver.client", feature="ACLs and digest auth")
async def test_acl_get_set_and_digest_auth(zk: client.Client, server: object) -> None:
    acl, stat = await zk.get_acl("/")
    assert acl == client.OPEN_ACL_UNSAFE
    await zk.create("/secret", b"s", acl=[client.digest_acl("user", "pw")])
    with pytest.raises(client.NoAuthError):
        await zk.get("/secret")
    with pytest.raises(client.NoAuthError):
        await zk.get_acl("/secret")
    await zk.add_auth("digest", "user:pw")
    assert (await zk.get("/secret")).data == b"s"
    acl, stat = await zk.get_acl("/secret")
    assert acl == [client.ACL(Perm.ALL, client.Id("digest", client.digest_id("user", "pw")))]
    stat = await zk.set_acl("/secret", client.OPEN_ACL_UNSAFE, version=0)
    assert stat.aversion == 1
    with pytest.raises(client.BadVersionError):
        await zk.set_acl("/secret", client.OPEN_ACL_UNSAFE, version=0)


@pytest.mark.compat(client="zkserver.client", feature="ACLs and digest auth")
async def test_creator_all_acl_needs_auth(zk: client.Client) -> None:
    with pytest.raises(client.InvalidACLError):
        await zk.create("/c", acl=client.CREATOR_ALL_ACL)
    await zk.add_auth("digest", "me:pw")
    await zk.create("/c", acl=client.CREATOR_ALL_ACL)
    acl, _ = await zk.get_acl("/c")
    assert acl == [client.digest_acl("me", "pw")]


async def test_whoami(zk: client.Client) -> None:
    ids = await zk.whoami()
    assert client.Id("ip", "127.0.0.1") in ids
    await zk.add_auth("digest", "alice:secret")
    ids = await zk.whoami()
    assert client.Id("digest", "alice") in ids


async def test_unknown_auth_scheme_fails_and_client_recovers(zk: client.Client) -> None:
    with pytest.raises(client.AuthFailedError):
        await zk.add_auth("nosuchscheme", "x")
    # The server dropped the connection; the session comes back without that credential.
    with anyio.fail_after(10):
        while True:
            try:
                await zk.create("/after")
                break
            except client.ConnectionLossError:
                await zk.wait_for_state(client.State.CONNECTED)
    assert zk.state == client.State.CONNECTED


async def test_get_ephemerals(zk: client.Client) -> None:
    await zk.create("/e1", mode=CreateMode.EPHEMERAL)
    await zk.create("/dir")
    await zk.create("/dir/e2", mode=CreateMode.EPHEMERAL)
    await zk.create("/persistent")
    assert sorted(await zk.get_ephemerals()) == ["/dir/e2", "/e1"]
    assert await zk.get_ephemerals("/dir") == ["/dir/e2"]


async def test_all_children_number(zk: client.Client) -> None:
    await zk.ensure_path("/n/a/b")
    await zk.create("/n/c")
    assert await zk.get_all_children_number("/n") == 3
    assert await zk.get_all_children_number("/n/a/b") == 0
    with pytest.raises(client.NoNodeError):
        await zk.get_all_children_number("/none")


async def test_sync(zk: client.Client) -> None:
    await zk.create("/s")
    assert await zk.sync("/s") == "/s"


async def test_check(zk: client.Client) -> None:
    await zk.create("/c", b"x")
    await zk.check("/c", 0)
    with pytest.raises(client.BadVersionError):
        await zk.check("/c", 3)
    with pytest.raises(client.NoNodeError):
        await zk.check("/none", 0)


async def test_exists_stat_matches_get(zk: client.Client) -> None:
    await zk.create("/x", b"12345")
    stat = await zk.exists("/x")
    assert stat == (await zk.get("/x")).stat
    assert stat.dataLength == 5


@pytest.mark.compat(client="zkserver.client", feature="ephemerals and sessions")
async def test_close_removes_ephemerals(server: object, admin: client.Client) -> None:
    async with client.connect(server.hosts) as other:  # type: ignore[attr-defined]
        path = await other.create("/ephemeral-close-", mode=CreateMode.EPHEMERAL_SEQUENTIAL)
        assert await admin.exists(path) is not None
    assert other.state == client.State.CLOSED
    assert await admin.exists(path) is None
    with pytest.raises(client.ClientClosedError):
        await other.get("/")


async def test_connect_fails_when_nothing_listens() -> None:
    from support.realzk import free_port

    with pytest.raises(client.ConnectionLossError):
        async with client.connect(f"127.0.0.1:{free_port()}", connect_timeout=1.0):
            pass
