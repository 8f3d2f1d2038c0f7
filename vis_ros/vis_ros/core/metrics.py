"""Segmentation and tracking quality measures.

Single-object (DAVIS) measures: region similarity J (mask IoU) and boundary accuracy F (the
F-measure of boundary pixels matched within a small tolerance, as in the DAVIS benchmark).
"""
from __future__ import annotations

import cv2
import numpy as np

from vis_ros.core.errors import InputError


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J: IoU of two binary masks; 1.0 when both are empty (DAVIS convention)."""
    if pred.shape != gt.shape:
        raise InputError(f'pred mask is {pred.shape}, gt mask is {gt.shape}')
    pred, gt = pred.astype(bool), gt.astype(bool)
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def _boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide inner boundary of a binary mask."""
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT)) > 0


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = 0.008) -> float:
    """Boundary accuracy F: boundary precision/recall within `tolerance` x image diagonal pixels."""
    if pred.shape != gt.shape:
        raise InputError(f'pred mask is {pred.shape}, gt mask is {gt.shape}')
    radius = max(1, int(np.ceil(tolerance * np.hypot(*pred.shape))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    bp, bg = _boundary(pred), _boundary(gt)
    n_pred, n_gt = np.count_nonzero(bp), np.count_nonzero(bg)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    gt_near = cv2.dilate(bg.astype(np.uint8), disk) > 0
    pred_near = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = np.count_nonzero(bp & gt_near) / n_pred
    recall = np.count_nonzero(bg & pred_near) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
