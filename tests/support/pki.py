"""Throwaway certificates made with openssl, for the TLS tests.

    ca = make_ca(d)                      # d/ca.pem, d/ca.key
    bundle = signed(d, "server")         # d/server.pem (key, then certificate), for 127.0.0.1
    certificate(d, "client", "/O=Example/CN=client", "DNS:client")  # d/client.key, d/client.pem
    bundle_of(d, "client")               # d/client-bundle.pem (key, then certificate)
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(*cmd: str) -> None:
    """Run openssl or keytool, raising with its output on failure."""
    subprocess.run(cmd, check=True, capture_output=True)


def make_ca(d: Path, name: str = "ca", cn: str = "Test CA") -> Path:
    """A self-signed CA (or a self-signed leaf nobody trusts): `<name>.pem` and `<name>.key`."""
    d.mkdir(parents=True, exist_ok=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem"), "-subj", f"/CN={cn}")
    return d / f"{name}.pem"


def certificate(d: Path, name: str, subject: str, san: str, ca: str = "ca",
                out: Path | None = None) -> Path:
    """`<name>.key` and its certificate for `subject` (`out`, default `<name>.pem`, the
    certificate alone), signed by the CA `ca` in `d`."""
    key, csr, ext = (d / f"{name}.{s}" for s in ("key", "csr", "ext"))
    cert = out or d / f"{name}.pem"
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
        str(csr), "-subj", subject)
    ext.write_text(f"subjectAltName={san}\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(d / f"{ca}.pem"), "-CAkey",
        str(d / f"{ca}.key"), "-CAcreateserial", "-days", "2", "-out", str(cert),
        "-extfile", str(ext))
    return cert


def bundle_of(d: Path, name: str) -> Path:
    """`<name>-bundle.pem`: `<name>.key` then `<name>.pem`, a PEM key store as ZooKeeper's."""
    bundle = d / f"{name}-bundle.pem"
    bundle.write_bytes((d / f"{name}.key").read_bytes() + (d / f"{name}.pem").read_bytes())
    return bundle


def signed(d: Path, name: str, ca: str = "ca", san: str = "IP:127.0.0.1,DNS:localhost"
           ) -> Path:
    """A PEM key store `<name>.pem`: an unencrypted key, then its certificate for CN=<name>,
    signed by the CA `ca` in `d` (the layout ZooKeeper's PEM key stores take)."""
    cert = certificate(d, name, f"/CN={name}", san, ca, out=d / f"{name}.crt")
    bundle = d / f"{name}.pem"
    bundle.write_bytes((d / f"{name}.key").read_bytes() + cert.read_bytes())
    return bundle
