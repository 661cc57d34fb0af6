"""The public typed API (`zkserver.client`, `zkserver.recipes`, shipped with `py.typed`) passes
`mypy --strict`.

mypy checks the packages under the names users import them by. In the repository they are the
top-level folders client/ and recipes/, mapped to `zkserver.client` and `zkserver.recipes` only
by an install (pyproject.toml's package-dir); zkserver/__init__.py extends its `__path__` for a
checkout, which mypy cannot follow. So the test lays out the installed shape with symlinks in a
temporary directory and points MYPYPATH at it. Modules outside the two packages (the shared
codec in zkserver.proto, for one) are read for their types but their own errors are not counted
(`--follow-imports=silent`): the contract checked here is the one a user of the client sees.

The programs in docs/client.md and docs/recipes.md are checked too, as a user's untyped code
is (`--check-untyped-defs`, None left aside): a name or an attribute the API does not have is
caught here, not only when the example runs (tests/devex/test_docs.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("zkserver.client", "zkserver.recipes")
EXAMPLE_PAGES = ("docs/client.md", "docs/recipes.md")
EXAMPLE = re.compile(r"<!-- test: python -->\s*\n```python\n(.*?)```", re.S)


def installed_layout(root: Path) -> Path:
    """`root/zkserver/` as an install has it: zkserver's modules plus client/ and recipes/."""
    pkg = root / "zkserver"
    pkg.mkdir(parents=True)
    for entry in (REPO / "zkserver").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    (pkg / "client").symlink_to(REPO / "client")
    (pkg / "recipes").symlink_to(REPO / "recipes")
    return root


def mypy(tmp_path: Path, *args: str) -> str:
    """Run mypy with the installed layout; its report, paths shortened ("" when clean)."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is not installed: pip install -e '.[test]' (tests/run.sh does)")
    env = {**os.environ, "MYPYPATH": str(installed_layout(tmp_path / "src"))}
    env.pop("PYTHONPATH", None)  # the layout above is the only zkserver mypy may see
    r = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent",
                        "--python-version", "3.11", "--cache-dir", str(tmp_path / "cache"),
                        "--no-error-summary", "--show-error-codes", *args],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    report = (r.stdout + r.stderr).replace(f"src{os.sep}zkserver{os.sep}", "")
    assert (r.returncode == 0) == (report.strip() == ""), report
    return report


def test_client_and_recipes_pass_mypy_strict(tmp_path: Path) -> None:
    args = ["--strict"]
    for package in PACKAGES:
        args += ["-p", package]
    report = mypy(tmp_path, *args)
    assert not report, f"mypy --strict found errors:\n{report[-6000:]}"


def test_docs_examples_type_check(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    for page in EXAMPLE_PAGES:
        text = (REPO / page).read_text()
        for m in EXAMPLE.finditer(text):
            line = text.count("\n", 0, m.start()) + 2  # the fence's line
            (examples / f"{Path(page).stem}_md_line_{line}.py").write_text(m.group(1))
    files = sorted(str(f) for f in examples.iterdir())
    assert len(files) > 10, files
    report = mypy(tmp_path, "--check-untyped-defs", "--no-strict-optional",
                  "--disable-error-code", "var-annotated", *files)
    assert not report, f"the docs' examples do not type-check:\n{report[-6000:]}"
