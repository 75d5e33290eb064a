"""Helpers for the supervisor tests (zkworker --processes): start a master, read its
status socket, wait for its processes to serve."""

from __future__ import annotations

import os
import socket
from typing import Optional, Sequence

import harness
import lb_harness
from harness import DEFAULT_TIMEOUT, Process, Sandbox, wait_for


def free_port_run(n: int) -> int:
    """A base port such that base..base+n-1 are free now."""
    for _ in range(200):
        base = harness.free_port()
        ok = True
        for p in range(base + 1, base + n):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise AssertionError(f"no run of {n} free ports")


class Master:
    def __init__(self, proc: Process, status_path: str, base_port: int, n: int):
        self.proc = proc
        self.status_path = status_path
        self.base_port = base_port
        self.n = n

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(self.n)]

    def status(self) -> dict:
        return lb_harness.read_status(self.status_path)

    def pids(self) -> list[Optional[int]]:
        return [s["process"]["pid"] if s["process"] else None for s in self.status()["slots"]]

    def wait_serving(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Waits until every slot's process serves and none is being replaced."""
        def check():
            st = self.status()
            for s in st["slots"]:
                if not s["process"] or s["process"]["state"] != "serving" or s["successor"]:
                    return None
            return st
        return wait_for(check, timeout, message=lambda: f"all processes serving in "
                        f"{self.proc.name}")


def start_master(sandbox: Sandbox, n: int, extra_args: Sequence[str] = (),
                 app: str = "plain_app:application", pythonpath: str = harness.APPS_DIR,
                 base_port: Optional[int] = None, address: Optional[str] = None,
                 threads: int = 1, wait: bool = True) -> Master:
    base = base_port if base_port is not None else free_port_run(n)
    status_path = sandbox.path(f"master-{len(sandbox.processes)}.sock")
    argv = [harness.binary("zkworker"), f"--app={app}",
            f"--address={address if address is not None else f'127.0.0.1:{base}'}",
            f"--threads={threads}", f"--pythonpath={pythonpath}", f"--processes={n}",
            f"--status_socket={status_path}", *extra_args]
    proc = sandbox.start(argv, name="master")
    wait_for(lambda: os.path.exists(status_path), DEFAULT_TIMEOUT,
             message="the master's status socket")
    m = Master(proc, status_path, base, n)
    if wait:
        m.wait_serving()
    return m
