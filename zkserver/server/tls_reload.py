"""Key and trust stores reloaded when their files change (`client.certReload=true`, 3.9).

ZooKeeper watches the store files and builds a new TLS context for the secure client port when
one is modified: connections made afterwards see the new certificate, established ones keep
theirs. zkserver looks at the files' size, modification time and inode once a second (a
rotation by rename changes the inode, an overwrite the time) and, on a change, asks the server
to rebuild. A store caught half-written fails to load: the old context stays, the failure is
logged, and the next change (the write completing) triggers another try.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

import trio

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
Fingerprint = tuple[int, int, int] | None  # inode, size, mtime_ns; None: missing


def fingerprint(path: str) -> Fingerprint:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class StoreFiles:
    """The files behind one TLS context, and whether they changed since last asked."""

    def __init__(self, paths: Iterable[str],
                 look: Callable[[str], Fingerprint] = fingerprint) -> None:
        self.paths = sorted(set(paths))
        self._look = look
        self._seen = {p: look(p) for p in self.paths}

    def changed(self) -> list[str]:
        """The files that changed since the last call (or since this object was made)."""
        out = []
        for p in self.paths:
            now = self._look(p)
            if now != self._seen[p]:
                self._seen[p] = now
                out.append(p)
        return out


async def watch(files: StoreFiles, rebuild: Callable[[], None],
                interval: float = POLL_INTERVAL) -> None:
    """Call `rebuild` whenever a store file changes; forever (cancel to stop)."""
    while True:
        await trio.sleep(interval)
        changed = files.changed()
        if not changed:
            continue
        try:
            rebuild()
        except (OSError, ValueError) as e:  # TLSConfigError, ssl.SSLError are OSErrors
            log.warning("TLS stores changed (%s) but did not load; keeping the previous "
                        "certificates: %s", ", ".join(changed), e)
        else:
            log.info("TLS stores changed (%s): new connections use them", ", ".join(changed))
