"""This step's usable instances with the features association needs, computed once per step.

Instances are ignored (documented behaviour of `Tracker.step`) when their score is below
`low_score` or their mask has no pixel inside their box (an empty mask cannot be tracked or
published). `index` maps the kept rows back to the caller's instance indices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from vis_ros.core.masks import box_iou
from vis_ros.core.tracker import appearance
from vis_ros.core.tracker.kalman import xyxy_to_xyah
from vis_ros.core.tracker.region import GridMask, grid_masks
from vis_ros.core.types import Instances


@dataclass
class Observations:
    """Parallel arrays over the D usable instances of one step."""

    masks: np.ndarray                 # the caller's (N, H, W) masks (not copied)
    index: np.ndarray                 # (D,) rows of the caller's instances
    boxes: np.ndarray                 # (D, 4) float32 xyxy, read-only (rows become output boxes)
    xyah: np.ndarray                  # (D, 4) Kalman measurements
    scores: np.ndarray                # (D,)
    class_ids: np.ndarray             # (D,)
    grids: list[GridMask]             # reduced masks
    histograms: Optional[np.ndarray]  # (D, K) unit sqrt color histograms, when a frame was given
    embeddings: Optional[np.ndarray]  # (D, E) unit embeddings, when the backend gave them
    occluded: np.ndarray              # (D,) bool: overlaps another instance

    def __len__(self) -> int:
        """Count the usable instances."""
        return self.index.shape[0]


def _has_pixels(mask: np.ndarray, box: np.ndarray) -> bool:
    x1, y1, x2, y2 = int(box[0]), int(box[1]), int(np.ceil(box[2])), int(np.ceil(box[3]))
    return x2 > x1 and y2 > y1 and bool(mask[y1:y2, x1:x2].any())


def observe(instances: Instances, bins: Optional[np.ndarray], stride: int, low_score: float,
            occlusion_iou: float) -> Observations:
    """Features of the usable instances; `bins` is appearance.bin_image of the frame, or None."""
    keep, grids = [], []
    rows = np.flatnonzero(instances.scores >= low_score).tolist()
    for i, grid in zip(rows, grid_masks(instances.masks, instances.boxes, rows, stride)):
        # pixels on the grid prove the mask is not empty; otherwise look at every pixel of the box
        if grid.area or _has_pixels(instances.masks[i], instances.boxes[i]):
            keep.append(i)
            grids.append(grid)
    index = np.asarray(keep, np.int64)
    boxes = instances.boxes[index]
    boxes.flags.writeable = False
    histograms = appearance.histograms(bins, grids) if bins is not None else None
    embeddings = None
    if instances.embeddings is not None and instances.embeddings.shape[1] > 0:
        embeddings = appearance.normalize_rows(instances.embeddings[index])
    overlap = box_iou(boxes, boxes)
    np.fill_diagonal(overlap, 0.0)
    occluded = (overlap > occlusion_iou).any(axis=1) if len(index) else np.zeros(0, bool)
    return Observations(masks=instances.masks, index=index, boxes=boxes, xyah=xyxy_to_xyah(boxes),
                        scores=instances.scores[index].astype(np.float64),
                        class_ids=instances.class_ids[index], grids=grids, histograms=histograms,
                        embeddings=embeddings, occluded=occluded)
