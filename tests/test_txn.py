"""Transactions' encoding: the usual writes are put together directly, byte for byte as cbor2
encodes them (the log and every PROPOSAL carry these bytes, and `decode` reads them with
cbor2), over the whole range of every field."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from zkserver import txn as T

LONGS = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1),
                  st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32,
                                   -1, -24, -25, -256, -257, -(1 << 63)]))
PATHS = st.text(min_size=1, max_size=40).map(lambda s: "/" + s)
DATA = st.one_of(st.none(), st.binary(max_size=300))
ACLS = st.lists(st.tuples(st.integers(0, 31), st.sampled_from(["world", "digest", "ip"]),
                          st.text(max_size=20)), max_size=3).map(tuple)
OPS = st.one_of(
    st.builds(T.CreateTxn, PATHS, DATA, ACLS, LONGS, st.integers(-(1 << 31), (1 << 31) - 1)),
    st.builds(T.SetDataTxn, PATHS, DATA, st.integers(-(1 << 31), (1 << 31) - 1)),
    st.builds(T.DeleteTxn, PATHS))


@given(LONGS, st.integers(0, (1 << 63) - 1), LONGS, st.integers(-(1 << 31), (1 << 31) - 1),
       OPS)
def test_direct_encoding_is_cbor2s(zxid: int, time: int, session: int, cxid: int, op) -> None:
    txn = T.Txn(zxid, time, session, cxid, op)
    data = T.encode(txn)
    assert data == cbor2.dumps(T.to_obj(T.Txn(zxid, time, session, cxid, op)))
    assert T.decode(data) == txn


def test_other_transactions_go_through_cbor2() -> None:
    txn = T.Txn(5, 6, 7, 8, T.CloseSessionTxn(("/a", "/b")))
    assert T.encode(txn) == cbor2.dumps(T.to_obj(txn)) and T.decode(T.encode(txn)) == txn
