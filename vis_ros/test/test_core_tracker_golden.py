"""The tracker's full output is unchanged by speed-ups: digests against a committed golden file.

vis_ros/test/data/tracker_golden.json holds the `portable` digest (benchmarks/tracker_digest.py:
every field of every track of every step, floats rounded to 1e-3) of a few short runs made with
the tracker before its step was restructured for speed. A change that alters any output (an id,
a state, a box, a mask, an ended id) fails here; a deliberate behaviour change regenerates the
file and says so in its commit. The full check (all presets, seeds, cues and 300 MOT17 frames per
sequence, exact floats) is `python benchmarks/tracker_digest.py --write/--check`.
"""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

import tracker_digest  # noqa: E402

GOLDEN = json.loads((Path(__file__).parent / 'data' / 'tracker_golden.json').read_text())


def _check(cases: dict) -> None:
    assert cases, 'no case ran'
    for name, digest in cases.items():
        assert name in GOLDEN, name
        golden = GOLDEN[name]
        assert (digest['steps'], digest['portable']) == (golden['steps'], golden['portable']), name


def test_synthetic_outputs_equal_the_golden_digests():
    _check(tracker_digest.synthetic_cases(('crossing', 'crowd'), (0,), num_frames=40))


def test_step_time_workload_outputs_equal_the_golden_digest():
    _check(tracker_digest.step_time_case())


def test_mot17_box_only_outputs_equal_the_golden_digests(shared_data):
    root = shared_data / 'mot17'
    if not (root / 'MOT17-09-FRCNN').is_dir():
        pytest.skip(f'{root / "MOT17-09-FRCNN"} is absent')
    _check(tracker_digest.mot17_cases(root, 60, ('frcnn-like', 'hard'), ('MOT17-09-FRCNN',)))


def test_digest_changes_when_one_output_changes():
    from vis_ros.core.synthetic import make_scene
    from vis_ros.core.tracker import TrackerConfig
    scene = make_scene('crossing', seed=0, num_frames=40)
    default = tracker_digest.digest_stream(tracker_digest.synthetic_stream(scene, 0, 'masks'))
    assert default['portable'] == GOLDEN['crossing/0/masks']['portable']
    # confirming a frame later changes only states in the first frames of each track
    later = tracker_digest.digest_stream(tracker_digest.synthetic_stream(scene, 0, 'masks'),
                                         TrackerConfig(confirm_hits=4))
    assert later['portable'] != default['portable'] and later['exact'] != default['exact']
