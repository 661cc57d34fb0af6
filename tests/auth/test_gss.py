"""GSSAPI settings on their own (zkserver/auth/gss.py, settings.py); the exchanges themselves
run against a real KDC in tests/server/test_sasl_kerberos.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkserver.auth.settings import SaslConfigError, load_sasl


def test_a_kerberos_login_that_fails_stops_the_server(tmp_path: Path) -> None:
    """As Java's Krb5LoginModule fails the server's start when its keytab can't be used."""
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(f"""Server {{
        com.sun.security.auth.module.Krb5LoginModule required
        useKeyTab=true keyTab="{tmp_path / 'missing.keytab'}"
        principal="zookeeper/localhost@EXAMPLE.COM"; }};""")
    env = {"SERVER_JVMFLAGS": f"-Djava.security.auth.login.config={jaas}"}
    with pytest.raises(SaslConfigError, match="Kerberos login for 'Server' failed"):
        load_sasl({}, env)
