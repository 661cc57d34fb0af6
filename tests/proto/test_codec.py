"""The jute codec, byte for byte against layouts taken from ZooKeeper's and kazoo's encoders."""

from __future__ import annotations

import struct

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zkserver.proto import records as R
from zkserver.proto.codes import Op
from zkserver.proto.frames import FrameError, FrameSplitter, notification, reply
from zkserver.proto.jute import JuteError, Reader, Writer


def test_get_data_request_bytes():
    body = struct.pack(">ii", 1, Op.GET_DATA) + R.PathWatchRequest("/foo", True).encode()
    assert body.hex() == "00000001" "00000004" "00000004" "2f666f6f" "01"


def test_auth_packet_bytes():
    pkt = R.AuthPacket(0, "digest", b"user:pw").encode()
    assert pkt == bytes.fromhex("00000000" "00000006") + b"digest" + bytes.fromhex(
        "00000007") + b"user:pw"


def test_multi_request_matches_kazoo_layout():
    w = Writer()
    R.encode_multi(w, [(Op.CREATE, R.CreateRequest("/a", b"x", R.OPEN_ACL_UNSAFE, 0)),
                       (Op.DELETE, R.DeleteRequest("/b", -1))])
    expected = (
        "00000001" "00" "ffffffff"
        "00000002" "2f61" "00000001" "78" "00000001" "0000001f"
        "00000005" + b"world".hex() + "00000006" + b"anyone".hex() + "00000000"
        "00000002" "00" "ffffffff" "00000002" "2f62" "ffffffff"
        "ffffffff" "01" "ffffffff"
    )
    assert w.getvalue().hex() == expected
    ops = R.decode_multi(Reader(w.getvalue()), R.MULTI_WRITE_OPS)
    assert [op for op, _ in ops] == [Op.CREATE, Op.DELETE]
    assert ops[0][1].data == b"x"


def test_multi_rejects_read_op_in_write_multi():
    w = Writer()
    R.encode_multi(w, [(Op.GET_DATA, R.PathWatchRequest("/a", False))])
    with pytest.raises(JuteError):
        R.decode_multi(Reader(w.getvalue()), R.MULTI_WRITE_OPS)


def test_connect_request_with_and_without_read_only_byte():
    new = R.ConnectRequest(0, 0, 10000, 0, b"\0" * 16, False).encode()
    assert len(new) == 45
    old = R.ConnectRequest(0, 0, 10000, 0, b"\0" * 16).encode()
    assert len(old) == 44
    assert R.ConnectRequest.decode(old).read_only is None
    assert R.ConnectRequest.decode(new).read_only is False


def test_connect_response_sizes():
    assert len(R.ConnectResponse(0, 4000, 1, b"p" * 16, False).encode()) == 37
    assert len(R.ConnectResponse(0, 4000, 1, b"p" * 16).encode()) == 36


def test_null_and_empty_are_distinct():
    w = Writer().buffer(None).buffer(b"").ustring(None).ustring("")
    r = Reader(w.getvalue())
    assert (r.buffer(), r.buffer(), r.ustring(), r.ustring()) == (None, b"", None, "")


@pytest.mark.parametrize("length", [-2, 0xFFFFF + 1, 0x7FFFFFFF])
def test_unreasonable_lengths_rejected(length):
    with pytest.raises(JuteError):
        Reader(struct.pack(">i", length) + b"x" * 8).buffer()


def test_truncated_record_rejected():
    data = R.SetDataRequest("/a", b"hello", 3).encode()
    for cut in range(len(data)):
        with pytest.raises(JuteError):
            R.SetDataRequest.decode(data[:cut])


def test_bad_utf8_decodes_with_replacement():
    raw = struct.pack(">i", 3) + b"/\xff\xfe"
    assert Reader(raw).ustring() == "/\ufffd\ufffd"


def test_stat_is_68_bytes():
    stat = R.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    assert len(stat.pack()) == 68
    assert R.StatResponse.decode(stat.pack()).stat == stat


def test_reply_and_notification_frames():
    assert reply(5, 7, -101) == struct.pack(">iiqi", 16, 5, 7, -101)
    frame = notification(9, 3, "/x")
    n, xid, zxid, err, etype, state = struct.unpack_from(">iiqiii", frame)
    assert (n, xid, zxid, err, etype, state) == (len(frame) - 4, -1, 9, 0, 3, 3)
    assert R.WatcherEvent.decode(frame[20:]) == R.WatcherEvent(3, 3, "/x")


def test_frame_splitter_handles_partial_and_batched_frames():
    frames = [b"a" * 3, b"", b"bcdef"]
    stream = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    s = FrameSplitter()
    got = []
    for i in range(len(stream)):
        got += s.feed(stream[i:i + 1])
    assert got == frames
    assert FrameSplitter().feed(stream) == frames


def test_frame_splitter_rejects_bad_length():
    with pytest.raises(FrameError):
        FrameSplitter().feed(struct.pack(">i", -5))
    with pytest.raises(FrameError):
        FrameSplitter(max_buffer=100).feed(struct.pack(">i", 101))


_text = st.one_of(st.none(), st.text(max_size=20))
_blob = st.one_of(st.none(), st.binary(max_size=40))
_acl = st.builds(R.ACL, st.integers(0, 31), st.builds(R.Id, _text, _text))
_acls = st.one_of(st.none(), st.lists(_acl, max_size=3))
_int = st.integers(-(2**31), 2**31 - 1)
_long = st.integers(-(2**63), 2**63 - 1)
_strings = st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=4))

RECORDS = [
    st.builds(R.CreateRequest, _text, _blob, _acls, _int),
    st.builds(R.CreateTTLRequest, _text, _blob, _acls, _int, _long),
    st.builds(R.DeleteRequest, _text, _int),
    st.builds(R.PathWatchRequest, _text, st.booleans()),
    st.builds(R.SetDataRequest, _text, _blob, _int),
    st.builds(R.SetACLRequest, _text, _acls, _int),
    st.builds(R.SetWatches2, _long, _strings, _strings, _strings, _strings, _strings),
    st.builds(R.AuthPacket, _int, _text, _blob),
    st.builds(R.WhoAmIResponse, st.one_of(st.none(), st.lists(
        st.builds(R.ClientInfo, _text, _text), max_size=3))),
    st.builds(R.WatcherEvent, _int, _int, _text),
]


@given(st.one_of(*RECORDS))
def test_every_record_round_trips(rec):
    assert type(rec).decode(rec.encode()) == rec


_stat = st.builds(R.Stat, *[_long] * 4, *[_int] * 3, _long, _int, _int, _long)
_children = st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=4),
                      st.frozensets(st.text(max_size=10), max_size=4))
REPLIES = RECORDS + [
    st.builds(R.StatResponse, _stat),
    st.builds(R.GetDataResponse, _blob, _stat),
    st.builds(R.GetChildrenResponse, _children),
    st.builds(R.GetChildren2Response, _children, _stat),
    st.builds(R.GetACLResponse, _acls, _stat),
    st.builds(R.PathResponse, _text),
    st.builds(R.Create2Response, _text, _stat),
    st.builds(R.StringsResponse, _strings),
    st.builds(R.IntResponse, _int),
    st.builds(R.EmptyRecord),
]


def _as_held(value):
    """A field as the server holds it when it packs a reply: a Stat as its 11 ints."""
    return attrs.astuple(value) if isinstance(value, R.Stat) else value


@given(st.one_of(*REPLIES))
def test_pack_from_the_fields_is_the_record_encoding(rec):
    """`pack` (the server's reply path) and `encode` are two derivations of one declaration."""
    values = [_as_held(getattr(rec, name)) for name in rec.FIELDS]
    assert type(rec).pack(*values) == rec.encode()


_ACL_ENTRY = st.builds(
    lambda perms, scheme, ident: R.ACL.of(perms, scheme, ident),
    st.integers(-2**31, 2**31 - 1), st.sampled_from(["world", "digest", "ip", "", "wörld"]),
    st.sampled_from(["anyone", "u:h", "10.0.0.1/8", "", "ünï"]))


@given(st.lists(_ACL_ENTRY, max_size=20) | st.none(), st.binary(max_size=12))
def test_acl_vectors_decode_the_same_first_time_and_from_the_cache(acls, tail):
    """A request's ACL vector is decoded once per distinct encoding and then looked up; both
    ways give the records and leave the reader after the vector."""
    body = R.ACLS.pack(acls) + tail
    for _ in range(2):
        r = Reader(body)
        assert R.REQUEST_ACLS.read(r) == acls
        assert r.pos == len(body) - len(tail)


@given(st.lists(_ACL_ENTRY, min_size=1, max_size=4), st.data())
def test_a_cut_or_corrupt_acl_vector_fails_as_the_generic_decoder_does(acls, data):
    body = bytearray(R.ACLS.pack(acls))
    if data.draw(st.booleans()):
        body = body[:data.draw(st.integers(0, len(body) - 1))]
    else:
        at = data.draw(st.integers(0, len(body) - 4))
        body[at:at + 4] = struct.pack(">i", data.draw(st.integers(-5, 2**31 - 1)))
    outcomes = []
    for read in (R.ACLS.read, R.REQUEST_ACLS.read, R.REQUEST_ACLS.read):
        r = Reader(bytes(body), max_buffer=1 << 20)
        try:
            outcomes.append((read(r), r.pos))
        except JuteError:
            outcomes.append("JuteError")
    assert outcomes[1] == outcomes[0] == outcomes[2]


def test_the_vector_read_last_is_matched_whole_and_only_within_the_frame():
    """The fast path (the encoding read last, compared whole) gives what decoding gives,
    alternating between lists, and never reads past the frame: a vector cut short fails."""
    open_acl = [R.ACL.of(31, "world", "anyone")]
    digest = [R.ACL.of(1, "digest", "u:h"), R.ACL.of(31, "world", "anyone")]
    for acls in (open_acl, open_acl, digest, open_acl, digest, digest):
        body = R.ACLS.pack(acls) + b"tail"
        r = Reader(body)
        assert R.REQUEST_ACLS.read(r) == acls
        assert r.pos == len(body) - 4
    cut = R.ACLS.pack(digest)[:-1]  # the vector read last, one byte short
    with pytest.raises(JuteError):
        R.REQUEST_ACLS.read(Reader(cut))
