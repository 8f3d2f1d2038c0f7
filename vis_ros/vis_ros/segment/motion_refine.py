"""Mask refinement of the motion backend: color model, edge-aware upsampling, instances.

Motion evidence from optical flow is blurry at object edges and empty on object parts that do not
move (a torso while the legs move, a car's uniform side). Two cheap, weight-free refinements fix
most of that: a foreground/background color model learned online from the confident motion
pixels fills the object in, and a guided filter (He et al., computed at the working resolution and
applied at full resolution, "fast guided filter") snaps the soft mask to the image's edges.
"""
from __future__ import annotations

import cv2
import numpy as np

from vis_ros.core.types import Instances

COLOR_BITS = 4                       # bits per RGB channel in the color histograms
COLOR_BINS = 1 << (3 * COLOR_BITS)   # 4096 bins
EMBEDDING_BITS = 2                   # per channel in instance descriptors: 4x4x4 = 64 values


def color_index(rgb: np.ndarray, bits: int = COLOR_BITS) -> np.ndarray:
    """(h, w) int32 histogram bin of every pixel (top `bits` of R, G and B)."""
    q = (rgb >> (8 - bits)).astype(np.int32)
    return (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]


class ColorModel:
    """Foreground and background color histograms, averaged over frames (online learning)."""

    def __init__(self, memory: float):
        """Start with empty histograms; `memory` is the weight of the past in each update."""
        self.memory = memory
        self.foreground = np.zeros(COLOR_BINS, np.float64)
        self.background = np.zeros(COLOR_BINS, np.float64)

    def update(self, bins: np.ndarray, confident_fg: np.ndarray, confident_bg: np.ndarray) -> None:
        """Blend this frame's normalized histograms of confident pixels into the model."""
        for hist, sel in ((self.foreground, confident_fg), (self.background, confident_bg)):
            count = np.count_nonzero(sel)
            if count < 20:      # too few pixels to say anything about the colors
                continue
            fresh = np.bincount(bins[sel], minlength=COLOR_BINS) / count
            hist *= self.memory if hist.any() else 0.0
            hist += (1.0 - self.memory) * fresh if hist.any() else fresh

    def probability(self, bins: np.ndarray) -> np.ndarray | None:
        """P(foreground | color) per pixel (equal priors), or None before both models exist."""
        if not (self.foreground.any() and self.background.any()):
            return None
        eps = 1.0 / COLOR_BINS
        table = (self.foreground + eps) / (self.foreground + self.background + 2 * eps)
        return table.astype(np.float32)[bins]


def guided_upsample(prob: np.ndarray, guide_small: np.ndarray, guide_full: np.ndarray,
                    radius: int, eps: float) -> np.ndarray:
    """Upsample a soft mask to full resolution with its edges snapped to the guide image.

    The guided filter's local linear model (q = a I + b) is fitted at the working resolution and
    applied to the full-resolution guide, so edges come from the sharp full-size image.
    Guides are float32 gray in [0, 1].
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x):
        return cv2.boxFilter(x, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide_small), box(prob)
    var_i = box(guide_small * guide_small) - mean_i * mean_i
    cov_ip = box(guide_small * prob) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    height, width = guide_full.shape
    a_full = cv2.resize(box(a), (width, height), interpolation=cv2.INTER_LINEAR)
    b_full = cv2.resize(box(b), (width, height), interpolation=cv2.INTER_LINEAR)
    return a_full * guide_full + b_full


def instance_embeddings(rgb_small: np.ndarray, labels_small: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(N, 64) float32 L2-normalized 4x4x4 RGB histograms of each kept component (appearance cue)."""
    bins = color_index(rgb_small, EMBEDDING_BITS).ravel()
    size = 1 << (3 * EMBEDDING_BITS)
    flat = labels_small.ravel()
    out = np.zeros((keep.size, size), np.float32)
    for row, label in enumerate(keep):
        hist = np.bincount(bins[flat == label], minlength=size).astype(np.float32)
        out[row] = hist / max(float(np.linalg.norm(hist)), 1e-6)
    return out


def components_to_instances(binary_full: np.ndarray, binary_small: np.ndarray, strength: np.ndarray,
                            merge_px: int, min_area_frac: float, max_instances: int,
                            rgb_small: np.ndarray | None) -> Instances:
    """Split the moving-foreground mask into scored full-size instances (connected components).

    Components are found at the working resolution on the mask dilated by `merge_px`, so the
    pieces of one object split by a thin gap (a leg, a shadowed band) stay one instance; each
    instance's full-size mask is the full-size foreground inside its (upsampled) component.
    Score: mean motion strength over the component. Largest components first.
    """
    height, width = binary_full.shape
    grown = binary_small.view(np.uint8)
    if merge_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * merge_px + 1,) * 2)
        grown = cv2.dilate(grown, kernel)
    count, labels, _, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    if count <= 1:
        return Instances.empty(height, width)
    flat, inside = labels.ravel(), binary_small.ravel()
    areas = np.bincount(flat[inside], minlength=count).astype(np.float64)
    strength_sum = np.bincount(flat[inside], weights=strength.ravel()[inside], minlength=count)
    areas[0] = 0
    min_area = max(1.0, min_area_frac * binary_small.size)
    keep = np.flatnonzero(areas >= min_area)
    keep = keep[np.argsort(-areas[keep], kind='stable')][:max_instances]
    if keep.size == 0:
        return Instances.empty(height, width)
    # Kept components renumbered 1..K (K <= 255) so the label map resizes as uint8.
    lookup = np.zeros(count, np.uint8)
    lookup[keep] = np.arange(1, keep.size + 1)
    labels_full = cv2.resize(lookup[labels], (width, height), interpolation=cv2.INTER_NEAREST)
    masks = (labels_full[None] == np.arange(1, keep.size + 1, dtype=np.uint8)[:, None, None]) \
        & binary_full[None]
    nonempty = masks.reshape(keep.size, -1).any(1)
    masks, keep = masks[nonempty], keep[nonempty]
    if keep.size == 0:
        return Instances.empty(height, width)
    scores = np.clip(strength_sum[keep] / areas[keep], 0.0, 1.0).astype(np.float32)
    embeddings = None if rgb_small is None else instance_embeddings(rgb_small, labels, keep)
    return Instances.from_masks(masks, scores, np.zeros(keep.size, np.int32), embeddings)
