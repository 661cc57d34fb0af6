"""Every quorum message survives the wire: encode then decode gives the same message back."""

from __future__ import annotations

import attrs
import cbor2
import pytest

from zkserver.quorum import messages as M
from zkserver.quorum.roles import Role
from zkserver.txn import CreateTxn, SetDataTxn, Txn

T1 = Txn(0x100000001, 1_700_000_000_000, 0x1001, 7, SetDataTxn("/a", b"x", 3))
T2 = Txn(0x100000002, 1_700_000_000_001, 0x1001, 8,
         CreateTxn("/b", b"", ((31, "world", "anyone"),), 0, 1))

SAMPLES = [
    M.Vote(2, 0x200000003, 1),
    M.Notification(M.Vote(2, 0x200000003, 1), 5, Role.FOLLOWING, 3),
    M.FollowerInfo(2, 1, 0x100000002, False),
    M.LeaderInfo(2),
    M.AckEpoch(1, 0x100000002),
    M.Diff((T1, T2)),
    M.Diff(()),
    M.Trunc(0x100000001),
    M.Snap(0x100000002, b"ZKSSNAP1 a tree", True, False),
    M.NewLeader(2, 0x100000002),
    M.NewLeader(2, 0x100000002, 0x100000000),
    M.AckNewLeader(2),
    M.UpToDate(0x100000002),
    M.Proposal(T1),
    M.Proposals((T1, T2)),
    M.Ack(0x100000002),
    M.Commit(0x100000002, 0x100000001, 0xDEADBEEF),
    M.Inform(T2, 0x100000001, 0xDEADBEEF),
    M.Ping(0x100000002, 0x100000002, 0xFEED),
    M.PingReply(((0x1001, 6000), (0x1002, 4000))),
    M.Request(0x1001, 9, 5, b"\x00\x01", (("digest", "bob:x"),)),
    M.SyncRequest(4),
    M.SyncReply(4, 0x100000002),
    M.Logged(0x100000002),
]


def test_every_message_class_has_a_sample():
    classes = {getattr(M, name) for name in dir(M) if attrs.has(getattr(M, name))}
    assert {type(m) for m in SAMPLES} == classes - {Txn}


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    back = M.decode(M.encode(msg))
    assert back == msg
    assert type(back) is type(msg)
    if isinstance(msg, M.Notification):
        assert type(back.state) is Role


def test_a_field_added_later_stays_off_the_wire_at_its_default():
    """NEWLEADER's config_version came later: at 0 it is not sent, so a member running the
    code from before reads the message as it always did, and a message from such a member
    still decodes (with the default)."""
    import cbor2

    assert cbor2.loads(M.encode(M.NewLeader(2, 5))) == [8, 2, 5]
    assert M.decode(cbor2.dumps([8, 2, 5])) == M.NewLeader(2, 5, 0)
    assert cbor2.loads(M.encode(M.NewLeader(2, 5, 7))) == [8, 2, 5, 7]
    with pytest.raises(ValueError):
        M.decode(cbor2.dumps([8, 2]))  # a field without a default is missing
    assert M.decode(cbor2.dumps([8, 2, 5, 7, b"c"])) == M.NewLeader(2, 5, 7, b"c")
    with pytest.raises(ValueError):
        M.decode(cbor2.dumps([8, 2, 5, 7, b"c", 9]))  # more fields than it has


@pytest.mark.parametrize("msg", [m for m in SAMPLES if any(
    type(v) is Txn or (type(v) is tuple and v and type(v[0]) is Txn)
    for v in attrs.astuple(m, recurse=False))], ids=lambda m: type(m).__name__)
def test_a_transaction_goes_out_as_the_bytes_its_log_entry_has(msg):
    """A transaction inside a message reuses its log encoding (`txn.encode`, kept on the
    Txn), and the message's bytes are what encoding it afresh as ["T", fields] gives: members
    running the code from before read it as they always did."""
    import cbor2

    from zkserver import txn as txnmod

    def plain(v):
        if type(v) is Txn:
            return ["T", txnmod.to_obj(v)]
        if type(v) is tuple:
            return [plain(x) for x in v]
        return v

    fields = [plain(v) for v in attrs.astuple(msg, recurse=False)]
    tag = cbor2.loads(M.encode(msg))[0]
    expected = cbor2.dumps([tag, *fields])
    assert M.encode(msg) == expected
    assert M.encode(msg) == expected  # the second time from the kept encodings


@pytest.mark.parametrize("msg", [M.Proposal(T1), M.Proposal(T2), M.Proposals((T1, T2)),
                                 M.Proposals(tuple([T1] * 30)), M.Proposals(tuple([T2] * 300))],
                         ids=["one", "create", "two", "30", "300"])
def test_a_proposal_read_keeps_each_transaction_s_bytes_for_the_log(msg):
    """A follower logs the bytes a proposal brought (what the leader logged) rather than
    encoding the transaction again."""
    from zkserver import txn as txnmod

    back = M.decode(M.encode(msg))
    assert back == msg
    for txn in back.txns if isinstance(back, M.Proposals) else (back.txn,):
        fresh = txnmod.Txn(txn.zxid, txn.time, txn.session_id, txn.cxid, txn.op)
        assert txnmod.encode(txn) == txnmod.encode(fresh)


def test_bytes_after_a_proposal_never_reach_the_log():
    """cbor2 reads the first item and ignores the rest, as for every message; what the
    follower logs is only the transaction's own bytes."""
    from zkserver import txn as txnmod

    back = M.decode(M.encode(M.Proposal(T1)) + b"\x00junk")
    assert back == M.Proposal(T1)
    assert txnmod.encode(back.txn) == txnmod.encode(
        txnmod.Txn(T1.zxid, T1.time, T1.session_id, T1.cxid, T1.op))


@pytest.mark.parametrize("msg", [m for m in SAMPLES if type(m) in M._INTS],
                         ids=lambda m: type(m).__name__)
def test_an_all_integer_message_has_the_bytes_of_the_general_encoding(msg):
    """The shortcut for ACK, COMMIT and the like writes what the field walk writes, so members
    that differ in it still read each other."""
    assert M.encode(msg) == cbor2.dumps(M._to_obj(msg))
    assert M.decode(cbor2.dumps(M._to_obj(msg))) == msg


def test_an_integer_message_with_a_field_of_another_type_is_read_the_general_way():
    # True is no int to the shortcut: the field walk reads it, as it always did
    assert M.decode(cbor2.dumps([M._TAG[M.Ack], True])) == M.Ack(True)
    with pytest.raises(M.MessageError):
        M.decode(cbor2.dumps([M._TAG[M.Commit], 1, 2]))  # a field short
