"""Request parsing and reply building for the console (on top of the AdminServer's h11)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import attrs

from zkserver.server.admin import Reply, Request

COOKIE = "zkconsole"
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "
     "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


@attrs.frozen
class Parsed:
    method: str
    path: str  # the URL path after the console's prefix ("" for the prefix itself)
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    cookie: str | None
    target: str
    x509: str | None = None  # the verified client certificate's identity (HTTPS only)
    secure: bool = False


def _fields(text: str) -> dict[str, str]:
    # surrogateescape keeps bytes that are not UTF-8 (a textarea's data round-trips exactly);
    # whatever uses a value as a path or name refuses them with a message.
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True, encoding="utf-8",
                                          errors="surrogateescape").items()}


def parse(request: Request, prefix: str) -> Parsed:
    url = urlsplit(request.target)
    sub = url.path[len(prefix):]
    form: dict[str, str] = {}
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        form = _fields(request.body.decode("latin-1"))
    cookie = None
    for part in request.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            cookie = value
    return Parsed(request.method, sub, _fields(url.query), form, request.headers, cookie,
                  request.target, request.x509, request.secure)


def page(body: str, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, "text/html; charset=utf-8",
                 body.encode("utf-8", errors="replace"),
                 SECURITY_HEADERS + headers)


def redirect(location: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(303, "text/plain", b"", (("Location", location), *SECURITY_HEADERS, *headers))


def set_cookie(token: str, prefix: str, secure: bool = False) -> tuple[str, str]:
    """`Secure` over HTTPS: the browser then never sends the cookie over plain HTTP."""
    flags = "; Secure" if secure else ""
    return ("Set-Cookie", f"{COOKIE}={token}; Path={prefix}; HttpOnly; SameSite=Strict{flags}")


def clear_cookie(prefix: str) -> tuple[str, str]:
    return ("Set-Cookie", f"{COOKIE}=; Path={prefix}; HttpOnly; SameSite=Strict; Max-Age=0")
