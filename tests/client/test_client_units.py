"""Pieces that need no server: connection strings, chroot, paths, errors, ACL helpers."""

from __future__ import annotations

import random

import pytest

from zkserver import client
from zkserver.client.errors import error_class, error_for
from zkserver.client.hosts import Address, Chroot, ConnectString, validate_path
from zkserver.proto.codes import Err


def test_connect_string_hosts_and_chroot() -> None:
    cs = ConnectString.parse("h1:2181,h2:2182,[::1]:2183,h4/app/x", shuffle=False)
    assert cs.addresses == (Address("h1", 2181), Address("h2", 2182), Address("::1", 2183),
                            Address("h4", 2181))
    assert cs.chroot == "/app/x"
    assert ConnectString.parse("h1:1/", shuffle=False).chroot is None
    assert ConnectString.parse("h1:1", shuffle=False).chroot is None
    with pytest.raises(ValueError):
        ConnectString.parse("/app")


def test_connect_string_shuffles() -> None:
    text = ",".join(f"h{i}:1" for i in range(20))
    orders = {ConnectString.parse(text, rng=random.Random(seed)).addresses for seed in range(5)}
    assert len(orders) > 1
    assert all(sorted(o, key=str) == sorted(next(iter(orders)), key=str) for o in orders)


def test_chroot_maps_both_ways() -> None:
    c = Chroot("/app")
    assert c.to_server("/") == "/app"
    assert c.to_server("/x/y") == "/app/x/y"
    assert c.to_client("/app") == "/"
    assert c.to_client("/app/x") == "/x"
    assert c.to_client("/apple") == "/apple"
    n = Chroot(None)
    assert n.to_server("/x") == "/x" and n.to_client("/x") == "/x"


@pytest.mark.parametrize("path", ["", "x", "/a/", "//", "/a//b", "/.", "/a/..", "/a\0b",
                                  "/a\x01", "/\ud800", "/\U0001f600"])
def test_invalid_paths(path: str) -> None:
    with pytest.raises(ValueError):
        validate_path(path)


@pytest.mark.parametrize("path", ["/", "/a", "/a/b", "/...", "/.x", "/a-b_c"])
def test_valid_paths(path: str) -> None:
    validate_path(path)


def test_sequential_path_may_end_with_slash() -> None:
    validate_path("/a/", sequential=True)
    with pytest.raises(ValueError):
        validate_path("/a/", sequential=False)


def test_every_error_code_has_its_class() -> None:
    for code in Err:
        if code in (Err.OK,):
            continue
        cls = error_class(code)
        assert cls.code == code, code
        assert issubclass(cls, client.ZooKeeperError)
    assert isinstance(error_for(-101, "/x"), client.NoNodeError)
    assert "/x" in str(error_for(-101, "/x"))
    assert error_for(-999).code == -999
    assert issubclass(client.ClientClosedError, client.SessionExpiredError)
    assert issubclass(client.ConnectionLossError, client.ZooKeeperError)


def test_digest_acl() -> None:
    # The value ZooKeeper's DigestAuthenticationProvider computes for user:pw.
    assert client.digest_id("user", "pw") == "user:2Om+GBbT2q/tS6pdvACZbbm7/1A="
    acl = client.digest_acl("user", "pw", client.Perm.READ)
    assert acl.perms == client.Perm.READ and acl.id.scheme == "digest"


def test_results_unpack() -> None:
    stat = client.Stat(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1)
    data, st = client.NodeData(b"x", stat)
    assert data == b"x" and st is stat
    children, st = client.Children(["a"], stat)
    assert children == ["a"]
