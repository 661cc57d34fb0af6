"""ip ACLs with IPv6 addresses, as ZooKeeper 3.9.4+ reads them (the forms below were each tried
against Apache ZooKeeper 3.9.5: create with that ACL id succeeded or failed INVALIDACL)."""

from __future__ import annotations

import pytest

from zkserver.tree import acl as aclmod

VALID = ["::1", "fe80::/64", "fe80::1/128", "fe80::/0", "1:2:3:4:5:6:7:8", "FE80::1", "::",
         "0:0:0:0:0:0:0:1", "1:2:3:4:5:6:7::", "::1/+64", "::1/064", "::/128",
         "1:2:3:4:5:6:7:8/64", "1.2.3.4/+8"]
INVALID = ["fe80::1/129", "::ffff:1.2.3.4", "1::2::3", "[::1]", "::1%eth0", "g::1",
           "1:2:3:4:5:6:7:8:9", ":1", "1:", "fe80::/64x", "fe80::/-1", "12345::1",
           "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "fe80::/", "00001::1"]


@pytest.mark.parametrize("ident", VALID)
def test_valid_ids(ident: str) -> None:
    assert aclmod.fixup_acl([(31, "ip", ident)], []) == ((31, "ip", ident),)


@pytest.mark.parametrize("ident", INVALID)
def test_invalid_ids(ident: str) -> None:
    with pytest.raises(aclmod.InvalidACL):
        aclmod.fixup_acl([(31, "ip", ident)], [])


@pytest.mark.parametrize("have,pattern,expected", [
    ("::1", "::1", True), ("0:0:0:0:0:0:0:1", "::1", True), ("fe80::1:2", "fe80::/64", True),
    ("fe81::1", "fe80::/64", False), ("::1", "127.0.0.1", False), ("127.0.0.1", "::/0", False),
    ("127.0.0.1", "127.0.0.0/8", True), ("2001:db8::5", "2001:db8::/32", True)])
def test_matching(have: str, pattern: str, expected: bool) -> None:
    acl = ((1, "ip", pattern),)
    assert aclmod.check(acl, 1, [("ip", have)]) is expected
