"""Pick a DDS domain id that no other vis_ros process on this host holds.

Two demos or two test runs on one host must never share a DDS domain by accident: their nodes
would see each other's topics and corrupt each other's numbers. Each process that needs a private
domain takes an exclusive lock on `<lock_dir>/vis_ros_dds_domain_<id>.lock` (flock, released by
the kernel when the process exits, even on SIGKILL) and keeps it for its lifetime.

Pure Python (no rclpy): the demo, the tests and the tools all use it before any ROS context exists.
"""
from __future__ import annotations

import fcntl
import os
import random
import tempfile
from pathlib import Path
from typing import Optional

from vis_ros.core.errors import ConfigError

# Fast DDS / Cyclone map domain d to UDP ports 7400 + 250 d (+ offsets): ids above 232 overflow
# 65535. Low ids are left to the user's own ROS systems (0 is ROS's default).
FIRST_DOMAIN, LAST_DOMAIN = 100, 232

_held: dict[int, int] = {}   # domain id -> fd of its lock, kept open for the process's lifetime


def lock_dir() -> Path:
    """Where the lock files live: $VIS_ROS_LOCK_DIR, else the system temp folder."""
    return Path(os.environ.get('VIS_ROS_LOCK_DIR') or tempfile.gettempdir())


def claim_domain(preferred: Optional[int] = None, *, seed: Optional[int] = None) -> int:
    """Lock and return a free domain id in [FIRST_DOMAIN, LAST_DOMAIN] for this process.

    preferred: try this id first (e.g. a user's override); taken, it raises ConfigError naming it.
    seed: start the search at a seeded random id (default: from the pid), so concurrent processes
        rarely race for the same id.
    """
    if preferred is not None:
        if not 0 <= preferred <= LAST_DOMAIN:
            raise ConfigError(f'DDS domain id {preferred} is outside 0..{LAST_DOMAIN}')
        if _try_lock(preferred):
            return preferred
        raise ConfigError(f'DDS domain {preferred} is already used by another vis_ros process on this '
                          'host; unset the override to get a free one')
    span = LAST_DOMAIN - FIRST_DOMAIN + 1
    start = random.Random(os.getpid() if seed is None else seed).randrange(span)
    for k in range(span):
        domain = FIRST_DOMAIN + (start + k) % span
        if _try_lock(domain):   # ids this process already holds are skipped: one per caller
            return domain
    raise ConfigError(f'no free DDS domain in {FIRST_DOMAIN}..{LAST_DOMAIN} on this host '
                      f'(lock files in {lock_dir()}): stop other vis_ros demos or test runs')


def release_domain(domain: int) -> None:
    """Give a claimed domain back before the process ends (optional; exit releases it too)."""
    fd = _held.pop(domain, None)
    if fd is not None:
        os.close(fd)


def _try_lock(domain: int) -> bool:
    if domain in _held:
        return False
    path = lock_dir() / f'vis_ros_dds_domain_{domain}.lock'
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held[domain] = fd
    return True
