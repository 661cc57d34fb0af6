"""TLS 1.3 cipher suites narrowed on an `ssl.SSLContext`, which Python's ssl module cannot do.

Python sets OpenSSL's TLS 1.2 cipher list (`set_ciphers`) but has no call for the separate
TLS 1.3 list (OpenSSL's `SSL_CTX_set_ciphersuites`), so `ssl.ciphersuites=TLS_AES_256_GCM_SHA384`
would leave every TLS 1.3 suite on where ZooKeeper enables only the one named. This calls that
OpenSSL function through ctypes on the context's `SSL_CTX`, which CPython keeps as the first
field after the object header. Both ends are checked before and after: the pointer must give
back the context's own options, and the context must then list exactly the suites asked for;
anything else raises rather than guesses.
"""

from __future__ import annotations

import ctypes
import ssl
import sys


class CipherSuitesError(OSError):
    """TLS 1.3 suites could not be narrowed on this Python (not CPython, or no libssl)."""


def _libssl() -> ctypes.CDLL:
    # The _ssl extension is linked to libssl, so looking a symbol up through it finds
    # the very library Python's contexts live in.
    path = getattr(ssl._ssl, "__file__", None)  # noqa: SLF001 - the extension's file only
    return ctypes.CDLL(path)


def _ssl_ctx(ctx: ssl.SSLContext) -> int:
    if sys.implementation.name != "cpython":
        raise CipherSuitesError("narrowing TLS 1.3 suites needs CPython")
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr:
        raise CipherSuitesError("the TLS context has no SSL_CTX")
    get_options = _libssl().SSL_CTX_get_options
    get_options.argtypes = [ctypes.c_void_p]
    get_options.restype = ctypes.c_uint64
    if get_options(ptr) != int(ctx.options):
        raise CipherSuitesError("cannot find the SSL_CTX of this Python's TLS context")
    return ptr


def enable(ctx: ssl.SSLContext, names: list[str]) -> None:
    """Enable exactly the TLS 1.3 suites `names` (IANA names, as Java and OpenSSL spell them),
    in that order of preference."""
    fn = _libssl().SSL_CTX_set_ciphersuites
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    fn.restype = ctypes.c_int
    if fn(_ssl_ctx(ctx), ":".join(names).encode("ascii")) != 1:
        raise CipherSuitesError(f"OpenSSL refused the TLS 1.3 suites {', '.join(names)}")
    now = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"]
    if now != names:
        raise CipherSuitesError(f"TLS 1.3 suites are {', '.join(now)}, not {', '.join(names)}")
