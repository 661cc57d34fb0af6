"""The admin HTTP server outlives its connections: a browser that drops a live stream mid-send,
or an application that fails, ends that one connection and never the listener (whose failure
would stop the whole server, as one flaky console test did)."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import trio

from zkserver.server.admin import Reply, Request, serve_http


async def _get(host: str, port: int, target: str) -> bytes:
    s = await trio.open_tcp_stream(host, port)
    async with s:
        await s.send_all(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return await s.receive_some(1000)


async def _serve(nursery: trio.Nursery, app: Any) -> tuple[str, int]:
    async def run(task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        await serve_http(lambda m, t: (200, "text/plain", b"ok\n"), "127.0.0.1", 0, "test",
                         mount=("/app", app), task_status=task_status)
    return await nursery.start(run)


async def test_peer_resetting_a_stream_midway_leaves_the_server_up() -> None:
    async def app(req: Request) -> Reply:
        async def chunks() -> AsyncIterator[bytes]:
            while True:
                yield b"data: " + b"x" * 65536 + b"\n\n"
                await trio.sleep(0)
        return Reply(200, "text/event-stream", chunks())

    async with trio.open_nursery() as nursery:
        host, port = await _serve(nursery, app)
        for _ in range(30):
            s = await trio.open_tcp_stream(host, port)
            await s.send_all(b"GET /app HTTP/1.1\r\nHost: x\r\n\r\n")
            await s.receive_some(1000)
            s.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await s.aclose()  # a reset while the server is sending
        assert (await _get(host, port, "/x")).startswith(b"HTTP/1.1 200")
        nursery.cancel_scope.cancel()


async def test_a_failing_application_ends_only_its_connection() -> None:
    async def app(req: Request) -> Reply:
        raise RuntimeError("a bug in one page")

    async with trio.open_nursery() as nursery:
        host, port = await _serve(nursery, app)
        assert await _get(host, port, "/app") == b""  # closed without an answer
        assert (await _get(host, port, "/x")).startswith(b"HTTP/1.1 200")
        nursery.cancel_scope.cancel()
