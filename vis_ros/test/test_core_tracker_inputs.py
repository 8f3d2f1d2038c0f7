"""Tracker inputs a user can get wrong: stamps, frame sizes, bad arrays, empty masks, bad config."""
import math
import re

import numpy as np
import pytest

from vis_ros.core.errors import ConfigError, InputError, OutOfOrderFrame
from vis_ros.core.options import dataclass_options, validate_options
from vis_ros.core.tracker import Tracker, TrackerConfig
from vis_ros.core.types import Instances, TrackState

H, W = 60, 80


def one_square(x=10, y=10, size=12, h=H, w=W, score=0.9) -> Instances:
    mask = np.zeros((1, h, w), bool)
    mask[0, y:y + size, x:x + size] = True
    return Instances.from_masks(mask, [score], [0])


@pytest.mark.parametrize('second_stamp', [1000, 999, 0])
def test_equal_or_earlier_stamps_raise_out_of_order_and_change_nothing(second_stamp):
    tracker = Tracker(TrackerConfig(confirm_hits=1))
    tracker.step(one_square(), 1000)
    with pytest.raises(OutOfOrderFrame, match=f'stamp {second_stamp} ns is not later than the previous 1000'):
        tracker.step(one_square(12), second_stamp)
    out = tracker.step(one_square(12), 2000)            # the rejected frame left no trace
    assert [(t.track_id, t.hits, t.age) for t in out.tracks] == [(1, 2, 1)]   # age 0 at birth


@pytest.mark.parametrize('stamp', [-1, 1.5, 'now', None])
def test_bad_stamps_raise_input_error(stamp):
    with pytest.raises(InputError, match='stamp_ns'):
        Tracker().step(one_square(), stamp)


def test_frame_size_change_between_steps_needs_reset():
    tracker = Tracker()
    tracker.step(one_square(), 1)
    with pytest.raises(InputError, match='frame size changed from 80x60 to 100x70; call reset'):
        tracker.step(one_square(h=70, w=100), 2)
    tracker.reset()
    out = tracker.step(one_square(h=70, w=100), 3)
    assert out.image_size == (70, 100)


def test_frame_must_match_the_masks():
    tracker = Tracker()
    with pytest.raises(InputError, match='frame is 81x60 but the instance masks are 80x60'):
        tracker.step(one_square(), 1, frame=np.zeros((60, 81, 3), np.uint8))
    with pytest.raises(InputError, match=r'frame must be an \(H, W, 3\) uint8 RGB array'):
        tracker.step(one_square(), 1, frame=np.zeros((60, 80, 3), np.float32))
    with pytest.raises(InputError, match='frame must be'):
        tracker.step(one_square(), 1, frame=np.zeros((60, 80), np.uint8))


def test_instances_must_be_instances():
    with pytest.raises(InputError, match='instances must be vis_ros.core.types.Instances, got list'):
        Tracker().step([], 1)


def test_nan_boxes_are_rejected_before_they_reach_the_tracker():
    masks = np.zeros((1, H, W), bool)
    with pytest.raises(InputError, match='boxes must be finite'):
        Instances(masks=masks, boxes=np.array([[0, 0, math.nan, 5]], np.float32),
                  scores=np.ones(1, np.float32), class_ids=np.zeros(1, np.int32))


def test_empty_masks_are_ignored_and_indices_refer_to_the_input():
    masks = np.zeros((3, H, W), bool)
    masks[1, 20:30, 20:30] = True
    boxes = np.array([[0, 0, 0, 0], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)   # 2: box, no pixels
    inst = Instances(masks=masks, boxes=boxes, scores=np.full(3, 0.9, np.float32),
                     class_ids=np.zeros(3, np.int32))
    out = Tracker(TrackerConfig(confirm_hits=1)).step(inst, 1)
    assert [(t.track_id, t.detection_index) for t in out.tracks] == [(1, 1)]
    assert out.tracks[0].mask is not None and out.tracks[0].mask.sum() == 100


def test_bad_camera_motion_is_rejected():
    with pytest.raises(InputError, match='camera_motion must be a finite 2x3 affine or 3x3 homography'):
        Tracker().step(one_square(), 1, camera_motion=np.eye(2))
    with pytest.raises(InputError, match='camera_motion'):
        Tracker().step(one_square(), 1, camera_motion=[[1, 0, math.nan], [0, 1, 0]])


def test_empty_frame_size_is_rejected():
    with pytest.raises(InputError, match='must not be empty'):
        Tracker().step(Instances.empty(0, 10), 1)


def test_masks_and_boxes_of_output_tracks_are_consistent():
    tracker = Tracker(TrackerConfig(confirm_hits=1))
    tracker.step(one_square(10, 10), 1)
    out = tracker.step(Instances.empty(H, W), 100_000_000)
    (track,) = out.tracks
    assert track.state == TrackState.LOST and track.mask.shape == (H, W) and track.box.dtype == np.float32


@pytest.mark.parametrize('field, value, allowed', [
    ('high_score', 1.5, r'float in \[0, 1\]'),
    ('low_score', -0.1, r'float in \[0, 1\]'),
    ('confirm_hits', 0, r'int in \[1, 100\]'),
    ('confirm_hits', 2.5, r'int in \[1, 100\]'),
    ('lost_timeout_s', math.nan, r'finite'),
    ('lost_timeout_s', -1.0, r'float in \[0, 60\]'),
    ('mask_stride', 0, r'int in \[1, 16\]'),
    ('camera_motion', 'ecc', "one of 'affine', 'homography', 'off'"),
    ('match_threshold', 'high', r'float in \[0, 1\]'),
])
def test_bad_config_values_raise_config_error_naming_the_field(field, value, allowed):
    with pytest.raises(ConfigError, match=rf'TrackerConfig\.{field} must be') as error:
        TrackerConfig(**{field: value})
    assert re.search(allowed, str(error.value)) and repr(value) in str(error.value)


def test_inconsistent_config_is_rejected():
    with pytest.raises(ConfigError, match='low_score .* must be <= high_score'):
        TrackerConfig(low_score=0.6, high_score=0.5)
    with pytest.raises(ConfigError, match='weight'):
        TrackerConfig(mask_iou_weight=0, box_iou_weight=0, appearance_weight=0)


def test_config_from_options_rejects_unknown_names_and_converts_types():
    with pytest.raises(ConfigError, match=r"unknown tracker option\(s\) \['lost_timout_s'\]"):
        TrackerConfig.from_options({'lost_timout_s': 1.0})
    config = TrackerConfig.from_options({'lost_timeout_s': 2, 'confirm_hits': 4.0})
    assert config.lost_timeout_s == 2.0 and isinstance(config.lost_timeout_s, float)
    assert config.confirm_hits == 4 and isinstance(config.confirm_hits, int)


def test_every_field_is_a_documented_ranged_option():
    specs = dataclass_options(TrackerConfig)
    assert [s.name for s in specs] == [f for f in TrackerConfig.__dataclass_fields__]
    for spec in specs:
        assert len(spec.description) > 30, spec.name
        assert spec.choices or (spec.min is not None and spec.max is not None), spec.name
    defaults = validate_options(specs, {})
    assert TrackerConfig(**defaults) == TrackerConfig()


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrackerConfig().high_score = 0.1
