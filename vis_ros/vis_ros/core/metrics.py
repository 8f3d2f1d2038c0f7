"""Segmentation and tracking quality measures.

Single-object (DAVIS) measures: region similarity J (mask IoU) and boundary accuracy F (the
F-measure of boundary pixels matched within 0.008 of the image diagonal), both as the official
davis2017-evaluation code computes them, so the numbers compare with published DAVIS results.

Multi-object tracking measures on MASKS (`mot_metrics`): HOTA / DetA / AssA / LocA, IDF1 (with
IDTP / IDFP / IDFN) and CLEAR MOTA / MOTP / IDSW, computed by the `trackeval` package's own
metric classes (the reference implementation of the HOTA paper and of the MOTChallenge/KITTI MOTS
scripts) from a mask-IoU similarity matrix per frame. `trackeval` is imported inside the function
so importing this module stays light.
"""
from __future__ import annotations

import contextlib
import io
from typing import Sequence

import cv2
import numpy as np

from vis_ros.core.errors import InputError
from vis_ros.core.masks import masks_boxes, masks_iou


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J: IoU of two binary masks; 1.0 when both are empty (DAVIS convention)."""
    if pred.shape != gt.shape:
        raise InputError(f'pred mask is {pred.shape}, gt mask is {gt.shape}')
    pred, gt = pred.astype(bool), gt.astype(bool)
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a binary mask, as the DAVIS toolkit's seg2bmap defines it.

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour;
    neighbours outside the image are not compared (so a mask touching the border has no boundary
    along the border itself). The boundary sits half a pixel towards the origin of the true edge.
    """
    m = np.asarray(mask).astype(bool)
    b = np.zeros_like(m)
    b[:, :-1] |= m[:, :-1] != m[:, 1:]
    b[:-1, :] |= m[:-1, :] != m[1:, :]
    b[:-1, :-1] |= m[:-1, :-1] != m[1:, 1:]
    return b


def _disk(radius: float) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk: the grid points with x^2 + y^2 <= r^2 (skimage.morphology.disk)."""
    grid = np.arange(-radius, radius + 1)
    return ((grid[None, :] ** 2 + grid[:, None] ** 2) <= radius ** 2).astype(np.uint8)


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = 0.008) -> float:
    """Boundary accuracy F exactly as the DAVIS benchmark defines it (davis2017-evaluation's f_measure).

    Boundaries come from `boundary_map` (seg2bmap); a predicted boundary pixel is matched when a
    ground-truth boundary pixel lies within a disk of ceil(tolerance x image diagonal) pixels, and
    vice versa; F is the harmonic mean of that precision and recall. A `tolerance` >= 1 is a radius
    in pixels. Both boundaries empty: 1.0; one empty: 0.0.
    """
    if pred.shape != gt.shape:
        raise InputError(f'pred mask is {pred.shape}, gt mask is {gt.shape}')
    radius = tolerance if tolerance >= 1 else float(np.ceil(tolerance * np.hypot(*pred.shape)))
    bp, bg = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(bp), np.count_nonzero(bg)
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    disk = _disk(radius)
    gt_near = cv2.dilate(bg.astype(np.uint8), disk) > 0
    pred_near = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = np.count_nonzero(bp & gt_near) / n_pred
    recall = np.count_nonzero(bg & pred_near) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


# --- multi-object tracking (HOTA, IDF1, CLEAR) --------------------------------------------------

def _check_frame(side: str, t: int, ids, masks) -> tuple[np.ndarray, np.ndarray]:
    """(K,) int64 ids and (K, H, W) bool masks of one frame, validated."""
    ids = np.asarray(ids).reshape(-1).astype(np.int64)
    masks = np.asarray(masks, bool)
    if masks.ndim != 3 or masks.shape[0] != ids.size:
        raise InputError(f'{side} frame {t}: masks must be ({ids.size}, H, W) bool to match {ids.size} ids, '
                         f'got {masks.shape}')
    if np.unique(ids).size != ids.size:
        raise InputError(f'{side} frame {t}: ids must be unique within a frame, got {ids.tolist()}')
    return ids, masks


def mask_similarity(gt_masks: np.ndarray, pred_masks: np.ndarray, gt_boxes=None,
                    pred_boxes=None) -> np.ndarray:
    """(K_gt, K_pred) mask IoU; only pairs whose boxes overlap are compared (cost follows object size)."""
    if gt_masks.shape[1:] != pred_masks.shape[1:] and len(gt_masks) and len(pred_masks):
        raise InputError(f'gt masks are {gt_masks.shape[1:]}, predicted masks {pred_masks.shape[1:]}: '
                         'score predictions at the ground truth\'s resolution')
    if len(gt_masks) == 0 or len(pred_masks) == 0:
        return np.zeros((len(gt_masks), len(pred_masks)), np.float64)
    gt_boxes = masks_boxes(gt_masks) if gt_boxes is None else gt_boxes
    pred_boxes = masks_boxes(pred_masks) if pred_boxes is None else pred_boxes
    return masks_iou(gt_masks, pred_masks, gt_boxes, pred_boxes)


def _contiguous(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Ids renumbered 0..n-1 (trackeval indexes its accumulators by id) and n."""
    every = np.concatenate([np.zeros(0, np.int64), *ids_per_frame])
    unique = np.unique(every)
    return [np.searchsorted(unique, ids) for ids in ids_per_frame], int(unique.size)


def tracking_data(gt_ids: Sequence, gt_masks: Sequence, pred_ids: Sequence, pred_masks: Sequence) -> dict:
    """Build the per-sequence data dict trackeval's metrics take, with mask IoU similarities."""
    if not (len(gt_ids) == len(gt_masks) == len(pred_ids) == len(pred_masks)):
        raise InputError(f'per-frame lists differ in length: gt_ids {len(gt_ids)}, gt_masks {len(gt_masks)}, '
                         f'pred_ids {len(pred_ids)}, pred_masks {len(pred_masks)}; give one entry per frame')
    gts, preds, similarity = [], [], []
    for t in range(len(gt_ids)):
        g_ids, g_masks = _check_frame('gt', t, gt_ids[t], gt_masks[t])
        p_ids, p_masks = _check_frame('pred', t, pred_ids[t], pred_masks[t])
        gts.append(g_ids)
        preds.append(p_ids)
        similarity.append(mask_similarity(g_masks, p_masks))
    gt_index, num_gt = _contiguous(gts)
    pred_index, num_pred = _contiguous(preds)
    return {'num_timesteps': len(gts), 'num_gt_ids': num_gt, 'num_tracker_ids': num_pred,
            'num_gt_dets': int(sum(i.size for i in gts)), 'num_tracker_dets': int(sum(i.size for i in preds)),
            'gt_ids': gt_index, 'tracker_ids': pred_index, 'similarity_scores': similarity}


def _import_trackeval():
    """trackeval, imported quietly (it prints a notice about optional datasets on import)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import trackeval.metrics
    except ImportError as exc:   # pragma: no cover - trackeval is a declared dependency
        raise ImportError('mot_metrics needs trackeval: pip install --no-deps trackeval==1.3.0 '
                          '(see scripts/requirements-nodeps.txt)') from exc
    return trackeval.metrics


def mot_metrics(gt_ids: Sequence, gt_masks: Sequence, pred_ids: Sequence, pred_masks: Sequence,
                threshold: float = 0.5) -> dict:
    """HOTA, DetA, AssA, LocA, IDF1, IDP, IDR, IDTP, IDFP, IDFN, MOTA, MOTP, IDSW, TP, FP, FN, Frag, MT, ML.

    Inputs are per-frame lists: ids (K_t,) ints (unique within a frame; any values) and masks
    (K_t, H, W) bool, for the ground truth and the tracker. HOTA-family values are averaged over
    trackeval's IoU thresholds 0.05..0.95; IDF1 and CLEAR match at IoU >= `threshold`.
    Scores are fractions in [0, 1]; counts are ints.
    """
    metrics = _import_trackeval()
    data = tracking_data(gt_ids, gt_masks, pred_ids, pred_masks)
    config = {'THRESHOLD': float(threshold), 'PRINT_CONFIG': False}
    hota = metrics.HOTA().eval_sequence(data)
    identity = metrics.Identity(config).eval_sequence(data)
    clear = metrics.CLEAR(config).eval_sequence(data)
    out = {name: float(np.mean(hota[name])) for name in ('HOTA', 'DetA', 'AssA', 'LocA')}
    out.update({name: float(identity[name]) for name in ('IDF1', 'IDP', 'IDR')})
    out.update({name: int(identity[name]) for name in ('IDTP', 'IDFP', 'IDFN')})
    out.update({'MOTA': float(clear['MOTA']), 'MOTP': float(clear['MOTP']), 'IDSW': int(clear['IDSW']),
                'TP': int(clear['CLR_TP']), 'FP': int(clear['CLR_FP']), 'FN': int(clear['CLR_FN']),
                'Frag': int(clear['Frag']), 'MT': int(clear['MT']), 'ML': int(clear['ML']),
                'num_gt_ids': data['num_gt_ids'], 'num_pred_ids': data['num_tracker_ids']})
    return out
