"""Every record of the ZooKeeper client protocol, with its jute encoding in both directions.

A record is an attrs class whose fields carry their jute type; `@record` derives `encode` and
`decode` from that declaration, so the layout of each record is written down exactly once and
the server and the client (`client/`) share it. Field order is wire order.

`@record` also derives `pack(*fields) -> bytes`, which encodes straight from the values the
server holds, without building the record first: the reply path of every read and write
(`zkserver/engine/`) answers through it, thousands of times a second. A Stat is given to `pack`
as the 11 ints of `Node.stat()`, nested records as records.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from typing import Any, ClassVar, dataclass_transform

import attrs

from zkserver.proto.codes import Op
from zkserver.proto.jute import (
    NULL,
    JuteError,
    Reader,
    Writer,
    pack_bool,
    pack_buffer,
    pack_int,
    pack_long,
    pack_ustring,
    pack_ustrings,
)

_INT_UNPACK_FROM = struct.Struct(">i").unpack_from

# ---------------------------------------------------------------------------------------------
# Field types


class JType:
    """How one field travels: a reader method, a writer method, and `pack` (value -> bytes)."""

    __slots__ = ("read", "write", "pack")

    def __init__(self, read: Callable[[Reader], Any], write: Callable[[Writer, Any], Any],
                 pack: Callable[[Any], bytes]):
        self.read = read
        self.write = write
        self.pack = pack


INT = JType(Reader.int, Writer.int, pack_int)
LONG = JType(Reader.long, Writer.long, pack_long)
BOOL = JType(Reader.bool, Writer.bool, pack_bool)
BUFFER = JType(Reader.buffer, Writer.buffer, pack_buffer)
USTRING = JType(Reader.ustring, Writer.ustring, pack_ustring)
USTRINGS = JType(Reader.ustring_vector, Writer.ustring_vector, pack_ustrings)


def _vector_of(cls: Any) -> JType:
    def read(r: Reader) -> list | None:
        n = r.vector_length()
        if n == -1:
            return None
        return [cls.decode_from(r) for _ in range(n)]

    def write(w: Writer, v: list | None) -> None:
        w.out += pack(v)

    def pack(v: list | None) -> bytes:
        if v is None:
            return NULL
        return pack_int(len(v)) + b"".join([item.encode() for item in v])

    return JType(read, write, pack)


def _nested(cls: Any) -> JType:
    return JType(cls.decode_from, lambda w, v: v.encode_to(w), lambda v: v.encode())


def _packer(packs: tuple[Callable[[Any], bytes], ...]) -> Callable[..., bytes]:
    """`pack` for a record with these field packers; the short records (every reply on the hot
    path has one or two fields) get a function without a loop."""
    if len(packs) == 1:
        return packs[0]
    if len(packs) == 2:
        first, second = packs

        def pack2(a: Any, b: Any) -> bytes:
            return first(a) + second(b)

        return pack2

    def pack(*values: Any) -> bytes:
        return b"".join([p(v) for p, v in zip(packs, values, strict=True)])

    return pack


def jfield(jtype: JType, default: Any = attrs.NOTHING) -> Any:
    return attrs.field(default=default, metadata={"jute": jtype})


@dataclass_transform(field_specifiers=(jfield,))
def record(cls: type) -> Any:
    """Make `cls` an attrs class and give it jute `encode`/`decode` from its field types.

    `dataclass_transform` tells type checkers what attrs does here (an `__init__` from the
    fields, in order), so a record built with the wrong arguments is caught by mypy."""
    cls = attrs.define(cls, slots=True, eq=True)
    spec = [(f.name, f.metadata["jute"]) for f in attrs.fields(cls)]
    readers = tuple(t.read for _, t in spec)
    names = tuple(n for n, _ in spec)

    @classmethod  # type: ignore[misc]
    def decode_from(c: Any, r: Reader) -> Any:
        return c(*[read(r) for read in readers])

    def encode_to(self: Any, w: Writer) -> None:
        for name, t in spec:
            t.write(w, getattr(self, name))

    cls.decode_from = decode_from
    cls.encode_to = encode_to
    cls.pack = staticmethod(_packer(tuple(t.pack for _, t in spec)))
    cls.FIELDS = names
    return cls


class Record:
    """Methods every `@record` class has (for readers and type checkers)."""

    FIELDS: ClassVar[tuple[str, ...]]

    @classmethod
    def decode_from(cls, r: Reader) -> Any: ...

    def encode_to(self, w: Writer) -> None: ...

    @staticmethod
    def pack(*fields: Any) -> bytes:
        """The encoding of a record with these field values (see the module docstring)."""
        ...

    @classmethod
    def decode(cls, data: bytes) -> Any:
        return cls.decode_from(Reader(data))

    def encode(self) -> bytes:
        w = Writer()
        self.encode_to(w)
        return w.getvalue()


# ---------------------------------------------------------------------------------------------
# Shared records

_STAT = struct.Struct(">qqqqiiiqiiq")
_STAT_pack = _STAT.pack


@attrs.frozen(slots=True)
class Stat:
    """A znode's Stat exactly as clients see it (68 bytes on the wire)."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int  # noqa: N815 (the protocol's name)
    dataLength: int  # noqa: N815
    numChildren: int  # noqa: N815
    pzxid: int

    SIZE: ClassVar[int] = 68

    @classmethod
    def decode_from(cls, r: Reader) -> Stat:
        p = r._need(68)
        return cls(*_STAT.unpack_from(r.buf, p))

    def encode_to(self, w: Writer) -> None:
        w.out += _STAT_pack(*_stat_fields(self))

    def pack(self) -> bytes:
        return _STAT_pack(*_stat_fields(self))


_stat_fields = operator.attrgetter(*(f.name for f in attrs.fields(Stat)))


def pack_stat(stat: tuple[int, ...]) -> bytes:
    """A Stat from its 11 fields in wire order (`Node.stat()`)."""
    return _STAT_pack(*stat)


STAT = JType(Stat.decode_from, lambda w, v: v.encode_to(w), pack_stat)


@record
class Id(Record):
    scheme: str | None = jfield(USTRING)
    id: str | None = jfield(USTRING)


@record
class ACL(Record):
    perms: int = jfield(INT)
    id: Id = jfield(_nested(Id))

    @classmethod
    def of(cls, perms: int, scheme: str, ident: str) -> ACL:
        return cls(perms, Id(scheme, ident))


class _AclVectorReader:
    """Reads a request's ACL vector, decoding each distinct encoding once.

    Nearly every create carries one of a handful of lists (OPEN_ACL_UNSAFE above all), and
    decoding it field by field into records was a fifth of a create's CPU. Finding where the
    vector ends takes two length reads per entry; the bytes up to there are the key to the
    records already decoded from them. Anything unusual (a null or malformed vector, lengths
    past the frame) goes the generic way, which also raises its errors."""

    LIMIT = 256  # distinct encodings kept; forgotten all at once past that

    def __init__(self, generic: Callable[[Reader], list | None]) -> None:
        self.generic = generic
        self.seen: dict[bytes, tuple[ACL, ...]] = {}
        # The encoding read last, and its records: the encoding is self-delimiting, so bytes
        # that start with a whole vector's encoding hold that vector and end where it ends.
        # One comparison instead of walking the lengths (a twentieth of a create's CPU).
        self.last: bytes | None = None
        self.last_acls: tuple[ACL, ...] = ()

    def __call__(self, r: Reader) -> list | None:
        buf, start, end = r.buf, r.pos, r.end
        last = self.last
        if last is not None:
            stop = start + len(last)
            if stop <= end and buf[start:stop] == last:
                r.pos = stop
                return list(self.last_acls)
        stop = self._end_of(buf, start, end)
        if stop < 0:
            return self.generic(r)
        key = bytes(buf[start:stop])
        acls = self.seen.get(key)
        if acls is None:
            decoded = self.generic(r)
            if len(self.seen) >= self.LIMIT:
                self.seen.clear()
            acls = self.seen[key] = tuple(decoded or ())
            self.last, self.last_acls = key, acls
            return decoded
        r.pos = stop
        self.last, self.last_acls = key, acls
        return list(acls)

    @staticmethod
    def _end_of(buf: bytes | memoryview, p: int, end: int) -> int:
        """Where the vector starting at `p` ends, or -1 to leave it to the generic reader."""
        unpack = _INT_UNPACK_FROM
        if p + 4 > end:
            return -1
        n = unpack(buf, p)[0]
        p += 4
        if not 0 < n <= 16:
            return -1
        for _ in range(n):
            p += 4  # perms
            for _string in range(2):  # the scheme, then the id
                if p + 4 > end:
                    return -1
                length = unpack(buf, p)[0]
                if length < 0:
                    return -1
                p += 4 + length
        return p if p <= end else -1


ACLS = _vector_of(ACL)
# Requests only: the server never hands the records out, so they can be shared. A client's
# replies (GetACLResponse) get records of their own, which their user may change.
REQUEST_ACLS = JType(_AclVectorReader(ACLS.read), ACLS.write, ACLS.pack)
_REQUEST_ACLS_READ = REQUEST_ACLS.read
OPEN_ACL_UNSAFE = [ACL.of(31, "world", "anyone")]
READ_ACL_UNSAFE = [ACL.of(1, "world", "anyone")]
CREATOR_ALL_ACL = [ACL.of(31, "auth", "")]

# ---------------------------------------------------------------------------------------------
# Handshake and headers


@attrs.define(slots=True)
class ConnectRequest:
    """The first frame of a connection. `read_only` is None when an old client left it out."""

    protocol_version: int
    last_zxid_seen: int
    timeout: int
    session_id: int
    passwd: bytes | None
    read_only: bool | None = None

    @classmethod
    def decode(cls, data: bytes | memoryview, max_buffer: int = 0xFFFFF) -> ConnectRequest:
        r = Reader(data, max_buffer=max_buffer)
        req = cls(r.int(), r.long(), r.int(), r.long(), r.buffer())
        if r.remaining() > 0:
            req.read_only = r.bool()
        return req

    def encode(self) -> bytes:
        w = Writer().int(self.protocol_version).long(self.last_zxid_seen).int(self.timeout)
        w.long(self.session_id).buffer(self.passwd)
        if self.read_only is not None:
            w.bool(self.read_only)
        return w.getvalue()


@attrs.define(slots=True)
class ConnectResponse:
    protocol_version: int
    timeout: int
    session_id: int
    passwd: bytes
    read_only: bool | None = None

    @classmethod
    def decode(cls, data: bytes | memoryview) -> ConnectResponse:
        r = Reader(data)
        resp = cls(r.int(), r.int(), r.long(), r.buffer() or b"")
        if r.remaining() > 0:
            resp.read_only = r.bool()
        return resp

    def encode(self) -> bytes:
        w = Writer().int(self.protocol_version).int(self.timeout).long(self.session_id)
        w.buffer(self.passwd)
        if self.read_only is not None:
            w.bool(self.read_only)
        return w.getvalue()


REQUEST_HEADER = struct.Struct(">ii")
REPLY_HEADER = struct.Struct(">iqi")
MULTI_HEADER = struct.Struct(">i?i")

# ---------------------------------------------------------------------------------------------
# Requests


@record
class CreateRequest(Record):
    path: str | None = jfield(USTRING)
    data: bytes | None = jfield(BUFFER)
    acl: list[ACL] | None = jfield(REQUEST_ACLS)
    flags: int = jfield(INT)


@record
class CreateTTLRequest(Record):
    path: str | None = jfield(USTRING)
    data: bytes | None = jfield(BUFFER)
    acl: list[ACL] | None = jfield(REQUEST_ACLS)
    flags: int = jfield(INT)
    ttl: int = jfield(LONG)


@record
class DeleteRequest(Record):
    path: str | None = jfield(USTRING)
    version: int = jfield(INT)


@record
class PathWatchRequest(Record):
    """exists, getData, getChildren and getChildren2 all carry a path and a watch flag."""

    path: str | None = jfield(USTRING)
    watch: bool = jfield(BOOL)


@record
class SetDataRequest(Record):
    path: str | None = jfield(USTRING)
    data: bytes | None = jfield(BUFFER)
    version: int = jfield(INT)


# The usual writes' requests, read with their path (and data) in one go: field by field, the
# decoding was a tenth of a create's CPU (4.0 -> 3.05 µs for a create). The usual shape only
# (a path, and data, present and within the frame and the limit); anything else is read the
# generic way, which also raises its errors.

def _field(r: Reader) -> bytes | memoryview | None:
    """The length-prefixed bytes at `r` (a path's or data's), read past; None (and `r` left
    where it was) if null or unusual."""
    buf, p = r.buf, r.pos
    if p + 4 <= r.end:
        n = _INT_UNPACK_FROM(buf, p)[0]
        stop = p + 4 + n
        if 0 <= n <= r.max_buffer and stop <= r.end:
            r.pos = stop
            return buf[p + 4:stop]
    return None


def _direct(cls: Any, read_rest: Callable[[Reader, str, bytes | None], Any],
            with_data: bool) -> None:
    generic = cls.decode_from

    def decode_from(c: Any, r: Reader) -> Any:
        start = r.pos
        raw = _field(r)
        if raw is not None:
            path = str(raw, "utf-8", "replace")
            if not with_data:
                return read_rest(r, path, None)
            data = _field(r)
            if data is not None:
                return read_rest(r, path, bytes(data))
        r.pos = start
        return generic(r)

    cls.decode_from = classmethod(decode_from)


_direct(CreateRequest, lambda r, path, data: CreateRequest(path, data, _REQUEST_ACLS_READ(r),
                                                           r.int()), True)
_direct(SetDataRequest, lambda r, path, data: SetDataRequest(path, data, r.int()), True)
_direct(DeleteRequest, lambda r, path, _: DeleteRequest(path, r.int()), False)


@record
class PathRequest(Record):
    """getACL, sync, getEphemerals, getAllChildrenNumber and deleteContainer carry a path only."""

    path: str | None = jfield(USTRING)


@record
class SetACLRequest(Record):
    path: str | None = jfield(USTRING)
    acl: list[ACL] | None = jfield(REQUEST_ACLS)
    version: int = jfield(INT)


@record
class CheckVersionRequest(Record):
    path: str | None = jfield(USTRING)
    version: int = jfield(INT)


@record
class ReconfigRequest(Record):
    joiningServers: str | None = jfield(USTRING)  # noqa: N815
    leavingServers: str | None = jfield(USTRING)  # noqa: N815
    newMembers: str | None = jfield(USTRING)  # noqa: N815
    curConfigId: int = jfield(LONG)  # noqa: N815


@record
class WatchesRequest(Record):
    """checkWatches and removeWatches: a path and a WatcherType."""

    path: str | None = jfield(USTRING)
    type: int = jfield(INT)


@record
class AuthPacket(Record):
    type: int = jfield(INT)
    scheme: str | None = jfield(USTRING)
    auth: bytes | None = jfield(BUFFER)


@record
class SetWatches(Record):
    relativeZxid: int = jfield(LONG)  # noqa: N815
    dataWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815
    existWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815
    childWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815


@record
class SetWatches2(Record):
    relativeZxid: int = jfield(LONG)  # noqa: N815
    dataWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815
    existWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815
    childWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815
    persistentWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815
    persistentRecursiveWatches: list[str] | None = jfield(USTRINGS)  # noqa: N815


@record
class AddWatchRequest(Record):
    path: str | None = jfield(USTRING)
    mode: int = jfield(INT)


@record
class SaslRequest(Record):
    token: bytes | None = jfield(BUFFER)


@record
class EmptyRecord(Record):
    """ping, closeSession and whoAmI carry no body."""


# ---------------------------------------------------------------------------------------------
# Responses


@record
class PathResponse(Record):
    """create's reply, and sync's (the path echoed)."""

    path: str | None = jfield(USTRING)


@record
class Create2Response(Record):
    path: str | None = jfield(USTRING)
    stat: Stat = jfield(STAT)


@record
class StatResponse(Record):
    """exists, setData and setACL reply with a Stat alone."""

    stat: Stat = jfield(STAT)


@record
class GetDataResponse(Record):
    data: bytes | None = jfield(BUFFER)
    stat: Stat = jfield(STAT)


@record
class GetACLResponse(Record):
    acl: list[ACL] | None = jfield(ACLS)
    stat: Stat = jfield(STAT)


@record
class GetChildrenResponse(Record):
    children: list[str] | None = jfield(USTRINGS)


@record
class GetChildren2Response(Record):
    children: list[str] | None = jfield(USTRINGS)
    stat: Stat = jfield(STAT)


@record
class StringsResponse(Record):
    """getEphemerals' reply."""

    paths: list[str] | None = jfield(USTRINGS)


@record
class IntResponse(Record):
    """getAllChildrenNumber's reply, and ErrorResponse (addWatch, failed multi ops)."""

    value: int = jfield(INT)


@record
class ClientInfo(Record):
    authScheme: str | None = jfield(USTRING)  # noqa: N815
    user: str | None = jfield(USTRING)


@record
class WhoAmIResponse(Record):
    clientInfo: list[ClientInfo] | None = jfield(_vector_of(ClientInfo))  # noqa: N815


@record
class WatcherEvent(Record):
    type: int = jfield(INT)
    state: int = jfield(INT)
    path: str | None = jfield(USTRING)


# ---------------------------------------------------------------------------------------------
# Multi


MULTI_WRITE_OPS: dict[int, Any] = {
    Op.CREATE: CreateRequest,
    Op.CREATE2: CreateRequest,
    Op.CREATE_CONTAINER: CreateRequest,
    Op.CREATE_TTL: CreateTTLRequest,
    Op.DELETE: DeleteRequest,
    Op.SET_DATA: SetDataRequest,
    Op.CHECK: CheckVersionRequest,
}
MULTI_READ_OPS: dict[int, Any] = {
    Op.GET_CHILDREN: PathWatchRequest,
    Op.GET_DATA: PathWatchRequest,
}


def decode_multi(r: Reader, allowed: dict[int, Any]) -> list[tuple[int, Any]]:
    """A MultiOperationRecord: (opcode, request) pairs up to the `done` header."""
    ops: list[tuple[int, Any]] = []
    while True:
        op = r.int()
        done = r.bool()
        r.int()  # err, unused in requests
        if done:
            return ops
        cls = allowed.get(op)
        if cls is None:
            raise JuteError(f"op {op} is not allowed in this multi")
        ops.append((op, cls.decode_from(r)))


def encode_multi(w: Writer, ops: list[tuple[int, Any]]) -> None:
    for op, req in ops:
        w.out += MULTI_HEADER.pack(op, False, -1)
        req.encode_to(w)
    w.out += MULTI_HEADER.pack(-1, True, -1)


def encode_multi_results(w: Writer, results: list[tuple[int, int, Any]]) -> None:
    """Results are (type, err, body record or None); a failed op is (-1, err, None)."""
    for typ, err, body in results:
        w.out += MULTI_HEADER.pack(typ, False, err)
        if typ == -1:
            w.int(err)
        elif body is not None:
            body.encode_to(w)
    w.out += MULTI_HEADER.pack(-1, True, -1)


MULTI_RESULT_BODIES: dict[int, Any] = {
    Op.CREATE: PathResponse,
    Op.CREATE2: Create2Response,
    Op.DELETE: None,
    Op.SET_DATA: StatResponse,
    Op.CHECK: None,
    Op.GET_CHILDREN: GetChildrenResponse,
    Op.GET_DATA: GetDataResponse,
}


def decode_multi_results(r: Reader) -> list[tuple[int, int, Any]]:
    results: list[tuple[int, int, Any]] = []
    while True:
        typ = r.int()
        done = r.bool()
        err = r.int()
        if done:
            return results
        if typ == -1:
            results.append((typ, r.int(), None))
            continue
        cls = MULTI_RESULT_BODIES.get(typ)
        results.append((typ, err, cls.decode_from(r) if cls is not None else None))


# The request record of each opcode a client may send on its own (multi handled apart).
REQUEST_RECORDS: dict[int, Any] = {
    Op.CREATE: CreateRequest,
    Op.CREATE2: CreateRequest,
    Op.CREATE_CONTAINER: CreateRequest,
    Op.CREATE_TTL: CreateTTLRequest,
    Op.DELETE: DeleteRequest,
    Op.EXISTS: PathWatchRequest,
    Op.GET_DATA: PathWatchRequest,
    Op.SET_DATA: SetDataRequest,
    Op.GET_ACL: PathRequest,
    Op.SET_ACL: SetACLRequest,
    Op.GET_CHILDREN: PathWatchRequest,
    Op.GET_CHILDREN2: PathWatchRequest,
    Op.SYNC: PathRequest,
    Op.CHECK: CheckVersionRequest,
    Op.RECONFIG: ReconfigRequest,
    Op.CHECK_WATCHES: WatchesRequest,
    Op.REMOVE_WATCHES: WatchesRequest,
    Op.DELETE_CONTAINER: PathRequest,
    Op.AUTH: AuthPacket,
    Op.SET_WATCHES: SetWatches,
    Op.SET_WATCHES2: SetWatches2,
    Op.SASL: SaslRequest,
    Op.GET_EPHEMERALS: PathRequest,
    Op.GET_ALL_CHILDREN_NUMBER: PathRequest,
    Op.ADD_WATCH: AddWatchRequest,
    Op.WHO_AM_I: EmptyRecord,
    Op.PING: EmptyRecord,
    Op.CLOSE_SESSION: EmptyRecord,
}
