"""TensorRT backend: configure-time checks everywhere; engine build, inference and parity on a GPU.

Without TensorRT or a CUDA device (this CI), choosing the backend must fail at configure with a
BackendUnavailable that names the missing piece and suggests backend: onnx. The GPU tests at the
end build real engines from the real selfie model and compare them to ONNX Runtime.
"""
import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vis_ros.core.errors import BackendUnavailable, ConfigError
from vis_ros.core.options import validate_options
from vis_ros.core.types import Frame
from vis_ros.segment.base import backend_options, make_backend
from vis_ros.segment.engine_cache import EngineCache
from vis_ros.segment.preprocess import prepare_input
from vis_ros.segment.tensorrt_backend import OPTIONS, EnginePlan, read_onnx_io
from vis_ros.segment import trt_runtime

SELFIE = Path(__file__).resolve().parents[3] / 'shared' / 'models' / 'selfie_segmentation.onnx'
SELFIE_SHA256 = '9dbc1b86dc602b77e582e43b82b33f763e8372c209a3639f0cd54eb9cecb6f5f'


def _cuda_device_count() -> int:
    for library in ('cupy', 'torch'):
        count = trt_runtime._device_count(library)
        if count > 0:
            return count
    return 0


HAVE_TENSORRT = importlib.util.find_spec('tensorrt') is not None
HAVE_GPU = HAVE_TENSORRT and _cuda_device_count() > 0
needs_gpu = pytest.mark.skipif(
    not HAVE_GPU, reason='needs the tensorrt package and a CUDA device (benchmarks/GPU.md: the GPU machine)')


@pytest.fixture(scope='module')
def selfie():
    if not SELFIE.is_file():
        pytest.skip(f'{SELFIE} is absent (shared models live beside the checkout, never in it)')
    return SELFIE


@pytest.fixture
def dynamic_onnx(tmp_path):
    """A real ONNX model with dynamic H/W: mean over channels -> sigmoid, a foreground-style map."""
    onnx = pytest.importorskip('onnx', reason='the onnx package builds this test model')
    TensorProto, helper, save = onnx.TensorProto, onnx.helper, onnx.save
    image = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 'height', 'width'])
    prob = helper.make_tensor_value_info('prob', TensorProto.FLOAT, [1, 1, 'height', 'width'])
    graph = helper.make_graph([helper.make_node('ReduceMean', ['images'], ['mean'], axes=[1], keepdims=1),
                               helper.make_node('Sigmoid', ['mean'], ['prob'])], 'fg', [image], [prob])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    path = tmp_path / 'dynamic.onnx'
    save(model, str(path))
    return path


def _plan(**options) -> EnginePlan:
    return EnginePlan.from_options(validate_options(OPTIONS, options, 'tensorrt'))


# --- options and configure-time errors (any machine) --------------------------------------------

def test_options_table_is_light_and_complete():
    names = [spec.name for spec in backend_options('tensorrt')]
    for name in ('model_path', 'precision', 'input_shape', 'calib_dir', 'cache_dir', 'build_if_missing',
                 'lock_timeout_s', 'decoder', 'score_threshold', 'resize', 'normalize'):
        assert name in names
    assert len(names) == len(set(names))
    code = ('import sys, vis_ros.segment.tensorrt_backend, vis_ros.segment.trt_runtime, '
            'vis_ros.tools.build_engine; '
            "print([m for m in ('tensorrt', 'torch', 'cupy', 'onnxruntime') if m in sys.modules])")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'


@pytest.mark.parametrize('options,message', [
    ({'precision': 'fp8'}, 'precision'),
    ({'input_shape': '640'}, 'WIDTHxHEIGHT'),
    ({'input_shape': '1280x1280:640x640:320x320'}, 'min <= opt <= max'),
    ({'input_shape': '640x640'}, r'fixed at 256.*256x256'),
    ({'precision': 'int8'}, 'int8 needs calib_dir'),
    ({'lock_timeout_s': -1}, 'lock_timeout_s'),
    ({'build_if_missing': 'yes'}, 'build_if_missing'),
    ({'engine_file': 'x.engine'}, 'unknown'),
])
def test_rejects_bad_options(selfie, options, message):
    with pytest.raises(ConfigError, match=message):
        make_backend('tensorrt', {'model_path': str(selfie), **options})


def test_missing_onnx_file_names_the_path(tmp_path):
    missing = tmp_path / 'nope.onnx'
    with pytest.raises(BackendUnavailable, match=r"tensorrt model file '.*nope.onnx' not found"):
        make_backend('tensorrt', {'model_path': str(missing)})
    with pytest.raises(ConfigError, match='model_path is empty'):
        make_backend('tensorrt', {})


@pytest.mark.skipif(HAVE_TENSORRT, reason='tensorrt is installed here')
def test_without_tensorrt_configure_fails_with_the_fix(selfie):
    with pytest.raises(BackendUnavailable) as err:
        make_backend('tensorrt', {'model_path': str(selfie)})
    text = str(err.value)
    assert 'tensorrt Python package not installed' in text and 'backend: onnx' in text


@pytest.mark.skipif(_cuda_device_count() > 0, reason='a CUDA device is present')
def test_without_cuda_device_open_cuda_says_so():
    with pytest.raises(BackendUnavailable, match='no CUDA') as err:
        trt_runtime.open_cuda(0)
    assert 'backend: onnx' in str(err.value)


def test_plan_of_the_real_model(selfie, tmp_path):
    plan = _plan(model_path=str(selfie), cache_dir=str(tmp_path))
    assert plan.onnx_sha256 == SELFIE_SHA256 and plan.shape.text() == '256x256' and plan.shape.is_fixed
    assert plan.input_plan.size_hw == (256, 256) and plan.input_plan.stretch  # as the onnx backend
    key = plan.key('NVIDIA H200', '9.0', '10.16.1')
    assert (key.precision, key.input_shape, key.onnx_sha256) == ('fp16', '256x256', SELFIE_SHA256)
    assert plan.build_command().endswith(f'--fp16 --shape 256x256 --cache-dir {tmp_path}')
    assert plan.cache.engine_path(plan.model_path.name, key).parent == tmp_path


def test_dynamic_model_needs_a_shape_and_accepts_a_range(dynamic_onnx):
    assert read_onnx_io(dynamic_onnx)[0] == (None, None)
    with pytest.raises(ConfigError, match='dynamic input size'):
        _plan(model_path=str(dynamic_onnx))
    plan = _plan(model_path=str(dynamic_onnx), input_shape='320x240:640x480:1280x960')
    assert not plan.shape.is_fixed and plan.shape.opt_hw == (480, 640)
    assert plan.input_plan.size_hw == (480, 640)  # inference runs at the profile's opt size
    assert plan.key('g', '8.7', '10.3.0').input_shape == '320x240:640x480:1280x960'


def _write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f'frame_{i:03d}.png'
        cv2.imwrite(str(path), rng.integers(0, 255, (120, 160, 3), np.uint8))
        paths.append(path)
    (folder / 'notes.txt').write_text('not an image')
    return paths


def test_int8_calibration_set_enters_the_key_and_is_prepared_like_inference(selfie, tmp_path):
    images = _write_images(tmp_path / 'calib', 4)
    plan = _plan(model_path=str(selfie), precision='int8', calib_dir=str(images[0].parent), calib_images=3)
    assert [p.name for p in plan.calib_files] == ['frame_000.png', 'frame_001.png', 'frame_002.png']
    first = plan.calibration_sha256
    cv2.imwrite(str(images[1]), np.zeros((120, 160, 3), np.uint8))
    assert _plan(model_path=str(selfie), precision='int8', calib_dir=str(images[0].parent),
                 calib_images=3).calibration_sha256 != first
    batches = list(trt_runtime.calibration_batches(list(plan.calib_files), plan.input_plan.prepare))
    assert len(batches) == 3 and batches[0].shape == (1, 3, 256, 256) and batches[0].dtype == np.float32
    rgb = cv2.cvtColor(cv2.imread(str(images[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(batches[0], prepare_input(rgb, (256, 256), stretch=True)[0])
    with pytest.raises(ConfigError, match='holds no images'):
        _plan(model_path=str(selfie), precision='int8', calib_dir=str(tmp_path))
    with pytest.raises(ConfigError, match='does not exist'):
        _plan(model_path=str(selfie), precision='int8', calib_dir=str(tmp_path / 'missing'))


# --- on a GPU with TensorRT -----------------------------------------------------------------------

def _frame() -> np.ndarray:
    """A person-like blob on a plain background (the selfie model finds it as foreground)."""
    image = np.full((480, 640, 3), 200, np.uint8)
    cv2.ellipse(image, (320, 300), (120, 180), 0, 0, 360, (90, 60, 50), -1)
    cv2.circle(image, (320, 110), 70, (170, 120, 100), -1)
    return image


@pytest.mark.skipif(_cuda_device_count() == 0, reason='needs a CUDA device seen by CuPy or PyTorch')
def test_gpu_buffers_round_trip():
    cuda = trt_runtime.open_cuda(0)
    device = cuda.device_empty(1000, np.float32)
    pinned, host = cuda.pinned_empty(1000, np.float32)
    host[:] = np.arange(1000)
    cuda.upload(device, pinned, 600)
    host[:] = -1
    cuda.download(pinned, device, 600)
    cuda.synchronize()
    assert np.array_equal(host[:600], np.arange(600)) and np.all(host[600:] == -1)
    assert cuda.gpu_name and cuda.pointer(device) != 0 and '.' in cuda.compute_capability


@needs_gpu
def test_gpu_fp16_engine_matches_onnx_and_is_cached(selfie, tmp_path):
    options = {'model_path': str(selfie), 'cache_dir': str(tmp_path), 'min_area': 50}
    with pytest.raises(BackendUnavailable, match='vis-ros build-engine'):
        make_backend('tensorrt', options)  # never builds at start unless allowed
    trt_backend = make_backend('tensorrt', {**options, 'build_if_missing': True})
    assert trt_backend.engine.built and trt_backend.engine.path.is_file()
    onnx_backend = make_backend('onnx', {'model_path': str(selfie), 'providers': 'cpu', 'min_area': 50})
    frame = Frame(_frame(), 1)
    ours, reference = trt_backend.segment(frame), onnx_backend.segment(frame)
    assert set(trt_backend.stage_ms) == {'preprocess', 'inference', 'decode'}
    ours_union, ref_union = ours.masks.any(0), reference.masks.any(0)
    iou = (ours_union & ref_union).sum() / max((ours_union | ref_union).sum(), 1)
    assert ref_union.sum() > 1000 and iou >= 0.98
    trt_backend.close()
    trt_backend.close()
    again = make_backend('tensorrt', options)
    assert not again.engine.built and again.engine.path == trt_backend.engine.path
    again.close()


@needs_gpu
def test_gpu_other_precision_is_a_mismatch_with_the_differences(selfie, tmp_path):
    options = {'model_path': str(selfie), 'cache_dir': str(tmp_path)}
    make_backend('tensorrt', {**options, 'build_if_missing': True}).close()
    from vis_ros.core.errors import EngineCacheMismatch
    with pytest.raises(EngineCacheMismatch, match="precision: cached 'fp16', wanted 'fp32'"):
        make_backend('tensorrt', {**options, 'precision': 'fp32'})


@needs_gpu
def test_gpu_dynamic_engine_runs_at_opt(dynamic_onnx, tmp_path):
    backend = make_backend('tensorrt', {'model_path': str(dynamic_onnx), 'cache_dir': str(tmp_path),
                                        'input_shape': '320x240:640x480:1280x960', 'build_if_missing': True,
                                        'precision': 'fp32', 'decoder': 'foreground'})
    assert backend.info.input_size == (480, 640)
    instances = backend.segment(Frame(_frame(), 1))
    assert instances.image_size == (480, 640)
    cached = EngineCache(tmp_path).lookup(dynamic_onnx.name, backend.engine.key)
    assert cached is not None and dataclasses.asdict(cached.key) == dataclasses.asdict(backend.engine.key)
    backend.close()
