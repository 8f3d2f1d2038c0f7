"""A throwaway Ray cluster of N nodes on this machine, to try `vis-ros suite --ray-address` locally.

Used by the suite's tests and benchmark; also handy before submitting to a real cluster:

    with LocalRayCluster(nodes=2, cpus_per_node=1) as cluster:
        main(['suite', 'bags/', '--out', 'out', '--ray-address', cluster.address])

Each node is its own `ray start` (head first, then `--address`), with its own temporary folder
and ports, started in its own process group. `stop()` ends exactly those process groups (never
`ray stop`, which would end every Ray process of the machine) and waits until none is left.
Ray maps a loopback --node-ip-address to the host's primary address (upstream behaviour); the
nodes still talk only inside this machine.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from vis_ros.core.errors import ConfigError


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def group_members(pgids) -> list[int]:
    """Live (non-zombie) processes of these process groups."""
    alive = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in pgids and fields[0] != 'Z':
            alive.append(int(stat.parent.name))
    return alive


class LocalRayCluster:
    """`nodes` Ray nodes on this machine; `address` is the head's HOST:PORT."""

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, object_store_mb: int = 80):
        """Describe the cluster; `start()` (or `with`) starts it."""
        self.nodes, self.cpus, self.store_mb = nodes, cpus_per_node, object_store_mb
        self.ray = shutil.which('ray', path=str(Path(sys.executable).parent)) or shutil.which('ray')
        self.pgids: list[int] = []
        self.temp_dirs: list[str] = []
        self.address: Optional[str] = None
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0')

    def _start_node(self, *args: str) -> None:
        # short folder names: Ray's unix socket paths must stay under 107 characters
        temp = tempfile.mkdtemp(prefix='vrs', dir='/tmp')
        self.temp_dirs.append(temp)
        command = [self.ray, 'start', *args, '--temp-dir', temp, '--num-cpus', str(self.cpus),
                   '--object-store-memory', str(self.store_mb * 2**20), '--node-ip-address', '127.0.0.1',
                   '--disable-usage-stats', '--dashboard-agent-listen-port', str(free_port()),
                   '--metrics-export-port', str(free_port())]
        proc = subprocess.Popen(command, env=self.env, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.pgids.append(proc.pid)      # its daemons keep this process group after it exits
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise ConfigError(f'ray start failed ({proc.returncode}): {output[-1500:]}')

    def start(self) -> 'LocalRayCluster':
        """Start the head, then the other nodes; returns self once all have joined."""
        if self.ray is None:
            raise ConfigError('the `ray` command is not installed (pip install "vis_ros[fleet]")')
        port = free_port()
        self.address = f'127.0.0.1:{port}'
        try:
            self._start_node('--head', '--port', str(port), '--include-dashboard', 'false',
                             '--dashboard-port', str(free_port()))
            for _ in range(self.nodes - 1):
                self._start_node('--address', self.address)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 5.0) -> list[int]:
        """End every process of the cluster (TERM, then KILL); returns those still alive (none)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pgid in self.pgids:
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (timeout_s if sig == signal.SIGTERM else 10.0)
            while group_members(self.pgids) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not group_members(self.pgids):
                break
        for temp in self.temp_dirs:
            shutil.rmtree(temp, ignore_errors=True)
        return group_members(self.pgids)

    def __enter__(self) -> 'LocalRayCluster':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
