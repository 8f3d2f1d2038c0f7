"""DAVIS-2016 evaluation of a segmentation backend + the tracker: J, F and latency per stage.

Runs `Pipeline(backend, tracker)` over the DAVIS-2016 sequences in ../shared/data, one frame at a
time with 24 fps stamps (as a camera would), and scores each sequence's single foreground object:

  (a) track  the one track id with the highest total IoU over the sequence, as a user would see it
             (per frame its mask, or empty when it is not published); tracks are published when
             CONFIRMED or LOST (tentative ones are not, as in the node's default);
  (b) frame  the best-matching single instance of each frame (no identity: an upper bound of (a));
  (c) union  the union of all instances of a frame (foreground J, for information).

Then a latency table per stage (the pipeline's 'segment' and 'track' plus the backend's own
`stage_ms` breakdown) at the native 854x480 and at 640x480 (frames resized; masks are scored at the
native size). Saves the tables with the command to benchmarks/results/davis_<backend>.md.

    python benchmarks/davis_eval.py --backend motion
    python benchmarks/davis_eval.py --backend onnx --backend-options '{"model": "../shared/models/x.onnx"}'

Without the tracker package (vis_ros.core.tracker) only (b) and (c) are scored, and the output
says so.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from vis_ros.core.errors import VisError
from vis_ros.core.metrics import boundary_f, jaccard
from vis_ros.core.sequences import DAVIS_FPS, davis_sequences, repo_root
from vis_ros.core.types import Frame, TrackState
from vis_ros.segment.base import make_backend

PUBLISHED = (TrackState.CONFIRMED, TrackState.LOST)
STAMP_STEP_NS = int(round(1e9 / DAVIS_FPS))


def parse_args(argv):
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backend', default='motion', help='backend name (motion, onnx, litert, tensorrt)')
    parser.add_argument('--backend-options', default='{}', help='backend options as a JSON object')
    parser.add_argument('--tracker-options', default='{}', help='TrackerConfig fields as a JSON object')
    parser.add_argument('--sequences', nargs='*', default=None, help='sequence names (default: all)')
    parser.add_argument('--size', default='native', help='scoring run frame size: native or WxH')
    parser.add_argument('--latency-sizes', default='native,640x480',
                        help='comma-separated sizes of the latency table (a size other than --size '
                             'gets an extra timing-only run)')
    parser.add_argument('--output', default=None,
                        help='results markdown (default benchmarks/results/davis_<backend>.md)')
    parser.add_argument('--no-save', action='store_true', help='print only')
    parser.add_argument('--target-j', type=float, default=None,
                        help='mean J target with one id per sequence (default 0.60 for motion, else 0.75; '
                             'docs: ../shared/design/quality-bar.md)')
    parser.add_argument('--target-fps', type=float, default=30.0,
                        help='segment+track FPS target at 640x480 (quality bar: motion backend)')
    return parser.parse_args(argv)


def parse_size(text: str):
    """'native' -> None, 'WxH' -> (W, H)."""
    if text == 'native':
        return None
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise SystemExit(f'--size must be native or WxH such as 640x480, got {text!r}') from None
    return width, height


def build_pipeline(args):
    """Backend + tracker pipeline, or (backend, None) when the tracker is not importable."""
    backend = make_backend(args.backend, json.loads(args.backend_options))
    try:
        from vis_ros.core.tracker import Tracker, TrackerConfig
    except ImportError as err:
        print(f'TRACKER MISSING ({err}): scoring per-frame best match and union only', file=sys.stderr)
        return backend, None
    from vis_ros.segment.pipeline import Pipeline
    return backend, Pipeline(backend, Tracker(TrackerConfig(**json.loads(args.tracker_options))))


def resized(image, size):
    """Resize a frame to `size` ((W, H); None = unchanged)."""
    if size is None or (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)


def to_native(mask, shape):
    """Resize a mask (nearest) back to the GT's shape."""
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.view(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0


def run_sequence(sequence, backend, pipeline, size):
    """Stream one sequence; per-frame scores of (a)/(b)/(c) and per-frame stage timings."""
    backend.reset()
    if pipeline is not None:
        pipeline.reset()
    per_track: dict[int, dict[int, tuple[float, float]]] = {}
    frame_scores, union_scores, timings = [], [], []
    for index, (rgb, gt) in enumerate(sequence.iter_frames()):
        frame = Frame(resized(rgb, size), index * STAMP_STEP_NS, 'camera')
        if pipeline is not None:
            result = pipeline.process(frame)
            instances, stage = result.instances, dict(result.timings_ms)
            for track in result.tracks.tracks:
                if track.state in PUBLISHED:
                    mask = to_native(np.asarray(track.mask), gt.shape)
                    scores = (jaccard(mask, gt), boundary_f(mask, gt))
                    per_track.setdefault(track.track_id, {})[index] = scores
        else:
            t0 = time.perf_counter()
            instances = backend.segment(frame)
            stage = {'segment': (time.perf_counter() - t0) * 1e3}
            stage.update(getattr(backend, 'stage_ms', None) or {})
        timings.append(stage)
        masks = [to_native(np.asarray(m), gt.shape) for m in instances.masks]
        best = max(masks, key=lambda m: jaccard(m, gt), default=np.zeros_like(gt))
        frame_scores.append((jaccard(best, gt), boundary_f(best, gt)))
        union = np.logical_or.reduce(masks) if masks else np.zeros_like(gt)
        union_scores.append(jaccard(union, gt))
    count = len(frame_scores)
    track_jf = None
    if pipeline is not None:
        best_id = max(per_track, key=lambda tid: sum(j for j, _ in per_track[tid].values()), default=None)
        scores = per_track.get(best_id, {})
        track_jf = tuple(sum(s[k] for s in scores.values()) / count for k in (0, 1))
    frame_jf = tuple(float(np.mean([s[k] for s in frame_scores])) for k in (0, 1))
    return {'name': sequence.name, 'frames': count, 'track': track_jf, 'frame': frame_jf,
            'union_j': float(np.mean(union_scores)), 'timings': timings}


def time_only(sequences, backend, pipeline, size):
    """Per-frame stage timings of a timing-only pass at `size`."""
    timings = []
    for sequence in sequences:
        backend.reset()
        if pipeline is not None:
            pipeline.reset()
        for index, (rgb, _) in enumerate(sequence.iter_frames()):
            frame = Frame(resized(rgb, size), index * STAMP_STEP_NS, 'camera')
            if pipeline is not None:
                timings.append(dict(pipeline.process(frame).timings_ms))
            else:
                t0 = time.perf_counter()
                backend.segment(frame)
                timings.append({'segment': (time.perf_counter() - t0) * 1e3,
                                **(getattr(backend, 'stage_ms', None) or {})})
    return timings


def score_table(results, with_tracker):
    """Markdown table of per-sequence and mean J/F."""
    head = '| sequence | frames | J track | F track | J frame | F frame | J union |'
    lines = [head, '|---|---:|---:|---:|---:|---:|---:|']

    def fmt(pair, k):
        return '—' if pair is None else f'{pair[k]:.3f}'
    for r in results:
        lines.append(f"| {r['name']} | {r['frames']} | {fmt(r['track'], 0)} | {fmt(r['track'], 1)} | "
                     f"{fmt(r['frame'], 0)} | {fmt(r['frame'], 1)} | {r['union_j']:.3f} |")
    track_mean = (np.mean([r['track'][0] for r in results]), np.mean([r['track'][1] for r in results])) \
        if with_tracker else None
    frame_mean = (np.mean([r['frame'][0] for r in results]), np.mean([r['frame'][1] for r in results]))
    lines.append(f"| **mean** | {sum(r['frames'] for r in results)} | {fmt(track_mean, 0)} | "
                 f"{fmt(track_mean, 1)} | {fmt(frame_mean, 0)} | {fmt(frame_mean, 1)} | "
                 f"{np.mean([r['union_j'] for r in results]):.3f} |")
    return '\n'.join(lines), track_mean, frame_mean


def latency_table(by_size):
    """Markdown table: median / p90 ms per stage and per size, with the FPS of segment + track."""
    lines = ['| size | stage | median ms | p90 ms | mean ms |', '|---|---|---:|---:|---:|']
    fps = {}
    for size_name, timings in by_size.items():
        timed = timings[1:]   # the first frame of a run warms caches and has no motion
        stages = list(dict.fromkeys(k for t in timed for k in t))
        for stage in stages:
            values = np.array([t[stage] for t in timed if stage in t])
            lines.append(f'| {size_name} | {stage} | {np.median(values):.1f} | '
                         f'{np.percentile(values, 90):.1f} | {values.mean():.1f} |')
        total = np.array([t.get('segment', 0.0) + t.get('track', 0.0) for t in timed])
        fps[size_name] = 1e3 / total.mean()
        lines.append(f'| {size_name} | **segment+track** | {np.median(total):.1f} | '
                     f'{np.percentile(total, 90):.1f} | {total.mean():.1f} ({fps[size_name]:.1f} FPS) |')
    return '\n'.join(lines), fps


def main(argv=None) -> int:
    """Run the evaluation; exit 0 on success, 1 when it could not run, 2 on bad usage."""
    args = parse_args(argv)
    sequences = davis_sequences()
    if not sequences:
        print('DAVIS data absent: ../shared/data/davis2016 not found (set VIS_ROS_SHARED_DATA)',
              file=sys.stderr)
        return 1
    if args.sequences:
        unknown = set(args.sequences) - {s.name for s in sequences}
        if unknown:
            print(f'unknown sequence(s) {sorted(unknown)}; have {[s.name for s in sequences]}',
                  file=sys.stderr)
            return 2
        sequences = [s for s in sequences if s.name in args.sequences]
    try:
        backend, pipeline = build_pipeline(args)
    except (VisError, json.JSONDecodeError) as err:
        print(f'cannot build the pipeline: {err}', file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    results = []
    for sequence in sequences:
        results.append(run_sequence(sequence, backend, pipeline, parse_size(args.size)))
        r = results[-1]
        print(f"{r['name']}: track {r['track']} frame {r['frame']} union {r['union_j']:.3f}", file=sys.stderr)
    by_size = {args.size: [t for r in results for t in r['timings']]}
    for size_name in args.latency_sizes.split(','):
        if size_name and size_name not in by_size:
            by_size[size_name] = time_only(sequences, backend, pipeline, parse_size(size_name))
    load_after = os.getloadavg()
    backend.close()
    scores, track_mean, frame_mean = score_table(results, pipeline is not None)
    latency, fps = latency_table(by_size)
    target_j = args.target_j if args.target_j is not None else (0.60 if args.backend == 'motion' else 0.75)
    targets = ['## Targets', '']
    if track_mean is None:
        targets.append(f'- mean J (one id per sequence) >= {target_j:.2f}: NOT SCORED (tracker missing)')
    else:
        verdict = 'met' if track_mean[0] >= target_j else 'MISSED'
        targets.append(f'- mean J (one id per sequence) >= {target_j:.2f}: {track_mean[0]:.3f}, {verdict}')
    if '640x480' in fps:
        verdict = 'met' if fps['640x480'] >= args.target_fps else 'MISSED'
        targets.append(f"- segment+track at 640x480 >= {args.target_fps:g} FPS: "
                       f"{fps['640x480']:.1f} FPS, {verdict}")
    command = 'python benchmarks/davis_eval.py ' + ' '.join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    report = '\n'.join([
        f'# DAVIS-2016: backend {args.backend} + tracker', '', f'Command: `{command}`', '',
        f'Backend options: `{args.backend_options}`; tracker options: `{args.tracker_options}`; '
        f'scored at size {args.size}, stamps at {DAVIS_FPS:g} fps.',
        'TRACKER MISSING: (a) not scored.' if pipeline is None else
        'J/F track = one track id per sequence (highest total IoU, CONFIRMED or LOST tracks); '
        'frame = best instance per frame; union = all instances per frame.', '',
        scores, '', f'## Latency (ms per frame; {os.cpu_count()} CPUs; load average before '
        f'{load_before[0]:.2f}, after {load_after[0]:.2f})', '', latency, '', *targets, ''])
    print(report)
    if not args.no_save:
        default = repo_root() / 'benchmarks' / 'results' / f'davis_{args.backend}.md'
        output = Path(args.output) if args.output else default
        output.write_text(report)
        print(f'saved {output}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
