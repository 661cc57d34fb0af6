"""Throwaway certificates made with openssl, for the TLS tests.

    ca = make_ca(d)                      # d/ca.pem, d/ca.key
    bundle = signed(d, "server")         # d/server.pem (key, then certificate), for 127.0.0.1
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def make_ca(d: Path, name: str = "ca", cn: str = "Test CA") -> Path:
    """A self-signed CA: `<name>.pem` and `<name>.key` in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem"), "-subj", f"/CN={cn}")
    return d / f"{name}.pem"


def signed(d: Path, name: str, ca: str = "ca", san: str = "IP:127.0.0.1,DNS:localhost"
           ) -> Path:
    """A PEM key store `<name>.pem`: an unencrypted key, then its certificate for CN=<name>,
    signed by the CA `ca` in `d` (the layout ZooKeeper's PEM key stores take)."""
    key, csr, ext, cert = (d / f"{name}.{s}" for s in ("key", "csr", "ext", "crt"))
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
         str(csr), "-subj", f"/CN={name}")
    ext.write_text(f"subjectAltName={san}\n")
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(d / f"{ca}.pem"), "-CAkey",
         str(d / f"{ca}.key"), "-CAcreateserial", "-days", "2", "-out", str(cert),
         "-extfile", str(ext))
    bundle = d / f"{name}.pem"
    bundle.write_bytes(key.read_bytes() + cert.read_bytes())
    return bundle
