"""Our tracker vs the trackers a user would pick, fed identical noisy instance streams.

Every tracker sees the same detections: synthetic scenes (vis_ros.core.synthetic, fixed seeds) run
through the detector-noise model. Ours gets the masks and the frame (masks + appearance + camera
motion); the peers get the boxes, scores and classes (and the frame for BoT-SORT's camera-motion
compensation). Peers output the input detections they track, so each peer output is mapped back
to its detection's mask (exact box match) and every tracker is scored on masks with the same
`mot_metrics` (HOTA, IDF1, ID switches via trackeval).

What is scored: for ours, the CONFIRMED tracks of each step (matched to a detection this frame),
with the mask we publish; LOST tracks (predictions) and TENTATIVE ones (not yet published) are not.
For the peers, the detections they return with a track id (>= 0). Peers keep lost tracks as long
as ours (lost_timeout_s of TrackerConfig(), in frames at the scene fps); other knobs are theirs.

Peers run in their own venvs (scripts/peers_venv.sh: roboflow `trackers` with numpy 2 in
.cache/peers-venv; norfair, which pins numpy<2, in .cache/norfair-venv) as subprocesses of this
script, exchanging detections and outputs as .npz. Times are per step() / update() call measured
inside each process, all pinned to one CPU core with 1 thread (BLAS/OpenCV).

    bash scripts/peers_venv.sh              # once
    . install/env.sh && python benchmarks/tracker_peers.py --out benchmarks/results/tracker_peers.md
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS'):
    os.environ[_var] = '1'    # one core, one thread, for every process (set before numpy loads)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / '.cache' / 'peers-venv' / 'bin' / 'python'
NORFAIR_PYTHON = ROOT / '.cache' / 'norfair-venv' / 'bin' / 'python'
TRACKERS_PEERS = ('SORT', 'ByteTrack', 'OC-SORT', 'BoT-SORT+CMC', 'McByte')
DEFAULT_PRESETS = ('crossing', 'occlusion', 'reentry', 'crowd', 'pan')


def pin_one_core(cpu: int) -> None:
    """Run this process (and its children) on one core with OpenCV single-threaded."""
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {cpu})
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes (numpy only: the worker venvs do not have vis_ros)."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def detection_index(out_boxes: np.ndarray, in_boxes: np.ndarray) -> np.ndarray:
    """Index of the input detection each output box is (IoU >= 0.9), -1 if none."""
    if len(out_boxes) == 0 or len(in_boxes) == 0:
        return np.full(len(out_boxes), -1)
    iou = box_iou(np.asarray(out_boxes, np.float64), np.asarray(in_boxes, np.float64))
    best = iou.argmax(1)
    return np.where(iou[np.arange(len(best)), best] >= 0.9, best, -1)


# --- worker side: runs in a peer venv (numpy + the peer package only) ----------------------------

def make_trackers_peer(name: str, fps: float, lost_frames: int):
    """Make a roboflow `trackers` tracker from its table name."""
    import trackers
    common = dict(lost_track_buffer=lost_frames, frame_rate=fps)
    if name == 'SORT':
        return trackers.SORTTracker(**common)
    if name == 'ByteTrack':
        return trackers.ByteTrackTracker(**common)
    if name == 'OC-SORT':
        return trackers.OCSORTTracker(**common)
    if name == 'BoT-SORT+CMC':
        return trackers.BoTSORTTracker(enable_cmc=True, **common)
    if name == 'McByte':
        return trackers.McByteTracker(enable_cmc=True, **common)
    raise ValueError(f'unknown trackers peer {name!r}')


def run_trackers_peer(name: str, data: dict, frames) -> dict:
    """Feed one `trackers` tracker the stream; (frame, detection, id) of its outputs and step ms."""
    import supervision as sv
    tracker = make_trackers_peer(name, float(data['fps']), int(data['lost_frames']))
    needs_frame = name in ('BoT-SORT+CMC', 'McByte')
    out, step_ms = [], []
    offsets = data['offsets']
    for t in range(len(offsets) - 1):
        a, b = offsets[t], offsets[t + 1]
        dets = sv.Detections(xyxy=data['boxes'][a:b].astype(np.float32),
                             confidence=data['scores'][a:b], class_id=data['classes'][a:b].astype(int))
        frame = np.ascontiguousarray(frames[t]) if needs_frame else None
        start = time.perf_counter()
        result = tracker.update(dets, frame=frame, timestamp=float(data['stamps_s'][t]))
        step_ms.append((time.perf_counter() - start) * 1e3)
        keep = result.tracker_id >= 0
        index = detection_index(result.xyxy[keep], data['boxes'][a:b])
        out += [(t, int(i), int(k)) for i, k in zip(index, result.tracker_id[keep])]
    return {'out': np.array(out, np.int64).reshape(-1, 3), 'ms': np.array(step_ms)}


def run_norfair(data: dict, min_score: float = 0.3) -> dict:
    """Feed norfair (IoU distance on boxes) the stream; outputs as in run_trackers_peer."""
    from norfair import Detection, Tracker
    tracker = Tracker(distance_function='iou', distance_threshold=0.7,
                      hit_counter_max=int(data['lost_frames']), initialization_delay=2)
    out, step_ms = [], []
    offsets = data['offsets']
    for t in range(len(offsets) - 1):
        a, b = offsets[t], offsets[t + 1]
        dets = [Detection(points=data['boxes'][k].reshape(2, 2).astype(np.float64),
                          scores=np.full(2, data['scores'][k]), label=int(data['classes'][k]), data=k - a)
                for k in range(a, b) if data['scores'][k] >= min_score]
        start = time.perf_counter()
        objects = tracker.update(detections=dets)
        step_ms.append((time.perf_counter() - start) * 1e3)
        current = {id(d) for d in dets}
        out += [(t, int(o.last_detection.data), int(o.id)) for o in objects
                if o.id is not None and id(o.last_detection) in current]
    return {'out': np.array(out, np.int64).reshape(-1, 3), 'ms': np.array(step_ms)}


def worker_main(args) -> int:
    """Run the named peers on --input, write their outputs to --output (npz)."""
    pin_one_core(args.cpu)
    warnings.simplefilter('ignore')
    data = dict(np.load(args.input))
    frames = np.load(args.frames, mmap_mode='r') if args.frames else None
    results = {}
    for name in args.worker.split(','):
        result = run_norfair(data) if name == 'norfair' else run_trackers_peer(name, data, frames)
        results.update({f'{name}__out': result['out'], f'{name}__ms': result['ms']})
    np.savez(args.output, **results)
    return 0


# --- main side: product venv ---------------------------------------------------------------------

def crop_of(mask: np.ndarray):
    """(Roi, crop) of a full-frame mask (compact storage for scoring)."""
    import cv2
    from vis_ros.core.masks import Roi
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return Roi(x, y, w, h), mask[y:y + h, x:x + w].copy()


def run_ours(scene, stream, config, with_frame: bool = True) -> dict:
    """Step our tracker over the stream; CONFIRMED tracks' ids and mask crops per frame, step ms."""
    from vis_ros.core.tracker import Tracker
    from vis_ros.core.types import TrackState
    tracker = Tracker(config)
    ids, crops, step_ms, tracks_n = [], [], [], []
    for t, instances in enumerate(stream):
        frame = scene.frames[t] if with_frame else None
        start = time.perf_counter()
        tracks = tracker.step(instances, scene.stamps_ns[t], frame=frame)
        step_ms.append((time.perf_counter() - start) * 1e3)
        confirmed = [tr for tr in tracks.tracks if tr.state == TrackState.CONFIRMED]
        ids.append(np.array([tr.track_id for tr in confirmed], np.int64))
        crops.append(tuple(crop_of(tr.mask) for tr in confirmed))
        tracks_n.append(len(tracks.tracks))
    return {'ids': ids, 'crops': crops, 'ms': np.array(step_ms), 'tracks': np.array(tracks_n)}


def record_stream(scene, seed: int, noise=None) -> tuple[list, dict]:
    """Make the noisy stream (Instances, lazily) and the payload it fills for the peers as it goes."""
    from vis_ros.core.synthetic import iter_noisy_instances
    payload = {'boxes': [], 'scores': [], 'classes': [], 'crops': []}

    def stream():
        for instances in iter_noisy_instances(scene, seed=seed, noise=noise):
            payload['boxes'].append(instances.boxes)
            payload['scores'].append(instances.scores)
            payload['classes'].append(instances.class_ids)
            payload['crops'].append([crop_of(m) for m in instances.masks])
            yield instances
    return stream(), payload


def run_peer_process(python: Path, names: list, data: dict, frames, cpu: int) -> dict:
    """Run peers in a subprocess of another venv; {name: {'out', 'ms'}}."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp, frames_path = Path(tmp) / 'in.npz', Path(tmp) / 'out.npz', Path(tmp) / 'frames.npy'
        np.savez(inp, **data)
        cmd = [str(python), str(Path(__file__).resolve()), '--worker', ','.join(names),
               '--input', str(inp), '--output', str(outp), '--cpu', str(cpu)]
        if frames is not None:
            np.save(frames_path, np.stack(frames))
            cmd += ['--frames', str(frames_path)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f'peer worker {names} failed ({done.returncode}):\n{done.stderr[-3000:]}')
        result = dict(np.load(outp))
    return {n: {'out': result[f'{n}__out'], 'ms': result[f'{n}__ms']} for n in names}


def peer_predictions(out: np.ndarray, det_crops: list) -> tuple[list, list]:
    """Per-frame ids and mask crops of a peer's outputs (rows: frame, detection index, id)."""
    ids, crops = [[] for _ in det_crops], [[] for _ in det_crops]
    for t, det, track_id in out:
        if det >= 0:
            ids[t].append(track_id)
            crops[t].append(det_crops[t][det])
    return [np.array(i, np.int64) for i in ids], [tuple(c) for c in crops]


def score(scene, ids: list, crops: list) -> dict:
    """mot_metrics of per-frame predicted ids and mask crops against the scene's GT."""
    from vis_ros.core.metrics import mot_metrics
    from vis_ros.core.synthetic import GtMasks
    return mot_metrics(scene.gt_ids, scene.gt_masks, ids, GtMasks(tuple(crops), scene.height, scene.width))


def available_peers(selected: list) -> list[tuple[Path, list]]:
    """(python, peer names) groups whose venv exists; warns about the missing ones."""
    groups = []
    wanted = [p for p in TRACKERS_PEERS if p in selected]
    norfair = ['norfair'] if 'norfair' in selected else []
    for python, names in ((PEERS_PYTHON, wanted), (NORFAIR_PYTHON, norfair)):
        if names and python.exists():
            groups.append((python, names))
        elif names:
            print(f'[tracker_peers] {python} missing: run bash scripts/peers_venv.sh; skipping {names}',
                  file=sys.stderr)
    return groups


def run_all(scene, seed: int, config, peers: list, cpu: int, with_ours: bool = True,
            noise=None) -> dict:
    """Every tracker on one scene's noisy stream: {name: {'metrics', 'ms', ...}}."""
    stream, payload = record_stream(scene, seed, noise)
    results = {}
    if with_ours:
        ours = run_ours(scene, stream, config)
        results['vis_ros (ours)'] = {'metrics': score(scene, ours['ids'], ours['crops']),
                                     'ms': ours['ms'], 'tracks': ours['tracks']}
    else:
        for _ in stream:
            pass
    counts = [len(b) for b in payload['boxes']]
    data = {'boxes': np.concatenate(payload['boxes']).astype(np.float32),
            'scores': np.concatenate(payload['scores']).astype(np.float32),
            'classes': np.concatenate(payload['classes']).astype(np.int32),
            'offsets': np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            'stamps_s': (np.array(scene.stamps_ns) - scene.stamps_ns[0]) / 1e9,
            'fps': np.float64(scene.fps), 'lost_frames': np.int64(round(config.lost_timeout_s * scene.fps))}
    for python, names in peers:
        needs_frames = any(n in ('BoT-SORT+CMC', 'McByte') for n in names)
        outputs = run_peer_process(python, names, data, scene.frames if needs_frames else None, cpu)
        for name, out in outputs.items():
            ids, crops = peer_predictions(out['out'], payload['crops'])
            unmapped = int((out['out'][:, 1] < 0).sum())
            if unmapped:
                print(f'[tracker_peers] {name}: {unmapped} outputs match no input box (not scored)',
                      file=sys.stderr)
            results[name] = {'metrics': score(scene, ids, crops), 'ms': out['ms']}
    results['_instances_per_frame'] = float(np.mean(counts))
    return results


def summarize(per_seed: list[dict]) -> dict:
    """Per tracker over seeds: mean HOTA/DetA/AssA/IDF1/MOTA, summed IDSW, step ms median/p99."""
    names = [n for n in per_seed[0] if not n.startswith('_')]
    table = {}
    for name in names:
        runs = [r[name] for r in per_seed if name in r]
        ms = np.concatenate([r['ms'] for r in runs])
        row = {k: float(np.mean([r['metrics'][k] for r in runs]))
               for k in ('HOTA', 'DetA', 'AssA', 'IDF1', 'MOTA')}
        row.update(IDSW=int(sum(r['metrics']['IDSW'] for r in runs)), ms_median=float(np.median(ms)),
                   ms_p99=float(np.percentile(ms, 99)))
        table[name] = row
    return table


def markdown_table(table: dict) -> list[str]:
    """Rows of one preset's table, best IDF1 first."""
    lines = ['| tracker | HOTA | DetA | AssA | IDF1 | MOTA | ID switches | step ms median | step ms p99 |',
             '|---|---|---|---|---|---|---|---|---|']
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]['IDF1']):
        lines.append(f"| {name} | {100 * row['HOTA']:.1f} | {100 * row['DetA']:.1f} | "
                     f"{100 * row['AssA']:.1f} | {100 * row['IDF1']:.1f} | {100 * row['MOTA']:.1f} | "
                     f"{row['IDSW']} | "
                     f"{row['ms_median']:.2f} | {row['ms_p99']:.2f} |")
    return lines


def step_time_case(config, cpu: int, frames: int = 60, warmup: int = 10) -> tuple[list[str], dict]:
    """50 objects x 50 instances at 640x480: ours (masks + appearance + CMC) vs ByteTrack, BoT-SORT+CMC."""
    from dataclasses import replace
    from vis_ros.core.synthetic import CLEAN
    from vis_ros.core.synthetic_presets import plan_crowd
    from vis_ros.core.synthetic_scene import render_plan
    plan = replace(plan_crowd(np.random.default_rng(50), 480, 640, count=50, size_range=(22, 40)),
                   num_frames=frames)
    scene = render_plan(plan, 'step50', 50)
    peers = [(PEERS_PYTHON, ['ByteTrack', 'BoT-SORT+CMC'])] if PEERS_PYTHON.exists() else []
    results = run_all(scene, 0, config, peers, cpu, noise=CLEAN)
    stream, _ = record_stream(scene, 0, CLEAN)
    masks_only = run_ours(scene, stream, config, with_frame=False)
    results['vis_ros (ours), masks only, no frame'] = {'ms': masks_only['ms'], 'tracks': masks_only['tracks']}
    base = np.median(results['ByteTrack']['ms'][warmup:]) if 'ByteTrack' in results else float('nan')
    lines = [f"{np.mean([len(i) for i in scene.gt_ids]):.1f} visible objects and "
             f"{results['_instances_per_frame']:.1f} instances per frame on average; "
             f"ours holds {np.mean(results['vis_ros (ours)']['tracks'][warmup:]):.1f} tracks after warm-up; "
             f"{frames} frames, first {warmup} not timed.", '',
             '| tracker | input | step ms median | step ms p99 | x ByteTrack |', '|---|---|---|---|---|']
    inputs = {'vis_ros (ours)': 'masks + frame (appearance, CMC)', 'ByteTrack': 'boxes',
              'BoT-SORT+CMC': 'boxes + frame (CMC)', 'vis_ros (ours), masks only, no frame': 'masks'}
    summary = {}
    for name in inputs:
        if name not in results:
            continue
        ms = results[name]['ms'][warmup:]
        summary[name] = {'ms_median': float(np.median(ms)), 'ms_p99': float(np.percentile(ms, 99))}
        lines.append(f"| {name} | {inputs[name]} | {np.median(ms):.2f} | {np.percentile(ms, 99):.2f} | "
                     f"{np.median(ms) / base:.2f} |")
    return lines, summary


def parse_args(argv=None):
    """Command line of the benchmark (and of its peer workers)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--presets', nargs='+', default=list(DEFAULT_PRESETS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2], help='scene and noise seeds')
    parser.add_argument('--peers', nargs='+', default=[*TRACKERS_PEERS, 'norfair'])
    parser.add_argument('--no-ours', action='store_true', help='peers only (e.g. before our tracker exists)')
    parser.add_argument('--no-step-time', action='store_true', help='skip the 50 x 50 step-time case')
    parser.add_argument('--cpu', type=int, default=0, help='the one core every process is pinned to')
    parser.add_argument('--out', type=Path, help='write the markdown report here (and .json beside it)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--input', help=argparse.SUPPRESS)
    parser.add_argument('--output', help=argparse.SUPPRESS)
    parser.add_argument('--frames', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run every preset x seed for every tracker; print (and save) the tables."""
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    pin_one_core(args.cpu)
    from vis_ros.core.synthetic import make_scene, noise_description
    from vis_ros.core.tracker import TrackerConfig
    config, peers = TrackerConfig(), available_peers(args.peers)
    lines = ['# Tracker vs peers on synthetic scenes', '',
             'Command: `' + ' '.join(['python benchmarks/tracker_peers.py', *(argv or sys.argv[1:])]) + '`',
             '', f'Seeds {args.seeds} per preset; detector noise: {noise_description()}.',
             'Scores in %, means over seeds; ID switches summed over seeds; step times over all steps.',
             'One core, one thread per process; machine shared with other work, so compare ratios.', '']
    report = {'presets': {}, 'command': lines[2]}
    for preset in args.presets:
        per_seed = []
        for seed in args.seeds:
            scene = make_scene(preset, seed=seed)
            per_seed.append(run_all(scene, seed, config, peers, args.cpu, with_ours=not args.no_ours))
            print(f'[tracker_peers] {preset} seed {seed} done', file=sys.stderr)
        table = summarize(per_seed)
        report['presets'][preset] = table
        lines += [f'## {preset} ({len(scene)} frames x {len(args.seeds)} seeds)', '',
                  *markdown_table(table), '']
    if not args.no_step_time and not args.no_ours:
        step_lines, report['step_time'] = step_time_case(config, args.cpu)
        lines += ['## Step time, 50 tracks x 50 instances, 640x480, one core', '', *step_lines, '']
    text = '\n'.join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + '\n')
        args.out.with_suffix('.json').write_text(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
