"""A throwaway MIT Kerberos KDC on loopback, for the GSSAPI tests.

    with LocalKdc(tmp_path) as kdc:
        keytab = kdc.add_principal("zookeeper/localhost")     # a service key, in a keytab
        kdc.add_principal("alice", password="alice-pw")      # a user
        ccache = kdc.kinit("alice", password="alice-pw")     # a ticket cache, as kinit makes
        env = kdc.env                                        # KRB5_CONFIG for MIT programs
        kdc.jvm_flag                                         # -Djava.security.krb5.conf=...

Everything lives in the directory given: krb5.conf (the clients' view: realm, KDC address,
TCP only so that Java and MIT agree), kdc.conf (`KRB5_KDC_PROFILE`: database, stash, ports),
the database, keytabs and caches. `krb5kdc -n` runs in the foreground as our child; leaving the
`with` kills it. The tools are Debian's `krb5-kdc`, `krb5-admin-server` (kadmin.local) and
`krb5-user` (kinit), which tests/run.sh installs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REALM = "EXAMPLE.COM"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
_SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for d in _SBIN if os.access(p := os.path.join(d, name), os.X_OK)), None)


def available() -> bool:
    return all(_tool(t) for t in TOOLS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalKdc:
    def __init__(self, base_dir: str | os.PathLike, realm: str = REALM) -> None:
        self.base = Path(base_dir)
        self.realm = realm
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def krb5_conf(self) -> Path:
        return self.base / "krb5.conf"

    @property
    def env(self) -> dict[str, str]:
        """What MIT programs (kinit, python-gssapi, zkserver) need to find this realm; the
        replay cache (where an acceptor remembers authenticators) is ours too."""
        return {"KRB5_CONFIG": str(self.krb5_conf),
                "KRB5_KDC_PROFILE": str(self.base / "kdc.conf"),
                "KRB5RCACHEDIR": str(self.base)}

    @property
    def jvm_flag(self) -> str:
        return f"-Djava.security.krb5.conf={self.krb5_conf}"

    def _run(self, *argv: str, stdin: str | None = None) -> str:
        exe = _tool(argv[0])
        if exe is None:
            raise RuntimeError(f"{argv[0]} is not installed (tests/run.sh installs krb5-kdc, "
                               "krb5-admin-server and krb5-user)")
        proc = subprocess.run([exe, *argv[1:]], input=stdin, capture_output=True, text=True,
                              timeout=60, env={**os.environ, **self.env})
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.krb5_conf.write_text(f"""\
[libdefaults]
    default_realm = {self.realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = 1
    permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
    default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
    default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
    {self.realm} = {{
        kdc = 127.0.0.1:{self.port}
    }}

[domain_realm]
    localhost = {self.realm}
    .localhost = {self.realm}
""")
        (self.base / "kdc.conf").write_text(f"""\
[kdcdefaults]
    kdc_ports = {self.port}
    kdc_tcp_ports = {self.port}

[realms]
    {self.realm} = {{
        database_name = {self.base}/principal
        key_stash_file = {self.base}/stash
        acl_file = {self.base}/kadm5.acl
        max_life = 1h 0m 0s
        max_renewable_life = 1d 0h 0m 0s
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{self.base}/kdc.log
""")
        (self.base / "kadm5.acl").write_text("")

    def start(self, timeout: float = 30.0) -> LocalKdc:
        self.write_config()
        self._run("kdb5_util", "create", "-s", "-r", self.realm, "-P", "kdc-master-key")
        exe = _tool("krb5kdc")
        assert exe is not None
        log = open(self.base / "krb5kdc.out", "wb")
        self.proc = subprocess.Popen([exe, "-n", "-r", self.realm], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **self.env})
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"krb5kdc did not start; see {self.base}/krb5kdc.out")
            time.sleep(0.05)

    def principal(self, name: str) -> str:
        return name if "@" in name else f"{name}@{self.realm}"

    def add_principal(self, name: str, password: str | None = None) -> Path:
        """Create `name` (random key unless a password is given) and export its key to a
        keytab of its own, whose path is returned. Exporting a password principal's key
        re-randomises it, so a password principal gets no keytab (the path is still
        returned, not created)."""
        princ = self.principal(name)
        keytab = self.base / (name.replace("/", "_") + ".keytab")
        if password is None:
            self._run("kadmin.local", "-r", self.realm, "-q", f"addprinc -randkey {princ}")
            self._run("kadmin.local", "-r", self.realm, "-q", f"ktadd -k {keytab} {princ}")
        else:
            self._run("kadmin.local", "-r", self.realm, "-q",
                      f"addprinc -pw {password} {princ}")
        return keytab

    def kinit(self, name: str, password: str | None = None,
              keytab: Path | None = None) -> Path:
        """A ticket cache for `name`, from its password or keytab, as a user's kinit makes."""
        ccache = self.base / (name.replace("/", "_") + ".ccache")
        if keytab is not None:
            self._run("kinit", "-c", f"FILE:{ccache}", "-k", "-t", str(keytab),
                      self.principal(name))
        else:
            self._run("kinit", "-c", f"FILE:{ccache}", self.principal(name),
                      stdin=f"{password}\n")
        return ccache

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def __enter__(self) -> LocalKdc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
