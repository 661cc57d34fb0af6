"""mkdocs hook: show the API reference the package layout an install has.

An install maps the top-level client/ and recipes/ folders to `zkserver.client` and
`zkserver.recipes` (pyproject.toml), but mkdocstrings reads sources statically, from folders.
So the build gets a staging folder whose `zkserver/` holds links to zkserver/'s own entries and
to client/ and recipes/, and mkdocstrings reads from there.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority

_stage: Path | None = None


@event_priority(100)  # before mkdocstrings sets up its handlers
def on_config(config: Any) -> Any:
    global _stage
    root = Path(config.config_file_path).resolve().parent
    _stage = Path(tempfile.mkdtemp(prefix="zkserver-docs-"))
    package = _stage / "zkserver"
    package.mkdir()
    for entry in (root / "zkserver").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in ("client", "recipes"):
        (package / name).symlink_to(root / name)
    python = config["plugins"]["mkdocstrings"].config["handlers"].setdefault("python", {})
    python["paths"] = [str(_stage), str(root)]
    return config


def on_post_build(config: Any) -> None:
    if _stage is not None:
        shutil.rmtree(_stage, ignore_errors=True)
