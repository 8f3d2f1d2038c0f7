"""Tracking by segmentation: a track the detector misses for 5 frames keeps its id and a real mask."""
import pytest

from vis_ros.core.masks import mask_iou
from vis_ros.core.tracker import Tracker, TrackerConfig
from vis_ros.core.types import Frame, TrackState
from vis_ros.segment.base import make_backend
from vis_ros.segment.pipeline import Pipeline
from vis_ros.segment.yolox import Detections

from sam_fixtures import davis_frame, shared_models

GAP = range(6, 11)   # frames whose detections the test removes
STEP_NS = 41_666_667


def run_with_gap(track_prompts: bool, frames: int = 13):
    """Per frame: (state, id, mask IoU with GT) of the track best matching the cow."""
    mp = pytest.MonkeyPatch()
    mp.setenv('VIS_ROS_MODEL_DIR', str(shared_models()))
    backend = make_backend('detect_sam', {'track_prompts': track_prompts, 'num_threads': 2})
    mp.undo()
    detect = backend.detect
    counter = {'frame': 0}

    def detect_with_gap(rgb):
        # the thing under test is the tracker + mask stage; the detector is silenced for the gap
        found = detect(rgb)
        return Detections.empty() if counter['frame'] in GAP else found

    backend.detect = detect_with_gap
    pipeline = Pipeline(backend, Tracker(TrackerConfig()))
    seen = []
    for index in range(frames):
        counter['frame'] = index
        rgb, gt = davis_frame('cows', index)
        result = pipeline.process(Frame(rgb, index * STEP_NS))
        best = max(result.tracks, key=lambda t: mask_iou(t.mask, gt))
        seen.append((best.state, best.track_id, mask_iou(best.mask, gt)))
    pipeline.close()
    return seen


def test_one_id_and_its_mask_survive_a_detector_gap(shared_data):
    seen = run_with_gap(track_prompts=True)
    ids = {track_id for _, track_id, _ in seen[2:]}
    assert len(ids) == 1, seen
    for index in GAP:
        state, _, iou = seen[index]
        assert state == TrackState.CONFIRMED and iou >= 0.75, (index, seen[index])
    assert seen[-1][0] == TrackState.CONFIRMED and seen[-1][2] >= 0.75


def test_without_track_prompts_the_gap_is_only_predicted(shared_data):
    seen = run_with_gap(track_prompts=False, frames=GAP[-1] + 1)
    assert all(seen[index][0] == TrackState.LOST for index in GAP), seen
