#!/usr/bin/env python3
"""Bytes per znode of a running server.

    python bench/memory.py HOST:PORT --pid PID [--count 1000000] [--parents 10] [--size 100]
                           [--conns 8] [--depth 64] [--keep]

Creates `count` persistent znodes with `size`-byte values, spread round-robin over `parents`
parent znodes under /zkmem-<pid>-<n>, with pipelined creates (the zkbench engine), and reports
for the server process PID (which must run on this machine):

  rss_bytes_per_znode   growth of VmRSS (/proc/PID/status) from before to after the creates,
                        divided by count. For any server. For a JVM (read after the full GC) it
                        mostly shows how far the collector grew the heap, not what the data
                        needs: use heap_bytes_per_znode there.
  heap_bytes_per_znode  Java servers only (Apache ZooKeeper): heap in use after a full GC
                        (`jcmd PID GC.run`, then `jcmd PID GC.heap_info`) after the creates,
                        minus the same before them, divided by count. jcmd is in Debian's JDK
                        package (openjdk-17-jdk-headless), not in the JRE.

Prints one JSON line. The znodes are deleted again afterwards unless --keep (deleting a million
znodes takes about as long as creating them; skip it when the server is thrown away anyway).

Library use:  measure(hostport, pid, count=1_000_000, ...) -> dict
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zkbench  # noqa: E402  (bench/ is not a package)

_counter = itertools.count()


def vm_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def is_java(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "java"
    except OSError:
        return False


def java_heap_used_after_gc(pid: int) -> int | None:
    """Bytes of Java heap in use right after a full GC, or None if jcmd is not available."""
    jcmd = shutil.which("jcmd")
    if not jcmd:
        return None
    subprocess.run([jcmd, str(pid), "GC.run"], check=True, capture_output=True, timeout=120)
    out = subprocess.run([jcmd, str(pid), "GC.heap_info"], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return parse_heap_info(out)


def parse_heap_info(text: str) -> int:
    """Sum of `used NK` over the heap lines of `jcmd GC.heap_info` (G1: one "garbage-first
    heap" line; Serial/Parallel: one line per generation), stopping at Metaspace."""
    used = 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Metaspace") or s.startswith("class space"):
            break
        m = re.search(r"total \d+K, used (\d+)K", s)
        if m:
            used += int(m.group(1)) * 1024
    return used


def measure(hostport: str, pid: int, count: int = 1_000_000, parents: int = 10,
            size: int = 100, conns: int = 8, depth: int = 64, keep: bool = False,
            settle: float = 2.0) -> dict:
    java = is_java(pid)
    root = f"/zkmem-{os.getpid()}-{next(_counter)}"
    setup = zkbench.SyncConn(hostport)
    try:
        heap0 = java_heap_used_after_gc(pid) if java else None
        time.sleep(settle)
        rss0 = vm_rss_kb(pid)

        err, _ = setup.call(zkbench.create_req(root, b""))
        if err:
            raise RuntimeError(f"cannot create {root}: err {err}")
        for j in range(parents):
            err, _ = setup.call(zkbench.create_req(f"{root}/p{j}", b""))
            if err:
                raise RuntimeError(f"cannot create {root}/p{j}: err {err}")

        data = b"x" * size
        paths = [f"{root}/p{j}/n" for j in range(parents)]

        def creates(i: int):
            for k in range(i, count, conns):
                yield zkbench.create_req(f"{paths[k % parents]}{k:08d}", data)

        pconns = [zkbench.PConn.open(hostport) for _ in range(conns)]
        for i, c in enumerate(pconns):
            c.source = functools.partial(next, creates(i), None)
        t0 = time.monotonic()
        st = zkbench.pump(pconns, depth, stop_sending=float("inf"), deadline=t0 + 3600,
                          win0=t0, win1=float("inf"))
        elapsed = time.monotonic() - t0
        if st.ops != count or st.undrained:
            raise RuntimeError(f"only {st.ops} of {count} creates were answered")

        time.sleep(settle)
        heap1 = java_heap_used_after_gc(pid) if java else None
        rss1 = vm_rss_kb(pid)
        res = {
            "count": count, "size": size, "parents": parents,
            "errors": st.errors,
            "create_ops_per_s": round(count / elapsed),
            "rss_before_kb": rss0, "rss_after_kb": rss1,
            "rss_bytes_per_znode": round((rss1 - rss0) * 1024 / count, 1),
            "java": java,
        }
        if java:
            if heap0 is None or heap1 is None:
                res["heap_note"] = "jcmd not found: install openjdk-17-jdk-headless"
            else:
                res.update({"heap_before_bytes": heap0, "heap_after_bytes": heap1,
                            "heap_bytes_per_znode": round((heap1 - heap0) / count, 1)})

        if not keep:
            for i, c in enumerate(pconns):
                c.source = functools.partial(
                    next, (zkbench.delete_req(f"{paths[k % parents]}{k:08d}")
                           for k in range(i, count, conns)), None)
            zkbench.pump(pconns, depth, stop_sending=float("inf"),
                         deadline=time.monotonic() + 3600)
            setup.rmr(root)
        for c in pconns:
            c.close()
        return res
    finally:
        setup.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hostport", help="HOST:PORT of the server")
    ap.add_argument("--pid", type=int, required=True, help="pid of the server process")
    ap.add_argument("--count", type=int, default=1_000_000, help="znodes (default 1000000)")
    ap.add_argument("--parents", type=int, default=10, help="parent znodes (default 10)")
    ap.add_argument("--size", type=int, default=100, help="value bytes (default 100)")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--keep", action="store_true", help="leave the znodes in place")
    a = ap.parse_args(argv)
    try:
        res = measure(a.hostport, a.pid, a.count, a.parents, a.size, a.conns, a.depth, a.keep)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        print(f"memory: failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
