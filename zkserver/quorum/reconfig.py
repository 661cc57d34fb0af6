"""A reconfig request (opcode 16) checked as ZooKeeper's PrepRequestProcessor checks it.

The leader turns a request into the next membership, or refuses it with the error ZooKeeper
gives, in ZooKeeper's order: a reconfiguration already in flight (RECONFIGINPROGRESS), a
`fromConfig` that is not the last version seen (BADVERSION), a request that does not describe a
membership (BADARGUMENTS; an unparsable server id is MARSHALLINGERROR, because ZooKeeper lets
that NumberFormatException through to its catch-all), too few voters left (BADARGUMENTS), and
no quorum of the new voters connected and synced to this leader (NEWCONFIGNOQUORUM). The
checks before these (RECONFIGDISABLED, UNIMPLEMENTED on a server that does not lead) and the
WRITE permission on `/zookeeper/config` after them are prep's, which knows the request's
session and the pending changes.

Two forms exist. Incremental (`joiningServers`, `leavingServers`, comma-separated) edits the
current members and needs a majority configuration; a joiner must give all three ports
(`server.N=host:quorum:election[:role];[clientHost:]clientPort`). Non-incremental
(`newMembers`, separated by commas or newlines) replaces the membership, hierarchy included.
Everything here is plain data in, plain data out.
"""

from __future__ import annotations

import attrs

from zkserver.config import PARTICIPANT, ConfigError, ServerSpec, parse_membership, parse_server
from zkserver.proto.codes import Err
from zkserver.proto.records import ReconfigRequest
from zkserver.quorum.membership import Membership


class Refused(Exception):
    """The request fails with `code` (the leader still spends a zxid on an error txn)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@attrs.frozen
class LeaderView:
    """What the leader knows when a reconfig arrives: the membership in force, the version of
    the last one proposed (the same unless a reconfiguration is in flight), the voters
    connected and synced to it (itself included), and `standaloneEnabled`."""

    current: Membership
    last_seen_version: int
    synced: frozenset[int]
    standalone_enabled: bool = True


def _split(text: str | None) -> list[str] | None:
    """ZooKeeper's StringUtils.split on ',': trimmed pieces, empty ones dropped."""
    if text is None:
        return None
    return [piece.strip() for piece in text.split(",") if piece.strip()]


def _sid(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise Refused(Err.MARSHALLINGERROR) from None


def _addresses(spec: ServerSpec) -> set[tuple[str, int]]:
    return {(spec.host, spec.quorum_port), (spec.host, spec.election_port)}


def _incremental(req: ReconfigRequest, view: LeaderView) -> dict[int, ServerSpec]:
    joining = _split(req.joiningServers)
    leaving = _split(req.leavingServers)
    if view.current.hierarchical:
        raise Refused(Err.BADARGUMENTS)  # incremental changes need a majority configuration
    servers = dict(view.current.servers)
    for text in leaving or ():
        servers.pop(_sid(text), None)
    for joiner in joining or ():
        parts = [p.strip() for p in joiner.split("=") if p.strip()]
        if len(parts) != 2:
            raise Refused(Err.BADARGUMENTS)
        sid = _sid(parts[0][parts[0].rfind(".") + 1:])
        try:
            spec = parse_server(f"server.{sid}", parts[1], "reconfig")
        except ConfigError:
            raise Refused(Err.BADARGUMENTS) from None
        if spec.client_port is None:
            raise Refused(Err.BADARGUMENTS)  # each joiner must give all three ports
        for other in servers.values():
            if other.sid != sid and _addresses(other) & _addresses(spec):
                raise Refused(Err.BADARGUMENTS)
        servers.pop(sid, None)
        servers[sid] = spec
    return servers


def _non_incremental(req: ReconfigRequest, view: LeaderView) -> Membership:
    text = (req.newMembers or "").replace(",", "\n")
    try:
        servers, groups, weights = parse_membership(text, "reconfig")
        new = Membership(servers, groups, weights)
        new.verifier()  # a hierarchy that names unknown servers, or weighs nothing
    except (ConfigError, ValueError):
        raise Refused(Err.BADARGUMENTS) from None
    voters = sum(1 for s in servers.values() if s.peer_type == PARTICIPANT)
    observers = len(servers) - voters
    # parseDynamicConfig's IllegalArgumentExceptions, which reach ZooKeeper's catch-all.
    if voters == 0 and (not view.standalone_enabled or observers):
        raise Refused(Err.MARSHALLINGERROR)
    if voters == 1 and view.standalone_enabled and observers:
        raise Refused(Err.MARSHALLINGERROR)
    return new


def plan(req: ReconfigRequest, view: LeaderView, zxid: int) -> Membership:
    """The membership `req` asks for, versioned `zxid`; raises `Refused` as ZooKeeper would."""
    if view.last_seen_version != view.current.version:
        raise Refused(Err.RECONFIGINPROGRESS)
    if req.curConfigId != -1 and req.curConfigId != view.last_seen_version:
        raise Refused(Err.BADVERSION)
    if req.newMembers is not None:
        new = attrs.evolve(_non_incremental(req, view), version=zxid)
    else:
        new = Membership(_incremental(req, view), version=zxid)
    voters = new.verifier().voters
    if len(voters) < (2 if view.standalone_enabled else 1):
        raise Refused(Err.BADARGUMENTS)
    if not new.verifier().has_quorum(view.synced & voters):
        raise Refused(Err.NEWCONFIGNOQUORUM)
    return new
