"""A ROS workspace with this repo in src/ discovers and builds both packages with colcon."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tracked_files():
    out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


@pytest.mark.slow
def test_colcon_builds_msgs_and_node_package(tmp_path):
    colcon = shutil.which('colcon')
    if colcon is None or not (REPO / '.git').exists():
        pytest.skip('colcon (pip: colcon-core colcon-ros) or a git checkout is missing')
    src = tmp_path / 'ws' / 'src' / 'vis_ros'
    for rel in _tracked_files():        # a clean checkout: no .venv, build or install inside
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    venv = Path(sys.prefix)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(venv), CMAKE_PREFIX_PATH=str(venv))
    env.pop('PYTHONPATH', None)
    result = subprocess.run(
        [colcon, 'build', '--base-paths', 'src', '--merge-install', '--cmake-args',
         '-DCMAKE_BUILD_TYPE=Release', f'-DPython3_EXECUTABLE={sys.executable}', '-DBUILD_TESTING=OFF'],
        cwd=tmp_path / 'ws', env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'Finished <<< vis_ros_msgs' in result.stdout + result.stderr
    assert 'Finished <<< vis_ros ' in result.stdout + result.stderr
    install = tmp_path / 'ws' / 'install'
    assert (install / 'lib' / 'vis_ros' / 'vis_node').exists()
    assert (install / 'share' / 'vis_ros_msgs' / 'msg' / 'InstanceArray.msg').exists()
    assert (install / 'share' / 'vis_ros' / 'config' / 'fastdds_large_shm.xml').exists()
