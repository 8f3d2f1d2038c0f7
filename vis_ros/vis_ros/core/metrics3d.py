"""3D position and velocity errors of tracks against synthetic depth truth (issue 15 targets).

Each frame, a predicted instance is paired with the ground-truth object its mask overlaps best
(mask IoU >= 0.5, one-to-one, greedy by IoU). Position error is the distance between the published
3D point and the true visible surface point, also relative to the true range (the target is
"<= 3% of range"); velocity error is the norm of the 3D velocity difference. Velocity is reported
for every pair and for settled tracks (3D estimate at least SETTLE_S old: the filter starts at zero
velocity and needs a few frames), and by phase: start-up (not settled), steady (settled and
measured this frame) and predicted (settled, not matched this frame: LOST, the filter coasts).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from vis_ros.core.masks import masks_iou

MIN_IOU = 0.5
SETTLE_S = 0.3


def match_masks(pred_ids, pred_masks, gt_ids, gt_masks, min_iou: float = MIN_IOU) -> list[tuple[int, int]]:
    """One-to-one (pred id, gt id) pairs with mask IoU >= min_iou, best IoU first."""
    if len(pred_ids) == 0 or len(gt_ids) == 0:
        return []
    iou = masks_iou(np.asarray(pred_masks), np.asarray(gt_masks))
    pairs, used_p, used_g = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < min_iou:
            break
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        pairs.append((int(pred_ids[i]), int(gt_ids[j])))
    return pairs


def pair_errors(est_position, est_velocity, true_position, true_velocity, settled: bool,
                predicted: bool = False) -> dict:
    """Errors of one matched (estimate, truth) pair; `predicted`: the track was not measured this frame."""
    true_position = np.asarray(true_position, float)
    position_error = float(np.linalg.norm(np.asarray(est_position, float) - true_position))
    return {'position_m': position_error, 'range_m': float(np.linalg.norm(true_position)),
            'relative': position_error / max(float(np.linalg.norm(true_position)), 1e-9),
            'velocity_mps': float(np.linalg.norm(np.asarray(est_velocity, float) - true_velocity)),
            'settled': bool(settled), 'predicted': bool(predicted)}


def summarize(pairs: Iterable[dict]) -> dict:
    """Median / p90 of the pair errors (NaN where there is nothing to summarize)."""
    pairs = list(pairs)

    def stats(values):
        values = np.asarray(values, float)
        if values.size == 0:
            return {'median': float('nan'), 'p90': float('nan'), 'count': 0}
        return {'median': float(np.median(values)), 'p90': float(np.percentile(values, 90)),
                'count': int(values.size)}
    settled = [p for p in pairs if p['settled']]
    return {'position_m': stats([p['position_m'] for p in pairs]),
            'position_relative': stats([p['relative'] for p in pairs]),
            'velocity_mps': stats([p['velocity_mps'] for p in pairs]),
            'velocity_settled_mps': stats([p['velocity_mps'] for p in settled]),
            'velocity_startup_mps': stats([p['velocity_mps'] for p in pairs if not p['settled']]),
            'velocity_steady_mps': stats([p['velocity_mps'] for p in settled if not p.get('predicted')]),
            'velocity_predicted_mps': stats([p['velocity_mps'] for p in settled if p.get('predicted')]),
            'range_m': stats([p['range_m'] for p in pairs])}
