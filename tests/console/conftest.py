"""Fixtures for the web console's tests: a zkserver process with its AdminServer (and so the
console) on a free loopback port, and Debian's Chromium driven by Playwright.

Playwright's own browser download is not used: the browser is /usr/bin/chromium from Debian
(tests/run.sh installs it). A missing browser is a failed setup, never a silent skip.
`UPDATE_SCREENSHOTS=1` makes the browser tests write docs/img/console-*.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from consolekit import CHROMIUM, CONSOLE_KEYS, ConsoleServer, wait_http
from support.process import ZkServerProcess
from support.realzk import free_port


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[ConsoleServer]:
    admin_port = free_port()
    extra = [*CONSOLE_KEYS, f"admin.serverPort={admin_port}"]
    with ZkServerProcess(tmp_path_factory.mktemp("console"), free_port(), extra=extra) as proc:
        wait_http(admin_port)
        yield ConsoleServer(proc, admin_port)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (tests/run.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM,
                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)  # generous: CI machines are small and shared
    context.set_default_navigation_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()
