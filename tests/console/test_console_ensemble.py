"""The console's server page on a 3-server ensemble, in the browser: kill -9 a follower and
see it marked down, restart it and see it back as a follower."""

from __future__ import annotations

from consolekit import CONSOLE_KEYS, ConsoleServer, login, screenshot, wait_http
from playwright.sync_api import expect
from support.process import ZkServerEnsemble, free_port_base
from support.realzk import free_port


class ConsoleEnsemble(ZkServerEnsemble):
    """Server lines that name each member's client port (how the console finds a member), and
    the AdminServer with the console on member 1."""

    def __init__(self, base_dir, port: int, admin_port: int) -> None:
        super().__init__(base_dir, port, extra=["extendedTypesEnabled=true"])
        self.admin_port = admin_port

    def server_lines(self, me: int) -> list[str]:
        return [f"{line};127.0.0.1:{self.port + j}"
                for j, line in zip(self.ids, super().server_lines(me), strict=True)]

    def _node(self, i: int):
        fresh = i not in self.nodes
        node = super()._node(i)
        if fresh and i == 1:
            node.extra += [*CONSOLE_KEYS, f"admin.serverPort={self.admin_port}"]
            node.write_config()
        return node


def test_member_down_and_back_as_follower(tmp_path, page):
    admin_port = free_port()
    with ConsoleEnsemble(tmp_path, free_port_base(3), admin_port) as ens:
        wait_http(admin_port)
        console = ConsoleServer(ens.nodes[1], admin_port)
        login(page, console)
        page.goto(console.base + "/console/server")
        rows = page.locator("#members tr[data-sid]")
        expect(rows).to_have_count(3)
        for i in ens.ids:
            expect(page.locator(f'#members tr[data-sid="{i}"] td.state')).to_have_text("up")
        leader = ens.leader()
        victim = next(i for i in (3, 2) if i != leader)
        screenshot(page, "ensemble")
        ens.kill(victim)
        row = page.locator(f'#members tr[data-sid="{victim}"]')
        expect(row.locator("td.state")).to_have_text("down", timeout=20_000)
        expect(row.locator("td.role")).to_have_text("down")
        screenshot(page, "ensemble-down")
        ens.restart(victim)
        expect(row.locator("td.state")).to_have_text("up", timeout=60_000)
        expect(row.locator("td.role")).to_have_text("follower", timeout=60_000)
        leader_row = page.locator(f'#members tr[data-sid="{leader}"] td.role')
        expect(leader_row).to_have_text("leader")
