"""Cheap appearance descriptors and the LOMM-style appearance memory update.

The built-in descriptor is an HSV color histogram of the pixels inside an instance mask, taken on
the same coarse grid as the reduced masks (one HSV conversion of a strided frame per step, then a
bincount per instance). Histograms are stored as unit vectors of square-rooted bin frequencies, so
a dot product is the Bhattacharyya coefficient (1 = same color distribution). Backend embeddings,
when an `Instances` carries them, are L2-normalized and compared by cosine similarity.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from vis_ros.core.tracker.region import GridMask

HUE_BINS, SATURATION_BINS, VALUE_BINS = 12, 3, 3
HISTOGRAM_SIZE = HUE_BINS * SATURATION_BINS * VALUE_BINS


_LEVELS = np.arange(256)
# per-channel lookup tables: channel value -> its part of the bin index (H in [0, 180) in OpenCV)
_HUE_PART = (np.minimum(_LEVELS, 179) * HUE_BINS // 180 * SATURATION_BINS * VALUE_BINS).astype(np.uint8)
_SATURATION_PART = (_LEVELS * SATURATION_BINS // 256 * VALUE_BINS).astype(np.uint8)
_VALUE_PART = (_LEVELS * VALUE_BINS // 256).astype(np.uint8)


def bin_image(frame: np.ndarray, stride: int) -> np.ndarray:
    """Give each grid pixel of an RGB frame its histogram bin: (ceil(H/stride), ceil(W/stride)) uint8."""
    height, width = frame.shape[:2]
    if height % stride == 0 and width % stride == 0:   # same pixels as the strided view, 4x faster
        small = cv2.resize(frame, (width // stride, height // stride), interpolation=cv2.INTER_NEAREST)
    else:
        small = np.ascontiguousarray(frame[::stride, ::stride])
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    return _HUE_PART[hsv[..., 0]] + _SATURATION_PART[hsv[..., 1]] + _VALUE_PART[hsv[..., 2]]


def histograms(bins: np.ndarray, grids: list[GridMask]) -> np.ndarray:
    """Make the unit sqrt-histograms, (N, HISTOGRAM_SIZE), of the masked grid pixels (0 if empty).

    grids: reduced masks of this frame's instances (their crops lie inside `bins`).
    """
    counts = np.zeros((len(grids), HISTOGRAM_SIZE))
    for i, grid in enumerate(grids):
        h, w = grid.bits.shape
        counts[i] = np.bincount(bins[grid.y:grid.y + h, grid.x:grid.x + w][grid.bits],
                                minlength=HISTOGRAM_SIZE)
    return normalize_rows(np.sqrt(counts))


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64); all-zero rows stay zero."""
    vectors = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def update_memories(memories: list[Optional[np.ndarray]], observations: np.ndarray,
                    momentum: float) -> np.ndarray:
    """LOMM memory update mem <- (1 - p) mem + p q, renormalized, for N tracks at once: (N, K).

    A missing memory (or one of another size: a backend changed its embedding) is seeded with the
    observation; an all-zero observation leaves a memory's direction unchanged.
    """
    out = np.array(observations, np.float64)
    known = [i for i, m in enumerate(memories) if m is not None and m.shape == (out.shape[1],)]
    if known:
        mixed = (1.0 - momentum) * np.array([memories[i] for i in known]) + momentum * out[known]
        norms = np.linalg.norm(mixed, axis=1, keepdims=True)
        out[known] = np.divide(mixed, norms, out=out[known], where=norms > 0)
    return out


def similarity(memories: list[Optional[np.ndarray]], observations: Optional[np.ndarray],
               count: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, count) dot products of track memories with observations, and (T, count) bool 'both known'.

    A track without memory, or observations None (no descriptor of this kind this step), give
    similarity 0 and known False, so the caller can leave appearance out of that pair's cost.
    """
    t, d = len(memories), count
    if t == 0 or d == 0 or observations is None:
        return np.zeros((t, d)), np.zeros((t, d), bool)
    dim = observations.shape[1]
    stacked = np.zeros((t, dim))
    for i, memory in enumerate(memories):
        if memory is not None and memory.shape[0] == dim:
            stacked[i] = memory
    sims = stacked @ observations.T
    known = stacked.any(axis=1)[:, None] & observations.any(axis=1)[None, :]
    return np.clip(sims, 0.0, 1.0), known
