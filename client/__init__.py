"""An async ZooKeeper client for Trio and asyncio (on AnyIO).

    from zkserver import client

    async with client.connect("127.0.0.1:2181/app") as zk:
        await zk.create("/x", b"hi")
        data, stat, watch = await zk.get("/x", watch=True)

It shares zkserver's codec (`zkserver.proto`). See docs/client.md for the whole API.
"""

from zkserver.proto.codes import CreateMode, EventType, KeeperState

from .acl import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Perm,
    digest_acl,
    digest_id,
    world_acl,
)
from .client import Client, connect
from .errors import *  # noqa: F403 (one class per error code)
from .errors import ZooKeeperError, error_class, error_for
from .results import (
    ACLs,
    Checked,
    Children,
    Created,
    Deleted,
    ExistsWatched,
    NodeData,
    SetDataResult,
    Stat,
    WatchedChildren,
    WatchedEvent,
    WatchedNodeData,
)
from .retry import RetryPolicy, protected_create, retry
from .states import State, StateStream
from .transaction import GetChildrenOp, GetDataOp, Transaction
from .watches import PersistentWatch, Watch

__all__ = [
    "ACL", "ACLs", "CREATOR_ALL_ACL", "Checked", "Children", "Client", "CreateMode", "Created",
    "Deleted", "EventType", "ExistsWatched", "GetChildrenOp", "GetDataOp", "Id", "KeeperState",
    "NodeData", "OPEN_ACL_UNSAFE", "Perm", "PersistentWatch", "READ_ACL_UNSAFE", "RetryPolicy",
    "SetDataResult", "Stat", "State", "StateStream", "Transaction", "Watch", "WatchedChildren",
    "WatchedEvent", "WatchedNodeData", "ZooKeeperError", "connect", "digest_acl", "digest_id",
    "error_class", "error_for", "protected_create", "retry", "world_acl",
]
