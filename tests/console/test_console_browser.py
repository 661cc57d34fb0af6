"""The web console in a real browser (Debian's Chromium through Playwright) on a real zkserver:
browsing, paging a 100,000-child node, changes and their conflicts, ACLs as the logged-in
identity, and live updates from another client."""

from __future__ import annotations

import threading
import time

import pytest
import trio
from consolekit import login, screenshot, tree
from kazoo.security import make_digest_acl
from playwright.sync_api import expect
from support.kz import kazoo_client, stop_kazoo

import client


@pytest.fixture
def kz(console):
    zk = kazoo_client(console.hosts)
    yield zk
    stop_kazoo(zk)


def child_link(pg, name: str):
    return pg.locator("#child-list").get_by_role("link", name=name, exact=True)


def test_browse_three_levels_deep(console, page, kz):
    kz.create("/shop/fruit/apple", b'{"color": "red", "sizes": [1, 2]}', makepath=True)
    kz.create("/shop/fruit/pear", b"green")
    kz.create("/shop/veg", b"")
    login(page, console)
    screenshot(page, "tree")
    child_link(page, "shop").click()
    expect(page.locator("#node-path")).to_have_text("/shop")
    child_link(page, "fruit").click()
    expect(page.locator("#node-path")).to_have_text("/shop/fruit")
    child_link(page, "apple").click()
    expect(page.locator("#node-path")).to_have_text("/shop/fruit/apple")
    expect(page.locator("#crumbs")).to_have_text("/ / shop / fruit / apple")
    # The data as text, then as pretty JSON, hex and base64.
    expect(page.locator('pre[data-view="text"]')).to_have_text(
        '{"color": "red", "sizes": [1, 2]}')
    page.click('button[data-view="json"]')
    expect(page.locator('pre[data-view="json"]')).to_be_visible()
    expect(page.locator('pre[data-view="json"]')).to_contain_text('"color": "red",\n')
    expect(page.locator('pre[data-view="text"]')).to_be_hidden()
    page.click('button[data-view="hex"]')
    expect(page.locator('pre[data-view="hex"]')).to_contain_text("7b 22 63 6f")
    stat = kz.exists("/shop/fruit/apple")
    expect(page.locator('td[data-field="mzxid"]')).to_have_text(f"0x{stat.mzxid:x}")
    expect(page.locator('td[data-field="mtime"]')).to_contain_text(" UTC (")
    expect(page.locator("#acl-table")).to_contain_text("anyone")
    screenshot(page, "node")
    # A crumb goes back up; jump-to-path and the name filter.
    page.locator("#crumbs").get_by_role("link", name="shop").click()
    expect(page.locator("#node-path")).to_have_text("/shop")
    page.fill("#jump input[name=path]", "/shop/fruit")
    page.press("#jump input[name=path]", "Enter")
    expect(page.locator("#node-path")).to_have_text("/shop/fruit")
    page.fill("#filter input[name=filter]", "PE")
    page.press("#filter input[name=filter]", "Enter")
    expect(page.locator("#child-list li")).to_have_count(1)
    expect(page.locator("#child-list")).to_have_text("pear")


async def _make_children(hosts: str, parent: str, n: int) -> None:
    """n children in multis of 5,000 creates, a few on the wire at once."""
    async with client.connect(hosts) as zk:
        await zk.create(parent)
        limit = trio.Semaphore(4)

        async def batch(start: int) -> None:
            async with limit:
                txn = zk.transaction()
                for i in range(start, min(start + 5000, n)):
                    txn.create(f"{parent}/c{i:06d}")
                await txn.commit()

        async with trio.open_nursery() as nursery:
            for start in range(0, n, 5000):
                nursery.start_soon(batch, start)


def test_page_through_a_100000_child_node(console, page, kz):
    t0 = time.monotonic()
    trio.run(_make_children, console.hosts, "/huge", 100_000)
    made = time.monotonic() - t0
    assert kz.exists("/huge").numChildren == 100_000
    login(page, console)
    t0 = time.monotonic()
    page.goto(console.base + tree("/huge"))
    expect(page.locator("#child-count")).to_have_text("1–100 of 100000")
    first = time.monotonic() - t0
    expect(page.locator("#child-list li")).to_have_count(100)
    expect(page.locator("#child-list li").first).to_have_text("c000000")
    t0 = time.monotonic()
    page.click("a.pg-next")
    expect(page.locator("#child-count")).to_have_text("101–200 of 100000")
    expect(page.locator("#child-list li").first).to_have_text("c000100")
    following = time.monotonic() - t0
    page.click("a.pg-last")
    expect(page.locator("#page-of")).to_have_text("page 1000 of 1000")
    expect(page.locator("#child-list li").last).to_have_text("c099999")
    page.fill("#pager input[name=page]", "500")
    page.press("#pager input[name=page]", "Enter")
    expect(page.locator("#child-count")).to_have_text("49901–50000 of 100000")
    page.click("a.pg-prev")
    expect(page.locator("#child-list li").first).to_have_text("c049800")
    page.fill("#filter input[name=filter]", "c09999")
    page.press("#filter input[name=filter]", "Enter")
    expect(page.locator("#child-count")).to_have_text("1–10 of 10")
    screenshot(page, "paging")
    print(f"100,000 children made in {made:.1f}s; first page {first:.2f}s, "
          f"next page {following:.2f}s")


def test_create_edit_conflict_and_recursive_delete(console, page, kz):
    login(page, console)
    form = page.locator("#create-form")
    form.locator("input[name=name]").fill("crud")
    form.locator("textarea[name=data]").fill("v1")
    form.locator("button").click()
    expect(page.locator("#messages")).to_contain_text("created /crud")
    assert kz.get("/crud")[0] == b"v1"
    child_link(page, "crud").click()
    for name, mode in (("a", "persistent"), ("seq-", "persistent_sequential"),
                       ("eph", "ephemeral"), ("box", "container"),
                       ("ttl", "persistent_with_ttl")):
        form = page.locator("#create-form")
        form.locator("input[name=name]").fill(name)
        form.locator("select[name=mode]").select_option(mode)
        if "ttl" in mode:
            form.locator("input[name=ttl]").fill("600000")
        form.locator("button").click()
        expect(page.locator("#messages")).to_contain_text("created /crud/" + name)
    kz.create("/crud/a/deep/deeper", makepath=True)
    names = sorted(kz.get_children("/crud"))
    assert names[:4] == ["a", "box", "eph", "seq-0000000001"] and names[4] == "ttl"
    assert kz.exists("/crud/eph").ephemeralOwner != 0
    # Edit with the version the page loaded.
    page.goto(console.base + tree("/crud"))
    page.fill("#edit-form textarea", "v2")
    page.click("#edit-form button")
    expect(page.locator("#messages")).to_contain_text("saved /crud")
    assert kz.get("/crud")[0] == b"v2"
    # Another client changes the node; saving the page's edit must not overwrite it.
    kz.set("/crud", b"theirs")
    page.fill("#edit-form textarea", "mine")
    page.click("#edit-form button")
    expect(page.locator("#messages")).to_contain_text("Version conflict")
    assert kz.get("/crud")[0] == b"theirs"
    expect(page.locator("#edit-form textarea")).to_have_value("mine")
    expect(page.locator('pre[data-view="text"]')).to_have_text("theirs")
    screenshot(page, "conflict")
    # Recursive delete: the confirmation lists what goes.
    page.click("#delete-link")
    listing = page.locator("#delete-list")
    for p in ("/crud", "/crud/a", "/crud/a/deep", "/crud/a/deep/deeper", "/crud/eph"):
        expect(listing.get_by_text(p, exact=True)).to_have_count(1)
    expect(page.locator("#delete-count")).to_contain_text("This deletes 8 node(s)")
    screenshot(page, "delete")
    page.click("#delete-form button")
    expect(page.locator("#messages")).to_contain_text("deleted /crud")
    assert kz.exists("/crud") is None


def test_acl_refuses_then_allows_after_login(console, page, kz):
    kz.add_auth("digest", "alice:secret")
    kz.create("/vault", b"the crown jewels", acl=[make_digest_acl("alice", "secret", all=True)])
    login(page, console)  # as anyone
    page.goto(console.base + tree("/vault"))
    expect(page.locator("#messages")).to_contain_text("you may not read this node")
    expect(page.locator("#data-error")).to_contain_text("NoAuthError")
    expect(page.locator("pre.view")).to_have_count(0)
    screenshot(page, "denied")
    # The addauth equivalent: add alice's identity to this login's session.
    page.fill("#addauth input[name=user]", "alice")
    page.fill("#addauth input[name=password]", "secret")
    page.click("#addauth button")
    expect(page.locator("#messages")).to_contain_text("identity digest:alice added")
    expect(page.locator("#node-path")).to_have_text("/vault")
    expect(page.locator('pre[data-view="text"]')).to_have_text("the crown jewels")
    # Logging out closes the session; a login as bob is refused, one as alice allowed.
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    login(page, console, "bob", "guess")
    page.goto(console.base + tree("/vault"))
    expect(page.locator("#data-error")).to_be_visible()
    page.click("#logout")
    login(page, console, "alice", "secret")
    page.goto(console.base + tree("/vault"))
    expect(page.locator('pre[data-view="text"]')).to_have_text("the crown jewels")
    expect(page.locator("#who")).to_have_text("digest:alice")
    # Logging out closes the ZooKeeper session: its ephemeral goes.
    form = page.locator("#create-form")
    form.locator("input[name=name]").fill("alice-was-here")
    form.locator("select[name=mode]").select_option("ephemeral")
    form.locator("select[name=acl]").select_option("creator")
    form.locator("button").click()
    expect(page.locator("#messages")).to_contain_text("created /vault/alice-was-here")
    assert kz.exists("/vault/alice-was-here").ephemeralOwner != 0
    page.click("#logout")
    gone = threading.Event()
    if kz.exists("/vault/alice-was-here", watch=lambda event: gone.set()) is not None:
        assert gone.wait(10), "the console's session outlived its logout"
    assert kz.exists("/vault/alice-was-here") is None


def test_a_kazoo_change_appears_without_reload(console, page, kz):
    kz.create("/live/watched", b"before", makepath=True)
    login(page, console)
    page.goto(console.base + tree("/live"))
    expect(page.locator("#live-status")).to_have_text("live")
    page.evaluate("window.stillTheSamePage = true")
    kz.create("/live/newcomer", b"hi")
    new = page.locator('#child-list li[data-path="/live/newcomer"]')
    expect(new).to_be_visible()
    expect(new).to_have_class("changed")
    expect(page.locator("#changes")).to_contain_text("NODE_CREATED /live/newcomer")
    kz.set("/live", b"after")
    expect(page.locator('pre[data-view="text"]')).to_have_text("after")
    expect(page.locator("#data")).to_have_class("changed")
    expect(page.locator("#edit-stale")).to_be_visible()  # the editor still holds version 0
    kz.set("/live/watched", b"deeper change")  # a recursive watch: below the open node too
    expect(page.locator("#changes")).to_contain_text("NODE_DATA_CHANGED /live/watched")
    kz.delete("/live/newcomer")
    expect(new).to_have_count(0)
    assert page.evaluate("window.stillTheSamePage") is True
    screenshot(page, "live")


def test_server_page_standalone(console, page):
    login(page, console)
    page.click("nav >> text=Server")
    expect(page.locator("#members tr[data-sid]")).to_have_count(1)
    expect(page.locator("#members td.role")).to_have_text("standalone")
    expect(page.locator("#members td.state")).to_have_text("up")
    expect(page.locator("#sessions")).to_contain_text("0x")
    # A page that went away takes its live watch with it (the stream notices the closed
    # connection), so the watch tables do not list pages nobody looks at.
    other = page.context.new_page()
    other.goto(console.base + tree("/zookeeper"))
    expect(other.locator("#live-status")).to_have_text("live")
    expect(page.locator("#watches")).to_contain_text("/zookeeper")  # refreshed every 2 s
    other.close()
    expect(page.locator("#watches")).not_to_contain_text("/zookeeper")
    expect(page.locator("#charts svg")).to_have_count(4)
    screenshot(page, "server")
