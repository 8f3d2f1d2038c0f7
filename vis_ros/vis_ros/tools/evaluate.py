"""`vis-ros eval PRED --gt GT --out REPORT`: score replay output against ground truth.

Single-object ground truth (DAVIS) gets J (mask IoU), F (boundary accuracy) and J&F three ways:
- one id: the single track id whose masks best match the object over the whole sequence (what a
  planner following one id sees; the quality bar's DAVIS figure);
- per-frame best: in each frame, the instance that best matches (an upper bound for the masks);
- union: all instances merged into one foreground mask.
Multi-object ground truth (synthetic scenes, MOTS) gets HOTA/DetA/AssA, IDF1, MOTA and ID switches
(core.metrics.mot_metrics, trackeval's implementation, on mask IoU).

Several sequences: `--gt` takes one ground truth per PRED, in the same order. Frames are matched
by order (see eval_data). REPORT/ gets REPORT.md, report.json and PNG plots.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vis_ros.core.errors import VisError
from vis_ros.core.metrics import boundary_f, jaccard, mask_similarity, mot_metrics
from vis_ros.tools.depth_tools import depth_errors, format_depth
from vis_ros.tools.eval_data import (
    GroundTruth, Predictions, check_complete, gt_name, load_ground_truth, load_predictions, parse_states)


def _scored_frames(gt: GroundTruth, pred: Predictions) -> list[int]:
    return [k for k in range(gt.num_frames) if k in pred.records]


def _best_track(per_id_j: dict[int, list[float]]) -> Optional[int]:
    """Return the id with the highest mean J over all scored frames (ties: the lower id)."""
    if not per_id_j:
        return None
    return max(sorted(per_id_j), key=lambda i: float(np.mean(per_id_j[i])))


def score_single(gt: GroundTruth, pred: Predictions, states) -> dict:
    """Score J, F and J&F (one id, per-frame best, union) of a single-object sequence, per frame too."""
    frames = _scored_frames(gt, pred)
    all_ids = sorted({i for k in frames for i, s in zip(pred.records[k]['ids'], pred.records[k]['states'])
                      if s in states})
    per_id_j: dict[int, list[float]] = {i: [] for i in all_ids}
    rows, cache = [], {}
    for k in frames:
        _, gt_masks = gt.frame(k)
        target = gt_masks.any(axis=0) if len(gt_masks) else np.zeros((gt.height, gt.width), bool)
        ids, masks = pred.masks(k, gt.height, gt.width, states)
        by_id = dict(zip(ids.tolist(), masks))
        empty = np.zeros_like(target)
        for i in all_ids:
            per_id_j[i].append(jaccard(by_id.get(i, empty), target))
        js = [jaccard(m, target) for m in masks]
        best = int(np.argmax(js)) if js else -1
        union = masks.any(axis=0) if len(masks) else empty
        rows.append({'frame': k, 'instances': len(ids),
                     'j_best': js[best] if js else jaccard(empty, target),
                     'f_best': boundary_f(masks[best] if js else empty, target),
                     'j_union': jaccard(union, target), 'f_union': boundary_f(union, target)})
        cache[k] = (target, by_id)
    track = _best_track(per_id_j)
    for row in rows:
        target, by_id = cache[row['frame']]
        mask = by_id.get(track, np.zeros_like(target))
        row['j_track'], row['f_track'] = jaccard(mask, target), boundary_f(mask, target)

    def mean(key):
        return float(np.mean([r[key] for r in rows])) if rows else 0.0
    figures = {'J': mean('j_track'), 'F': mean('f_track'), 'J_best': mean('j_best'), 'F_best': mean('f_best'),
               'J_union': mean('j_union'), 'F_union': mean('f_union')}
    figures.update({'J&F': (figures['J'] + figures['F']) / 2,
                    'J&F_best': (figures['J_best'] + figures['F_best']) / 2,
                    'J&F_union': (figures['J_union'] + figures['F_union']) / 2})
    return {'kind': 'single', 'track_id': track, 'figures': figures, 'frames': rows,
            'tracks_seen': len(all_ids)}


def score_multi(gt: GroundTruth, pred: Predictions, states) -> dict:
    """Score HOTA/IDF1/MOTA/IDSW of a multi-object sequence, and per frame the mean best IoU per object."""
    frames = _scored_frames(gt, pred)
    gt_ids, gt_masks, pred_ids, pred_masks, rows = [], [], [], [], []
    for k in frames:
        g_ids, g_masks = gt.frame(k)
        p_ids, p_masks = pred.masks(k, gt.height, gt.width, states)
        gt_ids.append(g_ids)
        gt_masks.append(g_masks)
        pred_ids.append(p_ids)
        pred_masks.append(p_masks)
        iou = mask_similarity(g_masks, p_masks)
        best = iou.max(axis=1) if iou.size else np.zeros(len(g_ids))
        rows.append({'frame': k, 'gt_objects': len(g_ids), 'instances': len(p_ids),
                     'mean_best_iou': float(best.mean()) if len(best) else float('nan')})
    figures = mot_metrics(gt_ids, gt_masks, pred_ids, pred_masks)
    return {'kind': 'multi', 'figures': figures, 'frames': rows,
            'tracks_seen': int(figures.get('num_pred_ids', 0))}


def evaluate_sequence(pred_path: Path, gt_path: Path, states, layout: str = 'auto',
                      allow_incomplete: bool = False) -> dict:
    """Score one replay output against one ground truth; the result goes into the report.

    A replay without summary.json, or marked incomplete, is refused unless `allow_incomplete`.
    """
    pred = load_predictions(pred_path)
    check_complete(pred, allow_incomplete)
    gt = load_ground_truth(gt_path, layout)
    scorer = score_single if gt.kind == 'single' else score_multi
    result = scorer(gt, pred, states)
    depth = depth_errors(pred, gt, pred_path, gt_path, states)   # with depth_truth.json + tracks3d.jsonl
    if depth is not None:
        result['depth'] = depth
    scored = len(result['frames'])
    result.update({'name': gt_name(gt, pred), 'pred': str(pred_path), 'gt': str(gt_path),
                   'layout': gt.layout, 'gt_frames': gt.num_frames, 'frames_scored': scored,
                   'frames_unscored': gt.num_frames - scored, 'replay': pred.summary,
                   'timeline': _timeline(pred), 'incomplete': pred.incomplete})
    if scored == 0:
        raise VisError(f'no prediction of {pred_path} matches a frame of {gt_path} (records by index '
                       f'{sorted(pred.records)[:5]}..., ground truth has {gt.num_frames} frames); '
                       'replay the bag made from this ground truth')
    return result


def _timeline(pred: Predictions) -> dict:
    """Collect per track id [[frame index, state], ...] for the timeline plot."""
    lines: dict[int, list] = {}
    for k in sorted(pred.records):
        record = pred.records[k]
        for track_id, state in zip(record['ids'], record['states']):
            lines.setdefault(int(track_id), []).append([k, int(state)])
    return {str(i): v for i, v in sorted(lines.items())}


def build_parser() -> argparse.ArgumentParser:
    """Build the eval command line (each default is stated once, in its help)."""
    p = argparse.ArgumentParser(prog='vis-ros eval', description=__doc__.split('\n')[0])
    p.add_argument('pred', nargs='+', type=Path, help='replay output folder(s) (frames.jsonl, summary.json)')
    p.add_argument('--gt', nargs='+', type=Path, required=True,
                   help='ground truth per PRED: DAVIS sequence/Annotations folder, synthetic scene '
                   'folder (make-bag writes BAG_gt/), MOTS PNG folder or MOTS .txt')
    p.add_argument('--out', type=Path, required=True, metavar='REPORT',
                   help='report folder (REPORT.md, report.json, *.png)')
    p.add_argument('--gt-format', choices=('auto', 'davis', 'scene', 'mots'), default='auto',
                   help='ground-truth layout; default: auto (scene.json -> scene, 16-bit PNGs or .txt -> '
                   'mots, 8-bit PNGs -> davis)')
    p.add_argument('--states', default='confirmed,lost', metavar='LIST',
                   help='instance states scored, a comma list of tentative, confirmed, lost '
                   '(default: confirmed,lost = what planners get)')
    p.add_argument('--allow-incomplete', action='store_true',
                   help='score a replay that stopped early or has no summary.json (flagged INCOMPLETE '
                   'in the report) instead of refusing it')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `vis-ros eval`; 0 ok, 1 failed, 2 usage."""
    from vis_ros.tools.report import write_report
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.pred) != len(args.gt):
        parser.error(f'give one --gt per PRED ({len(args.pred)} PRED, {len(args.gt)} --gt)')
    try:
        states = parse_states(args.states)
    except VisError as err:
        parser.error(str(err))
    try:
        results = [evaluate_sequence(p, g, states, args.gt_format, args.allow_incomplete)
                   for p, g in zip(args.pred, args.gt)]
        report = write_report(results, args.out, args.states)
    except (VisError, OSError) as err:
        print(f'vis-ros eval: error: {err}', file=sys.stderr)
        return 1
    for result in results:
        if result['incomplete']:
            print(f'vis-ros eval: WARNING: {result["name"]} is INCOMPLETE: {result["incomplete"]}',
                  file=sys.stderr)
    print(report['headline_text'])
    for result in results:
        if 'depth' in result:
            print(f'{result["name"]}: {format_depth(result["depth"])}')
    print(f'report: {args.out / "REPORT.md"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
