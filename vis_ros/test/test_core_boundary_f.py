"""boundary_f against the official DAVIS toolkit's numbers (davis2017-evaluation's f_measure).

Reference values: computed on 2026-12-01 by the official code, davisvideochallenge/davis2017-evaluation
at commit 30b698a691681588bbcfe0f2a7c7c680d49bb72d, file davis2017/metrics.py, functions f_measure and
_seg2bmap run unmodified (bound_th=0.008, no void pixels) in a throwaway venv with numpy 1.23.5
(the code uses np.bool), scikit-image 0.21.0 (its disk) and opencv-python-headless 4.8.1.78, on the
masks that `reference_masks()` below builds (saved with np.savez and loaded there). The toolkit's
code is not part of this repository.
"""
import cv2
import numpy as np
import pytest

from vis_ros.core.metrics import boundary_f, boundary_map

# name -> F from the official f_measure(pred, gt); filled from the run described above.
DAVIS_REFERENCE = {
    'big_radius': 0.5199600798403193,
    'ellipse_shift': 0.20062876940844349,
    'empty_pred': 0.0,
    'far_apart': 0.0,
    'full_frame_vs_inset': 0.0,    # a full-frame mask has no boundary: the border is not compared
    'holes': 0.3298832979903661,
    'odd_size': 0.3477344573234984,
    'thin_lines': 0.8254082516829968,
    'touches_border': 0.5413533834586467,
}
# blackswan Annotations 00010.png as prediction for 00000.png, and 00030 for 00000 (480x854).
DAVIS_SEQUENCE_REFERENCE = {
    '00010_vs_00000': 0.4356609522651433,
    '00030_vs_00000': 0.3371099800501696,
}


def _ellipse(shape, center, axes, angle=0.0):
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, center, axes, angle, 0, 360, 1, -1)
    return mask.astype(bool)


def _holes(shape, modulus):
    """A deterministic sprinkle of single-pixel holes (integer arithmetic only)."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    return (x * x * 7 + y * 13 + x * y) % modulus == 0


def reference_masks() -> dict:
    """name -> (pred, gt) bool masks covering shifts, image borders, thin parts, holes and empties."""
    s = (120, 160)
    masks = {
        'ellipse_shift': (_ellipse(s, (84, 62), (40, 26), 10), _ellipse(s, (80, 60), (42, 28))),
        'touches_border': (np.pad(np.ones((73, 61), bool), ((47, 0), (99, 0))),
                           np.pad(np.ones((70, 60), bool), ((50, 0), (100, 0)))),
        'full_frame_vs_inset': (np.ones(s, bool), np.pad(np.ones((110, 150), bool), 5)),
        'holes': (_ellipse(s, (78, 58), (50, 35)) & ~_holes(s, 11), _ellipse(s, (80, 60), (50, 35))),
        'thin_lines': (cv2.line(np.zeros(s, np.uint8), (10, 12), (150, 100), 1, 2) > 0,
                       cv2.line(np.zeros(s, np.uint8), (10, 10), (150, 104), 1, 1) > 0),
        'far_apart': (_ellipse(s, (20, 20), (10, 10)), _ellipse(s, (130, 95), (15, 12))),
        'empty_pred': (np.zeros(s, bool), _ellipse(s, (80, 60), (30, 20))),
        'odd_size': (_ellipse((37, 53), (25, 18), (20, 11), 30), _ellipse((37, 53), (27, 17), (18, 12))),
        'big_radius': (_ellipse((600, 900), (460, 300), (300, 200)),
                       _ellipse((600, 900), (450, 310), (310, 190))),
    }
    return masks


def test_boundary_map_is_the_seg2bmap_definition():
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:6] = True      # touches the right border
    b = boundary_map(mask)
    # differs from the right, lower or lower-right neighbour; nothing compared past the border
    expected = np.zeros_like(mask)
    expected[0, 1:5] = True    # row above the mask: its lower-right / lower neighbours differ
    expected[1, 1] = expected[2, 1] = True
    expected[2, 2:6] = True    # bottom row of the mask: the row below differs
    expected[0, 5] = True      # last column: only the lower neighbour is compared
    assert b.tolist() == expected.tolist()


@pytest.mark.parametrize('name', sorted(reference_masks()))
def test_boundary_f_matches_the_davis_toolkit(name):
    pred, gt = reference_masks()[name]
    assert boundary_f(pred, gt) == pytest.approx(DAVIS_REFERENCE[name], abs=1e-12)


@pytest.mark.parametrize('pair', sorted(DAVIS_SEQUENCE_REFERENCE))
def test_boundary_f_matches_the_davis_toolkit_on_davis_masks(shared_data, pair):
    pred_frame, gt_frame = pair.split('_vs_')
    folder = shared_data / 'davis2016' / 'blackswan' / 'Annotations'
    if not folder.is_dir():
        pytest.skip(f'{folder} is absent')
    pred = cv2.imread(str(folder / f'{pred_frame}.png'), cv2.IMREAD_GRAYSCALE) > 0
    gt = cv2.imread(str(folder / f'{gt_frame}.png'), cv2.IMREAD_GRAYSCALE) > 0
    assert boundary_f(pred, gt) == pytest.approx(DAVIS_SEQUENCE_REFERENCE[pair], abs=1e-12)
