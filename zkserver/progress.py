"""Progress of the long-running tools (import-zookeeper, the dumps) on the user's terminal.

The tools report through a plain callable, `Progress(what, done, total)`: `what` names the
step ("reading snapshot.1a2b"), `done` and `total` count its units (bytes, transactions;
`total` None when unknown). The code that does the work stays free of any display library and is
tested with a list-appending callable; only the command line turns the calls into bars (tqdm, on
stderr, so that stdout stays the tool's output). Bars are drawn when stderr is a terminal, or
when ZKSERVER_PROGRESS=1 asks for them (a log file, a test); ZKSERVER_PROGRESS=0 turns them off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

Progress = Callable[[str, int, "int | None"], None]

# What a step counts, by the verb that starts its name.
UNITS = {"reading": "B", "replaying": " txns", "dumping": " lines"}


def wanted(stream: TextIO) -> bool:
    setting = os.environ.get("ZKSERVER_PROGRESS", "")
    if setting in ("0", "1"):
        return setting == "1"
    return stream.isatty()


class Bars:
    """A `Progress` that draws one tqdm bar per step, closing a step's bar when the next step
    starts or its count reaches its total."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.what: str | None = None
        self.bar: Any = None

    def __call__(self, what: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if what != self.what:
            self.close()
            self.what = what
            verb = what.split()[0]
            scale = verb == "reading"  # bytes: show kB/MB
            self.bar = tqdm(total=total, desc=what, file=self.stream, leave=True,
                            unit=UNITS.get(verb, ""), unit_scale=scale,
                            dynamic_ncols=True)  # redrawn at most every 0.1 s (TQDM_MININTERVAL)
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.what = None


def for_terminal(stream: TextIO | None = None) -> Bars | None:
    """Bars on `stream` (stderr by default) if wanted there, else None (report nothing)."""
    stream = stream or sys.stderr
    return Bars(stream) if wanted(stream) else None
