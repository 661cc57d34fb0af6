"""CPU per operation of each member of a 3-server zkserver ensemble, one request at a time.

Why: on the 2-core machine a replicated write's latency follows how much CPU the members ask of
it. With one follower stopped (SIGSTOP; the leader and the other still a quorum), the latency
through the leader fell from 0.86 to 0.55 ms; deferring that follower's work instead changed
nothing. So what a change to the commit path must show is less CPU per write on every member,
and the end-to-end latency rows move by a tenth from run to run, which hides that. This runs
zkbench's latency workload (create/set/get/delete, one request at a time) through the leader
and through a follower. For each member it reports the CPU per operation, user and system,
read from /proc over the run. It also reports the rest of the machine per operation ("other":
the kernel workers that run zkserver's AIO fsyncs count there) and the p50. With several
`--cmd`, each round starts a fresh ensemble of each in turn, so two trees can be compared A/B
(`python -m` imports from the working directory first, hence `env -C` for another tree):

    python bench/member_cpu.py
    python bench/member_cpu.py --rounds 3 --cmd "python -m zkserver" \\
        --cmd "env -C /tmp/base python -m zkserver"

Standard library only; like run.py it starts the members through `--cmd`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import ensemble  # noqa: E402  (bench/ is not a package)
import zkbench  # noqa: E402

VIAS = ("leader", "follower")
TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def member_ticks(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks of a member, its reaped children included."""
    split = zkbench.cpu_ticks_split(pid)
    if split is None:
        raise RuntimeError(f"member process {pid} is gone")
    return split


def measure(ens: ensemble.ZkServerEnsemble, via: str, secs: float) -> dict:
    """One latency run through the leader or a follower: p50, ops/s, and µs of CPU per
    operation for each member (by role) and for the rest of the machine."""
    hostport = ens.leader_hostport if via == "leader" else ens.order[0]
    pids = ens.pids()
    roles = {pid: ("leader" if port == ens.leader_port else "follower")
             for pid, port in zip(pids, ens.ports, strict=True)}
    before = {pid: member_ticks(pid) for pid in pids}
    host0 = zkbench._host_busy_ticks()
    res = zkbench.run(hostport, "latency", secs=secs, warmup=0.0)
    host1 = zkbench._host_busy_ticks()
    after = {pid: member_ticks(pid) for pid in pids}
    ops = res["ops"]
    if not ops or host0 is None or host1 is None:
        raise RuntimeError(f"no measurement through the {via}: {res}")
    members = []
    used = 0
    for pid in pids:
        user = after[pid][0] - before[pid][0]
        system = after[pid][1] - before[pid][1]
        used += user + system
        members.append((roles[pid], user * TICK_US / ops, system * TICK_US / ops))
    members.sort(key=lambda m: m[0] != "leader")
    gen_ticks = res["gen_cpu_pct"] / 100 * secs * 1_000_000 / TICK_US
    other = max(0.0, (host1 - host0 - used - gen_ticks) * TICK_US / ops)
    return {"ops_per_s": res["ops_per_s"], "p50_ms": res["p50_ms"], "members": members,
            "other_us": other}


def _cpu(m: dict, leader: bool) -> float:
    """µs of CPU per operation of the leader, or of the followers together, in one run."""
    return sum(u + s for role, u, s in m["members"] if (role == "leader") == leader)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cmd", action="append", default=None,
                    help="a zkserver command (repeat to compare; default: python -m zkserver)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--secs", type=float, default=8.0)
    ap.add_argument("--via", default=",".join(VIAS), help="leader,follower or one of them")
    args = ap.parse_args()
    cmds = args.cmd or [f"{sys.executable} -m zkserver"]
    vias = [v for v in args.via.split(",") if v]
    if not vias or any(v not in VIAS for v in vias):
        ap.error(f"--via takes {','.join(VIAS)}")
    results: dict[tuple[int, str], list[dict]] = {}
    for r in range(1, args.rounds + 1):
        for i, cmd in enumerate(cmds):
            ens = ensemble.ZkServerEnsemble(cmd, 3)
            try:
                ens.start()
                for via in vias:
                    m = measure(ens, via, args.secs)
                    results.setdefault((i, via), []).append(m)
                    cpu = "  ".join(f"{role} {u:.0f}+{s:.0f}" for role, u, s in m["members"])
                    print(f"round {r} cmd {i + 1} via {via}: {m['ops_per_s']:,} ops/s, p50 "
                          f"{m['p50_ms']} ms; µs per op, user+system: {cpu}; other "
                          f"{m['other_us']:.0f}", flush=True)
            finally:
                warning = ens.stop()
                if warning:
                    print(f"cmd {i + 1}: {warning}", file=sys.stderr)
    print("\nMedians over the rounds (µs of CPU per operation; p50 in ms):")
    print("| cmd | via | p50 | leader | followers | other | all |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (i, via), ms in sorted(results.items()):
        leader = statistics.median(_cpu(m, leader=True) for m in ms)
        followers = statistics.median(_cpu(m, leader=False) for m in ms)
        other = statistics.median(m["other_us"] for m in ms)
        p50 = statistics.median(m["p50_ms"] for m in ms)
        print(f"| {i + 1} | {via} | {p50:.3f} | {leader:.0f} | {followers:.0f} | {other:.0f} | "
              f"{leader + followers + other:.0f} |")
    for i, cmd in enumerate(cmds):
        print(f"cmd {i + 1}: {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
