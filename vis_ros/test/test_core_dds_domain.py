"""Two processes on one host never get the same DDS domain from claim_domain()."""
import subprocess
import sys

import pytest

from vis_ros.core.dds_domain import FIRST_DOMAIN, LAST_DOMAIN, claim_domain, release_domain
from vis_ros.core.errors import ConfigError

HOLD = ('import sys, time; from vis_ros.core.dds_domain import claim_domain; '
        'print(claim_domain(seed=7), flush=True); sys.stdin.read()')


def test_other_process_gets_another_domain(tmp_path, monkeypatch):
    monkeypatch.setenv('VIS_ROS_LOCK_DIR', str(tmp_path))
    holder = subprocess.Popen([sys.executable, '-c', HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**__import__('os').environ, 'VIS_ROS_LOCK_DIR': str(tmp_path)})
    try:
        held = int(holder.stdout.readline())
        assert FIRST_DOMAIN <= held <= LAST_DOMAIN
        mine = claim_domain(seed=7)   # the same seed starts at the same id: it must skip the held one
        assert mine != held
        with pytest.raises(ConfigError, match=f'DDS domain {held} is already used'):
            claim_domain(held)
        release_domain(mine)
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert claim_domain(held) == held   # the lock dies with its process
    release_domain(held)


def test_one_process_gets_distinct_domains(tmp_path, monkeypatch):
    monkeypatch.setenv('VIS_ROS_LOCK_DIR', str(tmp_path))
    a, b = claim_domain(seed=3), claim_domain(seed=3)
    assert a != b
    release_domain(a)
    release_domain(b)
    with pytest.raises(ConfigError, match='outside'):
        claim_domain(999)
