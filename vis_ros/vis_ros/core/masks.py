"""Mask operations: ROI run-length coding (the wire format of vis_ros_msgs/Instance), IoU, crops.

Wire format of a mask (documented for C++ in vis_ros_msgs/msg/Instance.msg): the mask inside its
bounding ROI, row-major, as alternating run lengths starting with a (possibly empty) 0-run, each
run packed as an unsigned LEB128 varint. Runs inside a tight ROI are short, so most take one byte:
a 20-instance 640x480 frame is a few KB instead of 20 full-frame images.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vis_ros.core.errors import InputError


class Roi(NamedTuple):
    """Axis-aligned pixel rectangle: top-left (x, y), size (width, height)."""

    x: int
    y: int
    width: int
    height: int


EMPTY_ROI = Roi(0, 0, 0, 0)


# --- run-length coding -------------------------------------------------------------------------

def encode_rle(mask: np.ndarray) -> np.ndarray:
    """Run lengths (uint32) of a 2-D mask in row-major order, the first run counting 0-pixels."""
    flat = np.asarray(mask, dtype=bool).ravel()   # ravel copies only if non-contiguous
    if flat.size == 0:
        return np.zeros(0, np.uint32)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(edges)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.uint32)


def decode_rle(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of `encode_rle`: (height, width) bool mask; the runs must sum to height * width."""
    runs = np.asarray(runs, dtype=np.int64).ravel()
    if (runs < 0).any():
        raise InputError('RLE runs must be >= 0')
    total = int(runs.sum())
    if total != height * width:
        raise InputError(f'RLE runs sum to {total}, expected {height}x{width} = {height * width}')
    values = (np.arange(runs.size) % 2).astype(bool)
    return np.repeat(values, runs).reshape(height, width)


def pack_varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low group first, 0x80 on all but the last byte."""
    values = np.asarray(values, dtype=np.uint64).ravel()
    if values.size == 0:
        return b''
    nbytes = np.ones(values.size, np.int64)
    for k in range(1, 10):
        nbytes += values >= (np.uint64(1) << np.uint64(7 * k))
    starts = np.cumsum(nbytes) - nbytes
    out = np.empty(int(nbytes.sum()), np.uint8)
    for k in range(int(nbytes.max())):
        sel = nbytes > k
        group = (values[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (nbytes[sel] - 1 > k).astype(np.uint64) << np.uint64(7)
        out[starts[sel] + k] = (group | more).astype(np.uint8)
    return out.tobytes()


def unpack_varints(data) -> np.ndarray:
    """Inverse of `pack_varints` (uint64). Raises InputError on a truncated last number."""
    if isinstance(data, np.ndarray):
        raw = data.astype(np.uint8).ravel()
    else:
        raw = np.frombuffer(bytes(data), np.uint8)
    if raw.size == 0:
        return np.zeros(0, np.uint64)
    last = (raw & 0x80) == 0
    if not last[-1]:
        raise InputError('mask_rle is truncated: its last byte has the continuation bit 0x80 set')
    first = np.concatenate(([True], last[:-1]))
    number = np.cumsum(first) - 1
    position = np.arange(raw.size) - np.flatnonzero(first)[number]
    if position.max() >= 10:
        raise InputError('mask_rle holds a varint longer than 10 bytes (corrupt data)')
    values = np.zeros(int(number[-1]) + 1, np.uint64)
    groups = (raw & 0x7F).astype(np.uint64)
    for k in range(int(position.max()) + 1):
        sel = position == k
        values[number[sel]] |= groups[sel] << np.uint64(7 * k)
    return values


# --- ROI masks ---------------------------------------------------------------------------------

def mask_roi(mask: np.ndarray) -> Roi:
    """Tight bounding ROI of a 2-D mask; EMPTY_ROI for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return EMPTY_ROI
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return Roi(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def mask_box(mask: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] float32 (x2/y2 exclusive) of a 2-D mask; zeros for an empty mask."""
    x, y, w, h = mask_roi(mask)
    return np.array([x, y, x + w, y + h], np.float32)


def masks_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, 4) float32 boxes of (N, H, W) masks."""
    boxes = np.zeros((masks.shape[0], 4), np.float32)
    for i, mask in enumerate(masks):
        boxes[i] = mask_box(mask)
    return boxes


def crop(mask: np.ndarray, roi: Roi) -> np.ndarray:
    """The part of a 2-D mask inside `roi` (a view)."""
    x, y, w, h = roi
    return mask[y:y + h, x:x + w]


def paste(part: np.ndarray, roi: Roi, height: int, width: int) -> np.ndarray:
    """A (height, width) bool mask holding `part` at `roi` and False elsewhere."""
    x, y, w, h = roi
    if part.shape != (h, w):
        raise InputError(f'mask part is {part.shape}, roi is {h}x{w}')
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise InputError(f'roi {tuple(roi)} is outside the {width}x{height} image')
    out = np.zeros((height, width), bool)
    out[y:y + h, x:x + w] = part
    return out


def encode_mask(mask: np.ndarray) -> tuple[Roi, bytes]:
    """Wire form of a full-frame mask: its tight ROI and the varint-packed RLE inside it."""
    roi = mask_roi(mask)
    if roi.width == 0:
        return roi, b''
    return roi, pack_varints(encode_rle(crop(mask, roi)))


def decode_mask(roi: Roi, data, height: int, width: int) -> np.ndarray:
    """Inverse of `encode_mask`: the full (height, width) bool mask."""
    roi = Roi(*(int(v) for v in roi))
    if roi.width == 0 or roi.height == 0:
        if len(data):
            raise InputError(f'mask_rle has {len(data)} bytes but the roi is empty')
        return np.zeros((height, width), bool)
    part = decode_rle(unpack_varints(data), roi.height, roi.width)
    return paste(part, roi, height, width)


# --- overlap -----------------------------------------------------------------------------------

def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of [x1, y1, x2, y2] boxes (x2/y2 exclusive)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two 2-D masks of the same shape; 0 when both are empty."""
    if a.shape != b.shape:
        raise InputError(f'mask shapes differ: {a.shape} vs {b.shape}')
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def masks_iou(a: np.ndarray, b: np.ndarray, boxes_a=None, boxes_b=None) -> np.ndarray:
    """(N, M) IoU between (N, H, W) and (M, H, W) masks.

    Only pairs whose boxes overlap are compared, and only inside the overlap, so the cost follows
    the objects' size, not the frame's. Boxes are computed from the masks when not given.
    """
    if a.shape[1:] != b.shape[1:]:
        raise InputError(f'mask frames differ: {a.shape[1:]} vs {b.shape[1:]}')
    boxes_a = masks_boxes(a) if boxes_a is None else np.asarray(boxes_a)
    boxes_b = masks_boxes(b) if boxes_b is None else np.asarray(boxes_b)
    out = np.zeros((a.shape[0], b.shape[0]), np.float64)
    if out.size == 0:
        return out
    area_a = a.reshape(a.shape[0], -1).sum(1)
    area_b = b.reshape(b.shape[0], -1).sum(1)
    for i, j in zip(*np.nonzero(box_iou(boxes_a, boxes_b) > 0)):
        x1 = int(max(boxes_a[i, 0], boxes_b[j, 0]))
        y1 = int(max(boxes_a[i, 1], boxes_b[j, 1]))
        x2 = int(np.ceil(min(boxes_a[i, 2], boxes_b[j, 2])))
        y2 = int(np.ceil(min(boxes_a[i, 3], boxes_b[j, 3])))
        inter = np.count_nonzero(a[i, y1:y2, x1:x2] & b[j, y1:y2, x1:x2])
        union = area_a[i] + area_b[j] - inter
        out[i, j] = inter / union if union else 0.0
    return out
