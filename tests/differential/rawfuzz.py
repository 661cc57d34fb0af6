"""A raw-protocol differential fuzzer: random request sequences as bytes, for two servers.

`generate(seed)` draws one sequence: steps on one to three connections, each step a request
frame (random xid and opcode, a well-formed body or a malformed-but-framed one). `run(port,
seq, prefix)` sends it to one server and returns the normalised transcript; the same bytes go to
Apache ZooKeeper and to zkserver, and the transcripts must be equal. `shrink` cuts a differing
sequence down to the steps that still make a difference.

Determinism is what makes byte-for-byte comparison possible, so the runner never lets two
connections race: the steps of one connection are pipelined back to back, and before another
connection speaks the first one is drained with a barrier (an exists of "/" with an xid the
generator never uses; its reply follows every reply and event queued before it). A step the
generator knows closes the connection (closeSession, an unknown opcode, a check outside multi,
a bad or unknown auth) is the last one sent on it, because ZooKeeper closes from another thread
and may still answer a request pipelined behind it.

Every sequence lives under its own top-level path of fixed length (so a malformation at a byte
offset means the same thing in every run) and ends by closing each session it opened, so no
session expires later and the two servers use the same zxids from one sequence to the next.

What the transcript normalises, and why (docs/compatibility-notes.md, "Raw fuzzer"):
- zxids are taken relative to the zxid seen just before the sequence (0 and -1 stay as they
  are): exact within a sequence, and one difference does not spill into every later one;
- ctime and mtime (wall clock), session ids in ephemeralOwner (mapped to the connection's
  index), passwords (not kept);
- children lists (getChildren, getChildren2, multiRead) are sorted: ZooKeeper lists them in
  HashSet order, a documented divergence;
- an addAuth reply is kept apart from the other replies of its connection: ZooKeeper answers it
  outside its pipeline, so where it lands among earlier replies still pending is a race there.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from dataclasses import dataclass, field, replace
from typing import Any

from support.wire import (
    ADD_WATCH,
    AUTH,
    CHECK,
    CHECK_WATCHES,
    CLOSE_SESSION,
    CREATE,
    CREATE2,
    CREATE_CONTAINER,
    CREATE_TTL,
    DELETE,
    EXISTS,
    GET_ACL,
    GET_ALL_CHILDREN_NUMBER,
    GET_CHILDREN,
    GET_CHILDREN2,
    GET_DATA,
    GET_EPHEMERALS,
    MULTI,
    MULTI_READ,
    PING,
    RECONFIG,
    REMOVE_WATCHES,
    SET_ACL,
    SET_DATA,
    SET_WATCHES,
    SET_WATCHES2,
    SYNC,
    WHO_AM_I,
    Closed,
    RawConnection,
    boolean,
    buf,
    i32,
    i64,
    request,
    ustr,
)

BARRIER_XID = 0x7A5EBA11  # never drawn by the generator
MAX_BUFFER = 0xFFFFF  # jute.maxbuffer on both servers (the default)
PREFIX_FORMAT = "/fz%07d"  # fixed length: byte offsets of malformations stay meaningful

# Paths, relative to the sequence's prefix. Few names, so that ops collide.
GOOD_PATHS = ["", "/a", "/b", "/a/b", "/a/c", "/b/a", "/a/b/c", "/s0000000000", "/a/s0000000001"]
BAD_PATHS = ["/a/", "//a", "/a/./b", "/a/../b", "/a\x00b", "/a/b/c/d", "/\u00e9\U0001F600"]
RAW_PATHS = ["", "a", "/"]  # not under the prefix: the empty path, a relative one, the root

OPEN_ACL = (31, "world", "anyone")
DIGEST_USER = ("user", "user:pw")
DIGEST_OTHER = ("other", "other:pw")
# digest ids of user:pw and other:pw (base64 of SHA-1 of "name:password")
DIGEST_IDS = {name: f"{name}:" + base64.b64encode(hashlib.sha1(cred.encode()).digest()).decode()
              for name, cred in (DIGEST_USER, DIGEST_OTHER)}


# -- steps -----------------------------------------------------------------------------------

Token = tuple  # ("i32", v) ("i64", v) ("bool", v) ("buf", b) ("path", rel) ("str", s) ...


@dataclass(frozen=True)
class Step:
    conn: int
    xid: int
    op: int
    tokens: tuple[Token, ...]
    mutation: tuple | None = None
    closes: bool = False  # the generator expects the server to close the connection here

    def body(self, prefix: str) -> bytes:
        out = _render(self.tokens, prefix, 8)
        return _mutate(out, self.mutation) if self.mutation else out

    def frame(self, prefix: str) -> bytes:
        return request(self.xid, self.op, self.body(prefix))

    def describe(self) -> str:
        m = f" mutation={self.mutation}" if self.mutation else ""
        toks = ", ".join(_token_text(t) for t in self.tokens)
        return f"conn{self.conn} xid={self.xid} op={self.op} [{toks}]{m}"


@dataclass
class Sequence:
    seed: str
    steps: list[Step]
    timeouts: dict[int, int] = field(default_factory=dict)  # conn -> requested timeout

    def ops(self) -> int:
        return len(self.steps)


def _token_text(t: Token) -> str:
    if t[0] == "buf" and t[1] is not None and len(t[1]) > 16:
        return f"buf(<{len(t[1])} bytes>)"
    if t[0] == "multi":
        return "multi(" + "; ".join(f"{op}:" + ",".join(_token_text(x) for x in sub)
                                    for op, sub in t[1]) + ")"
    return f"{t[0]}({t[1:]!r})" if len(t) > 2 else f"{t[0]}({t[1]!r})"


def _render(tokens: tuple[Token, ...], prefix: str, fixed: int) -> bytes:
    parts: list[bytes] = []
    big: int | None = None
    for t in tokens:
        kind = t[0]
        if kind == "i32":
            parts.append(i32(t[1]))
        elif kind == "i64":
            parts.append(i64(t[1]))
        elif kind == "bool":
            parts.append(boolean(t[1]))
        elif kind == "byte":
            parts.append(bytes([t[1]]))
        elif kind == "buf":
            parts.append(buf(t[1]))
        elif kind == "str":
            parts.append(ustr(t[1]))
        elif kind == "path":
            parts.append(ustr(_path(prefix, t[1])))
        elif kind == "badlen":  # a string with a wrong length field: ("badlen", rel, length)
            raw = _path(prefix, t[1]).encode()
            parts.append(i32(t[2]) + raw)
        elif kind == "strvec":
            parts.append(i32(-1) if t[1] is None else
                         i32(len(t[1])) + b"".join(ustr(_path(prefix, p)) for p in t[1]))
        elif kind == "count":  # a vector length alone (for bad vectors)
            parts.append(i32(t[1]))
        elif kind == "acl":
            acl = t[1]
            parts.append(i32(-1) if acl is None else i32(len(acl)) + b"".join(
                i32(p) + ustr(s) + ustr(i) for p, s, i in acl))
        elif kind == "multi":
            for op, sub in t[1]:
                parts.append(i32(op) + boolean(False) + i32(-1) + _render(sub, prefix, 0))
            parts.append(i32(-1) + boolean(True) + i32(-1))
        elif kind == "big":  # data that makes the whole frame body exactly t[1] bytes
            big = len(parts)
            parts.append(b"")
        else:
            raise ValueError(f"unknown token {t!r}")
    if big is not None:
        total = dict(t for t in tokens if t[0] == "big")["big"]
        n = total - fixed - sum(len(p) for p in parts) - 4
        parts[big] = buf(b"x" * max(0, n))
    return b"".join(parts)


def _path(prefix: str, rel: str | None) -> str | None:
    if rel is None:
        return None
    if rel.startswith("!"):
        return rel[1:]
    return prefix + rel


def _mutate(body: bytes, m: tuple) -> bytes:
    kind = m[0]
    if kind == "cut":  # drop the last m[1] bytes (at least one, at most all)
        return body[:max(0, len(body) - m[1])]
    if kind == "trail":
        return body + m[1]
    if kind == "flip":  # replace the byte at m[1] (modulo the length) with m[2]
        if not body:
            return body
        i = m[1] % len(body)
        return body[:i] + bytes([m[2]]) + body[i + 1:]
    raise ValueError(f"unknown mutation {m!r}")


# -- the generator -----------------------------------------------------------------------------

class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.r = rng
        self.next_xid = 1
        self.used: list[int] = [1]

    def xid(self) -> int:
        r = self.r
        x = r.random()
        if x < 0.8:
            v = self.next_xid
            self.next_xid += 1
        elif x < 0.88:
            v = r.choice(self.used)
        else:
            v = r.choice([0, -1, -2, -3, -4, -8, -11, 2**31 - 1, -2**31, r.randint(-1000, -5)])
        if v == BARRIER_XID:
            v = 1
        self.used.append(v)
        return v

    def path(self) -> str | None:
        x = self.r.random()
        if x < 0.9:
            return self.r.choice(GOOD_PATHS)
        if x < 0.95:
            return self.r.choice(BAD_PATHS)
        if x < 0.97:
            return "!" + self.r.choice(RAW_PATHS)
        return None

    def write_path(self) -> str | None:
        p = self.path()
        return "" if p == "!/" else p  # never write to the root

    def data(self) -> Token:
        r = self.r
        x = r.random()
        if x < 0.05:
            return ("buf", None)
        if x < 0.15:
            return ("buf", b"")
        if x < 0.9:
            return ("buf", bytes(r.randrange(256) for _ in range(r.randint(1, 12))))
        if x < 0.995:
            return ("buf", b"d" * r.choice([255, 256, 1000, 4096]))
        return ("big", MAX_BUFFER + r.choice([-1, 0, 1]))  # +1: the frame is too long

    def acl(self) -> Token:
        r = self.r
        x = r.random()
        if x < 0.6:
            return ("acl", [OPEN_ACL])
        if x < 0.95:
            entries = []
            for _ in range(r.randint(1, 3)):
                perms = r.choice([31, 1, 0, 30, 17, r.randint(0, 31)])
                kind = r.choice(["world", "auth", "digest", "ip", "ip6", "bad"])
                if kind == "world":
                    entries.append((perms, "world", "anyone"))
                elif kind == "auth":
                    entries.append((perms, "auth", ""))
                elif kind == "digest":
                    entries.append((perms, "digest", DIGEST_IDS[r.choice(["user", "other"])]))
                elif kind == "ip":
                    entries.append((perms, "ip", r.choice(["127.0.0.1", "10.0.0.0/8", "1.2.3"])))
                elif kind == "ip6":
                    entries.append((perms, "ip", "::1"))
                else:
                    entries.append((perms, r.choice(["nosuch", "world", "digest"]),
                                    r.choice(["x", "", "someone"])))
            return ("acl", entries)
        return ("acl", r.choice([None, []]))

    def version(self) -> int:
        return self.r.choice([-1, -1, -1, 0, 0, 1, 2, -2])

    def create_tokens(self, op: int, in_multi: bool = False) -> tuple[Token, ...]:
        r = self.r
        if op == CREATE_CONTAINER:
            flags = 4 if r.random() < 0.85 else r.choice([0, 1, 5])
        elif op == CREATE_TTL:
            flags = r.choice([5, 6, 5, 6, 0, 4])
        else:
            flags = r.choice([0, 0, 0, 1, 1, 2, 3, 4, 5, 7, -1])
        path = self.write_path()
        if flags in (2, 3, 6) and r.random() < 0.6:
            path = r.choice(["/s", "/a/s"])
        toks: tuple[Token, ...] = (("path", path), self.data(), self.acl(), ("i32", flags))
        if op == CREATE_TTL:
            # Inside a multi only TTLs in range: ZooKeeper 3.9.5 does not check them there, and
            # applying such a create kills it (docs/compatibility-notes.md).
            # A createTTL whose flags are no TTL mode, with a ttl below 0, kills it too.
            ttls = [1, 10000, (1 << 40) - 1] + ([] if in_multi else [0, -1, 1 << 40])
            if flags not in (5, 6):
                ttls = [t for t in ttls if t >= 0]
            toks += (("i64", r.choice(ttls)),)
        return toks

    def sub_op(self, read: bool) -> tuple[int, tuple[Token, ...]]:
        r = self.r
        if read:
            op = r.choice([GET_CHILDREN, GET_DATA, GET_DATA, GET_CHILDREN, EXISTS, CREATE])
            if op == CREATE:
                return op, self.create_tokens(op)
            return op, (("path", self.path()), ("bool", r.random() < 0.3))
        op = r.choice([CREATE, CREATE, CREATE2, CREATE_CONTAINER, CREATE_TTL, DELETE, SET_DATA,
                       CHECK, CHECK, GET_DATA, 999])
        if op in (CREATE, CREATE2, CREATE_CONTAINER, CREATE_TTL):
            return op, self.create_tokens(op, in_multi=True)
        if op in (DELETE, CHECK):
            return op, (("path", self.write_path()), ("i32", self.version()))
        if op == SET_DATA:
            return op, (("path", self.write_path()), self.data(), ("i32", self.version()))
        return op, (("path", self.path()), ("bool", False))

    def step(self, conn: int) -> Step:
        r = self.r
        op = r.choices(OPS, WEIGHTS)[0]
        xid = self.xid()
        closes = False
        if op in (CREATE, CREATE2, CREATE_CONTAINER, CREATE_TTL):
            toks = self.create_tokens(op)
        elif op == DELETE:
            toks = (("path", self.write_path()), ("i32", self.version()))
        elif op == SET_DATA:
            toks = (("path", self.write_path()), self.data(), ("i32", self.version()))
        elif op in (GET_DATA, EXISTS, GET_CHILDREN, GET_CHILDREN2):
            toks = (("path", self.path()), ("bool", r.random() < 0.5))
        elif op in (GET_ACL, SYNC, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER):
            toks = (("path", self.path()),)
        elif op == SET_ACL:
            toks = (("path", self.write_path()), self.acl(), ("i32", self.version()))
        elif op in (MULTI, MULTI_READ):
            toks = (("multi", [self.sub_op(op == MULTI_READ) for _ in range(r.randint(0, 4))]),)
        elif op == ADD_WATCH:
            toks = (("path", self.path()), ("i32", r.choice([0, 1, 0, 1, 2])))
        elif op in (CHECK_WATCHES, REMOVE_WATCHES):
            toks = (("path", self.path()), ("i32", r.choice([1, 2, 3, 4, 5, 1, 2, 3, 0, 9])))
        elif op in (SET_WATCHES, SET_WATCHES2):
            n = 3 if op == SET_WATCHES else 5
            toks = (("i64", r.choice([0, 0, 1 << 40])),) + tuple(
                ("strvec", [p for p in (self.path() for _ in range(r.randint(0, 2)))
                            if p is not None]) for _ in range(n))
        elif op == AUTH:
            kind = r.random()
            if kind < 0.45:
                toks = (("i32", 0), ("str", "digest"), ("buf", DIGEST_USER[1].encode()))
            elif kind < 0.75:
                toks = (("i32", 0), ("str", "digest"), ("buf", DIGEST_OTHER[1].encode()))
            elif kind < 0.9:
                toks = (("i32", 0), ("str", "ip"), ("buf", b"127.0.0.1"))
            else:
                toks = (("i32", 0), ("str", "nosuch"), ("buf", b"x"))
                closes = True
        elif op == RECONFIG:
            toks = (("str", ""), ("str", ""), ("str", None), ("i64", -1))
        elif op in (PING, WHO_AM_I):
            toks = ()
        elif op == CLOSE_SESSION:
            toks = ()
            closes = True
        else:  # refused opcodes: unknown ones, and check outside multi. Not deleteContainer
            # or createSession: ZooKeeper runs those internal ops when a client sends them,
            # zkserver refuses them (docs/compatibility-notes.md).
            op = r.choice([999, 0, 23, 108, CHECK, -1, -12, 10])
            toks = (("path", self.path()), ("i32", -1))
            closes = True
        mutation = self.mutation(op, toks) if r.random() < 0.12 else None
        if mutation and op == AUTH:  # cut short: it does not parse, the connection closes
            mutation = ("cut", mutation[1] if mutation[0] == "cut" else 1)
            closes = True
        step = Step(conn, xid, op, toks, mutation, closes)
        if len(step.body(PREFIX_FORMAT % 0)) + 8 > MAX_BUFFER:  # a frame too long: closed
            step = replace(step, closes=True)
        return step

    def mutation(self, op: int, toks: tuple[Token, ...]) -> tuple | None:
        r = self.r
        x = r.random()
        if x < 0.3:
            return ("cut", r.choice([1, 1, 2, 3, 4, 5, 8, 10**6]))
        if x < 0.5:
            return ("trail", r.choice([b"\x00", b"\xff" * 4, b"trailing bytes"]))
        if x < 0.65 and op not in (MULTI, MULTI_READ, CREATE_TTL):  # could make a bad TTL
            return ("flip", r.randrange(64), r.choice([0x00, 0x7F, 0x80, 0xFF]))
        return ("cut", r.randint(1, 40))


OPS = [CREATE, CREATE2, CREATE_CONTAINER, CREATE_TTL, DELETE, SET_DATA, GET_DATA, EXISTS,
       GET_CHILDREN, GET_CHILDREN2, GET_ALL_CHILDREN_NUMBER, GET_EPHEMERALS, SYNC, MULTI,
       MULTI_READ, SET_ACL, GET_ACL, ADD_WATCH, REMOVE_WATCHES, CHECK_WATCHES, SET_WATCHES,
       SET_WATCHES2, AUTH, PING, WHO_AM_I, RECONFIG, CLOSE_SESSION, 999]
WEIGHTS = [10, 6, 3, 3, 8, 9, 7, 7, 4, 4, 2, 2, 2, 7, 3, 3, 3, 3, 2, 2, 1, 1, 3, 2, 1, 0.3,
           1, 0.7]


def generate(seed: str) -> Sequence:
    """One sequence, a pure function of `seed`."""
    r = random.Random(seed)
    g = _Gen(r)
    nconn = r.choices([1, 2, 3], [6, 3, 1])[0]
    steps: list[Step] = []
    dead: set[int] = set()
    conn = 0
    for _ in range(r.randint(2, 16)):
        if r.random() < 0.3:
            conn = r.randrange(nconn)
        if conn in dead:
            live = [c for c in range(nconn) if c not in dead]
            if not live:
                break
            conn = r.choice(live)
        s = g.step(conn)
        # A string with a bad length field, in place of the step's path.
        if s.mutation is None and r.random() < 0.03:
            toks = list(s.tokens)
            for i, t in enumerate(toks):
                if t[0] == "path" and t[1] is not None:
                    toks[i] = ("badlen", t[1], r.choice([-2, -100, 2**31 - 1, MAX_BUFFER + 1,
                                                         1000, 0, 3]))
                    break
            if tuple(toks) != s.tokens:
                s = Step(s.conn, s.xid, s.op, tuple(toks), None, s.closes)
        # A bad vector: a count that is negative, huge, or not the number of elements sent.
        elif s.mutation is None and r.random() < 0.04 and s.op != AUTH:
            toks = list(s.tokens)
            for i, t in enumerate(toks):
                if t[0] in ("acl", "strvec") and t[1]:
                    count = r.choice([-2, -100, -2**31, 2**31 - 1, len(t[1]) + 1, 0])
                    toks[i:i + 1] = [("count", count), *_elements(t)]
                    s = Step(s.conn, s.xid, s.op, tuple(toks), None, s.closes)
                    break
        steps.append(s)
        if s.closes:
            dead.add(conn)
    timeouts = {c: r.choice([10000, 30000, 100000]) for c in range(nconn)}
    return Sequence(seed, steps, timeouts)


def _elements(vector: Token) -> list[Token]:
    """The elements of an "acl" or "strvec" token, without their count."""
    if vector[0] == "acl":
        return [tok for p, sch, i in vector[1] for tok in (("i32", p), ("str", sch), ("str", i))]
    return [("path", p) for p in vector[1]]


# -- running one side --------------------------------------------------------------------------

STAT_LEN = 68


@dataclass
class _Conn:
    raw: RawConnection
    sid: int
    passwd: bytes
    index: int
    pending: list[tuple[int, int]] = field(default_factory=list)  # (reply xid, op)
    closed: bool = False
    session_closed: bool = False
    auths: list[Any] = field(default_factory=list)


class _Norm:
    """Normalises the replies of one run (see the module docstring)."""

    def __init__(self) -> None:
        self.base = 0
        self.sids: dict[int, int] = {}

    def zxid(self, z: int) -> int | str:
        return z if z in (0, -1) else f"+{z - self.base}"

    def stat(self, b: bytes) -> tuple:
        czxid, mzxid, _ct, _mt, ver, cver, aver, owner, dlen, nchild, pzxid = struct.unpack(
            ">qqqqiiiqiiq", b)
        own: Any = owner
        if owner in self.sids:
            own = f"session{self.sids[owner]}"
        return ("stat", self.zxid(czxid), self.zxid(mzxid), ver, cver, aver, own, dlen, nchild,
                self.zxid(pzxid))

    def body(self, op: int, err: int, b: bytes) -> Any:
        if not b or (err != 0 and op != MULTI_READ):  # a failed multiRead has a body
            return b.hex()
        try:
            return self._body(op, b)
        except (struct.error, ValueError, IndexError):
            return ("unparsed", b.hex())

    def _body(self, op: int, b: bytes) -> Any:
        if op in (EXISTS, SET_DATA, SET_ACL) and len(b) == STAT_LEN:
            return self.stat(b)
        if op in (GET_DATA, GET_ACL, CREATE2, CREATE_TTL, CREATE_CONTAINER) and len(b) >= STAT_LEN:
            return (b[:-STAT_LEN].hex(), self.stat(b[-STAT_LEN:]))
        if op == GET_CHILDREN2 and len(b) >= STAT_LEN:
            kids, _ = _strings(b, 0)
            return (sorted(kids), self.stat(b[-STAT_LEN:]))
        if op in (GET_CHILDREN, GET_EPHEMERALS):
            kids, end = _strings(b, 0)
            return (sorted(kids), b[end:].hex())
        if op in (MULTI, MULTI_READ):
            return self.multi(b)
        if op in (SYNC, CREATE):
            path, end = _string(b, 0)
            return (path, b[end:].hex())
        return b.hex()

    def multi(self, b: bytes) -> list:
        out: list = []
        pos = 0
        while True:
            typ, done, err = struct.unpack_from(">i?i", b, pos)
            pos += 9
            if done:
                out.append(("end", typ, err, b[pos:].hex()))
                return out
            if typ == -1:
                (e,) = struct.unpack_from(">i", b, pos)
                pos += 4
                out.append(("error", e))
            elif typ in (CREATE, CREATE_CONTAINER, CREATE_TTL, CREATE2):
                s, pos = _string(b, pos)
                if typ != CREATE:
                    out.append(("create", s, self.stat(b[pos:pos + STAT_LEN])))
                    pos += STAT_LEN
                else:
                    out.append(("create", s))
            elif typ == SET_DATA:
                out.append(("set", self.stat(b[pos:pos + STAT_LEN])))
                pos += STAT_LEN
            elif typ in (DELETE, CHECK):
                out.append((typ,))
            elif typ == GET_CHILDREN:
                kids, pos = _strings(b, pos)
                out.append(("children", sorted(kids)))
            elif typ == GET_DATA:
                (n,) = struct.unpack_from(">i", b, pos)
                pos += 4 + max(0, n)
                out.append(("data", b[pos - max(0, n):pos].hex(),
                            self.stat(b[pos:pos + STAT_LEN])))
                pos += STAT_LEN
            else:
                out.append(("unknown", typ, b[pos:].hex()))
                return out


def _string(b: bytes, pos: int) -> tuple[str | None, int]:
    (n,) = struct.unpack_from(">i", b, pos)
    if n < 0:
        return None, pos + 4
    if pos + 4 + n > len(b):
        raise ValueError("string past the end")
    return _text(b[pos + 4:pos + 4 + n]), pos + 4 + n


def _text(raw: bytes) -> str:
    """UTF-8, with a character beyond U+FFFF written as two 3-byte surrogates (CESU-8, as
    ZooKeeper writes it) read as that character: a documented difference."""
    try:
        s = raw.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")
    return s.encode("utf-16-be", errors="surrogatepass").decode("utf-16-be", errors="replace")


def _strings(b: bytes, pos: int) -> tuple[list, int]:
    (n,) = struct.unpack_from(">i", b, pos)
    pos += 4
    out = []
    for _ in range(max(0, n)):
        s, pos = _string(b, pos)
        out.append(s)
    return out, pos


def _event(body: bytes) -> tuple | None:
    """A WatcherEvent (type, state, path) if the body is exactly one, else None."""
    if len(body) < 12:
        return None
    typ, state = struct.unpack_from(">ii", body)
    try:
        path, end = _string(body, 8)
    except ValueError:
        return None
    if end != len(body) or not (-1 <= typ <= 7) or state not in (3, -112, 0, 4, 5):
        return None
    return (typ, state, path)


# Requests answered before anything more is sent on their connection: until ZooKeeper has
# applied them, its prep sees a pending record that differs from the applied node (a setACL's
# keeps the old ACL; a createContainer with an ephemeral mode's is the session's ephemeral),
# and whether a request pipelined behind is prepared before that is a race there.
WAIT_AFTER = frozenset({SET_ACL, CREATE_CONTAINER})

REPLY_TIMEOUT = 15.0  # generous: a loaded machine can take seconds over a 1 MB frame


class _Run:
    def __init__(self, port: int, seq: Sequence, prefix: str) -> None:
        self.port = port
        self.seq = seq
        self.prefix = prefix
        self.out: list = []
        self.norm = _Norm()
        self.conns: dict[int, _Conn] = {}

    def open(self, index: int) -> _Conn:
        raw = RawConnection("127.0.0.1", self.port, timeout=REPLY_TIMEOUT)
        negotiated, sid, passwd, size = raw.handshake(self.seq.timeouts.get(index, 30000))
        c = _Conn(raw, sid, passwd, index)
        self.norm.sids[sid] = index
        self.out.append(("connect", index, negotiated, size, len(passwd)))
        self.conns[index] = c
        return c

    def run(self) -> list:
        c0 = self.open(0)
        c0.raw.send(request(1, EXISTS, ustr("/") + boolean(False))
                    + request(2, CREATE, ustr(self.prefix) + buf(b"") + i32(1) + i32(31)
                              + ustr("world") + ustr("anyone") + i32(0)))
        self.norm.base = struct.unpack_from(">iqi", c0.raw.read_frame())[1]
        self.out.insert(0, ("zxid before the sequence", self.norm.base))
        err = struct.unpack_from(">iqi", c0.raw.read_frame())[2]
        if err != 0:
            raise RuntimeError(f"could not create the prefix {self.prefix}: {err}")
        try:
            batch: list[Step] = []
            for s in self.seq.steps:
                # A step that closes the connection goes alone: ZooKeeper closes from the
                # thread that reads, so replies still in its pipeline may be lost or not.
                # WAIT_AFTER: answered before anything follows.
                if batch and (s.conn != batch[0].conn or s.closes
                              or batch[-1].op in WAIT_AFTER):
                    self.send_batch(batch)
                    batch = []
                batch.append(s)
            if batch:
                self.send_batch(batch)
            for i in sorted(self.conns):  # events still queued for every connection
                c = self.conns[i]
                if not c.closed:
                    self.barrier(c)
        finally:
            self.cleanup()
        return self.out

    def conn(self, index: int) -> _Conn:
        return self.conns[index] if index in self.conns else self.open(index)

    def send_batch(self, batch: list[Step]) -> None:
        c = self.conn(batch[0].conn)
        if c.closed:
            self.out.append(("send-on-closed", c.index))
            return
        data = b"".join(s.frame(self.prefix) for s in batch)
        for s in batch:
            c.pending.append((-2 if s.op == 11 else s.xid, s.op))
            if s.op == AUTH:
                c.auths.append(s.xid)
        ok = c.raw.send(data)
        if batch[-1].closes or not ok:
            self.read(c, until_barrier=False)
        else:
            self.read(c, until_barrier=True, send=True)

    def barrier(self, c: _Conn) -> None:
        self.read(c, until_barrier=True, send=True)

    def read(self, c: _Conn, until_barrier: bool, send: bool = False) -> None:
        if send and not c.raw.send(request(BARRIER_XID, EXISTS, ustr("/") + boolean(False))):
            until_barrier = False
        auths: list = []
        frames: list = []
        try:
            while True:
                body = c.raw.read_frame(REPLY_TIMEOUT)
                xid, zxid, err = struct.unpack_from(">iqi", body)
                rest = body[16:]
                if until_barrier and xid == BARRIER_XID:
                    break
                frame = self.reply(c, xid, zxid, err, rest, auths)
                if frame is not None:
                    frames.append(frame)
        except Closed:
            c.closed = True
            frames.append(("closed",))
        except TimeoutError:
            c.closed = True  # treated as gone: nothing more is sent on it
            frames.append(("no reply within the deadline",))
        except OSError as e:
            c.closed = True
            frames.append(("socket error", type(e).__name__))
        self.out.append(("conn", c.index, frames, ("auth replies", auths)))

    def reply(self, c: _Conn, xid: int, zxid: int, err: int, rest: bytes, auths: list
              ) -> Any:
        if xid == -1:
            ev = _event(rest)
            if ev is not None and not any(x == -1 for x, _ in c.pending):
                return ("event", self.norm.zxid(zxid), err, ev)
            if ev is not None and zxid != 0:
                # a notification (xid -1) while a request with xid -1 is pending
                return ("event", self.norm.zxid(zxid), err, ev)
        if zxid == 0 and not rest and xid in c.auths:
            for i, (x, op) in enumerate(c.pending):
                if op == AUTH and x == xid:
                    del c.pending[i]
                    break
            c.auths.remove(xid)
            auths.append((xid, err))
            return None
        op = None
        for i, (x, o) in enumerate(c.pending):
            if x == xid:
                op = o
                del c.pending[i]
                break
        if op == CLOSE_SESSION and err == 0:
            c.session_closed = True
        return (xid, self.norm.zxid(zxid), err, self.norm.body(op or 0, err, rest))

    def cleanup(self) -> None:
        """Close every session the sequence opened, so none expires later (a zxid on one side
        only, at a time of its own)."""
        for c in self.conns.values():  # all at once, then wait for each
            if not c.closed:
                c.raw.send(request(BARRIER_XID + 1, CLOSE_SESSION))
        for c in self.conns.values():
            try:
                if not c.closed:
                    c.raw.wait_closed(REPLY_TIMEOUT)
                elif not c.session_closed:
                    with RawConnection("127.0.0.1", self.port, timeout=REPLY_TIMEOUT) as again:
                        again.handshake(30000, session_id=c.sid, passwd=c.passwd)
                        again.send(request(BARRIER_XID + 1, CLOSE_SESSION))
                        again.wait_closed(REPLY_TIMEOUT)
            except (OSError, Closed, TimeoutError, struct.error):
                pass
            finally:
                c.raw.close()


def run(port: int, seq: Sequence, prefix: str) -> list:
    """Send `seq` to the server on `port` under `prefix`; its normalised transcript, whose
    first entry is the absolute zxid the sequence started from (equal on two servers that
    started fresh and have seen the same transactions; see `same_steps`)."""
    return _Run(port, seq, prefix).run()


def same_steps(a: list, b: list) -> bool:
    """Whether two transcripts agree after their starting zxids (shrinking compares this, as
    a sequence that used a zxid on one side only shifts every later start)."""
    return a[1:] == b[1:]


def first_difference(a: list, b: list) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def shrink(seq: Sequence, differs, budget: int = 150) -> Sequence:
    """The smallest sub-sequence found (removing chunks of steps, then single steps) for which
    `differs(sequence)` still holds; at most `budget` tries."""
    steps = list(seq.steps)
    tries = 0
    chunk = max(1, len(steps) // 2)
    while chunk >= 1 and tries < budget:
        i = 0
        progressed = False
        while i < len(steps) and tries < budget:
            cand = steps[:i] + steps[i + chunk:]
            tries += 1
            if cand and differs(Sequence(seq.seed, cand, seq.timeouts)):
                steps = cand
                progressed = True
            else:
                i += chunk
        if not progressed:
            chunk //= 2
    for i in range(len(steps)):  # then the sub-ops of a multi, one at a time
        j = 0
        while tries < budget and steps[i].tokens and steps[i].tokens[0][0] == "multi" \
                and j < len(steps[i].tokens[0][1]):
            subs = steps[i].tokens[0][1]
            smaller = replace(steps[i], tokens=(("multi", subs[:j] + subs[j + 1:]),))
            cand = steps[:i] + [smaller] + steps[i + 1:]
            tries += 1
            if differs(Sequence(seq.seed, cand, seq.timeouts)):
                steps = cand
            else:
                j += 1
    return Sequence(seq.seed, steps, seq.timeouts)
