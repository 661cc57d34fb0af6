"""Helpers for the web console's tests: a console server handle, login in the browser,
screenshots for the docs, and a plain HTTP client holding one login's cookie and form token.
"""

from __future__ import annotations

import http.client
import os
import re
import time
from pathlib import Path
from urllib.parse import urlencode

from support.process import ZkServerProcess

CHROMIUM = "/usr/bin/chromium"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
CONSOLE_KEYS = ["admin.enableServer=true", "admin.serverAddress=127.0.0.1",
                "extendedTypesEnabled=true"]


def wait_http(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/console/login")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no console on port {port}")
        time.sleep(0.05)


class ConsoleServer:
    def __init__(self, proc: ZkServerProcess, admin_port: int) -> None:
        self.proc = proc
        self.admin_port = admin_port
        self.base = f"http://127.0.0.1:{admin_port}"

    @property
    def hosts(self) -> str:
        return self.proc.hosts


def login(pg, console: ConsoleServer, user: str = "", password: str = "") -> None:
    pg.goto(console.base + "/console")
    pg.fill("#login input[name=user]", user)
    pg.fill("#login input[name=password]", password)
    pg.click("#login button")
    pg.wait_for_selector("#node-path")


def screenshot(pg, name: str) -> None:
    """Write docs/img/console-NAME.png when UPDATE_SCREENSHOTS=1 (the docs' pictures)."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(DOCS_IMG / f"console-{name}.png"), full_page=True)


class Http:
    """A plain HTTP client for the console with one login's cookie (no browser)."""

    def __init__(self, console: ConsoleServer) -> None:
        self.port = console.admin_port
        self.cookie = ""
        self.csrf = ""

    def request(self, method: str, target: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = dict(headers or {})
        if self.cookie:
            hdrs.setdefault("Cookie", self.cookie)
        if body is not None:
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def login(self, user: str = "", password: str = "") -> Http:
        status, headers, _ = self.post("/console/login", {"user": user, "password": password},
                                       token=False)
        assert status == 303, status
        self.cookie = headers["set-cookie"].split(";")[0]
        status, _, body = self.get("/console/tree?path=/")
        assert status == 200
        self.csrf = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()
        return self

    def get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", target)

    def post(self, target: str, fields: dict[str, str | bytes], token: bool = True,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if token:
            fields = {"csrf": self.csrf, **fields}
        return self.request("POST", target, urlencode(fields).encode(), headers)


def tree(path: str, **params: object) -> str:
    return "/console/tree?" + urlencode({"path": path, **params})
