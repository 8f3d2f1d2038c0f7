"""The detector model for ground-truth box tracks: seeded, and each documented error is there."""
import numpy as np
import pytest

from vis_ros.core.detector_model import (
    DUPLICATE, FP_BACKGROUND, FP_NEAR, FRCNN_LIKE, HARD, TRUE, DetectorModel, GtBoxes, iter_detections)
from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.masks import box_iou

SIZE = (1080, 1920)
QUIET = DetectorModel(name='quiet', fp_near_per_person=0.0, fp_background=0.0, duplicate_rate=0.0)


def crowd(frames: int, people: int = 40, visibility: float = 1.0, height: float = 200.0) -> list[GtBoxes]:
    """People standing in a grid, all of one visibility and box height."""
    xs = 100 + 40 * np.arange(people) % 1700
    ys = 100 + 300 * (np.arange(people) // 40)
    boxes = np.stack([xs, ys, xs + 0.41 * height, ys + height], 1).astype(np.float64)
    gt = GtBoxes(ids=np.arange(1, people + 1), boxes=boxes, visibility=np.full(people, visibility))
    return [gt] * frames


def found_fraction(model, frames) -> float:
    dets = list(iter_detections(frames, model, 0, SIZE))
    return sum(int((d.kind == TRUE).sum()) for d in dets) / sum(len(f.ids) for f in frames)


def test_same_seed_same_detections_other_seed_differs():
    frames = crowd(20)
    a = list(iter_detections(frames, HARD, 7, SIZE))
    b = list(iter_detections(frames, HARD, 7, SIZE))
    c = list(iter_detections(frames, HARD, 8, SIZE))
    for x, y in zip(a, b):
        assert np.array_equal(x.boxes, y.boxes) and np.array_equal(x.scores, y.scores)
        assert np.array_equal(x.source, y.source)
    assert any(len(x) != len(z) or not np.array_equal(x.boxes, z.boxes) for x, z in zip(a, c))


def test_misses_rise_as_visibility_falls():
    visible, half, hidden = (found_fraction(QUIET, crowd(50, visibility=v)) for v in (1.0, 0.3, 0.05))
    assert visible > 0.9
    assert 0.2 < half < 0.7
    assert hidden < 0.1
    occluded = crowd(50, visibility=0.4)
    assert found_fraction(HARD, occluded) < found_fraction(FRCNN_LIKE, occluded)


def test_misses_come_in_bursts():
    model = DetectorModel(name='bursty', recall_max=0.8, miss_persist=0.9, fp_background=0.0,
                          fp_near_per_person=0.0, duplicate_rate=0.0)
    dets = list(iter_detections(crowd(200, people=20), model, 1, SIZE))
    seen = np.array([[i in set(d.source.tolist()) for i in range(1, 21)] for d in dets])
    miss_after_miss = (~seen[1:] & ~seen[:-1]).sum() / max((~seen[:-1]).sum(), 1)
    assert miss_after_miss > 0.5   # without bursts it would be ~0.2 (the plain miss rate)


@pytest.mark.parametrize('height', [60.0, 600.0])
def test_box_jitter_is_proportional_to_size(height):
    frames = crowd(30, people=20, height=height)
    errors = []
    for gt, det in zip(frames, iter_detections(frames, QUIET, 2, SIZE)):
        rows = {i: k for k, i in enumerate(gt.ids.tolist())}
        for box, source in zip(det.boxes, det.source):
            true = gt.boxes[rows[int(source)]]
            errors.append(((box[1] + box[3]) / 2 - (true[1] + true[3]) / 2) / height)
    assert 0.5 * QUIET.jitter < np.std(errors) < 1.5 * QUIET.jitter


def test_scores_fall_with_visibility_and_stay_in_range():
    high = np.concatenate([d.scores for d in iter_detections(crowd(20, visibility=1.0), QUIET, 0, SIZE)])
    low = np.concatenate([d.scores for d in iter_detections(crowd(40, visibility=0.4), QUIET, 0, SIZE)])
    assert high.mean() > low.mean() + 0.05
    assert (high > 0).all() and (high <= 1).all() and (low > 0).all()


def test_false_positives_near_people_and_in_background_are_id_free():
    model = DetectorModel(name='noisy', fp_near_per_person=0.05, fp_background=2.0, duplicate_rate=0.0)
    frames = crowd(100)
    dets = list(iter_detections(frames, model, 3, SIZE))
    kinds = np.concatenate([d.kind for d in dets])
    sources = np.concatenate([d.source for d in dets])
    assert 1.5 < (kinds == FP_NEAR).sum() / 100 < 2.5
    assert 1.5 < (kinds == FP_BACKGROUND).sum() / 100 < 2.5
    assert (sources[kinds != TRUE] == -1).all()
    near = [d.boxes[d.kind == FP_NEAR] for d in dets]
    close = [box_iou(b, f.boxes.astype(np.float32)).max(1) for b, f in zip(near, frames) if len(b)]
    assert np.mean(np.concatenate(close) > 0) > 0.5   # most touch a person


def test_duplicates_are_brief_id_free_upper_body_boxes():
    model = DetectorModel(name='dups', fp_near_per_person=0.0, fp_background=0.0, duplicate_rate=1.0,
                          duplicate_frames=1)
    frames = crowd(3, people=10)
    for det in iter_detections(frames, model, 4, SIZE):
        dup, true = det.boxes[det.kind == DUPLICATE], det.boxes[det.kind == TRUE]
        assert len(dup) == len(true) and (det.source[det.kind == DUPLICATE] == -1).all()
        overlap = box_iou(dup, true).max(1)
        assert ((overlap > 0.3) & (overlap < 0.9)).all()


def test_boxes_stay_inside_the_image():
    frames = [GtBoxes(ids=np.array([1, 2]), boxes=np.array([[-50.0, -20, 80, 300], [1880, 900, 1990, 1200]]),
                      visibility=np.ones(2))] * 10
    for det in iter_detections(frames, HARD, 5, SIZE):
        assert (det.boxes[:, :2] >= 0).all() and (det.boxes[:, 2] <= SIZE[1]).all()
        assert (det.boxes[:, 3] <= SIZE[0]).all()


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match='recall_max'):
        DetectorModel(recall_max=1.5)
    with pytest.raises(ConfigError, match='visibility_width'):
        DetectorModel(visibility_width=0.0)
    with pytest.raises(InputError, match='GtBoxes'):
        GtBoxes(ids=np.arange(2), boxes=np.zeros((3, 4)), visibility=np.ones(2))
    with pytest.raises(InputError, match='image_size'):
        list(iter_detections(crowd(1), FRCNN_LIKE, 0, (0, 10)))


def test_mot17_loader_reads_the_official_pedestrian_counts(shared_data):
    from vis_ros.core.mot17 import load_sequence
    folder = shared_data / 'mot17' / 'MOT17-09-FRCNN'
    if not folder.is_dir():
        pytest.skip(f'{folder} is absent')
    seq = load_sequence(folder)
    assert (seq.length, seq.fps, seq.width, seq.height) == (525, 30.0, 1920, 1080)
    frames = seq.frames(classes=(1,))
    assert len(frames) == 525 and sum(len(f.ids) for f in frames) == 5325
    assert len(np.unique(np.concatenate([f.ids for f in frames]))) == 26
