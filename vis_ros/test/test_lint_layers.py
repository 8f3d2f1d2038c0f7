"""The layer rule: only vis_ros/ros and vis_ros/nodes touch ROS; vis_ros/core never loads ML runtimes.

Every .py under vis_ros/vis_ros is parsed with `ast`, so imports inside functions count too (they
still tie the module to ROS when they run); `importlib.import_module('x')` and `__import__('x')`
with a constant name count as importing x. A subprocess then checks what importing the light
layers really loads, which also catches a heavy import reached through a colleague module.
"""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'vis_ros'          # vis_ros/vis_ros
ROS_LAYERS = ('ros', 'nodes')
ROS_MODULES = {
    'rclpy', 'std_msgs', 'sensor_msgs', 'vis_ros_msgs', 'diagnostic_msgs', 'lifecycle_msgs',
    'builtin_interfaces', 'vision_msgs', 'geometry_msgs', 'rcl_interfaces', 'launch', 'launch_ros',
    'visualization_msgs', 'std_srvs', 'message_filters', 'tf2_ros', 'cv_bridge', 'rosbag2_py',
}
ROS_MODULE_PATTERN = re.compile(r'^(rosidl\w*|rcl\w*|\w+_msgs|\w+_srvs|\w+_interfaces)$')
ML_RUNTIMES = {'torch', 'onnxruntime', 'tensorrt', 'ai_edge_litert', 'tflite_runtime', 'tensorflow'}


def imported_modules(source: str, filename: str = '<source>'):
    """List (line, dotted module name) of every absolute import in `source`, anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
            if name in ('import_module', '__import__') and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def is_ros_module(name: str) -> bool:
    """Tell whether `name` is rclpy, rosidl*, a ROS message/interface package or launch."""
    top = name.split('.')[0]
    return top in ROS_MODULES or bool(ROS_MODULE_PATTERN.match(top))


def layer_of(path: Path) -> str:
    """Return the sub-package ('core', 'ros', ...) of a file in vis_ros/vis_ros; '' at the top."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ''


def layer_violations(path: Path, source: str):
    """List a message for every import of `source` that breaks the layer rule for `path`."""
    layer = layer_of(path)
    where = path.relative_to(PACKAGE.parent)
    problems = []
    for line, name in imported_modules(source, str(path)):
        if layer not in ROS_LAYERS and is_ros_module(name):
            problems.append(f'{where}:{line} imports {name}; only vis_ros/ros and vis_ros/nodes may '
                            'import ROS (convert through vis_ros.ros instead)')
        if layer == 'core' and name.split('.')[0] in ML_RUNTIMES:
            problems.append(f'{where}:{line} imports {name}; vis_ros/core must stay pure numpy/OpenCV '
                            '(put it in a vis_ros/segment backend module)')
    return problems


def python_files():
    return sorted(PACKAGE.rglob('*.py'))


def test_the_package_has_sources_to_check():
    layers = {layer_of(path) for path in python_files()}
    assert {'core', 'ros', 'segment'} <= layers


def test_only_ros_and_nodes_import_ros_and_core_imports_no_ml_runtime():
    problems = []
    for path in python_files():
        problems += layer_violations(path, path.read_text(encoding='utf-8'))
    assert not problems, 'layer rule broken:\n' + '\n'.join(problems)


@pytest.mark.parametrize('relative, source, expected', [
    ('core/a.py', 'import rclpy', 1),
    ('core/a.py', 'def f():\n    from sensor_msgs.msg import Image', 1),
    ('segment/a.py', 'import rosidl_runtime_py.utilities', 1),
    ('tools/a.py', 'from vis_ros_msgs.msg import InstanceArray', 1),
    ('tools/a.py', 'import launch_ros.actions', 1),
    ('core/a.py', 'import importlib\nimportlib.import_module("torch")', 1),
    ('core/a.py', '__import__("onnxruntime")', 1),
    ('core/a.py', 'import tensorrt as trt\nfrom ai_edge_litert import interpreter', 2),
    ('segment/a.py', 'import onnxruntime', 0),
    ('ros/a.py', 'import rclpy\nfrom std_msgs.msg import Header', 0),
    ('nodes/a.py', 'from lifecycle_msgs.msg import State', 0),
    ('core/a.py', 'from vis_ros.ros import convert', 0),   # indirect: the subprocess check catches it
    ('core/a.py', 'import numpy, cv2, scipy.optimize\nfrom . import masks', 0),
])
def test_checker_flags_what_it_should(relative, source, expected):
    assert len(layer_violations(PACKAGE / relative, source)) == expected


LIGHT_IMPORT_CHECK = r'''
import importlib, json, pkgutil, sys
import vis_ros.core, vis_ros.segment
names = ['vis_ros.core', 'vis_ros.segment']
for info in pkgutil.walk_packages(vis_ros.core.__path__, 'vis_ros.core.'):
    importlib.import_module(info.name)
    names.append(info.name)
for name in ('vis_ros.segment.base', 'vis_ros.segment.pipeline'):
    try:
        importlib.import_module(name)
        names.append(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)
print(json.dumps({'imported': names, 'heavy': heavy}))
'''


def test_importing_core_and_segment_loads_no_ros_and_no_ml_runtime():
    heavy = sorted(ML_RUNTIMES | {'rclpy', 'rosidl_runtime_py', 'sensor_msgs', 'vis_ros_msgs'})
    code = f'HEAVY = set({heavy!r})\n' + LIGHT_IMPORT_CHECK
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert 'vis_ros.core.masks' in report['imported']
    assert report['heavy'] == [], (f'importing {report["imported"]} loaded {report["heavy"]}; '
                                   'move those imports into the function or backend that needs them')
