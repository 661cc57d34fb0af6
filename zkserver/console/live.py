"""Live updates: a persistent recursive watch on the open node, fed to the page over SSE.

Each open node page holds one `text/event-stream` response. The stream adds a recursive
watch with the login's own client (so a user sees only the changes the server lets that
session watch) and sends one `data:` line of JSON per event: type and path. When the
connection to ZooKeeper drops, events may be missed, so the stream says `resync` and the page
re-reads what it shows. A comment every `KEEPALIVE` seconds finds a browser that went away;
leaving the stream removes the watch from the server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import trio

import client
from zkserver.console.sessions import Login

KEEPALIVE = 15.0


def _message(kind: str, **fields: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(fields)}\n\n".encode()


async def events(login: Login, path: str) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    try:
        async with login.zk.add_watch(path, recursive=True) as watch:
            yield _message("ready", path=path)
            stream = aiter(watch)
            while not login.closed.is_set():
                event = None
                with trio.move_on_after(KEEPALIVE):
                    event = await anext(stream)
                if event is None:
                    yield b": keepalive\n\n"
                elif event.type == client.EventType.NONE:
                    yield _message("resync", state=event.state.name)
                else:
                    yield _message("change", type=event.type.name, path=event.path)
    except StopAsyncIteration:
        pass
    except client.WatchOverflowError:
        yield _message("resync", state="overflow")
    except (client.ZooKeeperError, ValueError) as e:
        yield _message("closed", reason=type(e).__name__)
