"""Reduced masks for association: each mask kept as a crop on a coarse pixel grid.

Full-frame masks are big (640x480 = 307 k pixels); the tracker compares 50 tracks with 50 instances
every frame. A `GridMask` keeps only the pixels at multiples of `stride` inside the object's box
(stride 4: 1/16 of the pixels, only where the object is), with the crop's grid position, so a
mask IoU costs a few microseconds and moving a mask is an offset change, not a copy.
Grid cell (gx, gy) is the pixel (gx * stride, gy * stride).
"""
from __future__ import annotations

import math

import numpy as np


class GridMask:
    """A mask sampled every `stride` pixels, as a bool crop placed at grid column x, row y."""

    __slots__ = ('x', 'y', 'bits', 'area')

    def __init__(self, x: int, y: int, bits: np.ndarray):
        """Wrap `bits` (not copied) placed at grid column x, row y."""
        self.x = x
        self.y = y
        self.bits = bits
        self.area = int(np.count_nonzero(bits))

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """Grid rectangle [x1, y1, x2, y2) of the crop."""
        return self.x, self.y, self.x + self.bits.shape[1], self.y + self.bits.shape[0]

    def shifted(self, dx: int, dy: int) -> 'GridMask':
        """Return the same mask moved by (dx, dy) grid cells (sharing the bits)."""
        moved = GridMask.__new__(GridMask)
        moved.x, moved.y, moved.bits, moved.area = self.x + dx, self.y + dy, self.bits, self.area
        return moved


def grid_mask(mask: np.ndarray, box: np.ndarray, stride: int) -> GridMask:
    """Reduce a full-frame (H, W) bool mask whose xyxy box is `box` to a GridMask."""
    gx1, gy1 = int(box[0]) // stride, int(box[1]) // stride
    gx2, gy2 = int(math.ceil(box[2] / stride)), int(math.ceil(box[3] / stride))
    bits = mask[gy1 * stride:gy2 * stride:stride, gx1 * stride:gx2 * stride:stride]
    return GridMask(gx1, gy1, np.ascontiguousarray(bits))


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
    boxes = zip(rows.tolist(), cols.tolist(), x1[rows, cols].tolist(), y1[rows, cols].tolist(),
                x2[rows, cols].tolist(), y2[rows, cols].tolist())   # plain ints: fast slicing
    for i, j, ox1, oy1, ox2, oy2 in boxes:
        t, d = tracks[i], instances[j]
        union_base = t.area + d.area
        if union_base == 0:
            continue
        tx, ty = origins[i]
        inter = np.count_nonzero(t.bits[oy1 - ty:oy2 - ty, ox1 - tx:ox2 - tx]
                                 & d.bits[oy1 - d.y:oy2 - d.y, ox1 - d.x:ox2 - d.x])
        out[i, j] = inter / (union_base - inter)
    return out
