"""A real local Ray cluster for tests and benchmarks: a head node and worker nodes, on 127.0.0.1.

Each node is started with the ``ray`` command of this virtual environment, in
its own session, and stopped by signalling that session's processes: it
stops exactly the processes this helper started (``ray stop`` would stop every
Ray process of the machine).

    cluster = RayCluster(tmp_path / "ray").start_head(num_cpus=1)
    cluster.add_node(num_cpus=1)
    ... camsight index --cluster cluster.address ...
    cluster.stop()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from servers import free_port

RAY = Path(sys.executable).with_name("ray")


class RayCluster:
    """Ray nodes on this machine; ``address`` is the head's host:port for ``--cluster``."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        # Ray's socket paths must stay short (AF_UNIX limit of 107 bytes): a short temp folder.
        self.root = root
        self.env = {**os.environ, **(env or {}), "RAY_USAGE_STATS_ENABLED": "0"}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        #: Session of each node (the pid of its `ray start`), head first.
        self.groups: list[int] = []

    def start_head(self, num_cpus: int = 1) -> RayCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.groups.append(
            self._run(
                [
                    "--head",
                    f"--port={self.port}",
                    "--node-ip-address=127.0.0.1",
                    f"--num-cpus={num_cpus}",
                    "--include-dashboard=false",
                    f"--temp-dir={self.root}",
                ]
            )
        )
        return self

    def add_node(self, num_cpus: int = 1) -> int:
        """Join a worker node; returns its session (for :meth:`stop_node`)."""
        group = self._run(
            [f"--address={self.address}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}"]
        )
        self.groups.append(group)
        return group

    def _run(self, args: list[str]) -> int:
        proc = subprocess.Popen(
            [str(RAY), "start", *args, "--disable-usage-stats"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        out, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            self._kill(proc.pid)
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out}")
        # `ray start` led a new session; the node's daemons and workers stay in it.
        return proc.pid

    def pids(self, title: str) -> list[int]:
        """Processes of this cluster whose command line starts with ``title`` (e.g. ``ray::analyse``)."""
        found = []
        for session in self.groups:
            for pid in _members(session):
                try:
                    cmd = (
                        Path(f"/proc/{pid}/cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode(errors="replace")
                    )
                except OSError:
                    continue
                if cmd.startswith(title):
                    found.append(pid)
        return found

    def stop_node(self, group: int) -> None:
        self._kill(group)
        if group in self.groups:
            self.groups.remove(group)

    def stop(self) -> None:
        """Stop every node, workers first."""
        for group in reversed(self.groups):
            self._kill(group)
        self.groups.clear()

    @staticmethod
    def _kill(session: int) -> None:
        """Stop the processes of a node's session: TERM, then KILL what is left after 10 s."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _members(session):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while _members(session) and time.monotonic() < deadline:
                time.sleep(0.2)


def _members(session: int) -> list[int]:
    """Running processes of a session (Ray's workers lead their own process groups, not sessions).

    Zombies left to an init that does not reap them are not running.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces, so split after its ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry.name))
    return found
