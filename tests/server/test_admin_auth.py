"""The admin commands' Authorization header and the ALL-on-`/` check, without a server: the
cases ZooKeeper's Commands.handleAuthentication / handleAuthorization decide."""

from __future__ import annotations

import pytest

from zkserver.server import admin_auth as A
from zkserver.tree import acl as aclmod

ALICE = aclmod.digest_id("alice:secret")
CALLER = A.Caller("10.0.0.7", "192.168.1.9, 10.0.0.1", "CN=ops,O=Example")
PLAIN = A.Settings()


@pytest.mark.parametrize("header,ids", [
    ("digest alice:secret", [("digest", ALICE)]),
    ("digest alice:secret ", [("digest", ALICE)]),  # Java's split drops trailing empties
    ("digest", []),  # no auth data: the provider fails
    ("digest alice:se cret", []),  # three parts
    ("digest  alice:secret", []),  # an empty part in the middle counts
    ("ip", [("ip", "10.0.0.7")]),
    ("ip whatever", [("ip", "10.0.0.7")]),  # ip ignores its data
    ("x509", [("x509", "CN=ops,O=Example")]),
    ("sasl bob", []),  # no HTTP side in the SASL provider
    ("", []),
    ("Digest alice:secret", []),  # schemes are case-sensitive
])
def test_identities(header: str, ids: list[aclmod.Identity]) -> None:
    assert A.identities(header, CALLER, PLAIN) == ids


def test_x509_without_a_certificate_proves_nothing() -> None:
    assert A.identities("x509", A.Caller("10.0.0.7"), PLAIN) == []


def test_super_identities() -> None:
    settings = A.Settings(super_digest=ALICE, x509_super_user="CN=ops,O=Example")
    assert aclmod.SUPER in A.identities("digest alice:secret", CALLER, settings)
    assert aclmod.SUPER in A.identities("x509", CALLER, settings)
    assert aclmod.SUPER not in A.identities("digest bob:x", CALLER, settings)


def test_forwarded_for_only_when_enabled() -> None:
    assert A.identities("ip", CALLER, A.Settings(use_x_forwarded_for=True)) == [
        ("ip", "192.168.1.9")]


OWNER = ((31, "digest", ALICE),)


@pytest.mark.parametrize("header,acl,refusal", [
    (None, aclmod.OPEN_ACL, A.MISSING),
    ("bogus", aclmod.OPEN_ACL, A.NOT_AUTHENTICATED),
    ("ip", aclmod.OPEN_ACL, None),  # world:anyone lets any proven identity through
    ("digest bob:pw", OWNER, A.NOT_AUTHORIZED),
    ("digest alice:secret", OWNER, None),
    ("digest alice:secret", ((1, "digest", ALICE),), A.NOT_AUTHORIZED),  # READ is not ALL
    # ALL is checked bit by bit: two entries that together grant every bit are enough.
    ("digest alice:secret", ((1 | 2 | 4, "digest", ALICE), (8 | 16, "world", "anyone")), None),
    ("ip", ((31, "ip", "10.0.0.0/8"),), None),
    ("ip", ((31, "ip", "10.0.1.0/24"),), A.NOT_AUTHORIZED),
    ("x509", ((31, "x509", "CN=ops,O=Example"),), None),
    ("digest alice:secret", (), None),  # an empty ACL allows everything, as checkACL
])
def test_authorize(header: str | None, acl: aclmod.AclList, refusal: A.Refusal | None) -> None:
    assert A.authorize(header, CALLER, PLAIN, acl) == refusal


def test_skip_acl_still_needs_authentication() -> None:
    settings = A.Settings(skip_acl=True)
    assert A.authorize("digest bob:pw", CALLER, settings, OWNER) is None
    assert A.authorize(None, CALLER, settings, OWNER) == A.MISSING
    assert A.authorize("nope", CALLER, settings, OWNER) == A.NOT_AUTHENTICATED
    assert A.authorize("digest alice:secret", CALLER, A.Settings(super_digest=ALICE),
                       ((1, "world", "anyone"),)) is None  # super passes any ACL
