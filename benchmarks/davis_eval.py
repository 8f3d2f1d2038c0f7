"""DAVIS-2016 evaluation of any backend + the tracker: four protocols, ids, latency, keyframe trade-off.

Protocols (definitions in benchmarks/davis_protocols.py; every frame scored): union, first0,
oracle, and prompted (frame 0's ground-truth box as a user prompt; backends that take prompts).
Per sequence also the number of ids. CPU latency per stage (detector, encoder, decoder per
instance, tracker) p50/p99 at 854x480 (every frame of the scoring pass) and 640x480 (the first
frames of each sequence, resized). For detect_sam, the J of first0 and an FPS estimate for each
`keyframe_interval` in --intervals: the extra passes reuse stored model outputs (a memo keyed by
the inputs), and their FPS is computed from the counted model calls x the measured per-call p50
plus the measured time of everything else (flow, refit, tracker). And a real end-to-end pass at
640x480 with the README's CPU setting (--fps-interval): no memo, every frame timed, FPS measured.

Each sequence runs in its own process and leaves its result in --parts (resumable: a finished
sequence is not rerun with --resume), so a long CPU run can be interrupted and continued:

    python benchmarks/davis_eval.py --backend detect_sam --resume
    python benchmarks/davis_eval.py --backend motion --sequences cows dog --intervals ''
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'benchmarks'))

from davis_protocols import MemoRunner, StreamScorer  # noqa: E402
from results_io import command_line, write_results  # noqa: E402
from vis_ros.core.masks import mask_box  # noqa: E402
from vis_ros.core.metrics import jaccard  # noqa: E402
from vis_ros.core.prompts import Prompt  # noqa: E402
from vis_ros.core.sequences import DAVIS_FPS, davis_sequences  # noqa: E402
from vis_ros.core.tracker import Tracker, TrackerConfig  # noqa: E402
from vis_ros.core.types import Frame  # noqa: E402
from vis_ros.segment.base import make_backend  # noqa: E402
from vis_ros.segment.pipeline import Pipeline  # noqa: E402

STEP_NS = int(round(1e9 / DAVIS_FPS))
MODEL_STAGES = ('detector', 'encoder', 'decoder')
TIMING_FRAMES_640 = 4
SIZE_640 = (640, 480)
RECOMMENDED_INTERVAL = 10   # the CPU setting the README recommends (measured end to end below)


def parse_args(argv):
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backend', default='detect_sam')
    parser.add_argument('--backend-options', default='{}', help='backend options as a JSON object')
    parser.add_argument('--tracker-options', default='{}', help='TrackerConfig fields as a JSON object')
    parser.add_argument('--sequences', nargs='*', default=None, help='sequence names (default: all)')
    parser.add_argument('--intervals', default='5,10,30', help="extra keyframe_interval passes ('' = none)")
    parser.add_argument('--parts', type=Path, default=None, help='per-sequence results folder '
                        '(default .cache/davis_parts/<backend>)')
    parser.add_argument('--resume', action='store_true', help='keep finished sequences in --parts')
    parser.add_argument('--output', type=Path, default=None,
                        help='table (default benchmarks/results/davis_<backend>.md)')
    parser.add_argument('--max-frames', type=int, default=None, help='only the first N frames (smoke test)')
    parser.add_argument('--fps-intervals', default=f'{RECOMMENDED_INTERVAL},30',
                        help="keyframe_intervals of the measured 640x480 end-to-end passes, the README's "
                        "first ('' = none)")
    parser.add_argument('--fps-frames', type=int, default=30, help='frames per sequence in that pass')
    parser.add_argument('--one', default=None, help=argparse.SUPPRESS)   # child: one sequence
    return parser.parse_args(argv)


def memoize(backend, store: dict) -> dict:
    """Wrap detect_sam's three runners with MemoRunners sharing `store`; {stage: memo}."""
    memos = {}
    for stage in MODEL_STAGES:
        attr = f'_{stage}'
        memos[stage] = MemoRunner(getattr(backend, attr), store)
        setattr(backend, attr, memos[stage])
    return memos


def stream(sequence, pipeline, frames=None, size=None, prompt=False):
    """One pass: (StreamScorer, prompted J list, per-frame timings, wall seconds in segment)."""
    pipeline.reset()
    scorer, prompted_j, timings, segment_s = StreamScorer(), [], [], 0.0
    for index, (rgb, gt) in enumerate(sequence.iter_frames()):
        if frames is not None and index >= frames:
            break
        if size is not None:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            gt = cv2.resize(gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        if prompt and index == 0:
            pipeline.add_prompts([Prompt(0, box=mask_box(gt))])
        result = pipeline.process(Frame(rgb, index * STEP_NS, 'camera'))
        timings.append(dict(result.timings_ms))
        segment_s += result.timings_ms['segment'] / 1e3
        scorer.add(index, result.instances.masks, result.tracks.tracks, gt)
        if prompt and index > 0:
            mine = [np.asarray(t.mask) for t in result.tracks if t.track_id in result.prompted_ids]
            prompted_j.append(jaccard(np.logical_or.reduce(mine) if mine else np.zeros_like(gt), gt))
    return scorer, prompted_j, timings, segment_s


def run_one(args, sequence) -> dict:
    """All passes of one sequence (child process)."""
    options = json.loads(args.backend_options)
    tracker_options = json.loads(args.tracker_options)
    backend = make_backend(args.backend, options)
    takes_prompts = getattr(backend, 'takes_prompts', False)
    store: dict = {}
    memos = memoize(backend, store) if args.backend == 'detect_sam' else {}
    pipeline = Pipeline(backend, Tracker(TrackerConfig(**tracker_options)))
    frames = args.max_frames
    scorer, _, timings, _ = stream(sequence, pipeline, frames)
    part = {'name': sequence.name, 'frames': scorer.frames, **scorer.summary(), 'timings_854': timings,
            'model_ms': {s: m.miss_ms for s, m in memos.items()}}
    if takes_prompts:
        part['prompted'] = float(np.mean(stream(sequence, pipeline, frames, prompt=True)[1]))
    if memos:   # 640x480 timing pass on real (not stored) model runs
        raw = make_backend(args.backend, options)
        timing_pipe = Pipeline(raw, Tracker(TrackerConfig(**tracker_options)))
        count = min(frames or TIMING_FRAMES_640, TIMING_FRAMES_640)
        part['timings_640'] = stream(sequence, timing_pipe, count, SIZE_640)[2]
        raw.close()
        part['measured_640'] = {n: measured_pass(args, sequence, options, tracker_options, int(n))
                                for n in args.fps_intervals.split(',') if n}
    part['intervals'] = {}
    for interval in [int(v) for v in args.intervals.split(',') if v] if memos else []:
        keyed = make_backend(args.backend, {**options, 'keyframe_interval': interval})
        keyed_memos = memoize(keyed, store)
        kpipe = Pipeline(keyed, Tracker(TrackerConfig(**tracker_options)))
        kscorer, _, ktimings, segment_s = stream(sequence, kpipe, frames)
        other_ms = (segment_s - sum(m.seconds for m in keyed_memos.values())) * 1e3
        part['intervals'][interval] = {
            **kscorer.summary(), 'other_ms': other_ms / kscorer.frames,
            'calls': {s: m.calls / kscorer.frames for s, m in keyed_memos.items()},
            'forced': dict(keyed._keyframes.forced),
            'track_ms': float(np.mean([t['track'] for t in ktimings]))}
    backend.close()
    return part


def measured_pass(args, sequence, options, tracker_options, interval: int) -> dict:
    """Real end-to-end frames (no memo) at 640x480 with this keyframe_interval.

    The backend runs one untimed frame first (ONNX Runtime's first run allocates), then the stream
    restarts: the first --fps-frames frames, keyframes included, each timed as segment + track.
    """
    backend = make_backend(args.backend, {**options, 'keyframe_interval': interval})
    pipeline = Pipeline(backend, Tracker(TrackerConfig(**tracker_options)))
    rgb = cv2.resize(next(iter(sequence.iter_frames()))[0], SIZE_640, interpolation=cv2.INTER_AREA)
    pipeline.process(Frame(rgb, 0, 'camera'))
    count = min(args.fps_frames, args.max_frames or args.fps_frames)
    scorer, _, timings, _ = stream(sequence, pipeline, count, SIZE_640)
    backend.close()
    return {'interval': interval, 'first0': scorer.summary()['first0'], 'frames': scorer.frames,
            'ms': [t['segment'] + t['track'] for t in timings],
            'keyframes': sum(1 for t in timings if 'encoder' in t)}


def spawn_all(args, sequences, parts: Path) -> None:
    """One child process per sequence (sequential: the CPU is the limit), skipping finished ones."""
    for sequence in sequences:
        path = parts / f'{sequence.name}.json'
        if args.resume and path.is_file():
            continue
        child = [sys.executable, __file__, '--backend', args.backend, '--backend-options',
                 args.backend_options, '--tracker-options', args.tracker_options, '--intervals',
                 args.intervals, '--parts', str(parts), '--one', sequence.name,
                 '--fps-intervals', args.fps_intervals, '--fps-frames', str(args.fps_frames)]
        if args.max_frames:
            child += ['--max-frames', str(args.max_frames)]
        started = time.time()
        subprocess.run(child, check=True)
        print(f'{sequence.name}: {time.time() - started:.0f} s', file=sys.stderr)


def pct(values, q):
    """Percentile or nan for none."""
    return float(np.percentile(values, q)) if len(values) else float('nan')


def latency_rows(parts: list[dict]) -> tuple[list[str], dict]:
    """p50/p99 per stage at both sizes; per-call model p50 for the FPS estimates."""
    rows, per_call = [], {}
    for size in ('854', '640'):
        timings = [t for p in parts for t in p.get(f'timings_{size}', [])[1:]]   # first frame warms up
        if not timings:
            continue
        stages = [s for s in ('detector', 'encoder', 'decoder_per_instance', 'track', 'segment')
                  if any(s in t for t in timings)]
        for stage in stages:
            values = [t[stage] for t in timings if stage in t and (stage != 'decoder_per_instance'
                                                                   or t.get('decoder', 0) > 0)]
            rows.append(f'| {size}x480 | {stage} | {pct(values, 50):.1f} | {pct(values, 99):.1f} | '
                        f'{len(values)} |')
        total = [t['segment'] + t['track'] for t in timings]
        rows.append(f'| {size}x480 | **segment+track** | {pct(total, 50):.1f} | {pct(total, 99):.1f} | '
                    f'{len(total)} ({1e3 / np.mean(total):.2f} FPS) |')
    for stage in MODEL_STAGES:
        values = [v for p in parts for v in p.get('model_ms', {}).get(stage, [])[1:]]
        if values:
            per_call[stage] = pct(values, 50)
    return rows, per_call


def tables(args, parts: list[dict]) -> tuple[str, dict]:
    """Markdown body and data."""
    has_prompt = all('prompted' in p for p in parts)
    lines = ['Every frame of every sequence is scored (prompted: frames 1..N-1). Tracks of all states '
             '(TENTATIVE too, as with publish_tentative: true) count. `ids` = distinct track ids in the '
             'sequence; `gt ids` = ids that ever overlapped the object (J >= 0.1).', '',
             '| sequence | frames | union J | first0 J | oracle J | prompted J | ids | gt ids |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']
    for p in parts:
        prompted = f"{p['prompted']:.3f}" if 'prompted' in p else 'n/a'
        lines.append(f"| {p['name']} | {p['frames']} | {p['union']:.3f} | {p['first0']:.3f} | "
                     f"{p['oracle']:.3f} | {prompted} | {p['ids']} | {p['gt_ids']} |")
    means = {k: float(np.mean([p[k] for p in parts])) for k in ('union', 'first0', 'oracle')}
    if has_prompt:
        means['prompted'] = float(np.mean([p['prompted'] for p in parts]))
    prompted = f"{means['prompted']:.3f}" if has_prompt else 'n/a'
    lines.append(f"| **mean** | {sum(p['frames'] for p in parts)} | {means['union']:.3f} | "
                 f"{means['first0']:.3f} | {means['oracle']:.3f} | {prompted} | | |")
    rows, per_call = latency_rows(parts)
    data = {'means': means, 'per_call_ms': per_call, 'sequences': [
        {k: v for k, v in p.items() if not k.startswith('timings') and k not in ('model_ms', 'measured_640')}
        for p in parts]}
    lines += ['', f'## CPU latency per stage (ms; {os.cpu_count()} CPUs shared with other jobs)', '',
              '| size | stage | p50 | p99 | frames |', '|---|---|---:|---:|---:|', *rows]
    trade = keyframe_table(parts, per_call, means['first0'])
    if trade:
        lines += ['', '## Keyframe trade-off at 854x480 (first0 J; FPS estimated)', '',
                  'est. ms/frame = the pass\'s measured time outside the models (flow, refit, decode '
                  'post-processing, tracker) + its model calls per frame x the per-call p50 of the '
                  'scoring pass. Forced = keyframes before the interval was due, per frame, by reason.',
                  '', *trade]
    measured = measured_table(parts, [n for n in args.fps_intervals.split(',') if n])
    if measured:
        lines += ['', '## Measured end to end at 640x480 (real model runs, no estimate)', '', *measured]
    data['measured_640'] = {n: measured_summary(parts, n) for n in args.fps_intervals.split(',') if n}
    lines += ['', '## Targets (keyframe_interval 1, one parameter set)', '',
              f"- first0 mean J >= 0.80: {means['first0']:.3f}, "
              f"{'met' if means['first0'] >= 0.8 else 'NOT met'}"]
    if has_prompt:
        lines.append(f"- prompted mean J >= 0.82: {means['prompted']:.3f}, "
                     f"{'met' if means['prompted'] >= 0.82 else 'NOT met'}")
    return '\n'.join(lines), data


def keyframe_table(parts, per_call, first0_n1) -> list[str]:
    """FPS-vs-J rows per keyframe_interval (1 from the scoring pass, others from the memo passes)."""
    intervals = sorted({int(k) for p in parts for k in p.get('intervals', {})})
    if not intervals or not per_call:
        return []
    timings = [t for p in parts for t in p['timings_854'][1:]]
    base = float(np.mean([t['segment'] + t['track'] for t in timings]))
    lines = ['| keyframe_interval | first0 J | est. ms/frame | est. FPS | encoder runs/frame '
             '| forced/frame |',
             '|---:|---:|---:|---:|---:|---|',
             f'| 1 | {first0_n1:.3f} | {base:.0f} | {1e3 / base:.2f} | 1.00 | |']
    for n in intervals:
        rows = [p['intervals'][str(n)] if str(n) in p['intervals'] else p['intervals'][n] for p in parts]
        frames = [p['frames'] for p in parts]
        j = float(np.mean([r['first0'] for r in rows]))
        ms = np.average([r['other_ms'] + r['track_ms'] + sum(r['calls'][s] * per_call[s] for s in per_call)
                         for r in rows], weights=frames)
        enc = np.average([r['calls']['encoder'] for r in rows], weights=frames)
        reasons = sorted({k for r in rows for k in r.get('forced', {})})
        forced = ', '.join(f"{k} {sum(r.get('forced', {}).get(k, 0) for r in rows) / sum(frames):.2f}"
                           for k in reasons)
        lines.append(f'| {n} | {j:.3f} | {ms:.0f} | {1e3 / ms:.2f} | {enc:.2f} | {forced} |')
    return lines


def measured_summary(parts, interval: str) -> dict:
    """Totals of the measured 640x480 pass with this keyframe_interval (empty when it did not run)."""
    runs = [p['measured_640'][interval] for p in parts if interval in p.get('measured_640', {})]
    if not runs:
        return {}
    ms = [v for r in runs for v in r['ms']]
    return {'interval': int(interval), 'frames': len(ms), 'mean_ms': float(np.mean(ms)),
            'p50_ms': pct(ms, 50), 'p99_ms': pct(ms, 99), 'fps': 1e3 / float(np.mean(ms)),
            'first0': float(np.mean([r['first0'] for r in runs])),
            'keyframes_per_frame': sum(r['keyframes'] for r in runs) / len(ms)}


def measured_table(parts, intervals: list[str]) -> list[str]:
    """The measured passes: per sequence for the README's interval (the first), then all of them."""
    totals = [t for t in (measured_summary(parts, n) for n in intervals) if t]
    if not totals:
        return []
    first = intervals[0]
    lines = ['The first frames of each sequence resized to 640x480, scored against the resized ground '
             'truth; ms = segment + track wall time of every frame, keyframes included (one untimed '
             f"warm-up frame first). Per sequence at keyframe_interval {first} (the README's CPU setting):",
             '', '| sequence | frames | first0 J | keyframes/frame | mean ms | p99 ms | FPS |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for p in parts:
        r = p.get('measured_640', {}).get(first)
        if r:
            lines.append(f"| {p['name']} | {len(r['ms'])} | {r['first0']:.3f} | "
                         f"{r['keyframes'] / len(r['ms']):.2f} | "
                         f"{np.mean(r['ms']):.0f} | {pct(r['ms'], 99):.0f} | {1e3 / np.mean(r['ms']):.2f} |")
    lines += ['', '| keyframe_interval | frames | first0 J | keyframes/frame | mean ms | p50 ms | p99 ms '
              '| FPS |', '|---:|---:|---:|---:|---:|---:|---:|---:|']
    for t in totals:
        lines.append(f"| {t['interval']} | {t['frames']} | {t['first0']:.3f} | "
                     f"{t['keyframes_per_frame']:.2f} | "
                     f"{t['mean_ms']:.0f} | {t['p50_ms']:.0f} | {t['p99_ms']:.0f} | **{t['fps']:.2f}** |")
    t = totals[0]
    lines += ['', f"- CPU >= 5 FPS at 640x480 (keyframe_interval {t['interval']}, the README's): "
              f"{t['fps']:.2f} FPS, {'met' if t['fps'] >= 5 else 'NOT met'} "
              f"(first0 J {t['first0']:.3f} on these frames)"]
    return lines


def main(argv=None) -> int:
    """Run (or resume) every sequence, then write the tables."""
    args = parse_args(argv)
    sequences = davis_sequences()
    if not sequences:
        print('DAVIS data absent: ../shared/data/davis2016 not found (set VIS_ROS_SHARED_DATA)',
              file=sys.stderr)
        return 1
    if args.sequences:
        sequences = [s for s in sequences if s.name in args.sequences]
    parts_dir = args.parts or ROOT / '.cache' / 'davis_parts' / args.backend
    parts_dir.mkdir(parents=True, exist_ok=True)
    if args.one:
        sequence = next(s for s in sequences if s.name == args.one)
        part = run_one(args, sequence)
        tmp = parts_dir / f'{sequence.name}.json.part'
        tmp.write_text(json.dumps(part))
        os.replace(tmp, parts_dir / f'{sequence.name}.json')
        return 0
    spawn_all(args, sequences, parts_dir)
    parts = [json.loads((parts_dir / f'{s.name}.json').read_text()) for s in sequences]
    body, data = tables(args, parts)
    body = (f'Backend `{args.backend}` options `{args.backend_options}`, tracker options '
            f'`{args.tracker_options}`; sequences: {", ".join(s.name for s in sequences)}.\n\n' + body)
    output = args.output or ROOT / 'benchmarks' / 'results' / f'davis_{args.backend}.md'
    write_results(output, f'DAVIS-2016: backend {args.backend} + tracker', body, data, command_line())
    print(body)
    return 0


if __name__ == '__main__':
    sys.exit(main())
