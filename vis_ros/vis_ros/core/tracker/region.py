"""Reduced masks for association: each mask kept as a crop on a coarse pixel grid.

Full-frame masks are big (640x480 = 307 k pixels); the tracker compares 50 tracks with 50 instances
every frame. A `GridMask` keeps only the pixels at multiples of `stride` inside the object's box
(stride 4: 1/16 of the pixels, only where the object is), with the crop's grid position, so a
mask IoU costs a few microseconds and moving a mask is an offset change, not a copy.
Grid cell (gx, gy) is the pixel (gx * stride, gy * stride).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np


class GridMask:
    """A mask sampled every `stride` pixels, as a bool crop placed at grid column x, row y."""

    __slots__ = ('x', 'y', 'bits', 'area', 'rect')

    def __init__(self, x: int, y: int, bits: np.ndarray, area: Optional[int] = None):
        """Wrap `bits` (not copied) placed at grid column x, row y; `area`: its set cells, if known."""
        self.x = x
        self.y = y
        self.bits = bits
        self.area = int(np.count_nonzero(bits)) if area is None else area
        self.rect = (x, y, x + bits.shape[1], y + bits.shape[0])   # grid rectangle [x1, y1, x2, y2)

    def shifted(self, dx: int, dy: int) -> 'GridMask':
        """Return the same mask moved by (dx, dy) grid cells (sharing the bits)."""
        return GridMask(self.x + dx, self.y + dy, self.bits)


def grid_mask(mask: np.ndarray, box: np.ndarray, stride: int) -> GridMask:
    """Reduce a full-frame (H, W) bool mask whose xyxy box is `box` to a GridMask."""
    gx1, gy1 = int(box[0]) // stride, int(box[1]) // stride
    gx2, gy2 = int(math.ceil(box[2] / stride)), int(math.ceil(box[3] / stride))
    bits = mask[gy1 * stride:gy2 * stride:stride, gx1 * stride:gx2 * stride:stride]
    return GridMask(gx1, gy1, np.ascontiguousarray(bits))


def grid_masks(masks: np.ndarray, boxes: np.ndarray, rows, stride: int) -> list[GridMask]:
    """`grid_mask` of masks[k] with boxes[k] for each k in `rows`, the rectangles computed at once.

    The same numbers as one by one: boxes stay float32 (so box / stride rounds as there), and
    astype truncates like int().
    """
    picked = boxes[rows]
    corners = picked[:, :2].astype(np.int64) // stride
    if len(rows) and (corners >= 0).all() and masks.flags.c_contiguous:
        ends = np.ceil(picked[:, 2:] / stride).astype(np.int64)
        return _gathered(masks, rows, corners, ends, stride)
    return [grid_mask(masks[k], boxes[k], stride) for k in rows]   # a box past the top-left, strided masks


def _gathered(masks: np.ndarray, rows, corners: np.ndarray, ends: np.ndarray, stride: int) -> list[GridMask]:
    """`grid_masks` with every grid cell of every crop read in one gather from the (N, H, W) masks.

    Each crop has the shape the strided slice would have (cut at the frame's edge); the crops are
    consecutive pieces of one buffer and their areas come from one cumulative sum.
    """
    height, width = masks.shape[1:]
    starts = corners * stride                                    # (x, y) first pixel
    stops = np.minimum(ends * stride, [width, height])
    shapes = np.maximum(-((starts - stops) // stride), 0)        # (columns, rows) of each crop
    sizes = shapes[:, 0] * shapes[:, 1]
    first = np.cumsum(sizes) - sizes
    cell = np.arange(int(sizes.sum())) - np.repeat(first, sizes)   # index inside its crop
    columns = np.repeat(shapes[:, 0], sizes)
    r = cell // np.maximum(columns, 1)
    origin = np.asarray(rows, np.int64) * (height * width) + starts[:, 1] * width + starts[:, 0]
    cells = masks.reshape(-1)[np.repeat(origin, sizes) + r * (stride * width) + (cell - r * columns) * stride]
    counts = np.concatenate([[0], np.cumsum(cells)])
    areas = (counts[first + sizes] - counts[first]).tolist()
    out = []
    pieces = zip(corners.tolist(), shapes.tolist(), first.tolist(), sizes.tolist(), areas)
    for (gx1, gy1), (w, h), a, n, area in pieces:
        out.append(GridMask(gx1, gy1, cells[a:a + n].reshape(h, w), area))
    return out


def grid_rects(grids: list[GridMask]) -> np.ndarray:
    """(N, 4) int64 grid rectangles of the masks."""
    if not grids:
        return np.zeros((0, 4), np.int64)
    return np.array([g.rect for g in grids], np.int64)


def grid_iou(tracks: list[GridMask], instances: list[GridMask], shifts=None) -> np.ndarray:
    """(T, D) mask IoU on the grid; only pairs whose crops overlap are compared.

    shifts: optional (T, 2) int grid offsets (dx, dy) to move each of `tracks` by first (as
    GridMask.shifted would, without making the moved masks).
    """
    out = np.zeros((len(tracks), len(instances)))
    if not tracks or not instances:
        return out
    a, b = grid_rects(tracks), grid_rects(instances)
    if shifts is not None:
        a = a + np.tile(np.asarray(shifts, np.int64).reshape(-1, 2), 2)
        origins = a[:, :2].tolist()
    else:
        origins = [(g.x, g.y) for g in tracks]
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    rows, cols = np.nonzero((x2 > x1) & (y2 > y1))
    if not len(rows):
        return out
    boxes = zip(rows.tolist(), cols.tolist(), x1[rows, cols].tolist(), y1[rows, cols].tolist(),
                x2[rows, cols].tolist(), y2[rows, cols].tolist())   # plain ints: fast slicing
    track_bits = [g.bits for g in tracks]
    placed = [(g.x, g.y, g.bits) for g in instances]
    counts = []
    for i, j, ox1, oy1, ox2, oy2 in boxes:
        tx, ty = origins[i]
        dx, dy, bits = placed[j]
        counts.append(np.count_nonzero(track_bits[i][oy1 - ty:oy2 - ty, ox1 - tx:ox2 - tx]
                                       & bits[oy1 - dy:oy2 - dy, ox1 - dx:ox2 - dx]))
    inter = np.array(counts, np.int64)
    union = (np.array([g.area for g in tracks], np.int64)[rows]
             + np.array([g.area for g in instances], np.int64)[cols] - inter)
    # inter / union of integers, as Python's int / int gives; two empty masks have IoU 0
    out[rows, cols] = np.divide(inter, union, out=np.zeros(len(inter)), where=union > 0)
    return out
