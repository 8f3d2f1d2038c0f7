"""The litert backend on the real MediaPipe selfie models fetched by scripts/fetch_models.sh."""
import subprocess
import sys

import numpy as np
import pytest

from vis_ros.core.errors import BackendUnavailable, ConfigError, InputError, ModelFormatError
from vis_ros.core.sequences import repo_root
from vis_ros.core.types import Frame
from vis_ros.segment.base import backend_options, make_backend
from vis_ros.segment.foreground import probability_plane

pytest.importorskip('ai_edge_litert')

MODELS = repo_root() / '.cache' / 'models'


@pytest.fixture(scope='module')
def selfie():
    """Load the general selfie model as a litert backend (the backend's default model_path)."""
    if not (MODELS / 'selfie_segmentation.tflite').is_file():
        pytest.skip(f'{MODELS}/selfie_segmentation.tflite is absent: run `bash scripts/fetch_models.sh` '
                    '(scripts/install.sh does it)')
    backend = make_backend('litert', {})
    yield backend
    backend.close()


def test_default_model_is_nhwc_selfie_segmentation(selfie):
    assert selfie.info.name == 'litert' and selfie.info.class_names == ('person',)
    assert selfie.info.input_size == (256, 256) and 'NHWC' in selfie.info.detail
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    outputs, box = selfie.run_model(rgb)
    assert outputs['activation_10'].shape == (1, 256, 256, 1)
    prob = probability_plane(outputs['activation_10'])
    assert prob.min() >= 0.0 and prob.max() <= 1.0   # already a sigmoid: used as is
    assert (box.src_height, box.src_width, box.dst_height, box.dst_width) == (480, 640, 256, 256)
    inst = selfie.segment(Frame(rgb, 1))
    assert inst.image_size == (480, 640)
    assert set(selfie.stage_ms) == {'preprocess', 'inference', 'decode'}


def test_landscape_model_and_options(selfie):
    landscape = MODELS / 'selfie_segmentation_landscape.tflite'
    backend = make_backend('litert', {'model_path': str(landscape), 'num_threads': 1, 'min_area': 10})
    assert backend.info.input_size == (144, 256)
    rgb = np.full((480, 640, 3), 128, np.uint8)
    assert backend.segment(rgb).image_size == (480, 640)
    assert 'num_threads' in {s.name for s in backend_options('litert')}
    with pytest.raises(ConfigError, match='num_threads'):
        make_backend('litert', {'num_threads': 0})
    with pytest.raises(ConfigError, match='fixed input of 256x144'):
        make_backend('litert', {'model_path': str(landscape), 'input_size': '256x256'})


def test_missing_model_points_to_fetch_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    explicit = tmp_path / 'model.tflite'
    with pytest.raises(BackendUnavailable) as err:
        make_backend('litert', {'model_path': str(explicit)})
    assert str(explicit) in str(err.value) and 'backend: motion' in str(err.value)
    if not (MODELS / 'selfie_segmentation.tflite').is_file():
        with pytest.raises(BackendUnavailable, match='fetch_models.sh'):
            make_backend('litert', {})


def test_non_tflite_file_is_a_model_format_error(tmp_path):
    fake = tmp_path / 'fake.tflite'
    fake.write_bytes(b'\x00' * 64)
    with pytest.raises(ModelFormatError, match='cannot load'):
        make_backend('litert', {'model_path': str(fake)})


def test_bad_frames_and_missing_package(selfie, monkeypatch):
    bad = (np.zeros((48, 64), np.uint8), np.zeros((48, 64, 4), np.uint8), np.zeros((0, 0, 3), np.uint8))
    for image in bad:
        with pytest.raises(InputError):
            selfie.segment(image)
    monkeypatch.setitem(sys.modules, 'ai_edge_litert.interpreter', None)
    with pytest.raises(BackendUnavailable, match='ai-edge-litert'):
        make_backend('litert', {})


def test_fetch_script_is_idempotent(selfie):
    script = repo_root() / 'scripts' / 'fetch_models.sh'
    before = {p.name: p.stat().st_mtime_ns for p in MODELS.glob('*.tflite')}
    result = subprocess.run(['bash', str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'up to date' in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in MODELS.glob('*.tflite')} == before
