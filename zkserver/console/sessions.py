"""Login sessions: each one owns a ZooKeeper session of its own, held open by a task.

A login opens a client (the project's Trio client) to this server's client port on loopback
with the user's digest credentials, or, for a browser that presented a TLS client certificate
over the AdminServer's HTTPS, with that certificate's `x509` identity: the console cannot
present the browser's certificate itself, so the server grants the identity to the login's
own connection (`grant`, again after any reconnect); every page the user loads runs its
requests through that
client, so the server applies its ACLs as it would to any client. Logging out, or leaving the
console idle for `IDLE_LIMIT`, closes the ZooKeeper session (and deletes its ephemerals). The
browser holds only a random cookie naming the login.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable

import attrs
import trio

from zkserver import client
from zkserver.console import csrf

log = logging.getLogger(__name__)

IDLE_LIMIT = 30 * 60.0  # seconds without a request before a login is closed
SESSION_TIMEOUT = 30.0  # the console's ZooKeeper sessions (seconds, the server clamps it)
MAX_LOGINS = 64
CACHE_PATHS = 8  # sorted child lists kept per login (paging a huge node re-reads nothing)
MAX_REPLY = 64 * 1024 * 1024  # a 100,000-child listing is bigger than jute.maxbuffer


@attrs.define(eq=False)
class Login:
    token: str
    csrf: str
    zk: client.Client
    identities: list[str]  # "digest:user" names added to the session, for display
    last_used: float
    max_data: int  # the server's jute.maxbuffer: a larger value is refused before sending
    grant: Callable[[int], None] | None = None  # gives a session id the login's x509 identity
    closed: trio.Event = attrs.field(factory=trio.Event)
    flash: list[tuple[str, str]] = attrs.field(factory=list)  # (kind, message) for next page
    children: OrderedDict[str, tuple[tuple[int, int], list[str]]] = attrs.field(
        factory=OrderedDict)

    def cached_children(self, path: str, key: tuple[int, int]) -> list[str] | None:
        hit = self.children.get(path)
        if hit is None or hit[0] != key:
            return None
        self.children.move_to_end(path)
        return hit[1]

    def cache_children(self, path: str, key: tuple[int, int], names: list[str]) -> None:
        self.children[path] = (key, names)
        self.children.move_to_end(path)
        while len(self.children) > CACHE_PATHS:
            self.children.popitem(last=False)


class Logins:
    """The console's logins, each a task in the console's nursery holding a client open."""

    def __init__(self, nursery: trio.Nursery, hosts: str, max_data: int) -> None:
        self._nursery = nursery
        self.hosts = hosts
        self.max_data = max_data
        self._by_token: dict[str, Login] = {}

    def get(self, token: str | None) -> Login | None:
        login = self._by_token.get(token or "")
        if login is not None:
            if login.closed.is_set():
                return None
            login.last_used = trio.current_time()
            if login.grant is not None:
                login.grant(login.zk.session_id)  # a reconnect made a new connection
        return login

    async def login(self, user: str, password: str) -> Login:
        """Open a ZooKeeper session as `user` (anonymous when empty). Raises ZooKeeperError or
        OSError when the server cannot be reached."""
        self._make_room()
        auth = [("digest", f"{user}:{password}")] if user else []
        return await self._nursery.start(self._hold, auth, [f"digest:{user}"] if user else [])

    async def login_x509(self, dn: str, grant: Callable[[int], None]) -> Login:
        """Open a ZooKeeper session holding the `x509` identity `dn` (given by `grant`)."""
        self._make_room()
        return await self._nursery.start(self._hold, [], [f"x509:{dn}"], grant)

    def _make_room(self) -> None:
        if len(self._by_token) >= MAX_LOGINS:
            oldest = min(self._by_token.values(), key=lambda lg: lg.last_used)
            oldest.closed.set()

    async def _hold(self, auth: list[tuple[str, str]], identities: list[str],
                    grant: Callable[[int], None] | None = None,
                    task_status: trio.TaskStatus[Login] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        login: Login | None = None
        try:
            async with client.connect(self.hosts, auth=auth, session_timeout=SESSION_TIMEOUT,
                                      connect_timeout=5.0, request_timeout=10.0,
                                      randomize_hosts=False, max_buffer=MAX_REPLY) as zk:
                if grant is not None:
                    grant(zk.session_id)
                login = Login(secrets.token_urlsafe(32), csrf.new_token(), zk, identities,
                              trio.current_time(), self.max_data, grant)
                self._by_token[login.token] = login
                task_status.started(login)
                started = True
                await login.closed.wait()
        except Exception as e:  # a login's end must never stop the console
            if not started:
                raise
            log.info("console login ended: %s", e)
        finally:
            if login is not None:
                login.closed.set()
                self._by_token.pop(login.token, None)

    def logout(self, login: Login) -> None:
        login.closed.set()

    async def reap(self) -> None:
        """Close logins idle for longer than IDLE_LIMIT, and ones whose client has ended."""
        while True:
            await trio.sleep(10)
            now = trio.current_time()
            for login in list(self._by_token.values()):
                if now - login.last_used > IDLE_LIMIT or login.zk.state.terminal:
                    login.closed.set()
