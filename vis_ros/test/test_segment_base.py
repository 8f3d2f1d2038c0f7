"""The backend registry and Protocol: light imports, clear errors for unknown names, option tables."""
import subprocess
import sys

import pytest

from vis_ros.core.errors import ConfigError
from vis_ros.core.options import OptionSpec
from vis_ros.segment.base import BACKEND_NAMES, SegmentBackend, backend_options, make_backend

HEAVY = ('torch', 'onnxruntime', 'tensorrt', 'ai_edge_litert')


def test_importing_segment_and_motion_loads_no_heavy_package():
    code = ('import sys, vis_ros.segment, vis_ros.segment.base, vis_ros.segment.pipeline, '
            'vis_ros.segment.motion; '
            f'print(",".join(m for m in {HEAVY!r} if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '', f'heavy packages imported: {out.stdout.strip()}'


def test_unknown_backend_name_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError, match='motion'):
        make_backend('yolo')
    with pytest.raises(ConfigError, match="'yolo'"):
        backend_options('yolo')


def test_backend_options_of_motion_is_its_option_table():
    specs = backend_options('motion')
    assert specs and all(isinstance(s, OptionSpec) for s in specs)
    assert 'motion' in BACKEND_NAMES
    assert {'work_width', 'memory', 'threshold', 'embeddings'} <= {s.name for s in specs}


def test_make_backend_builds_motion_and_checks_its_options():
    backend = make_backend('motion', {'work_width': 160})
    assert isinstance(backend, SegmentBackend) and backend.info.name == 'motion'
    backend.close()
    with pytest.raises(ConfigError, match='motion.min_area'):
        make_backend('motion', {'min_area': -1})
