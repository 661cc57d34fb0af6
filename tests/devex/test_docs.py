"""The documentation site builds (`mkdocs build --strict`), and its examples run.

Every fenced block in README.md and docs/ is preceded by a marker line saying what it is:

    <!-- test: python -->     a program, run with python
    <!-- test: sh -->         shell commands, run with bash -e (`zkserver` and `zkcli` on PATH)
    <!-- test: console -->    a transcript: each `$ command` is run and must print the lines
                              that follow it (stdout and stderr together; a trailing `# ...`
                              on an expected line is a comment)
    <!-- test: pytest -->     a test module, run by pytest with zkserver's plugin
    <!-- test: unittest -->   a unittest module, run with python
    <!-- test: zoo.cfg -->    zoo.cfg lines zkserver must accept (a fragment: a minimal
                              dataDir and clientPort come first, the example may override them)
    <!-- no-test: WHY -->     not run, and why (a server in the foreground, a sketch...)

so an example cannot be left out silently. Each page's examples run in order against one fresh
zkserver; `127.0.0.1:2181` and `localhost:2181` in them stand for that server. Pages still
written without markers are listed in UNMARKED with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from zkserver.testing.servers import TestServer

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
MARKER = re.compile(r"^\s*<!-- (test|no-test): ?(.*?) -->\s*$")
FENCE = re.compile(r"^(\s*)(```|~~~)(.*)$")
KINDS = ("python", "sh", "console", "pytest", "unittest", "zoo.cfg")
# Pages whose examples are still fragments of a larger program, owned by the work on them
# (page -> why); none at present.
UNMARKED: dict[str, str] = {}


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    marker: str | None  # "test", "no-test" or None
    kind: str  # the marker's argument: a KIND, or the no-test reason
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line.lstrip()
                         for line in lines[i + 1:j])
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mark = MARKER.match(lines[k]) if k >= 0 else None
        out.append(Block(page, i + 1, mark.group(1) if mark else None,
                         mark.group(2) if mark else "", body + "\n"))
        i = j + 1
    return out


def test_every_example_is_run_or_says_why() -> None:
    missing, unknown = [], []
    for page in PAGES:
        if str(page.relative_to(REPO)) in UNMARKED:
            continue
        for b in blocks(page):
            if b.marker is None:
                missing.append(b.where())
            elif b.marker == "test" and b.kind not in KINDS:
                unknown.append(f"{b.where()}: {b.kind!r}")
            elif b.marker == "no-test" and not b.kind:
                unknown.append(f"{b.where()}: no-test without a reason")
    assert not missing, f"fenced blocks without a marker line: {missing}"
    assert not unknown, unknown


def _bin(tmp: Path) -> Path:
    """`zkserver` and `zkcli` for the examples: this checkout's, whatever is installed."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, module in (("zkserver", "zkserver"), ("zkcli", "zkserver.shell")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        script.chmod(0o755)
    return bin_dir


def _run(b: Block, hosts: str, work: Path, env: dict[str, str]) -> None:
    text = b.text.replace("127.0.0.1:2181", hosts).replace("localhost:2181", hosts)
    name = f"example_{b.line}"

    def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=work,
                              env=env, timeout=120)

    def check(r: subprocess.CompletedProcess[str]) -> None:
        assert r.returncode == 0, (f"{b.where()} failed ({r.returncode}):\n{text}\n"
                                   f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}")

    if b.kind in ("python", "unittest"):
        (work / f"{name}.py").write_text(text)
        check(run([sys.executable, f"{name}.py"]))
    elif b.kind == "sh":
        check(run(["bash", "-euo", "pipefail", "-c", text]))
    elif b.kind == "pytest":
        project = work / "project"  # a page's test modules run together, in one pytest
        project.mkdir(exist_ok=True)
        (project / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
        (project / f"test_{name}.py").write_text(text)
    elif b.kind == "zoo.cfg":
        from zkserver.config import load_config

        cfg = work / f"{name}.cfg"
        cfg.write_text(f"dataDir={work / 'data'}\nclientPort=2181\n{text}")
        load_config(str(cfg))
    elif b.kind == "console":
        for command, expected in _transcript(text):
            r = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                               cwd=work, env=env, timeout=120)
            got = (r.stdout + r.stderr).splitlines()
            assert got == expected, f"{b.where()}: $ {command}\nexpected {expected}\ngot {got}"


def _transcript(text: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(re.sub(r"\s+# .*$", "", line))
    return steps


RUN_PAGES = [p for p in PAGES if any(b.marker == "test" for b in blocks(p))]


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(REPO)) for p in RUN_PAGES])
def test_examples_run(page: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOKEEPER_")}
    env["PYTHONPATH"] = str(REPO)
    env["PATH"] = f"{_bin(tmp_path)}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"
    work.mkdir()
    with TestServer(tmp_path / "server") as server:
        for b in blocks(page):
            if b.marker == "test":
                _run(b, server.hosts, work, env)
    if (work / "project").is_dir():
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-p", "no:zkserver", "-p", "zkserver.pytest_plugin"],
                           capture_output=True, text=True, cwd=work / "project", env=env,
                           timeout=300)
        assert r.returncode == 0 and " passed" in r.stdout, \
            f"{page.relative_to(REPO)}: its test modules failed:\n{r.stdout[-4000:]}"
        assert " failed" not in r.stdout and " error" not in r.stdout, r.stdout[-4000:]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]' (tests/run.sh does)")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                        "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, textwrap.shorten(r.stderr, 4000)
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "client" / "index.html").is_file()
