"""The web console at the HTTP level: forged and cross-site requests are refused, odd paths,
huge values and data that is not UTF-8 give pages with messages, and neither the page nor
the server breaks. Also the zoo.cfg key that turns the console off."""

from __future__ import annotations

import re

import pytest
from consolekit import CONSOLE_KEYS, Http, tree, wait_http
from support.kz import kazoo_client, stop_kazoo
from support.process import ZkServerProcess
from support.realzk import four_letter, free_port


@pytest.fixture
def kz(console):
    zk = kazoo_client(console.hosts)
    yield zk
    stop_kazoo(zk)


@pytest.fixture
def web(console) -> Http:
    return Http(console).login()


def messages(body: bytes) -> str:
    found = re.search(rb'<div id="messages">(.*?)</div>', body, re.S)
    return found.group(1).decode() if found else ""


def assert_alive(console, kz) -> None:
    assert "Mode: standalone" in four_letter("127.0.0.1", console.proc.port, "srvr")
    kz.exists("/")
    status, _, body = Http(console).login().get(tree("/"))
    assert status == 200 and b'id="node-path"' in body
    assert "Traceback" not in console.proc.log_path.read_text(errors="replace")


def test_login_is_required(console):
    anon = Http(console)
    status, headers, _ = anon.get(tree("/"))
    assert status == 303 and headers["location"].startswith("/console/login?next=")
    status, _, body = anon.post("/console/create", {"parent": "/", "name": "x"}, token=False)
    assert status == 403 and b"not logged in" in body
    status, _, _ = anon.get("/console/events?path=/")
    assert status == 401
    # A login cannot send the browser elsewhere afterwards.
    status, headers, _ = anon.post("/console/login", {"user": "", "password": "",
                                                      "next": "https://evil.example/"},
                                   token=False)
    assert status == 303 and headers["location"] == "/console/tree?path=%2F"
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    status, headers, _ = anon.request(
        "POST", "/console/login", b"user=&password=&next=/console/tree%3Fpath%3D%FF%0D%0AX:%20y")
    assert status == 303 and "\r" not in headers["location"] and "x" not in headers


def test_forged_and_cross_site_changes_are_refused(console, web, kz):
    fields = {"parent": "/", "name": "forged", "data": "x", "mode": "persistent"}
    status, _, body = web.post("/console/create", fields, token=False)
    assert status == 403 and b"form token" in body
    status, _, body = web.post("/console/create", {**fields, "csrf": "guessed"}, token=False)
    assert status == 403 and b"form token" in body
    # The right token from a page of another site (a stolen form) is refused too.
    status, _, body = web.post("/console/create", fields,
                               headers={"Origin": "http://evil.example"})
    assert status == 403 and b"cross-site" in body
    status, _, body = web.post("/console/create", fields,
                               headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403 and b"cross-site" in body
    status, _, _ = web.post("/console/login", {"user": "", "password": ""}, token=False,
                            headers={"Origin": "null"})
    assert status == 403
    # Another login's token does not work with this login's cookie.
    other = Http(console).login()
    status, _, _ = web.post("/console/create", {**fields, "csrf": other.csrf}, token=False)
    assert status == 403
    assert kz.exists("/forged") is None
    # The same request from our own page works.
    host = f"127.0.0.1:{console.admin_port}"
    status, _, _ = web.post("/console/create", fields, headers={
        "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert status == 303 and kz.get("/forged")[0] == b"x"
    assert_alive(console, kz)


ODD_PATHS = ["/a b", "/snow☃/ü", "//", "/x/./y", "/x/../y", "relative", "/trailing/",
             "/nul\x00byte", "/" + "long" * 5000, "/<script>alert(1)</script>",
             "/%2F%2e%2e", "/\udcff"]


@pytest.mark.parametrize("path", ODD_PATHS, ids=range(len(ODD_PATHS)))
def test_odd_paths_give_messages(console, web, path):
    from urllib.parse import quote

    status, _, body = web.get("/console/tree?path=" + quote(path, safe="",
                                                             errors="surrogateescape"))
    assert status == 200, body[:500]
    assert b"<script>alert" not in body
    if path != "relative":  # taken as /relative, which does not exist either
        assert 'class="msg error"' in messages(body)


def test_raw_bad_bytes_in_the_request(console, web, kz):
    for target in ("/console/tree?path=%FF%FE", "/console/tree?path=/%C0%80",
                   "/console/tree?page=-5&size=999999999&path=/",
                   "/console/tree?path=/&page=notanumber", "/console/delete?path=/",
                   "/console/nowhere", "/console/static/../app.py", "/console/raw?path=%00"):
        status, _, body = web.get(target)
        assert status in (200, 404), (target, status)
        assert b"internal error" not in body, target
    status, _, body = web.request("POST", "/console/create", b"\xff\xfe=\x00&&&=",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    assert_alive(console, kz)


def test_odd_names_are_created_and_escaped(console, web, kz):
    kz.ensure_path("/odd")
    name = "spa ce & <b>ü☃<i> \"'"
    status, _, _ = web.post("/console/create", {"parent": "/odd", "name": name, "data": "d"})
    assert status == 303
    assert kz.get("/odd/" + name)[0] == b"d"
    status, _, body = web.get(tree("/odd"))
    assert b"<b>" not in body and "&lt;b&gt;ü☃&lt;i&gt;".encode() in body
    for bad in ("", "a/b", ".", ".."):
        status, _, body = web.post("/console/create", {"parent": "/odd", "name": bad})
        assert status == 200 and "error" in messages(body), bad
    status, _, body = web.post("/console/create", {"parent": "/odd", "name": "t",
                                                  "mode": "persistent_with_ttl", "ttl": "no"})
    assert "invalid input" in messages(body)
    status, _, body = web.post("/console/create", {"parent": "/odd", "name": "m",
                                                  "mode": "nonsense"})
    assert "unknown mode" in messages(body)
    status, _, body = web.post("/console/acl", {"path": "/odd", "aversion": "0",
                                               "acl": "world:anyone:xyz"})
    assert "unknown permission" in messages(body)
    status, _, body = web.post("/console/acl", {"path": "/odd", "aversion": "0",
                                               "acl": "nonsense"})
    assert "scheme:id:perms" in messages(body)
    status, _, body = web.post("/console/acl", {"path": "/odd", "aversion": "0",
                                               "acl": "digest:bad:r"})
    assert "InvalidACL" in messages(body)


def test_huge_and_binary_values(console, web, kz):
    kz.create("/bin", b"\xff\xfe\x00\x01binary\x80")
    status, _, body = web.get(tree("/bin"))
    assert status == 200 and b"11 bytes, binary" in body
    assert b"ff fe 00 01 62 69 6e 61" in body
    # Data that is not UTF-8 saved as "text" round-trips byte for byte.
    version = kz.exists("/bin").version
    body = b"csrf=" + web.csrf.encode() + b"&path=%2Fbin&version=" + str(version).encode() + \
        b"&encoding=text&data=%FF%FE%00z"
    status, _, _ = web.request("POST", "/console/edit", body)
    assert status == 303 and kz.get("/bin")[0] == b"\xff\xfe\x00z"
    status, _, body = web.post("/console/edit", {"path": "/bin", "version": "1",
                                                "encoding": "base64", "data": "!!!"})
    assert "not valid base64" in messages(body)
    status, _, body = web.post("/console/edit", {"path": "/bin", "version": "1",
                                                "encoding": "hex", "data": "0g"})
    assert "not valid hex" in messages(body)
    # A value near the 1 MiB limit is shown in part; one above it is refused with a message.
    big = bytes(range(256)) * 4000  # 1,024,000 bytes
    kz.create("/big-value", big)
    status, _, body = web.get(tree("/big-value"))
    assert status == 200 and b"1024000 bytes, binary, shown in part" in body
    assert len(body) < 200_000
    assert b"too large to edit here" in body
    status, _, raw = web.get("/console/raw?path=/big-value")
    assert raw == big
    too_big = "x" * 1_100_000
    status, _, body = web.post("/console/create", {"parent": "/", "name": "too-big",
                                                  "data": too_big})
    assert status == 200 and "jute.maxbuffer" in messages(body)
    assert kz.exists("/too-big") is None
    # Just under the limit as data, over it as a request: the server drops the connection,
    # the page says so, and the login's session carries on.
    status, _, body = web.post("/console/create", {"parent": "/", "name": "too-big",
                                                  "data": "x" * 1_048_570})
    assert status == 200 and "connection to ZooKeeper was lost" in messages(body)
    status, _, _ = web.post("/console/create", {"parent": "/", "name": "after-big"})
    assert status == 303 and kz.exists("/after-big") is not None
    status, _, body = web.post("/console/create", {"parent": "/", "name": "x" * 5,
                                                  "data": "y" * 5_000_000})
    assert status == 413  # over the AdminServer's request body limit
    assert_alive(console, kz)


def test_console_off_with_one_key(tmp_path):
    admin_port = free_port()
    extra = [*CONSOLE_KEYS, f"admin.serverPort={admin_port}", "admin.console.enabled=false"]
    with ZkServerProcess(tmp_path, free_port(), extra=extra):
        import http.client

        deadline_ok = False
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=2)
                conn.request("GET", "/commands/ruok")
                deadline_ok = conn.getresponse().status == 200
                break
            except OSError:
                import time
                time.sleep(0.05)
        assert deadline_ok
        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=2)
        conn.request("GET", "/console/login")
        assert conn.getresponse().status == 404


def test_console_on_the_admin_port(console):
    wait_http(console.admin_port)  # and the admin commands are still there beside it
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", console.admin_port, timeout=2)
    conn.request("GET", "/commands/ruok")
    assert conn.getresponse().status == 200


def test_event_stream(console, web, kz):
    import http.client

    kz.ensure_path("/streamed")
    conn = http.client.HTTPConnection("127.0.0.1", console.admin_port, timeout=10)
    conn.request("GET", "/console/events?path=/streamed", headers={"Cookie": web.cookie})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")

    def next_event() -> tuple[str, str]:
        kind = data = ""
        while True:
            line = resp.fp.readline().decode()
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: "):
                data = line[6:].strip()
            elif line in ("\r\n", "\n") and kind:
                return kind, data
            # chunk sizes and other lines of the chunked body are skipped

    assert next_event()[0] == "ready"
    kz.create("/streamed/x/y", makepath=True)
    kind, data = next_event()
    assert kind == "change" and '"path": "/streamed/x"' in data and "NODE_CREATED" in data
    conn.close()
    # HEAD of a stream, and a stream for a path the server refuses: answered, nothing breaks.
    status, _, _ = web.request("HEAD", "/console/events?path=/streamed")
    assert status == 200
    conn = http.client.HTTPConnection("127.0.0.1", console.admin_port, timeout=10)
    conn.request("GET", "/console/events?path=no/slash", headers={"Cookie": web.cookie})
    resp = conn.getresponse()
    assert b"event: closed" in resp.read()
    assert_alive(console, kz)
