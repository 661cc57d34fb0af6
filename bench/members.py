"""What the ensemble benchmarks share about members on loopback: a free block of ports and the
mode a member reports. Standard library only, like the rest of bench/."""

from __future__ import annotations

import random
import socket


def free_port_base(n: int) -> int:
    """A base port b with b+1..b+n, b+101..b+100+n and b+201..b+200+n all free now (client,
    quorum and election ports, the layout of realzk.RealZooKeeper), below the kernel's
    ephemeral ports: one in that range that is free now may become the local end of another
    process's connection before the server binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, min(ephemeral_low, 32768) - 500)
        socks = []
        try:
            for off in (0, 100, 200):
                for i in range(1, n + 1):
                    s = socket.socket()
                    socks.append(s)
                    s.bind(("127.0.0.1", base + off + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports")


def _srvr(port: int, timeout: float) -> list[str] | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"srvr")
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8", "replace").splitlines()


def srvr_mode(port: int, timeout: float = 1.0) -> str:
    """The `Mode:` a member's `srvr` four-letter word reports; "down" if it does not answer,
    "not serving" if it answers without a mode."""
    lines = _srvr(port, timeout)
    if lines is None:
        return "down"
    for line in lines:
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return "not serving"


def packets_sent(port: int, timeout: float = 5.0) -> int | None:
    """The `Sent:` count of a member's `srvr` (packets it sent to clients), None if unknown."""
    for line in _srvr(port, timeout) or []:
        if line.startswith("Sent:"):
            try:
                return int(line.split(":", 1)[1])
            except ValueError:
                return None
    return None
