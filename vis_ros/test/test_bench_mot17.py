"""The MOT17 benchmark's scoring path: the ground truth itself, written as tracker output, scores perfectly.

Runs trackeval's MotChallenge2DBox on ../shared/data/mot17 (skips when absent), so a broken file
writer, seqmap or preprocessing setting shows up here and not as a silently wrong table.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

from vis_ros.core.detector_model import Detections  # noqa: E402


def test_ground_truth_as_tracker_output_scores_perfectly_and_a_swap_is_counted(shared_data, tmp_path):
    import tracker_mot17
    from vis_ros.core.mot17 import load_sequence
    folder = shared_data / 'mot17' / 'MOT17-09-FRCNN'
    if not folder.is_dir():
        pytest.skip(f'{folder} is absent')
    seq = load_sequence(folder)
    frames = seq.frames(classes=(1,))
    detections = [Detections(boxes=f.boxes.astype(np.float32), scores=np.ones(len(f.ids), np.float32),
                             source=f.ids, kind=np.zeros(len(f.ids), np.int8)) for f in frames]
    perfect = np.array([(t, k, i) for t, f in enumerate(frames) for k, i in enumerate(f.ids.tolist())])
    swapped = perfect.copy()
    a, b = frames[300].ids[:2].tolist()               # two people seen at frame 300 trade ids there
    late = (swapped[:, 0] >= 300) & np.isin(swapped[:, 2], [a, b])
    swapped[late, 2] = a + b - swapped[late, 2]
    tracker_mot17.write_mot(tmp_path / 'perfect' / 'data' / f'{seq.name}.txt', perfect, detections)
    tracker_mot17.write_mot(tmp_path / 'swapped' / 'data' / f'{seq.name}.txt', swapped, detections)
    scores = tracker_mot17.trackeval_scores(shared_data / 'mot17', tmp_path, ['perfect', 'swapped'],
                                            [seq.name])
    best = scores['perfect'][seq.name]
    assert best['IDF1'] == pytest.approx(1.0) and best['MOTA'] == pytest.approx(1.0) and best['IDSW'] == 0
    assert best['HOTA'] > 0.99
    worse = scores['swapped']['COMBINED_SEQ']
    assert worse['IDSW'] == 2 and worse['IDF1'] < 1.0
