"""The test network of ``make cluster``: one Linux bridge and one network namespace per host,
each joined to the bridge by a veth pair, all in 198.18.0.0/24 (the benchmarking range of
RFC 2544, which no real network uses). Every name it makes starts with ``drc-``, so
``remove_leftovers`` finds what an interrupted run left behind and removes it.

A host's cable is the root-side end of its veth pair (named like its namespace): ``cut`` sets
it down (the host's packets go nowhere, its TCP connections stall without a reset) and
``heal`` sets it up again. ``degrade`` adds latency and loss on the host's own end (tc netem).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

PREFIX = "drc-"
BRIDGE = f"{PREFIX}br0"
SUBNET = "198.18.0"
GATEWAY = f"{SUBNET}.1"


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    name: str  # db, lb, api1, w1 ...
    octet: int

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.octet}"

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host (``ip netns exec`` execs it: the pid stays the same)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, *argv: str) -> None:
        done = subprocess.run(
            self.wrap(list(argv)), capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)}: {done.stderr.strip()}")


def make_bridge() -> None:
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def make_host(host: Host) -> None:
    """The namespace, its veth pair on the bridge, its address and loopback."""
    peer = f"{host.netns}-p"[:15]
    ip("netns", "add", host.netns)
    ip("link", "add", host.netns, "type", "veth", "peer", "name", peer)
    ip("link", "set", peer, "netns", host.netns)
    ip("link", "set", host.netns, "master", BRIDGE)
    ip("link", "set", host.netns, "up")
    host.run("ip", "link", "set", peer, "name", "eth0")
    host.run("ip", "addr", "add", f"{host.address}/24", "dev", "eth0")
    host.run("ip", "link", "set", "eth0", "up")
    host.run("ip", "link", "set", "lo", "up")


def cut(host: Host) -> None:
    ip("link", "set", host.netns, "down")


def heal(host: Host) -> None:
    ip("link", "set", host.netns, "up")


NETEM = "netem delay 50ms loss 2%"
#: Where the kernel has no sch_netem (some VM kernels): a token bucket slow enough that
#: packets queue, those that would wait over 50 ms dropped: delay and loss, not a fixed one.
TBF = "tbf rate 2mbit burst 8kb latency 50ms"


def degrade(host: Host) -> str:
    """Latency and loss on the host's interface: ``NETEM``, or ``TBF`` without netem.
    Returns the qdisc it set."""
    for spec in (NETEM, TBF):
        try:
            host.run("tc", "qdisc", "add", "dev", "eth0", "root", *spec.split())
        except RuntimeError:
            continue
        return spec
    raise RuntimeError(f"{host.name}: neither netem nor tbf is available")


def restore(host: Host) -> None:
    host.run("tc", "qdisc", "del", "dev", "eth0", "root")


def namespaces() -> list[str]:
    names = [line.split()[0] for line in ip("netns", "list", check=False).splitlines() if line]
    return [name for name in names if name.startswith(PREFIX)]


def remove_leftovers() -> list[str]:
    """Kill every process inside a ``drc-`` namespace, delete those namespaces, the bridge and
    any ``drc-`` link left in the root namespace. Returns what it removed."""
    removed = []
    for name in namespaces():
        for _ in range(3):
            pids = [int(p) for p in ip("netns", "pids", name, check=False).split()]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
        ip("netns", "del", name, check=False)
        removed.append(name)
    for line in ip("-o", "link", "show", check=False).splitlines():
        link = line.split(":")[1].strip().split("@")[0]
        if link.startswith(PREFIX):
            ip("link", "del", link, check=False)
            removed.append(link)
    return removed
