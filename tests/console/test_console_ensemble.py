"""The console's server page on a 3-server ensemble, in the browser: kill -9 a follower and
see it marked down, restart it and see it back as a follower; the members' tree digests
compared at one zxid, before and after."""

from __future__ import annotations

from consolekit import CONSOLE_KEYS, ConsoleServer, login, screenshot, wait_http
from playwright.sync_api import expect
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerEnsemble, free_port_base
from support.realzk import four_letter, free_port
from support.waiting import wait_for

from zkserver.console.digests import parse_hash


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
        check = page.locator("#digest-check")
        expect(check).to_have_class("agree", timeout=20_000)
        expect(check).to_contain_text("all 3 members agree at zxid")
        # What the page compared: each member's `hash` four-letter word, as ZooKeeper's
        compared = int(check.get_attribute("data-zxid"), 16)
        for i in ens.ids:
            pairs = parse_hash(four_letter("127.0.0.1", ens.port + i, "hash"))
            assert len(pairs) == 1 and pairs[0][0] >= compared
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
        kz = kazoo_client(f"127.0.0.1:{ens.port + victim}")
        try:
            kz.create("/after-restart", b"x")
            last = kz.get("/after-restart")[1].mzxid
        finally:
            stop_kazoo(kz)
        wait_for(lambda: int(check.get_attribute("data-zxid") or "0", 16) >= last, 20,
                 "a digest check at or after the write")
        expect(check).to_have_class("agree")
