"""The tree digest members compare: kept up to date per transaction, equal to a full count,
and the same function from one version to the next (members of different versions compare
it during a rolling upgrade)."""

from __future__ import annotations

from zkserver.tree import digest as digestmod
from zkserver.tree.datatree import DataTree
from zkserver.txn import CloseSessionTxn, CreateSessionTxn, CreateTxn, DeleteTxn, SetDataTxn, Txn

OPEN = ((31, "world", "anyone"),)
DIGEST_ACL = ((1, "digest", "u:x"),)
SESSION = 0x200


def _history() -> DataTree:
    """Sessions, ephemerals, null and empty data, two ACLs, updates, a delete and a close."""
    tree = DataTree()
    tree.track_digest()
    zxid = 0

    def apply(op: object, sid: int = 0x100) -> None:
        nonlocal zxid
        zxid += 1
        tree.apply(Txn(zxid, 1_700_000_000_000 + zxid, sid, zxid, op))

    apply(CreateSessionTxn(30000), SESSION)
    for i in range(50):
        apply(CreateTxn(f"/n{i}", None if i % 7 == 0 else bytes([i]) * i,
                        OPEN if i % 3 else DIGEST_ACL, SESSION if i % 5 == 0 else 0, i + 1))
    for i in range(0, 50, 2):
        apply(SetDataTxn(f"/n{i}", b"v" * i, 1))
    apply(DeleteTxn("/n1"))
    apply(CloseSessionTxn(("/n0", "/n5")), SESSION)
    return tree


def test_the_digest_kept_per_transaction_is_the_full_count():
    tree = _history()
    assert tree.digest == digestmod.full(tree)


def test_the_digest_is_the_same_function_as_in_earlier_versions():
    # The value the digest code of 2026-12 computed for this history: a change to how nodes
    # are hashed would make members of two versions disagree about every tree.
    assert _history().digest == 10416499796463016600
