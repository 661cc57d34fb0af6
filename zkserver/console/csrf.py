"""Cross-site request forgery: every change needs the session's token and a same-site origin.

A form carries the login session's secret token (never in a cookie, so another site cannot
send it), and a browser's `Origin` / `Sec-Fetch-Site` headers, when present, must name this
site. The session cookie is also `SameSite=Strict`; these checks do not rely on it.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_origin(headers: dict[str, str]) -> bool:
    """Whether the request may come from this site's own pages (False: a cross-site one)."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser form post (curl, tests): only the token guards it
    host = headers.get("host", "")
    return urlsplit(origin).netloc == host and bool(host)


def token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
