"""CPU keyframes of detect_sam: the encoder every N frames, flow-carried masks between, forced on a cut."""
import pytest

from vis_ros.core.masks import mask_iou
from vis_ros.core.types import Frame
from vis_ros.segment.base import make_backend
from vis_ros.segment.yolox import COCO_CLASSES

from sam_fixtures import davis_frame, shared_models


@pytest.fixture(scope='module')
def keyed():
    mp = pytest.MonkeyPatch()
    mp.setenv('VIS_ROS_MODEL_DIR', str(shared_models()))
    backend = make_backend('detect_sam', {'keyframe_interval': 3})
    mp.undo()
    yield backend
    backend.close()


def test_masks_are_carried_between_keyframes(keyed, shared_data):
    keyed.reset()
    seen = []
    for index in range(4):
        rgb, gt = davis_frame('cows', index)
        instances = keyed.segment(Frame(rgb, index))
        cows = [m for m, c in zip(instances.masks, instances.class_ids) if COCO_CLASSES[c] == 'cow']
        seen.append((keyed.keyframe, max((mask_iou(m, gt) for m in cows), default=0.0)))
    assert [k for k, _ in seen] == [True, False, False, True], seen
    assert all(iou >= 0.75 for _, iou in seen), seen


def test_a_scene_change_forces_a_keyframe(keyed, shared_data):
    keyed.reset()
    keyed.segment(Frame(davis_frame('cows', 0)[0], 0))
    before = keyed._keyframes.forced
    keyed.segment(Frame(davis_frame('car-shadow', 0)[0], 1))   # a cut to another scene
    assert keyed.keyframe and keyed._keyframes.forced == before + 1
