"""Known-answer tests of the DAVIS J/F measures and of mot_metrics (HOTA, IDF1, CLEAR via trackeval)."""
import numpy as np
import pytest

from vis_ros.core.errors import InputError
from vis_ros.core.metrics import boundary_f, jaccard, mask_similarity, mot_metrics


def square(x, y, size=20, height=120, width=160):
    mask = np.zeros((height, width), bool)
    mask[y:y + size, x:x + size] = True
    return mask


def two_objects(frames):
    """GT ids 1 and 2 in every frame, as two disjoint squares moving right by 2 px a frame."""
    ids = [np.array([1, 2]) for _ in range(frames)]
    masks = [np.stack([square(10 + 2 * t, 10), square(10 + 2 * t, 70)]) for t in range(frames)]
    return ids, masks


# --- DAVIS J and F -------------------------------------------------------------------------------

def test_identical_masks_score_one():
    mask = square(30, 30, 40)
    assert jaccard(mask, mask) == 1.0
    assert boundary_f(mask, mask) == 1.0


def test_disjoint_masks_score_zero():
    a, b = square(0, 0, 30), square(100, 80, 30)
    assert jaccard(a, b) == 0.0
    assert boundary_f(a, b) == 0.0


def test_empty_masks_follow_davis_convention():
    empty = np.zeros((50, 60), bool)
    assert jaccard(empty, empty) == 1.0
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, square(5, 5, 10, 50, 60)) == 0.0


def test_shifted_mask_scores_known_range():
    gt = square(40, 40, 100, 200, 200)
    pred = square(50, 40, 100, 200, 200)          # shifted 10 px right
    assert jaccard(pred, gt) == pytest.approx(90 * 100 / (110 * 100))
    # tolerance radius is 3 px here: the shifted left/right edges miss, top/bottom edges mostly match
    f = boundary_f(pred, gt)
    assert 0.35 < f < 0.6
    assert boundary_f(square(41, 40, 100, 200, 200), gt) > 0.95   # 1 px is within tolerance


def test_jaccard_rejects_shape_mismatch():
    with pytest.raises(InputError, match='pred mask'):
        jaccard(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


# --- mot_metrics ----------------------------------------------------------------------------------

def test_perfect_tracking_scores_one_everywhere():
    ids, masks = two_objects(12)
    result = mot_metrics(ids, masks, [i + 100 for i in ids], masks)   # id values need not match
    for name in ('HOTA', 'DetA', 'AssA', 'LocA', 'IDF1', 'MOTA', 'MOTP'):
        assert result[name] == pytest.approx(1.0), name
    assert (result['IDSW'], result['IDFP'], result['IDFN'], result['IDTP']) == (0, 0, 0, 24)


def test_new_id_midway_gives_hand_computed_scores():
    # object 2 is tracked as id 2 for frames 0-5, then as a new id 3 for frames 6-9
    ids, masks = two_objects(10)
    pred_ids = [np.array([1, 2 if t < 6 else 3]) for t in range(10)]
    result = mot_metrics(ids, masks, pred_ids, masks)
    # IDF1: best one-to-one id map is 1->1 (10 frames), 2->2 (6); id 3's 4 frames are IDFP and IDFN
    assert (result['IDTP'], result['IDFP'], result['IDFN']) == (16, 4, 4)
    assert result['IDF1'] == pytest.approx(2 * 16 / (2 * 16 + 4 + 4))
    assert result['IDSW'] == 1
    assert result['MOTA'] == pytest.approx((20 - 0 - 1) / 20)
    # HOTA with perfect masks: DetA 1; AssA = mean over the 20 TPs of TPA / (TPA + FNA + FPA)
    ass_a = (10 * 1.0 + 6 * 6 / 10 + 4 * 4 / 10) / 20
    assert result['DetA'] == pytest.approx(1.0)
    assert result['AssA'] == pytest.approx(ass_a)
    assert result['HOTA'] == pytest.approx(np.sqrt(ass_a))


def test_swapped_ids_for_part_of_sequence():
    # ids of the two objects are swapped in frames 4-6, then swapped back
    ids, masks = two_objects(10)
    pred_ids = [np.array([2, 1]) if 4 <= t <= 6 else np.array([1, 2]) for t in range(10)]
    result = mot_metrics(ids, masks, pred_ids, masks)
    assert (result['IDTP'], result['IDFP'], result['IDFN']) == (14, 6, 6)
    assert result['IDF1'] == pytest.approx(0.7)
    assert result['IDSW'] == 4          # both switch at frame 4 and both switch back at frame 7
    assert result['DetA'] == pytest.approx(1.0)


def test_masks_below_iou_threshold_are_misses_and_false_positives():
    gt = [np.array([1])]
    gt_masks = [square(10, 10)[None]]
    pred_masks = [square(22, 10)[None]]          # IoU 8*20 / (32*20) = 0.25
    result = mot_metrics(gt, gt_masks, [np.array([7])], pred_masks)
    assert (result['TP'], result['FP'], result['FN']) == (0, 1, 1)
    assert result['IDF1'] == 0.0
    assert result['MOTA'] == pytest.approx(-1.0)
    assert 0.0 < result['HOTA'] < 0.5             # counted as a match at the low HOTA thresholds


def test_empty_frames_and_missing_tracks():
    ids, masks = two_objects(6)
    empty_ids = [np.zeros(0, np.int64) for _ in range(6)]
    empty_masks = [np.zeros((0, 120, 160), bool) for _ in range(6)]
    result = mot_metrics(ids, masks, empty_ids, empty_masks)
    assert (result['HOTA'], result['IDF1'], result['FN'], result['IDFN']) == (0.0, 0.0, 12, 12)
    result = mot_metrics(empty_ids, empty_masks, ids, masks)
    assert (result['FP'], result['IDFP']) == (12, 12)


def test_mask_similarity_is_mask_iou():
    gt = np.stack([square(10, 10), square(60, 60)])
    pred = np.stack([square(15, 10), square(100, 10)])
    sim = mask_similarity(gt, pred)
    assert sim.shape == (2, 2)
    assert sim[0, 0] == pytest.approx(15 * 20 / (25 * 20))
    assert sim[0, 1] == 0.0 and sim[1, 0] == 0.0 and sim[1, 1] == 0.0


@pytest.mark.parametrize('bad, message', [
    (dict(pred_ids=[np.array([1, 1])]), 'unique'),
    (dict(pred_ids=[np.array([1])]), 'masks must be'),
    (dict(gt_ids=[]), 'differ in length'),
])
def test_mot_metrics_rejects_bad_input(bad, message):
    ids, masks = two_objects(1)
    args = dict(gt_ids=ids, gt_masks=masks, pred_ids=ids, pred_masks=masks)
    args.update(bad)
    with pytest.raises(InputError, match=message):
        mot_metrics(**args)


def test_importing_metrics_does_not_import_trackeval():
    import subprocess
    import sys
    code = 'import sys, vis_ros.core.metrics; print("trackeval" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'
