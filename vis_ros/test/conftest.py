"""Shared pytest fixtures: DDS stays on this host; ../shared data is found or the test skips."""
import os
from pathlib import Path

import pytest

# Every process a test starts inherits these: DDS discovery never leaves this machine, and large
# best-effort images use the shared-memory profile.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                      str(Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_shm.xml'))


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """../shared/data, or skip: the evaluation data is not part of the project."""
    from vis_ros.core.sequences import shared_data_dir
    data = shared_data_dir()
    if data is None:
        pytest.skip('../shared/data is absent (evaluation data lives beside the checkout, '
                    'never in it); set VIS_ROS_SHARED_DATA to its path to run this test')
    return data
