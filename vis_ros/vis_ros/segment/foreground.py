"""Foreground-probability models (MediaPipe selfie segmentation) -> instances.

Such a model returns ONE per-pixel probability map ("person or not"), not instances. We split it
into instances by connected components: a hysteresis threshold (a region grows over pixels above
`low_threshold` but must contain a pixel above `threshold`) keeps soft edges attached to a confident
core and drops faint blobs; components smaller than `min_area` are noise; each component becomes
one instance of class 0 ('person') scored by its mean probability. Two people who touch become one
instance; the tracker keeps identities over time.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vis_ros.core.errors import ConfigError, ModelFormatError
from vis_ros.core.masks import masks_boxes
from vis_ros.core.types import Instances

FOREGROUND_CLASS_NAMES = ('person',)


@dataclass(frozen=True, slots=True)
class ForegroundConfig:
    """Knobs of the foreground split.

    threshold: a component needs one pixel above this probability (raise it to drop faint blobs).
    low_threshold: pixels above this join a component (lower it for fuller, softer masks).
    min_area: smallest component kept, in source pixels (raise it on noisy backgrounds).
    dilate_px: grow each mask by this many pixels (0 = off; helps when masks hug the body too tight).
    score_threshold: smallest mean probability of a kept component.
    max_instances: keep at most this many components, largest first.
    """

    threshold: float = 0.5
    low_threshold: float = 0.35
    min_area: int = 400
    dilate_px: int = 0
    score_threshold: float = 0.25
    max_instances: int = 20

    def __post_init__(self):
        """Check the thresholds' order and the counts' signs."""
        if not 0.0 <= self.low_threshold <= self.threshold <= 1.0:
            raise ConfigError(f'foreground thresholds need 0 <= low_threshold <= threshold <= 1, got '
                              f'low_threshold={self.low_threshold}, threshold={self.threshold}; '
                              'lower low_threshold or raise threshold')
        if self.min_area < 0 or self.dilate_px < 0 or self.max_instances < 0:
            raise ConfigError(f'min_area, dilate_px and max_instances must be >= 0, got {self.min_area}, '
                              f'{self.dilate_px}, {self.max_instances}')


def probability_plane(output: np.ndarray) -> np.ndarray:
    """Turn a model's (1, 1, H, W), (1, H, W, 1), (1, H, W) or (H, W) output into (H, W) probabilities.

    Maps already in [0, 1] are probabilities (the selfie model ends in a sigmoid); anything
    outside [0, 1] is taken as logits and passed through a sigmoid.
    """
    array = np.asarray(output, np.float32)
    squeezed = array.reshape([d for d in array.shape if d != 1]) if array.ndim > 2 else array
    if squeezed.ndim != 2:
        raise ModelFormatError(f'a foreground model must output one probability map such as (1, 1, H, W) '
                               f'or (1, H, W, 1), got {array.shape}; set decoder: yolo or detr for '
                               'instance-segmentation models')
    if squeezed.size and (squeezed.min() < 0.0 or squeezed.max() > 1.0):
        squeezed = 1.0 / (1.0 + np.exp(-np.clip(squeezed, -60, 60)))
    return squeezed


def split_foreground(prob: np.ndarray, config: ForegroundConfig, class_id: int = 0) -> Instances:
    """(H, W) probability map at the source size -> one instance per confident component."""
    height, width = prob.shape
    grown = prob > config.low_threshold
    # Plain labelling, then numpy statistics: OpenCV's WithStats variant is ~10x slower here.
    count, labels = cv2.connectedComponents(grown.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    if count <= 1:
        return Instances.empty(height, width)
    grown_labels = labels[grown]
    areas = np.bincount(grown_labels, minlength=count)
    mean_prob = np.bincount(grown_labels, weights=prob[grown], minlength=count) / np.maximum(areas, 1)
    # Hysteresis: a component is kept only if it holds at least one confident pixel.
    seeded = np.bincount(labels[prob > config.threshold], minlength=count) > 0
    seeded[0] = False
    keep = np.flatnonzero(seeded & (areas >= max(config.min_area, 1)) & (mean_prob >= config.score_threshold))
    keep = keep[np.argsort(-areas[keep], kind='stable')][:config.max_instances]
    if keep.size == 0:
        return Instances.empty(height, width)
    masks = labels[None] == keep[:, None, None]
    if config.dilate_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * config.dilate_px + 1,) * 2)
        masks = np.stack([cv2.dilate(m.view(np.uint8), kernel) > 0 for m in masks])
    scores = np.clip(mean_prob[keep], 0.0, 1.0).astype(np.float32)
    return Instances(masks=masks, boxes=masks_boxes(masks), scores=scores,
                     class_ids=np.full(keep.size, class_id, np.int32))
