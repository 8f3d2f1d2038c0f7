"""Figures and files of `vis-ros demo`: metrics from the recorded outputs, video, contact sheet, summary.

Accuracy is scored on the frames the node processed (a dropped frame has no output to score):
- DAVIS (one object, binary GT): J of the single best-matching track over the sequence (mean over
  processed frames of jaccard(track mask or empty, GT)), and J of the union of all instances;
- synthetic scenes (GT ids): IDF1, HOTA, MOTA, ID switches via core.metrics.mot_metrics.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vis_ros.core.metrics import jaccard
from vis_ros.core.overlay import draw_label, label_scale
from vis_ros.ros import convert
from vis_ros.ros.recorder import serialized_size

SHEET_FRAMES = 12
SHEET_COLUMNS = 3
SHEET_TILE_WIDTH = 480    # 854x480 DAVIS frames shrink by 0.56: the overlay's id tags stay readable


def _percentiles(values) -> dict[str, float]:
    if len(values) == 0:
        return {'p50': float('nan'), 'p99': float('nan')}
    return {'p50': float(np.percentile(values, 50)), 'p99': float(np.percentile(values, 99))}


def _stage_latencies(diag: dict[str, str]) -> dict[str, dict[str, float]]:
    stages = {}
    for key, value in diag.items():
        if key.startswith('latency_') and key.endswith('_ms'):
            stage, which = key[len('latency_'):-len('_ms')].rsplit('_', 1)
            stages.setdefault(stage, {})[which] = float(value)
    return stages


def _outputs_by_index(recorder, stamps: list[int]) -> list[tuple[int, object, int]]:
    index_of = {stamp: i for i, stamp in enumerate(stamps)}
    found = []
    for received in recorder.instances:
        stamp = convert.stamp_to_ns(received.msg.header.stamp)
        if stamp in index_of:
            found.append((index_of[stamp], received.msg, received.received_ns))
    return found


def davis_scores(outputs, gt_masks) -> dict[str, float]:
    """J of the best single track over the processed frames, and of the union of instances."""
    per_frame = [(convert.instance_array_to_masks(msg), gt_masks[index]) for index, msg, _ in outputs]
    ids = sorted({track_id for masks, _ in per_frame for track_id in masks})
    if not per_frame:
        return {'J_best_track': 0.0, 'best_track_id': -1, 'J_union': 0.0}
    empty = np.zeros_like(per_frame[0][1])
    best_id, best_j = -1, 0.0
    for track_id in ids:
        j = float(np.mean([jaccard(masks.get(track_id, empty), gt) for masks, gt in per_frame]))
        if j > best_j:
            best_id, best_j = track_id, j
    union = [jaccard(np.any(list(masks.values()), axis=0) if masks else empty, gt) for masks, gt in per_frame]
    return {'J_best_track': best_j, 'best_track_id': best_id, 'J_union': float(np.mean(union))}


def synthetic_scores(outputs, source) -> dict[str, float]:
    """IDF1 / HOTA / MOTA / IDSW of the published tracks against the scene's GT ids."""
    from vis_ros.core.metrics import mot_metrics
    gt_ids, gt_masks, pred_ids, pred_masks = [], [], [], []
    height, width = source.frames[0].shape[:2]
    for index, msg, _ in outputs:
        masks = convert.instance_array_to_masks(msg)
        gt_ids.append(np.asarray(source.gt_ids[index]))
        gt_masks.append(np.asarray(source.gt_masks[index]))
        pred_ids.append(np.array(sorted(masks), np.int64))
        pred_masks.append(np.stack([masks[i] for i in sorted(masks)]) if masks
                          else np.zeros((0, height, width), bool))
    result = mot_metrics(gt_ids, gt_masks, pred_ids, pred_masks)
    return {key: float(value) for key, value in result.items()}


def compute_metrics(source, stamps: list[int], recorder, rate: float, backend: str) -> dict:
    """Every demo figure as a JSON-ready dict."""
    outputs = _outputs_by_index(recorder, stamps)
    diag = recorder.last_diagnostics()
    recv_s = [received_ns / 1e9 for _, _, received_ns in outputs]
    span = recv_s[-1] - recv_s[0] if len(recv_s) > 1 else 0.0
    e2e_ms = [(received_ns - stamps[index]) / 1e6 for index, _, received_ns in outputs]
    sizes = [serialized_size(msg) for _, msg, _ in outputs]
    counts = [len(msg.instances) for _, msg, _ in outputs]
    ids = sorted({int(inst.id) for _, msg, _ in outputs for inst in msg.instances})
    metrics = {
        'source': {'kind': source.kind, 'name': source.name, 'frames': len(source.frames),
                   'rate_hz': rate},
        'backend': backend, 'device': diag.get('device', '?'),
        'frames_sent': len(stamps), 'frames_received_by_node': int(diag.get('frames_received', 0)),
        'frames_processed': int(diag.get('frames_processed', 0)),
        'frames_dropped': int(diag.get('frames_dropped', 0)), 'bad_frames': int(diag.get('bad_frames', 0)),
        'frames_out': len(outputs),
        'frames_without_output': sorted(set(range(len(stamps))) - {i for i, _, _ in outputs}),
        'output_fps': (len(outputs) - 1) / span if span > 0 else 0.0,
        'headers_exact': all(msg.header.frame_id == 'camera' for _, msg, _ in outputs),
        'latency_ms': _stage_latencies(diag),
        'node_overhead_ms': _stage_latencies(diag).get('overhead', {}),
        'camera_to_output_ms': _percentiles(e2e_ms),
        'tracks_seen': len(ids), 'track_ids': ids,
        'instances_per_frame': {'mean': float(np.mean(counts)) if counts else 0.0,
                                'max': int(max(counts, default=0))},
        'instance_array_bytes': {'mean': float(np.mean(sizes)) if sizes else 0.0,
                                 'max': int(max(sizes, default=0))},
    }
    if source.kind == 'davis' and source.gt_masks:
        metrics['accuracy'] = davis_scores(outputs, source.gt_masks)
    elif source.kind == 'synthetic' and source.gt_ids:
        metrics['accuracy'] = synthetic_scores(outputs, source)
    return metrics


def write_outputs(out: Path, recorder, metrics: dict, rate: float) -> None:
    """overlay.webm (VP8; see tools.video_out), contact_sheet.png (12 overlay frames), metrics.json."""
    from vis_ros.tools.video_out import VideoFile
    overlays = sorted(recorder.overlays, key=lambda item: item[0])
    metrics['overlay_frames'] = len(overlays)
    for stale in ('overlay.mp4', 'overlay.webm'):
        (out / stale).unlink(missing_ok=True)
    if overlays:
        fps = max(1.0, min(rate, metrics['output_fps'] or rate))
        video = VideoFile(out / 'overlay', fps, prog='vis-ros demo')
        for _, rgb in overlays:
            video.write(rgb)
        path = video.close()
        metrics['overlay_video'] = path.name if path else None
        cv2.imwrite(str(out / 'contact_sheet.png'), cv2.cvtColor(contact_sheet(overlays), cv2.COLOR_RGB2BGR))
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=2))


def contact_sheet(overlays: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Tile up to SHEET_FRAMES evenly spaced frames in a SHEET_COLUMNS-wide grid (RGB)."""
    picks = np.unique(np.linspace(0, len(overlays) - 1, min(SHEET_FRAMES, len(overlays))).astype(int))
    height, width = overlays[0][1].shape[:2]
    tile_h = int(round(height * SHEET_TILE_WIDTH / width))
    tiles = [cv2.resize(overlays[i][1], (SHEET_TILE_WIDTH, tile_h), interpolation=cv2.INTER_AREA)
             for i in picks]
    rows = -(-len(tiles) // SHEET_COLUMNS)
    sheet = np.zeros((rows * tile_h, SHEET_COLUMNS * SHEET_TILE_WIDTH, 3), np.uint8)
    for k, tile in enumerate(tiles):
        draw_label(tile, f'frame {picks[k]}', (0, 0), (32, 32, 32), label_scale(tile_h, SHEET_TILE_WIDTH))
        r, c = divmod(k, SHEET_COLUMNS)
        sheet[r * tile_h:(r + 1) * tile_h, c * SHEET_TILE_WIDTH:(c + 1) * SHEET_TILE_WIDTH] = tile
    return sheet


STAGE_ORDER = ('wait', 'convert', 'segment', 'track', 'encode', 'publish', 'labels', 'overlay',
               'detections', 'instances_out', 'overhead', 'total')


def _stage_order(stage: str) -> tuple[int, str]:
    head = stage.split('.')[0]
    return (STAGE_ORDER.index(head) if head in STAGE_ORDER else len(STAGE_ORDER), stage)


def summary(metrics: dict, out: Path) -> str:
    """Format a short human-readable table of the demo's figures."""
    lat = metrics['latency_ms']
    lines = [
        f"vis-ros demo: {metrics['source']['kind']} {metrics['source']['name']}, backend "
        f"{metrics['backend']} on {metrics['device']}, camera {metrics['source']['rate_hz']:g} Hz",
        f"  frames   sent {metrics['frames_sent']}  received {metrics['frames_received_by_node']}  "
        f"processed {metrics['frames_processed']}  dropped {metrics['frames_dropped']}  "
        f"bad {metrics['bad_frames']}  outputs {metrics['frames_out']} ({metrics['output_fps']:.1f} FPS)",
        '  latency ms (p50 / p99):',
    ]
    for stage in sorted(lat, key=_stage_order):
        lines.append(f"    {stage:<20} {lat[stage].get('p50', float('nan')):8.2f} / "
                     f"{lat[stage].get('p99', float('nan')):8.2f}")
    cam = metrics['camera_to_output_ms']
    over = metrics['node_overhead_ms']
    lines += [
        f"  node overhead beyond the backend (receive -> ~/instances published, minus segment): "
        f"p50 {over.get('p50', float('nan')):.2f} ms, p99 {over.get('p99', float('nan')):.2f} ms",
        f"  camera stamp -> output received: p50 {cam['p50']:.1f} ms, p99 {cam['p99']:.1f} ms",
        f"  tracks seen {metrics['tracks_seen']}  instances/frame mean "
        f"{metrics['instances_per_frame']['mean']:.2f} max {metrics['instances_per_frame']['max']}",
        f"  InstanceArray serialized: mean {metrics['instance_array_bytes']['mean']:.0f} B, "
        f"max {metrics['instance_array_bytes']['max']} B; headers exact: {metrics['headers_exact']}",
    ]
    acc = metrics.get('accuracy', {})
    if 'J_best_track' in acc:
        lines.append(f"  DAVIS J (best single track id {acc['best_track_id']}): {acc['J_best_track']:.3f}  "
                     f"J (union of instances): {acc['J_union']:.3f}  over {metrics['frames_out']} frames")
    elif acc:
        shown = ('IDF1', 'HOTA', 'DetA', 'AssA', 'MOTA')
        lines.append('  ' + '  '.join(f'{k} {acc[k]:.3f}' for k in shown if k in acc) +
                     f"  ID switches {int(acc.get('IDSW', 0))}  over {metrics['frames_out']} frames")
    lines.append(f"  wrote {out}/{metrics.get('overlay_video') or '(no video)'}, {out}/contact_sheet.png, "
                 f'{out}/metrics.json')
    return '\n'.join(lines)
