"""One exception class per ZooKeeper error code, under a common base.

Callers catch the precise condition they can handle (`NodeExistsError` after a create,
`BadVersionError` in a compare-and-set loop) and let the rest travel. The classes mirror
`zkserver.proto.codes.Err` one to one, so `error_for(code)` turns any code the server sends into
the right instance; a code we do not know still becomes a `ZooKeeperError` carrying it.

Two families matter to retry logic: `ConnectionLossError` and `OperationTimeoutError` mean "the
outcome is unknown, the session may be fine" (retry idempotent work), while
`SessionExpiredError` means the session, its ephemerals and its watches are gone for good.
"""

from __future__ import annotations

from typing import ClassVar

from zkserver.proto.codes import Err


class ZooKeeperError(Exception):
    """Base of every error the client raises for a ZooKeeper condition."""

    code: ClassVar[int] = Err.SYSTEMERROR
    # Set only on the error a failed multi raises (`Transaction.commit`): which op failed, and
    # per op what became of it. Declared for type checkers; other errors do not have them.
    index: int
    results: list[ZooKeeperError]

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        self.path = path
        text = message or self.__class__.__name__
        if path is not None:
            text = f"{text} (path {path!r})"
        super().__init__(text)


class SystemZooKeeperError(ZooKeeperError):
    """Codes -1..-99: failures of the system rather than of the request's arguments."""


class ApiError(ZooKeeperError):
    """Codes -100 and below: the request was understood and refused."""

    code = Err.APIERROR


# -- system errors ------------------------------------------------------------------------------


class RuntimeInconsistencyError(SystemZooKeeperError):
    """In a failed multi: an op after the one that failed, never attempted."""

    code = Err.RUNTIMEINCONSISTENCY


class DataInconsistencyError(SystemZooKeeperError):
    code = Err.DATAINCONSISTENCY


class ConnectionLossError(SystemZooKeeperError):
    """The connection dropped with the request in flight: it may or may not have been applied."""

    code = Err.CONNECTIONLOSS


class MarshallingError(SystemZooKeeperError):
    code = Err.MARSHALLINGERROR


class UnimplementedError(SystemZooKeeperError):
    """The server does not know the operation (or TTL nodes are disabled on it)."""

    code = Err.UNIMPLEMENTED


class OperationTimeoutError(SystemZooKeeperError):
    """No reply within the request timeout; the request may still be applied later."""

    code = Err.OPERATIONTIMEOUT


class BadArgumentsError(SystemZooKeeperError):
    code = Err.BADARGUMENTS


class UnknownSessionError(SystemZooKeeperError):
    code = Err.UNKNOWNSESSION


class NewConfigNoQuorumError(SystemZooKeeperError):
    code = Err.NEWCONFIGNOQUORUM


class ReconfigInProgressError(SystemZooKeeperError):
    code = Err.RECONFIGINPROGRESS


# -- API errors ---------------------------------------------------------------------------------


class NoNodeError(ApiError):
    code = Err.NONODE


class NoAuthError(ApiError):
    code = Err.NOAUTH


class BadVersionError(ApiError):
    code = Err.BADVERSION


class NoChildrenForEphemeralsError(ApiError):
    code = Err.NOCHILDRENFOREPHEMERALS


class NodeExistsError(ApiError):
    code = Err.NODEEXISTS


class NotEmptyError(ApiError):
    code = Err.NOTEMPTY


class SessionExpiredError(ApiError):
    """The session is gone: its ephemerals are deleted and this client can do nothing more."""

    code = Err.SESSIONEXPIRED


class InvalidCallbackError(ApiError):
    code = Err.INVALIDCALLBACK


class InvalidACLError(ApiError):
    code = Err.INVALIDACL


class AuthFailedError(ApiError):
    code = Err.AUTHFAILED


class SessionMovedError(ApiError):
    code = Err.SESSIONMOVED


class NotReadOnlyError(ApiError):
    """A write sent while connected to a read-only server."""

    code = Err.NOTREADONLY


class EphemeralOnLocalSessionError(ApiError):
    code = Err.EPHEMERALONLOCALSESSION


class NoWatcherError(ApiError):
    code = Err.NOWATCHER


class RequestTimeoutError(ApiError):
    code = Err.REQUESTTIMEOUT


class ReconfigDisabledError(ApiError):
    code = Err.RECONFIGDISABLED


class SessionClosedRequireSaslError(ApiError):
    code = Err.SESSIONCLOSEDREQUIRESASLAUTH


class QuotaExceededError(ApiError):
    code = Err.QUOTAEXCEEDED


class ThrottledOpError(ApiError):
    code = Err.THROTTLEDOP


# -- client-side conditions -----------------------------------------------------------------


class RolledBackError(ZooKeeperError):
    """In a failed multi: an op that succeeded on its own but was undone with the rest (code 0)."""

    code = Err.OK


class ClientClosedError(SessionExpiredError):
    """The client was closed: like an expired session for whoever still holds a call or a watch.

    It subclasses `SessionExpiredError` so code that treats "session gone" once handles both."""


class WatchOverflowError(ZooKeeperError):
    """A persistent watch's consumer fell behind and events were dropped; re-read the state."""


class ProtocolError(ConnectionLossError):
    """The server broke the protocol (an out-of-order reply, a malformed frame): the connection
    is dropped, which callers see as a connection loss."""


_BY_CODE: dict[int, type[ZooKeeperError]] = {}
for _cls in list(globals().values()):
    if (isinstance(_cls, type) and issubclass(_cls, ZooKeeperError)
            and _cls not in (ZooKeeperError, SystemZooKeeperError, ApiError, ClientClosedError,
                             WatchOverflowError, ProtocolError)):
        _BY_CODE[int(_cls.code)] = _cls
_BY_CODE[Err.APIERROR] = ApiError
_BY_CODE[Err.SYSTEMERROR] = SystemZooKeeperError


def error_class(code: int) -> type[ZooKeeperError]:
    """The exception class for a ZooKeeper error code."""
    return _BY_CODE.get(code, ZooKeeperError)


def error_for(code: int, path: str | None = None) -> ZooKeeperError:
    """An exception instance for `code`, naming `path` when the request had one."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = ZooKeeperError(f"unknown ZooKeeper error code {code}", path=path)
        err.code = code  # type: ignore[misc]
        return err
    return cls(path=path)
