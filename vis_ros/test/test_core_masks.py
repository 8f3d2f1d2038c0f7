"""Mask RLE wire format, ROI coding and overlap measures."""
import numpy as np
import pytest

from vis_ros.core.errors import InputError
from vis_ros.core.masks import (
    EMPTY_ROI, Roi, box_iou, crop, decode_mask, decode_rle, encode_mask, encode_rle, mask_box,
    mask_iou, mask_roi, masks_boxes, masks_iou, pack_varints, paste, unpack_varints)

SHAPES = [(0, 0), (1, 1), (1, 7), (7, 1), (3, 5), (31, 17), (480, 640)]


def _masks(shape, rng):
    """Empty, full, single-pixel, random and blob masks of one shape."""
    h, w = shape
    out = {'empty': np.zeros(shape, bool), 'full': np.ones(shape, bool),
           'random': rng.random(shape) > 0.5}
    if h and w:
        single = np.zeros(shape, bool)
        single[h // 2, w - 1] = True
        out['single'] = single
        yy, xx = np.mgrid[:h, :w]
        out['blob'] = (yy - h / 3) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2
    return out


@pytest.mark.parametrize('shape', SHAPES)
def test_rle_round_trip_is_exact(shape):
    rng = np.random.default_rng(0)
    for name, mask in _masks(shape, rng).items():
        runs = encode_rle(mask)
        assert runs.sum() == mask.size, name
        assert np.array_equal(decode_rle(runs, *shape), mask), name
        roi, data = encode_mask(mask)
        assert np.array_equal(decode_mask(roi, data, *shape), mask), name


def test_rle_layout_is_row_major_and_starts_with_zero_run():
    mask = np.array([[1, 1, 0], [0, 1, 1]], bool)
    assert encode_rle(mask).tolist() == [0, 2, 2, 2]
    assert encode_rle(~mask).tolist() == [2, 2, 2]


def test_non_contiguous_views_encode_like_copies():
    rng = np.random.default_rng(1)
    base = rng.random((60, 80)) > 0.7
    view = base[::2, 1::3]
    assert not view.flags.c_contiguous
    assert np.array_equal(encode_rle(view), encode_rle(np.ascontiguousarray(view)))
    transposed = base.T
    roi, data = encode_mask(transposed)
    assert np.array_equal(decode_mask(roi, data, *transposed.shape), transposed)


def test_varints_match_leb128_by_hand():
    assert pack_varints(np.array([0, 1, 127, 128, 300])) == bytes([0, 1, 127, 0x80, 1, 0xAC, 2])
    values = np.array([0, 2**7 - 1, 2**7, 2**14, 2**32 - 1, 2**40 + 5], np.uint64)
    assert np.array_equal(unpack_varints(pack_varints(values)), values)
    assert unpack_varints(b'').size == 0


def test_truncated_or_inconsistent_wire_data_is_rejected():
    with pytest.raises(InputError, match='truncated'):
        unpack_varints(bytes([0x80]))
    with pytest.raises(InputError, match='sum to'):
        decode_rle(np.array([3, 4]), 2, 2)
    with pytest.raises(InputError, match='roi is empty'):
        decode_mask(EMPTY_ROI, b'\x01', 4, 4)
    with pytest.raises(InputError, match='outside'):
        decode_mask(Roi(3, 3, 2, 2), pack_varints(np.array([0, 4])), 4, 4)


def test_roi_box_crop_paste():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert mask_roi(mask) == Roi(3, 2, 6, 3)
    assert mask_box(mask).tolist() == [3, 2, 9, 5]
    assert mask_roi(np.zeros((4, 4), bool)) == EMPTY_ROI
    part = crop(mask, mask_roi(mask))
    assert part.all() and part.shape == (3, 6)
    assert np.array_equal(paste(part, mask_roi(mask), 10, 12), mask)
    assert masks_boxes(np.stack([mask, np.zeros_like(mask)])).tolist() == [[3, 2, 9, 5], [0, 0, 0, 0]]


def test_iou_measures_agree():
    rng = np.random.default_rng(2)
    a = np.zeros((5, 40, 50), bool)
    b = np.zeros((4, 40, 50), bool)
    for stack in (a, b):
        for m in stack:
            y, x = rng.integers(0, 30, 2)
            m[y:y + rng.integers(3, 10), x:x + rng.integers(3, 15)] = True
    fast = masks_iou(a, b)
    slow = np.array([[mask_iou(x, y) for y in b] for x in a])
    assert np.allclose(fast, slow)
    assert box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [5, 5, 6, 6]])).tolist() == \
        [[pytest.approx(1 / 7), 0.0]]
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 0.0
