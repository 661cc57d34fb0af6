"""Apache ZooKeeper's on-disk formats (`<dataDir>/version-2`), read-only.

A *snapshot* (`snapshot.<zxid in hex>`, optionally `.gz` or `.snappy` compressed) is one jute
stream: a file header (`ZKSN`, version, dbid), the session table (count, then id and timeout
pairs), the ACL cache (count, then an id and an ACL list each), then every node as a path and a
DataNode (data buffer, ACL id, StatPersisted) ending with the path "/" (the root itself is
written under the path ""). A seal follows: the Adler32 of every byte before it as a long, and
the string "/". ZooKeeper 3.6+ appends a sealed digest section (zxid, digest version, digest),
3.9 a sealed last-processed-zxid. The name's zxid is the last transaction applied when the
snapshot *began*: snapshots are fuzzy, and the log is replayed from the zxid after it.

A *transaction log* (`log.<first zxid in hex>`) is a header (`ZKLG`, version, dbid) and then
records: the Adler32 of the entry as a long, the entry as a buffer (TxnHeader, the transaction,
and since 3.6 an optional TxnDigest), and an end-of-record byte 0x42. The file is preallocated
with zeros: a zero-length entry is the end.

Transactions are translated into zkserver's own records (`zkserver.txn`) here, with two
placeholders the importer fills in from the tree it is building: a create from before 3.3
(`CreateTxnV0`) has `parent_cversion == -1` ("the parent's cversion plus one", as ZooKeeper's
`createNode` reads it), and a close-session logged without its paths (3.5 and older, or
`zookeeper.closeSessionTxn.enabled=false`) has `paths is None` ("every ephemeral the session
owns").
"""

from __future__ import annotations

import errno
import gzip
import os
import struct
import zlib

import attrs

from zkserver.progress import Progress
from zkserver.proto.jute import JuteError, Reader
from zkserver.tree import acl as aclmod
from zkserver.tree.datatree import CONTAINER_OWNER, ttl_owner
from zkserver.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
)

SNAP_MAGIC = b"ZKSN"
LOG_MAGIC = b"ZKLG"
SNAP_PREFIX = "snapshot."
LOG_PREFIX = "log."
END_OF_RECORD = 0x42
OPEN_ACL_ID = -1  # ReferenceCountedACLCache: -1 stands for OPEN_ACL_UNSAFE, never stored
FILE_LIMIT = 1 << 31  # lengths inside a file are bounded by the file, not by jute.maxbuffer
TXN_DIGEST_SIZE = 12  # TxnDigest: int version, long treeDigest
SEAL_SIZE = 13  # long checksum, then the string "/"
PROGRESS_EVERY = 10_000  # nodes (or transactions) between two progress reports

# ZooDefs.OpCode values that appear in a transaction log
OP_CREATE, OP_DELETE, OP_SET_DATA, OP_SET_ACL, OP_CHECK, OP_MULTI = 1, 2, 5, 7, 13, 14
OP_CREATE2, OP_RECONFIG, OP_CREATE_CONTAINER, OP_DELETE_CONTAINER, OP_CREATE_TTL = (
    15, 16, 19, 20, 21)
OP_CREATE_SESSION, OP_CLOSE_SESSION, OP_ERROR = -10, -11, -1

_HEADER = struct.Struct(">4siq")  # FileHeader: magic, version, dbid
_RECORD_HEAD = struct.Struct(">qi")  # checksum long, entry length


class ZkFileError(Exception):
    """A ZooKeeper file that cannot be read; names the file and the offset."""

    def __init__(self, path: str, offset: int, why: str) -> None:
        super().__init__(f"{path}: offset {offset}: {why}")
        self.path = path
        self.offset = offset
        self.why = why


@attrs.frozen
class ZkNode:
    path: str
    data: bytes | None
    acl: aclmod.AclList
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int  # as stored: the number of child creates (clients see 2*cversion - children)
    aversion: int
    owner: int  # ephemeralOwner with ZooKeeper's container / TTL encoding
    pzxid: int


@attrs.define
class ZkSnapshot:
    path: str
    zxid: int  # from the file name: replay the log after it
    sessions: dict[int, int]
    nodes: list[ZkNode]
    digest_zxid: int | None = None


@attrs.define
class ZkLog:
    path: str
    txns: list[Txn]
    end: int  # offset just past the last intact record
    torn: str | None = None  # why reading stopped early at `end`, if it did


# -- file names ---------------------------------------------------------------------------------


def _zxid_of(name: str, prefix: str) -> int | None:
    """ZooKeeper's Util.getZxidFromName: `prefix` + hex zxid, then an optional extension."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):].split(".")
    if len(rest) > 2 or (len(rest) == 2 and rest[1] not in ("gz", "snappy")):
        return None
    try:
        return int(rest[0], 16)
    except ValueError:
        return None


def snapshot_files(snap_dir: str) -> list[tuple[int, str]]:
    """(zxid, path) of every snapshot file, newest first."""
    out = []
    for name in _listdir(snap_dir):
        zxid = _zxid_of(name, SNAP_PREFIX)
        if zxid is not None:
            out.append((zxid, os.path.join(snap_dir, name)))
    return sorted(out, reverse=True)


def log_files(log_dir: str) -> list[tuple[int, str]]:
    """(first zxid, path) of every transaction log file, oldest first."""
    out = []
    for name in _listdir(log_dir):
        zxid = _zxid_of(name, LOG_PREFIX)
        if zxid is not None and not name.endswith((".gz", ".snappy")):
            out.append((zxid, os.path.join(log_dir, name)))
    return sorted(out)


def logs_after(files: list[tuple[int, str]], zxid: int) -> list[tuple[int, str]]:
    """The log files that can hold transactions after `zxid` (FileTxnLog.getLogFiles): the
    newest one starting at or before `zxid + 1`, and every later one."""
    start = 0
    for i, (first, _) in enumerate(files):
        if first <= zxid + 1:
            start = i
    return files[start:]


def _listdir(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except FileNotFoundError:
        return []


# -- snapshots ----------------------------------------------------------------------------------


def read_snapshot(path: str, progress: Progress | None = None) -> ZkSnapshot:
    """Parse and verify one snapshot file; raises ZkFileError naming what is wrong. `progress`
    hears how many bytes of the (decompressed) snapshot have been parsed."""
    zxid = _zxid_of(os.path.basename(path), SNAP_PREFIX)
    if zxid is None:
        raise ZkFileError(path, 0, "not a snapshot file name (snapshot.<hex zxid>)")
    with open(path, "rb") as f:
        raw = f.read()
    data = _decompress(path, raw)
    r = Reader(data, max_buffer=FILE_LIMIT)
    try:
        _check_header(path, data, SNAP_MAGIC, "snapshot")
        r.pos = _HEADER.size
        sessions = {}
        for _ in range(_count(r, path, "session count")):
            sid = r.long()
            sessions[sid] = r.int()
        acls = _read_acl_cache(r, path)
        nodes = _read_nodes(r, path, acls, progress)
        _check_seal(r, data, path)
        digest_zxid = None
        # Optional sealed sections, each with its own checksum over everything before it.
        left = r.remaining()
        if left in (20 + SEAL_SIZE, 20 + SEAL_SIZE + 8 + SEAL_SIZE):
            digest_zxid = r.long()  # ZxidDigest: zxid, digestVersion, digest
            r.int()
            r.long()
            _check_seal(r, data, path)
        if r.remaining() == 8 + SEAL_SIZE:
            r.long()  # 3.9: lastProcessedZxid
            _check_seal(r, data, path)
        if r.remaining():
            raise ZkFileError(path, r.pos, f"{r.remaining()} unexpected bytes after the end")
    except JuteError as e:
        raise ZkFileError(path, r.pos, f"truncated or undecodable snapshot: {e}") from None
    return ZkSnapshot(path, zxid, sessions, nodes, digest_zxid)


def _decompress(path: str, raw: bytes) -> bytes:
    if path.endswith(".gz"):
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ZkFileError(path, 0, f"damaged gzip stream: {e}") from None
    if path.endswith(".snappy"):
        return snappy_stream_decompress(path, raw)
    return raw


def _check_header(path: str, data: bytes, magic: bytes, kind: str) -> None:
    if len(data) < _HEADER.size:
        raise ZkFileError(path, 0, f"too short for a ZooKeeper {kind} ({len(data)} bytes)")
    got, version, _dbid = _HEADER.unpack_from(data, 0)
    if got != magic:
        raise ZkFileError(path, 0, f"not a ZooKeeper {kind} (magic {got!r}, expected {magic!r})")
    if version != 2:
        raise ZkFileError(path, 4, f"unsupported {kind} format version {version} (expected 2)")


def _count(r: Reader, path: str, what: str) -> int:
    at = r.pos
    n = r.int()
    if n < 0 or n > r.remaining():
        raise ZkFileError(path, at, f"impossible {what} {n}")
    return n


def _read_acl_list(r: Reader) -> aclmod.AclList:
    n = r.vector_length()
    if n == -1:
        return ()
    out = []
    for _ in range(n):
        perms = r.int()
        scheme = r.ustring() or ""
        ident = r.ustring() or ""
        out.append((perms, scheme, ident))
    return tuple(out)


def _read_acl_cache(r: Reader, path: str) -> dict[int, aclmod.AclList]:
    acls: dict[int, aclmod.AclList] = {OPEN_ACL_ID: aclmod.OPEN_ACL}
    for _ in range(_count(r, path, "ACL cache size")):
        key = r.long()
        acls[key] = aclmod.intern_acl(_read_acl_list(r))
    return acls


def _read_nodes(r: Reader, path: str, acls: dict[int, aclmod.AclList],
                progress: Progress | None = None) -> list[ZkNode]:
    nodes: list[ZkNode] = []
    seen: set[str] = set()
    what = f"reading {os.path.basename(path)}"
    size = r.end
    while True:
        at = r.pos
        if progress is not None and len(nodes) % PROGRESS_EVERY == 0:
            progress(what, at, size)
        p = r.ustring()
        if p == "/":
            if progress is not None:
                progress(what, size, size)
            return nodes
        if p is None:
            raise ZkFileError(path, at, "null node path")
        data = r.buffer()
        acl_id = r.long()
        czxid, mzxid, ctime, mtime = r.long(), r.long(), r.long(), r.long()
        version, cversion, aversion = r.int(), r.int(), r.int()
        owner, pzxid = r.long(), r.long()
        acl = acls.get(acl_id)
        if acl is None:
            raise ZkFileError(path, at, f"node {p!r} names ACL {acl_id}, missing from the cache")
        if p == "":
            p = "/"
        else:
            parent = p[:p.rfind("/")] or "/"
            if not p.startswith("/") or parent not in seen:
                raise ZkFileError(path, at, f"node {p!r} comes before its parent")
        seen.add(p)
        nodes.append(ZkNode(p, data, acl, czxid, mzxid, ctime, mtime, version, cversion,
                            aversion, owner, pzxid))


def _check_seal(r: Reader, data: bytes, path: str) -> None:
    at = r.pos
    expected = zlib.adler32(memoryview(data)[:at])
    val = r.long()
    if r.ustring() != "/":
        raise ZkFileError(path, at, "missing the end-of-section marker")
    if val != expected:
        raise ZkFileError(path, at, f"checksum mismatch (Adler32 {val:#x} stored, "
                          f"{expected:#x} computed)")


# -- Snappy (xerial snappy-java stream, as SnapStream writes) ----------------------------------

SNAPPY_MAGIC = b"\x82SNAPPY\x00"


def snappy_stream_decompress(path: str, raw: bytes) -> bytes:
    """snappy-java's SnappyOutputStream: magic, two version ints, then (length, block)*."""
    if not raw.startswith(SNAPPY_MAGIC) or len(raw) < 16:
        raise ZkFileError(path, 0, "not a snappy-java stream (bad magic)")
    out = bytearray()
    pos = 16
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise ZkFileError(path, pos, "truncated snappy block header")
        (n,) = struct.unpack_from(">i", raw, pos)
        if n < 0 or pos + 4 + n > len(raw):
            raise ZkFileError(path, pos, f"truncated snappy block ({n} bytes)")
        try:
            out += snappy_decompress(raw[pos + 4:pos + 4 + n])
        except ValueError as e:
            raise ZkFileError(path, pos, f"damaged snappy block: {e}") from None
        pos += 4 + n
    return bytes(out)


def snappy_decompress(block: bytes) -> bytes:
    """One raw Snappy block (the format's varint length, then literals and copies)."""
    pos = 0
    length = shift = 0
    while True:
        if pos >= len(block):
            raise ValueError("truncated length")
        b = block[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
        if shift > 35:
            raise ValueError("length varint too long")
    out = bytearray()
    n = len(block)
    while pos < n:
        tag = block[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(block[pos:pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > n:
                raise ValueError("literal past the end")
            out += block[pos:pos + size]
            pos += size
            continue
        if kind == 1:
            size = ((tag >> 2) & 7) + 4
            if pos >= n:
                raise ValueError("truncated copy")
            offset = ((tag >> 5) << 8) | block[pos]
            pos += 1
        else:
            size = (tag >> 2) + 1
            extra = 2 if kind == 2 else 4
            if pos + extra > n:
                raise ValueError("truncated copy")
            offset = int.from_bytes(block[pos:pos + extra], "little")
            pos += extra
        if offset == 0 or offset > len(out):
            raise ValueError(f"copy offset {offset} out of range")
        start = len(out) - offset
        if size <= offset:
            out += out[start:start + size]
        else:
            for i in range(size):  # an overlapping copy repeats the last `offset` bytes
                out.append(out[start + i])
    if len(out) != length:
        raise ValueError(f"decoded {len(out)} bytes, header says {length}")
    return bytes(out)


# -- transaction logs ---------------------------------------------------------------------------


def read_log(path: str) -> ZkLog:
    """Every intact transaction of one log file.

    Reading stops at the preallocated zeros. A damaged last record (a crash in the middle of
    a write, which ZooKeeper never acknowledged) ends the file early, as ZooKeeper's own reader
    does; `torn` says why. A damaged record with an intact record after it is corruption and
    raises ZkFileError.
    """
    data = read_content(path)  # the preallocated zero tail is left out
    if not data:  # created and preallocated, then the process died before the header
        return ZkLog(path, [], 0, "no header: the file holds only zeros")
    _check_header(path, data, LOG_MAGIC, "transaction log")
    out = ZkLog(path, [], _HEADER.size)
    pos = _HEADER.size
    size = len(data)
    while pos < size:
        if pos + _RECORD_HEAD.size > size:
            _torn(out, data, pos, "partial record header at the end of the file")
            return out
        crc, n = _RECORD_HEAD.unpack_from(data, pos)
        if n == 0:  # ZooKeeper's end of the log, but non-zero bytes follow
            _torn(out, data, pos, "zero-length record followed by data")
            return out
        body_at = pos + _RECORD_HEAD.size
        end = body_at + n
        if n < 0 or end + 1 > size:
            _torn(out, data, pos, f"record length {n} runs past the end of the file")
            return out
        body = data[body_at:end]
        if data[end] != END_OF_RECORD:
            _torn(out, data, pos, "record without its end-of-record byte (a partial write)")
            return out
        if zlib.adler32(body) != crc & 0xFFFFFFFF:
            _torn(out, data, pos, "record checksum mismatch")
            return out
        try:
            out.txns.append(parse_entry(body))
        except (JuteError, ValueError) as e:
            raise ZkFileError(path, pos, f"undecodable transaction: {e}") from None
        pos = end + 1
        out.end = pos
    return out


def read_content(path: str) -> bytes:
    """A file up to its last non-zero byte.

    ZooKeeper preallocates its logs (64 MiB by default) by writing past the end, which leaves
    a hole; holes are skipped with SEEK_DATA/SEEK_HOLE where the file system reports them, so a
    mostly empty log costs a few reads, not 64 MiB of them."""
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        regions = _data_regions(fd, size)
        for start, stop in reversed(regions):
            f.seek(start)
            chunk = f.read(stop - start).rstrip(b"\0")
            if chunk:
                end = start + len(chunk)
                break
        else:
            return b""
        f.seek(0)
        return f.read(end)


def _data_regions(fd: int, size: int) -> list[tuple[int, int]]:
    regions = []
    pos = 0
    try:
        while pos < size:
            start = os.lseek(fd, pos, os.SEEK_DATA)
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            regions.append((start, stop))
            pos = stop
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: no data after pos; anything else: unsupported
            return [(0, size)]
    except AttributeError:
        return [(0, size)]
    return regions


def _torn(out: ZkLog, data: bytes, pos: int, why: str) -> None:
    later = _later_record(data, pos + 1)
    if later is not None:
        raise ZkFileError(out.path, pos, f"{why}, and an intact record follows at offset "
                          f"{later}: the log is corrupt")
    out.torn = f"{why} at offset {pos}"


def _valid_record_at(data: bytes, pos: int) -> bool:
    if pos + _RECORD_HEAD.size > len(data):
        return False
    crc, n = _RECORD_HEAD.unpack_from(data, pos)
    end = pos + _RECORD_HEAD.size + n
    if n < 28 or end >= len(data) or data[end] != END_OF_RECORD or crc < 0:
        return False
    return zlib.adler32(data[pos + _RECORD_HEAD.size:end]) == crc


def _later_record(data: bytes, start: int) -> int | None:
    """The offset of an intact record at or after `start`. A record's checksum is a long
    below 2**32, so it starts with four zero bytes."""
    last = len(data)
    pos = data.find(b"\0\0\0\0", start, last)
    while pos != -1:
        if _valid_record_at(data, pos):
            return pos
        pos = data.find(b"\0\0\0\0", pos + 1, last)
    return None


def parse_entry(body: bytes) -> Txn:
    """One log entry: TxnHeader, the transaction, and an optional TxnDigest."""
    r = Reader(body, max_buffer=FILE_LIMIT)
    session_id, cxid, zxid, time, op_type = r.long(), r.int(), r.long(), r.long(), r.int()
    if op_type == OP_CLOSE_SESSION:
        op = _close_session(r)
    else:
        op = parse_op(op_type, r, session_id)
    left = r.remaining()
    if left not in (0, TXN_DIGEST_SIZE):
        raise ValueError(f"{left} unexpected bytes after a transaction of type {op_type}")
    return Txn(zxid, time, session_id, cxid, op)


def _close_session(r: Reader) -> CloseSessionTxn:
    """CloseSessionTxn's paths2Delete vector, when it was logged (3.6+, on by default).

    Without it the entry holds nothing, or only the 12-byte digest, so the body is taken as a
    path list only if it parses as one and leaves nothing or exactly a digest behind."""
    start = r.pos
    try:
        paths = r.ustring_vector()
        if paths is not None and r.remaining() in (0, TXN_DIGEST_SIZE) and all(
                p.startswith("/") for p in paths):
            return CloseSessionTxn(tuple(paths))
    except JuteError:
        pass
    r.pos = start
    return CloseSessionTxn(None)  # type: ignore[arg-type]  # the importer fills it in


def parse_op(op_type: int, r: Reader, session_id: int) -> object:
    """The transaction record of type `op_type` (a multi's sub-record likewise)."""
    if op_type in (OP_CREATE, OP_CREATE2):
        path, data, acl = r.ustring() or "", r.buffer(), _read_acl_list(r)
        ephemeral = r.bool()
        # CreateTxnV0 (before 3.3) stops here; ZooKeeper re-reads it and fixes the parent up.
        parent_cversion = r.int() if r.remaining() >= 4 and r.remaining() != TXN_DIGEST_SIZE \
            else -1
        return CreateTxn(path, data, acl, session_id if ephemeral else 0, parent_cversion)
    if op_type == OP_CREATE_CONTAINER:
        path, data, acl = r.ustring() or "", r.buffer(), _read_acl_list(r)
        return CreateTxn(path, data, acl, CONTAINER_OWNER, r.int())
    if op_type == OP_CREATE_TTL:
        path, data, acl = r.ustring() or "", r.buffer(), _read_acl_list(r)
        parent_cversion = r.int()
        return CreateTxn(path, data, acl, ttl_owner(r.long()), parent_cversion)
    if op_type in (OP_DELETE, OP_DELETE_CONTAINER):
        return DeleteTxn(r.ustring() or "")
    if op_type in (OP_SET_DATA, OP_RECONFIG):
        return SetDataTxn(r.ustring() or "", r.buffer(), r.int())
    if op_type == OP_SET_ACL:
        return SetACLTxn(r.ustring() or "", _read_acl_list(r), r.int())
    if op_type == OP_CHECK:
        return CheckTxn(r.ustring() or "", r.int())
    if op_type == OP_CREATE_SESSION:
        return CreateSessionTxn(r.int())
    if op_type == OP_ERROR:
        return ErrorTxn(r.int())
    if op_type == OP_MULTI:
        subs = []
        for _ in range(max(r.vector_length(), 0)):
            sub_type = r.int()
            sub = r.buffer() or b""
            sr = Reader(sub, max_buffer=FILE_LIMIT)
            if sub_type == OP_CLOSE_SESSION:
                raise ValueError("close-session inside a multi")
            subs.append(parse_op(sub_type, sr, session_id))
            if sr.remaining():
                raise ValueError(f"{sr.remaining()} unexpected bytes in a multi's sub-record")
        return MultiTxn(tuple(subs))
    raise ValueError(f"unknown transaction type {op_type}")
