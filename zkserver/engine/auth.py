"""addAuth: the identities a connection holds, as ZooKeeper's authentication providers add them.

`digest` adds `digest:user:base64(sha1(user:password))` (and `super` when that is the configured
superDigest); `ip` adds nothing new (every connection holds its address from the start); any
other scheme fails, and ZooKeeper then closes the connection. An identity is held once however
many times it is added. The connection's ACL checks read `auth_ids`.
"""

from __future__ import annotations

from zkserver.proto import records as R
from zkserver.proto.codes import Err
from zkserver.proto.jute import JuteError, Reader
from zkserver.tree import acl as aclmod


def authenticate(auth_ids: list[aclmod.Identity], frame: bytes, max_buffer: int,
                 super_digest: str | None) -> int:
    """Add what an AuthPacket (`frame`: header and body) proves to `auth_ids`; return the error
    code of the reply: 0, MARSHALLINGERROR, or AUTHFAILED (the connection must close)."""
    try:
        pkt = R.AuthPacket.decode_from(Reader(frame, 8, max_buffer=max_buffer))
    except JuteError:
        return Err.MARSHALLINGERROR
    scheme = pkt.scheme or ""
    auth = (pkt.auth or b"").decode("utf-8", "replace")
    if scheme == "digest":
        ident = aclmod.digest_id(auth)
        if ("digest", ident) not in auth_ids:
            auth_ids.append(("digest", ident))
        if super_digest is not None and ident == super_digest:
            if aclmod.SUPER not in auth_ids:
                auth_ids.append(aclmod.SUPER)
        return 0
    if scheme == "ip":
        return 0
    return Err.AUTHFAILED
