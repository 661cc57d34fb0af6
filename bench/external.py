"""Run another load generator instead of zkbench.py: the cross-check (`run.py --generator`).

A ratio measured with our own generator could be an artefact of it (its pipelining, its
timing, what it counts). So the comparison can be rerun with a generator we did not write, as
long as it takes zkload.py's command line (`PATH HOST:PORT MODE --conns N --depth D --secs S
--size B --procs P`, the neutral generator kept beside the project in ../shared/tools) and
prints one JSON line with at least `ops_per_s`, `p50_ms`, `p99_ms` and `errors`. The run's
server CPU is measured here around the generator's whole run (its setup included).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import zkbench

TICK = os.sysconf("SC_CLK_TCK")


def run(path: str, hostport: str, mode: str, args, server_pids: list[int]) -> dict:
    """One workload through the generator at `path`; its JSON result, with CPU added."""
    argv = [sys.executable, path, hostport, mode, "--conns", str(args.conns), "--depth",
            str(args.depth), "--secs", f"{args.secs:g}", "--size", str(args.size),
            "--procs", str(args.procs)]
    cpu0 = [zkbench._cpu_ticks(p) or 0 for p in server_pids]
    host0 = zkbench._host_busy_ticks() or 0
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=4 * args.secs + 120)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{os.path.basename(path)} {mode}: no result in {e.timeout:g} s"
                           ) from None
    wall = time.monotonic() - t0
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{os.path.basename(path)} {mode} exited with {p.returncode}: "
                           f"{p.stderr.strip().splitlines()[-1:] or p.stdout.strip()}")
    r = json.loads(lines[-1])
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = sum((zkbench._cpu_ticks(pid) or 0) - c
                 for pid, c in zip(server_pids, cpu0, strict=True)) / TICK
    gen = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    host = ((zkbench._host_busy_ticks() or 0) - host0) / TICK
    r["server_cpu_pct"] = round(100 * server / wall, 1)
    r["gen_cpu_pct"] = round(100 * gen / wall, 1)
    r["other_cpu_pct"] = round(max(0.0, 100 * (host - server - gen) / wall), 1)
    r.setdefault("procs", args.procs)
    return r
