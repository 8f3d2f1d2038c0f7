"""Validation of the dataclasses that cross layers."""
import numpy as np
import pytest

from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.options import OptionSpec, validate_options
from vis_ros.core.types import Frame, Instances, Track, Tracks, TrackState


def _instances(n=2, h=20, w=30):
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        masks[i, 2 + i:8 + i, 3:9] = True
    return Instances.from_masks(masks, scores=[0.9] * n, class_ids=[0] * n)


def test_frame_checks_image_and_is_read_only():
    image = np.zeros((4, 5, 3), np.uint8)
    frame = Frame(image, 10, 'cam')
    assert (frame.height, frame.width) == (4, 5)
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 1
    image[0, 0, 0] = 7          # the caller's array stays writable
    with pytest.raises(InputError, match=r'\(\*, \*, 3\) uint8, got \(4, 5\) uint8'):
        Frame(np.zeros((4, 5), np.uint8), 0)
    with pytest.raises(InputError, match='float32'):
        Frame(np.zeros((4, 5, 3), np.float32), 0)
    with pytest.raises(InputError, match='empty'):
        Frame(np.zeros((0, 0, 3), np.uint8), 0)
    with pytest.raises(InputError, match='stamp'):
        Frame(image, -1)


def test_instances_from_masks_derives_boxes():
    inst = _instances()
    assert len(inst) == 2 and inst.image_size == (20, 30)
    assert inst.boxes[1].tolist() == [3, 3, 9, 9]
    assert len(inst.select([1])) == 1 and inst.select(np.array([True, False])).boxes[0, 1] == 2
    assert len(Instances.empty(4, 6)) == 0


@pytest.mark.parametrize('field, value, message', [
    ('boxes', np.zeros((2, 5), np.float32), r'boxes must be \(2, 4\) float32, got \(2, 5\) float32'),
    ('boxes', np.full((2, 4), np.nan, np.float32), 'finite'),
    ('boxes', np.array([[5, 0, 1, 1]] * 2, np.float32), 'x1 <= x2'),
    ('scores', np.array([0.5, 1.5], np.float32), r'\[0, 1\]'),
    ('scores', np.array([0.5, 0.5]), 'float32, got'),
    ('class_ids', np.zeros(3, np.int32), r'\(2,\) int32'),
    ('masks', np.zeros((2, 20, 30), np.uint8), 'bool'),
])
def test_instances_reject_bad_arrays(field, value, message):
    good = _instances()
    kwargs = dict(masks=good.masks, boxes=good.boxes, scores=good.scores, class_ids=good.class_ids)
    kwargs[field] = value
    with pytest.raises(InputError, match=message):
        Instances(**kwargs)


def test_tracks_check_mask_size_and_states():
    mask = np.zeros((4, 4), bool)
    track = Track(1, 1, np.zeros(4, np.float32), mask, 0.5, 0, 0, 1, 0)
    assert track.state is TrackState.CONFIRMED
    tracks = Tracks(5, (4, 4), [track], ended_ids=[3])
    assert len(tracks) == 1 and tracks.ended_ids == (3,)
    assert tracks.with_state(TrackState.LOST) == ()
    with pytest.raises(InputError, match='mask is'):
        Tracks(5, (5, 4), [track])
    with pytest.raises(InputError, match='> 0'):
        Track(0, 1, np.zeros(4, np.float32), mask, 0.5, 0, 0, 1, 0)


def test_option_specs_validate_type_range_and_names():
    specs = (OptionSpec('rate', 1.5, 'Hz', 0.0, 10.0), OptionSpec('mode', 'a', 'm', choices=('a', 'b')),
             OptionSpec('n', 3, 'count', 1, 5), OptionSpec('on', True, 'flag'))
    assert validate_options(specs, {'n': 4.0}) == {'rate': 1.5, 'mode': 'a', 'n': 4, 'on': True}
    for bad, match in [({'rate': 11}, r'rate must be float in \[0, 10\], got 11'),
                       ({'rate': float('nan')}, 'finite'), ({'mode': 'c'}, "one of 'a', 'b'"),
                       ({'n': 2.5}, 'int'), ({'on': 'yes'}, 'bool'), ({'typo': 1}, 'unknown')]:
        with pytest.raises(ConfigError, match=match):
            validate_options(specs, bad, owner='x')
