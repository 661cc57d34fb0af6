"""A project outside the repository, as a user would have it: zkserver pip-installed into a
fresh virtual environment, its tests using the fixtures of the `pytest11` plugin (`zk_server`,
`zk_ensemble`, `zk_server_session`, `zk_client`) and a `KazooTestCase` from kazoo itself.

The environment sees the host's packages (`--system-site-packages`: pytest, pytest-trio, kazoo,
trio...), and zkserver is built from a copy of this checkout without build isolation, so the test
needs no network. It checks that the project imports zkserver from the environment, not from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROJECT_TESTS = {
    "pytest.ini": """
        [pytest]
        trio_mode = true
        """,
    "test_with_zkserver.py": """
        import zkserver
        from kazoo.client import KazooClient


        def test_installed_not_from_the_checkout():
            assert "site-packages" in zkserver.__file__, zkserver.__file__


        def test_zk_server(zk_server):
            assert zk_server.hosts == f"127.0.0.1:{zk_server.port}"
            assert zk_server.data_dir.is_dir()
            kz = KazooClient(zk_server.hosts)
            kz.start()
            kz.create("/kept", b"1")
            kz.stop()
            zk_server.restart()
            kz = KazooClient(zk_server.hosts)
            kz.start()
            assert kz.get("/kept")[0] == b"1"
            kz.stop()


        def test_zk_ensemble(zk_ensemble):
            assert len(zk_ensemble.members) == 3
            kz = KazooClient(zk_ensemble.hosts)
            kz.start()
            kz.create("/x", b"before")
            leader = zk_ensemble.leader()
            zk_ensemble.kill(leader)
            kz.retry(kz.set, "/x", b"after")
            zk_ensemble.start(leader)
            one = KazooClient(zk_ensemble.members[leader].hosts)
            one.start()
            one.sync("/x")
            assert one.get("/x")[0] == b"after"
            one.stop()
            kz.stop()


        async def test_zk_client(zk_client):
            await zk_client.create("/trio", b"native")
            data, stat = await zk_client.get("/trio")
            assert data == b"native"


        def test_session_chroot_one(zk_server_session):
            kz = KazooClient(zk_server_session.hosts)
            kz.start()
            assert kz.get_children("/") == []
            kz.create("/mine")
            kz.stop()


        def test_session_chroot_two(zk_server_session):
            kz = KazooClient(zk_server_session.hosts)
            kz.start()
            assert kz.get_children("/") == []
            kz.create("/mine")
            kz.stop()
        """,
    "test_kazoo_style.py": """
        from kazoo.testing import KazooTestCase


        class TestPlainKazooHarness(KazooTestCase):
            def test_client_and_cluster(self):
                self.client.create("/node", b"v")
                assert self.client.get("/node")[0] == b"v"
                assert len(list(self.cluster)) == 3
                assert all(server.running for server in self.cluster)
        """,
}


def _copy_source(dest: Path) -> None:
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("zkserver", "client", "recipes"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)


def test_a_project_outside_the_repo_uses_the_fixtures(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "ZOOKEEPER_PATH", "ZOOKEEPER_CLASSPATH",
                        "ZOOKEEPER_VERSION", "PYTEST_ADDOPTS")}
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, env=env)
    _copy_source(tmp_path / "src")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", str(tmp_path / "src")],
                   check=True, env=env, cwd=tmp_path)
    installed = time.monotonic() - started

    project = tmp_path / "project"
    project.mkdir()
    for name, text in PROJECT_TESTS.items():
        (project / name).write_text(textwrap.dedent(text).lstrip())
    started = time.monotonic()
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--durations=0"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=300)
    ran = time.monotonic() - started
    print(f"venv + pip install: {installed:.1f} s; the project's tests: {ran:.1f} s")
    print(run.stdout[-4000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "7 passed" in run.stdout
