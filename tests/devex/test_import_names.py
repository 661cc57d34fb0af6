"""zkserver installs its client and recipes as `zkserver.client` and `zkserver.recipes` (the
top-level client/ and recipes/ folders, mapped by pyproject.toml), so nothing generic is
squatted: a project's own `client.py` or `recipes/` neither shadows them nor is shadowed.
Checked on real installs into fresh virtual environments, plain and editable (CI's
`pip install -e .`), without network (`--no-build-isolation`, dependencies from the host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECK = ("import zkserver.client, zkserver.recipes, zkserver.recipes.lock; "
         "from zkserver.client import connect; "
         "print(zkserver.client.__file__); print(zkserver.recipes.lock.__file__)")


def test_the_package_list_names_every_package() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    subpackages = {f"zkserver.{d.name}" for d in (REPO / "zkserver").iterdir()
                   if (d / "__init__.py").is_file()}
    assert set(setuptools["packages"]) == {"zkserver", "zkserver.client", "zkserver.recipes",
                                           *subpackages}
    assert setuptools["package-dir"] == {"zkserver.client": "client",
                                         "zkserver.recipes": "recipes"}
    for d in ("zkserver", "client", "recipes"):
        assert (REPO / d / "py.typed").is_file()


def _project_with_lookalikes(base: Path) -> Path:
    """A working directory holding a `client.py` and a `recipes/` package of its own."""
    cwd = base / "project"
    (cwd / "recipes").mkdir(parents=True)
    (cwd / "client.py").write_text("raise SystemExit('the local client.py was imported')\n")
    (cwd / "recipes" / "__init__.py").write_text("raise SystemExit('local recipes imported')\n")
    return cwd


def _install(base: Path, editable: bool) -> tuple[Path, Path]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("zkserver", "client", "recipes"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", *(["-e"] if editable else []),
                    str(src)], check=True, env=env, cwd=base)
    return python, src


def _check(python: Path, cwd: Path, where: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    client_file, lock_file = r.stdout.split()
    assert Path(client_file).is_relative_to(where), client_file
    assert Path(lock_file).is_relative_to(where), lock_file


def test_pip_install_in_a_fresh_venv(tmp_path: Path) -> None:
    python, _ = _install(tmp_path, editable=False)
    site = python.parent.parent / "lib"
    _check(python, _project_with_lookalikes(tmp_path), site)
    typed = list(site.glob("python3*/site-packages/zkserver/client/py.typed"))
    assert typed, "py.typed is not installed"


def test_editable_install_maps_the_folders(tmp_path: Path) -> None:
    python, src = _install(tmp_path, editable=True)
    _check(python, _project_with_lookalikes(tmp_path), src)
