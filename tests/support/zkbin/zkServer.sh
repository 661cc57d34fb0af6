#!/usr/bin/env python3
"""A stand-in for ZooKeeper's bin/zkServer.sh, so client test suites that start their own
servers with `zkServer.sh start-foreground <zoo.cfg>` (go-zookeeper/zk's, through
ZOOKEEPER_BIN_PATH) start either Apache ZooKeeper or zkserver, as the environment says:

    ZKSUITE_SERVER=zookeeper   Apache ZooKeeper (tests/support/realzk.py's release)
    ZKSUITE_SERVER=zkserver    zkserver, from this checkout

It replaces itself with the server (exec), so the suite's kill reaches the server. The
`-D<key>=<value>` flags a suite puts in SERVER_JVMFLAGS go to the JVM for ZooKeeper; for
zkserver, those naming ZooKeeper settings (`zookeeper.<key>`) are appended to a copy of the
zoo.cfg, which zkserver reads under either spelling.
"""

import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] != "start-foreground":
        sys.exit(f"usage: {sys.argv[0]} start-foreground <zoo.cfg>")
    cfg = Path(sys.argv[2])
    flags = shlex.split(os.environ.get("SERVER_JVMFLAGS", ""))
    which = os.environ.get("ZKSUITE_SERVER", "zookeeper")
    if which == "zookeeper":
        from support import realzk

        log_dir = cfg.parent
        os.execvp("java", ["java", "-Xmx256m", *flags, *realzk.log_args(log_dir),
                           "-cp", realzk.classpath(),
                           "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)])
    if which != "zkserver":
        sys.exit(f"ZKSUITE_SERVER={which!r}: expected zookeeper or zkserver")
    extra = [f[2:] for f in flags if f.startswith("-Dzookeeper.") and "=" in f]
    ours = cfg.with_name(cfg.stem + ".zkserver.cfg")
    ours.write_text(cfg.read_text().rstrip("\n") + "\n" + "".join(f"{e}\n" for e in extra))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    os.execvpe(sys.executable, [sys.executable, "-m", "zkserver", str(ours)], env)


main()
