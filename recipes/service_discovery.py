"""Service registry and discovery, on Curator's `curator-x-discovery` layout and JSON.

Layout: `<base>/<service name>/<instance id>`, the data being Curator's `ServiceInstance` JSON:

    {"name": "api", "id": "7c3…", "address": "10.0.0.5", "port": 8080, "sslPort": null,
     "payload": {"@class": "java.util.LinkedHashMap", "zone": "a"},
     "registrationTimeUTC": 1700000000000, "serviceType": "DYNAMIC",
     "uriSpec": {"parts": [{"value": "scheme", "variable": true}, …]}, "enabled": true}

so a Java `ServiceDiscovery` (with a `JsonInstanceSerializer` over a Map payload) sees our
instances and we see its. A dict payload is written with Jackson's `@class` type id (Curator
annotates the payload `@JsonTypeInfo(use = CLASS)`), and the id found on read is kept.

    async with ServiceDiscovery(session, "/services") as discovery:
        await discovery.register(ServiceInstance(name="api", address="10.0.0.5", port=8080))
        async with discovery.service_cache("api") as cache:
            provider = ServiceProvider(cache, RoundRobinStrategy())
            instance = provider.get_instance()

Registration (why it is built this way):
* A DYNAMIC instance is an EPHEMERAL node: it disappears with its process. Parents are
  CONTAINER nodes (the server removes empty ones), recreated whenever they are missing.
* Each registered instance has a keeper task in the discovery's task group. It watches the node
  and puts it back, with the *latest* data, whenever it is deleted (CURATOR-146); handed a
  `recipes.session.Session`, it re-registers everything on each new session after an expiry.
  A node left by one of our earlier sessions is replaced (an ephemeral of a dying session
  would otherwise vanish under us).
* `update` rewrites the data in place (setData), so readers never see the instance missing.
* `unregister` wins over re-registration (CURATOR-164): the keeper is cancelled before the
  node is deleted, and requests on one connection are applied in order.

Discovery: `ServiceCache` is a `TreeCache` one level deep over the service's node, kept current
by a persistent recursive watch and re-read after every reconnection, so its instance list
converges to the registered set; `ServiceProvider` picks one with a strategy (round-robin,
random, sticky) and can avoid instances reported failing (`note_error`), like Curator's
`DownInstancePolicy`.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from zkserver.client import Client, CreateMode
from zkserver.client import errors as E
from zkserver.recipes._common import (
    RETRYABLE,
    background,
    drop_watch,
    ensure_path,
    guaranteed_delete,
    join,
    retrying,
    wait_watch,
)
from zkserver.recipes._lifetime import Lifetime
from zkserver.recipes.session import Session, each_client
from zkserver.recipes.tree_cache import TreeCache

DEFAULT_PAYLOAD_CLASS = "java.util.LinkedHashMap"
SERVICE_TYPES = ("DYNAMIC", "STATIC", "PERMANENT")


def _uri_parts(spec: str) -> list[dict[str, Any]]:
    """Curator's UriSpec parts for a template like "{scheme}://{address}:{port}"."""
    parts: list[dict[str, Any]] = []
    for literal, variable in re.findall(r"([^{]+)|\{([^}]*)\}", spec):
        if variable:
            parts.append({"value": variable, "variable": True})
        else:
            parts.append({"value": literal, "variable": False})
    return parts


def _uri_spec(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    out = []
    for part in obj.get("parts") or []:
        value = part.get("value", "")
        out.append(f"{{{value}}}" if part.get("variable") else value)
    return "".join(out)


@attrs.define
class ServiceInstance:
    """One instance of a service, as Curator's ServiceInstance."""

    name: str
    address: str | None = None
    port: int | None = None
    id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    ssl_port: int | None = None
    payload: Any = None
    payload_class: str | None = None
    """Jackson's `@class` for a dict payload (java.util.LinkedHashMap when not given)."""
    registration_time_utc: int = attrs.field(factory=lambda: int(time.time() * 1000))
    service_type: str = "DYNAMIC"
    uri_spec: str | None = None
    enabled: bool = True

    def to_json(self) -> bytes:
        payload = self.payload
        if isinstance(payload, dict):
            payload = {"@class": self.payload_class or DEFAULT_PAYLOAD_CLASS, **payload}
        doc = {
            "name": self.name, "id": self.id, "address": self.address, "port": self.port,
            "sslPort": self.ssl_port, "payload": payload,
            "registrationTimeUTC": self.registration_time_utc,
            "serviceType": self.service_type,
            "uriSpec": {"parts": _uri_parts(self.uri_spec)} if self.uri_spec else None,
            "enabled": self.enabled,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ServiceInstance:
        doc = json.loads(data)
        payload = doc.get("payload")
        payload_class = None
        if isinstance(payload, dict) and "@class" in payload:
            payload = dict(payload)
            payload_class = payload.pop("@class")
        return cls(name=doc["name"], id=doc["id"], address=doc.get("address"),
                   port=doc.get("port"), ssl_port=doc.get("sslPort"), payload=payload,
                   payload_class=payload_class,
                   registration_time_utc=doc.get("registrationTimeUTC") or 0,
                   service_type=doc.get("serviceType") or "DYNAMIC",
                   uri_spec=_uri_spec(doc.get("uriSpec")),
                   enabled=doc.get("enabled", True) is not False)

    def build_uri(self, scheme: str = "http") -> str:
        """The instance's URI from its uriSpec (or scheme://address:port)."""
        spec = self.uri_spec or "{scheme}://{address}:{port}"
        values = {"scheme": scheme, "name": self.name, "id": self.id,
                  "address": self.address or "", "port": self.port or "",
                  "ssl-port": self.ssl_port or "",
                  "registration-time-utc": self.registration_time_utc,
                  "service-type": self.service_type}
        return re.sub(r"\{([^}]*)\}", lambda m: str(values.get(m.group(1), "")), spec)


class ServiceDiscovery(Lifetime):
    """Register this process's instances and query everyone's, under `base_path`."""

    def __init__(self, zk: Client | Session, base_path: str = "/services") -> None:
        self.zk = zk
        self.base_path = base_path.rstrip("/")
        self._services: dict[str, ServiceInstance] = {}
        self._keepers: dict[str, anyio.CancelScope] = {}
        self._tasks: anyio.abc.TaskGroup | None = None

    def path_for(self, name: str, instance_id: str | None = None) -> str:
        path = join(self.base_path, name)
        return join(path, instance_id) if instance_id is not None else path

    async def _client(self) -> Client:
        if isinstance(self.zk, Session):
            return await self.zk.wait_client()
        return self.zk

    # -- life cycle -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[ServiceDiscovery]:
        try:
            async with background() as tasks:
                self._tasks = tasks
                yield self
        finally:
            self._tasks = None
            for instance in list(self._services.values()):
                with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                    try:
                        await self.unregister(instance)
                    except E.ZooKeeperError:
                        pass

    # -- registering ----------------------------------------------------------------------------

    async def register(self, instance: ServiceInstance) -> None:
        """Register `instance` and keep it registered until `unregister` or the end of the
        `async with`."""
        if instance.service_type not in SERVICE_TYPES:
            raise ValueError(f"service type {instance.service_type!r} is not supported")
        if self._tasks is None:
            raise RuntimeError("use `async with ServiceDiscovery(...)` before registering")
        key = f"{instance.name}/{instance.id}"
        self._services[key] = instance
        await self._ensure_registered(await self._client(), instance)
        if key not in self._keepers:
            scope = anyio.CancelScope()
            self._keepers[key] = scope
            self._tasks.start_soon(self._keep, key, scope)

    async def update(self, instance: ServiceInstance) -> None:
        """Change a registered instance's data in place."""
        key = f"{instance.name}/{instance.id}"
        if key not in self._services:
            raise KeyError(f"{key} is not registered here")
        self._services[key] = instance
        await self._ensure_registered(await self._client(), instance)

    async def unregister(self, instance: ServiceInstance) -> None:
        key = f"{instance.name}/{instance.id}"
        self._services.pop(key, None)
        scope = self._keepers.pop(key, None)
        if scope is not None:
            scope.cancel()
        try:
            zk = self.zk.client if isinstance(self.zk, Session) else self.zk
        except RuntimeError:
            return  # between sessions: our ephemerals went with the last one
        await guaranteed_delete(zk, self.path_for(instance.name, instance.id))

    async def _ensure_registered(self, zk: Client, instance: ServiceInstance) -> None:
        path = self.path_for(instance.name, instance.id)
        data = instance.to_json()
        mode = CreateMode.EPHEMERAL if instance.service_type == "DYNAMIC" \
            else CreateMode.PERSISTENT
        while True:
            try:
                await zk.create(path, data, mode=mode)
                return
            except E.NoNodeError:
                await ensure_path(zk, self.path_for(instance.name), container=True)
            except RETRYABLE:
                continue  # if it landed, the next try meets it as ours
            except E.NodeExistsError:
                try:
                    current, stat = await retrying(zk.get, path)
                except E.NoNodeError:
                    continue
                try:
                    if mode.ephemeral and stat.ephemeralOwner != zk.session_id:
                        await zk.delete(path, stat.version)  # an earlier session's node
                        continue
                    if current != data:
                        await zk.set(path, data, stat.version)
                    return
                except (E.BadVersionError, E.NoNodeError, *RETRYABLE):
                    continue

    async def _keep(self, key: str, scope: anyio.CancelScope) -> None:
        with scope:
            async for zk in each_client(self.zk):
                try:
                    await self._keep_on(zk, key)
                    return
                except E.SessionExpiredError:
                    if not isinstance(self.zk, Session):
                        return

    async def _keep_on(self, zk: Client, key: str) -> None:
        while True:
            instance = self._services.get(key)
            if instance is None:
                return
            await self._ensure_registered(zk, instance)
            path = self.path_for(instance.name, instance.id)
            stat, watch = await retrying(zk.exists, path, watch=True)
            if stat is None:
                await drop_watch(watch)
                continue
            await wait_watch(watch)

    # -- querying -------------------------------------------------------------------------------

    async def query_for_names(self) -> list[str]:
        zk = await self._client()
        try:
            return sorted((await retrying(zk.get_children, self.base_path)).children)
        except E.NoNodeError:
            return []

    async def query_for_instances(self, name: str) -> list[ServiceInstance]:
        zk = await self._client()
        try:
            ids = (await retrying(zk.get_children, self.path_for(name))).children
        except E.NoNodeError:
            return []
        out = []
        for instance_id in sorted(ids):
            instance = await self.query_for_instance(name, instance_id)
            if instance is not None:
                out.append(instance)
        return out

    async def query_for_instance(self, name: str, instance_id: str) -> ServiceInstance | None:
        zk = await self._client()
        try:
            data, _ = await retrying(zk.get, self.path_for(name, instance_id))
        except E.NoNodeError:
            return None
        try:
            return ServiceInstance.from_json(data or b"")
        except (ValueError, KeyError):
            return None

    def service_cache(self, name: str) -> ServiceCache:
        return ServiceCache(self.zk, self.base_path, name)


class ServiceCache:
    """The live instances of one service, kept current by a watch: `instances()`."""

    def __init__(self, zk: Client | Session, base_path: str, name: str) -> None:
        self.name = name
        self.path = join(base_path.rstrip("/"), name)
        self.tree = TreeCache(zk, self.path, max_depth=1)

    @property
    def initialized(self) -> anyio.Event:
        return self.tree.initialized

    def instances(self) -> list[ServiceInstance]:
        out = []
        for instance_id in self.tree.children(self.path):
            node = self.tree.get(join(self.path, instance_id))
            if node is None or not node.data:
                continue
            try:
                out.append(ServiceInstance.from_json(node.data))
            except (ValueError, KeyError):
                continue
        return out

    async def wait_for(self, predicate: Callable[[list[ServiceInstance]], bool]) -> None:
        await self.tree.initialized.wait()
        await self.tree.wait_for(lambda _cache: predicate(self.instances()))

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[MemoryObjectReceiveStream[Any]]:
        """TreeEvents for the service's instances (see `recipes.tree_cache`)."""
        async with self.tree.listen() as events:
            yield events

    async def __aenter__(self) -> ServiceCache:
        await self.tree.__aenter__()
        try:
            await self.tree.wait_for(lambda cache: cache.initialized.is_set())
        except BaseException as e:
            await self.tree.__aexit__(type(e), e, e.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc: object) -> bool | None:
        return await self.tree.__aexit__(*exc)


# -- providers ------------------------------------------------------------------------------------


class ProviderStrategy:
    def choose(self, instances: list[ServiceInstance]) -> ServiceInstance | None:
        raise NotImplementedError


class RoundRobinStrategy(ProviderStrategy):
    """Each call the next instance (in id order), wrapping around."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, instances: list[ServiceInstance]) -> ServiceInstance | None:
        if not instances:
            return None
        ordered = sorted(instances, key=lambda i: i.id)
        return ordered[next(self._counter) % len(ordered)]


class RandomStrategy(ProviderStrategy):
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def choose(self, instances: list[ServiceInstance]) -> ServiceInstance | None:
        return self._rng.choice(instances) if instances else None


class StickyStrategy(ProviderStrategy):
    """The same instance for as long as it is live; another (from `master`) once it is gone."""

    def __init__(self, master: ProviderStrategy | None = None) -> None:
        self.master = master or RoundRobinStrategy()
        self._current: str | None = None

    def choose(self, instances: list[ServiceInstance]) -> ServiceInstance | None:
        for instance in instances:
            if instance.id == self._current:
                return instance
        chosen = self.master.choose(instances)
        self._current = chosen.id if chosen is not None else None
        return chosen


class ServiceProvider:
    """Picks an instance of a service from a `ServiceCache`.

    Instances reported with `note_error` at least `error_threshold` times within `down_timeout`
    seconds are left out for that long (unless nothing else is left)."""

    def __init__(self, cache: ServiceCache, strategy: ProviderStrategy | None = None, *,
                 down_timeout: float = 30.0, error_threshold: int = 2) -> None:
        self.cache = cache
        self.strategy = strategy or RoundRobinStrategy()
        self.down_timeout = down_timeout
        self.error_threshold = error_threshold
        self._errors: dict[str, list[float]] = {}

    def _is_down(self, instance: ServiceInstance) -> bool:
        now = time.monotonic()
        recent = [t for t in self._errors.get(instance.id, []) if now - t < self.down_timeout]
        self._errors[instance.id] = recent
        return len(recent) >= self.error_threshold

    def all_instances(self) -> list[ServiceInstance]:
        return [i for i in self.cache.instances() if i.enabled]

    def get_instance(self) -> ServiceInstance | None:
        live = self.all_instances()
        healthy = [i for i in live if not self._is_down(i)]
        return self.strategy.choose(healthy or live)

    def note_error(self, instance: ServiceInstance) -> None:
        self._errors.setdefault(instance.id, []).append(time.monotonic())
