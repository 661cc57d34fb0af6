"""addAuth (`engine/auth.py`): which identities a connection holds afterwards, and the reply."""

from __future__ import annotations

import pytest
from support.wire import AUTH, AUTH_XID, buf, i32, request, ustr

from zkserver.engine.auth import authenticate
from zkserver.proto.codes import Err
from zkserver.tree import acl as aclmod

SUPER = aclmod.digest_id("super:secret")


def _frame(scheme: str, auth: bytes) -> bytes:
    return request(AUTH_XID, AUTH, i32(0) + ustr(scheme) + buf(auth))[4:]


def test_digest_is_added_once() -> None:
    ids: list[aclmod.Identity] = [("ip", "127.0.0.1")]
    assert authenticate(ids, _frame("digest", b"alice:pw"), 1 << 20, None) == 0
    assert authenticate(ids, _frame("digest", b"alice:pw"), 1 << 20, None) == 0
    assert ids == [("ip", "127.0.0.1"), ("digest", aclmod.digest_id("alice:pw"))]


def test_the_super_digest_adds_super() -> None:
    ids: list[aclmod.Identity] = []
    assert authenticate(ids, _frame("digest", b"super:secret"), 1 << 20, SUPER) == 0
    assert ids == [("digest", SUPER), aclmod.SUPER]
    other: list[aclmod.Identity] = []
    assert authenticate(other, _frame("digest", b"super:wrong"), 1 << 20, SUPER) == 0
    assert aclmod.SUPER not in other


@pytest.mark.parametrize("scheme,expected", [("ip", 0), ("sasl", Err.AUTHFAILED),
                                             ("", Err.AUTHFAILED)])
def test_other_schemes(scheme: str, expected: int) -> None:
    ids: list[aclmod.Identity] = [("ip", "10.0.0.1")]
    assert authenticate(ids, _frame(scheme, b"x"), 1 << 20, None) == expected
    assert ids == [("ip", "10.0.0.1")]  # nothing added


def test_an_undecodable_packet() -> None:
    ids: list[aclmod.Identity] = []
    truncated = _frame("digest", b"alice:pw")[:-3]
    assert authenticate(ids, truncated, 1 << 20, None) == Err.MARSHALLINGERROR
    assert ids == []
