"""Our tracker vs the trackers a user would pick, fed identical noisy instance streams.

Every tracker sees the same detections: synthetic scenes (vis_ros.core.synthetic, fixed seeds) run
through the detector-noise model. Cues are listed per row and kept equal where a peer can take
them: ours runs with masks only, with masks + the colour-histogram embedding given as
`Instances.embeddings` (no frame, so no camera-motion compensation), and with masks + frame
(histogram and camera motion computed inside). norfair, the one peer whose pinned version accepts
an appearance feature (`Detection.embedding` + `reid_distance_function`), runs without and with
that same histogram. The pinned roboflow `trackers` (2.6.1) take no appearance input in any
tracker, so SORT, ByteTrack and OC-SORT get boxes and BoT-SORT / McByte boxes + frame (their CMC).
Peers output the input detections they track, so each output is mapped back to its detection's
mask (exact box match) and every tracker is scored on masks with the same `mot_metrics`
(HOTA, IDF1, ID switches via trackeval).

What is scored: for ours, the CONFIRMED tracks of each step matched to a detection this frame,
with that detection's mask; for the peers, the detections they return with a track id (>= 0).
Peers keep lost tracks as long as ours (lost_timeout_s of TrackerConfig(), in frames at the
scene fps); other knobs are theirs. `--unseen` runs presets and a detector-noise model the
tracker defaults were never tuned on (tracker_peers_unseen.py). `--mot17 DIR` runs the MOT17
ground-truth benchmark instead (tracker_mot17.py). Every run ends with the step-time case
(tracker_peers_step.py) unless --no-step-time.

    bash scripts/peers_venv.sh              # once
    . install/env.sh && python benchmarks/tracker_peers.py --out benchmarks/results/tracker_peers.md
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS'):
    os.environ[_var] = '1'    # one core, one thread, for every process (set before numpy loads)

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracker_peers_worker import TRACKERS_PEERS, pin_one_core  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / 'tracker_peers_worker.py'
PEERS_PYTHON = ROOT / '.cache' / 'peers-venv' / 'bin' / 'python'
NORFAIR_PYTHON = ROOT / '.cache' / 'norfair-venv' / 'bin' / 'python'
DEFAULT_PRESETS = ('crossing', 'occlusion', 'reentry', 'crowd', 'pan')
STEP_TIME_NOTE = ('Step times are CPU time of the stepping thread (time.thread_time) per step() / update() '
                  'call, every process pinned to one core with one thread; the machine is shared, so compare '
                  'ratios measured in the same run.')
OURS, OURS_EMB, OURS_FRAME = ('vis_ros (ours), masks', 'vis_ros (ours), masks + embedding',
                              'vis_ros (ours), masks + frame')
NORFAIR_EMB = 'norfair + embedding'
CUES = {OURS: 'masks', OURS_EMB: 'masks + histogram embedding', OURS_FRAME: 'masks + frame (histogram, CMC)',
        'SORT': 'boxes', 'ByteTrack': 'boxes', 'OC-SORT': 'boxes', 'BoT-SORT+CMC': 'boxes + frame (CMC)',
        'McByte+CMC': 'boxes + frame (CMC)', 'norfair': 'boxes', NORFAIR_EMB: 'boxes + histogram embedding'}


def crop_of(mask: np.ndarray):
    """(Roi, crop) of a full-frame mask (compact storage for scoring)."""
    import cv2
    from vis_ros.core.masks import Roi
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return Roi(x, y, w, h), mask[y:y + h, x:x + w].copy()


def histogram_embeddings(instances, frame: np.ndarray, stride: int) -> np.ndarray:
    """Our tracker's own appearance descriptor of each instance (unit sqrt colour histogram)."""
    from vis_ros.core.tracker import appearance
    from vis_ros.core.tracker.region import grid_mask
    bins = appearance.bin_image(frame, stride)
    grids = [grid_mask(m, b, stride) for m, b in zip(instances.masks, instances.boxes)]
    return appearance.histograms(bins, grids).astype(np.float32)


def run_ours(scene, stream: list, config, cue: str) -> dict:
    """Step our tracker over the stream with the given cue; CONFIRMED ids and mask crops per frame."""
    from dataclasses import replace
    from vis_ros.core.tracker import Tracker
    from vis_ros.core.types import TrackState
    tracker = Tracker(config)
    ids, crops, step_ms, tracks_n = [], [], [], []
    for t, (instances, embeddings) in enumerate(stream):
        frame = scene.frames[t] if cue == OURS_FRAME else None
        if cue == OURS_EMB:
            instances = replace(instances, embeddings=embeddings)
        start = time.thread_time()
        tracks = tracker.step(instances, scene.stamps_ns[t], frame=frame)
        step_ms.append((time.thread_time() - start) * 1e3)
        confirmed = [tr for tr in tracks.tracks if tr.state == TrackState.CONFIRMED
                     and tr.detection_index >= 0]
        ids.append(np.array([tr.track_id for tr in confirmed], np.int64))
        crops.append(tuple(crop_of(instances.masks[tr.detection_index]) for tr in confirmed))
        tracks_n.append(len(tracks.tracks))
    return {'ids': ids, 'crops': crops, 'ms': np.array(step_ms), 'tracks': np.array(tracks_n)}


def make_stream(scene, seed: int, noise, stride: int) -> tuple[list, dict]:
    """The noisy stream [(Instances, histogram embeddings)] and the payload the peers get."""
    from vis_ros.core.synthetic import iter_noisy_instances
    stream = [(inst, histogram_embeddings(inst, scene.frames[t], stride))
              for t, inst in enumerate(iter_noisy_instances(scene, seed=seed, noise=noise))]
    counts = [len(inst) for inst, _ in stream]
    payload = {'boxes': np.concatenate([i.boxes for i, _ in stream]).astype(np.float32),
               'scores': np.concatenate([i.scores for i, _ in stream]).astype(np.float32),
               'classes': np.concatenate([i.class_ids for i, _ in stream]).astype(np.int32),
               'embeddings': np.concatenate([e for _, e in stream]).astype(np.float32),
               'offsets': np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
               'stamps_s': (np.array(scene.stamps_ns) - scene.stamps_ns[0]) / 1e9,
               'fps': np.float64(scene.fps), 'cmc': np.bool_(True)}
    return stream, payload


def run_peer_process(python: Path, names: list, data: dict, frames, cpu: int) -> dict:
    """Run peers in a subprocess of another venv; {name: {'out', 'ms'}}."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp, frames_path = Path(tmp) / 'in.npz', Path(tmp) / 'out.npz', Path(tmp) / 'frames.npy'
        np.savez(inp, **data)
        cmd = [str(python), str(WORKER), '--names', ','.join(names), '--input', str(inp),
               '--output', str(outp), '--cpu', str(cpu)]
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


def display_name(name: str, with_frames: bool) -> str:
    """Table name of a peer: the CMC ones say so when they got frames."""
    return f'{name}+CMC' if with_frames and name in ('BoT-SORT', 'McByte') else name


def run_peers(scene, stream, payload: dict, peers: list, cpu: int, embeddings: bool) -> dict:
    """Every peer on the recorded stream (norfair also with the embedding); {name: result}."""
    det_crops = [[crop_of(m) for m in inst.masks] for inst, _ in stream]
    results = {}
    for python, names in peers:
        with_frames = any(n in ('BoT-SORT', 'McByte') for n in names)
        data = {k: v for k, v in payload.items() if k != 'embeddings'}
        outputs = {display_name(n, with_frames): o for n, o in
                   run_peer_process(python, names, data, scene.frames if with_frames else None, cpu).items()}
        if embeddings and 'norfair' in names:
            outputs[NORFAIR_EMB] = run_peer_process(python, ['norfair'], payload, None, cpu)['norfair']
        for name, out in outputs.items():
            ids, crops = peer_predictions(out['out'], det_crops)
            results[name] = {'metrics': score(scene, ids, crops), 'ms': out['ms']}
    return results


def run_all(scene, seed: int, config, peers: list, cpu: int, noise=None, with_ours: bool = True) -> dict:
    """Every tracker (ours with each cue) on one scene's noisy stream: {name: {'metrics', 'ms'}}."""
    stream, payload = make_stream(scene, seed, noise, config.mask_stride)
    payload['lost_frames'] = np.int64(round(config.lost_timeout_s * scene.fps))
    payload['reid_similarity'] = np.float64(config.reentry_appearance)
    results = {}
    for cue in ((OURS, OURS_EMB, OURS_FRAME) if with_ours else ()):
        ours = run_ours(scene, stream, config, cue)
        results[cue] = {'metrics': score(scene, ours['ids'], ours['crops']), 'ms': ours['ms']}
    results.update(run_peers(scene, stream, payload, peers, cpu, embeddings=True))
    return results


def summarize(per_seed: list[dict]) -> dict:
    """Per tracker over seeds: mean HOTA/DetA/AssA/IDF1/MOTA, summed IDSW, step ms median/p99."""
    table = {}
    for name in per_seed[0]:
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
    lines = ['| tracker | cues | HOTA | DetA | AssA | IDF1 | MOTA | ID switches | step ms median '
             '| step ms p99 |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]['IDF1']):
        lines.append(f"| {name} | {CUES.get(name, '')} | {100 * row['HOTA']:.1f} | {100 * row['DetA']:.1f} | "
                     f"{100 * row['AssA']:.1f} | {100 * row['IDF1']:.1f} | {100 * row['MOTA']:.1f} | "
                     f"{row['IDSW']} | {row['ms_median']:.2f} | {row['ms_p99']:.2f} |")
    return lines


def parse_args(argv=None):
    """Command line of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--presets', nargs='+', help=f'default {list(DEFAULT_PRESETS)} (--unseen: its own)')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2], help='scene and noise seeds')
    parser.add_argument('--unseen', action='store_true',
                        help='presets and a noise model the defaults were never tuned on')
    parser.add_argument('--mot17', type=Path, help='run the MOT17 ground-truth benchmark on this folder')
    parser.add_argument('--detectors', nargs='+', default=['frcnn-like', 'hard'],
                        help='--mot17: detector-model settings (vis_ros.core.detector_model)')
    parser.add_argument('--peers', nargs='+', default=[*TRACKERS_PEERS, 'norfair'])
    parser.add_argument('--no-step-time', action='store_true', help='skip the 50 x 50 step-time case')
    parser.add_argument('--cpu', type=int, default=0, help='the one core every process is pinned to')
    parser.add_argument('--out', type=Path, help='write the markdown report here (and .json beside it)')
    return parser.parse_args(argv)


def synthetic_report(args, config, peers) -> tuple[str, str, dict]:
    """(title, markdown body, data) of the synthetic (or unseen) presets."""
    from vis_ros.core.synthetic import make_scene, noise_description
    import tracker_peers_unseen as unseen
    presets = args.presets or (list(unseen.PRESETS) if args.unseen else list(DEFAULT_PRESETS))
    noise = unseen.NOISE if args.unseen else None
    title = 'Tracker vs peers on ' + ('UNSEEN synthetic scenes' if args.unseen else 'synthetic scenes')
    lines = [unseen.DESCRIPTION if args.unseen else '',
             f'Seeds {args.seeds} per preset; detector noise: {noise_description(noise)}.',
             'Scores in %, means over seeds; ID switches summed over seeds; step times over all steps.',
             STEP_TIME_NOTE, '']
    data = {'presets': {}, 'noise': noise_description(noise)}
    for preset in presets:
        per_seed = []
        for seed in args.seeds:
            scene = unseen.make(preset, seed) if args.unseen else make_scene(preset, seed=seed)
            per_seed.append(run_all(scene, seed, config, peers, args.cpu, noise))
            print(f'[tracker_peers] {preset} seed {seed} done', file=sys.stderr)
        table = summarize(per_seed)
        data['presets'][preset] = table
        lines += [f'## {preset} ({len(scene)} frames x {len(args.seeds)} seeds)', '',
                  *markdown_table(table), '']
    return title, '\n'.join(lines), data


def main(argv=None) -> int:
    """Run the selected benchmark; print it and (with --out) write it with its .json."""
    args = parse_args(argv)
    pin_one_core(args.cpu)
    from results_io import command_line, write_results
    from vis_ros.core.tracker import TrackerConfig
    config, peers = TrackerConfig(), available_peers(args.peers)
    if args.mot17:
        import tracker_mot17
        title, body, data = tracker_mot17.report(args, config, peers)
    else:
        title, body, data = synthetic_report(args, config, peers)
    if not args.no_step_time:
        import tracker_peers_step
        step_lines, data['step_time'] = tracker_peers_step.step_time_case(config, args.cpu)
        body += '\n\n## Step time, 50 tracks x 50 instances, 640x480, one core\n\n' + '\n'.join(step_lines)
    command = command_line([str(Path(__file__)), *(sys.argv[1:] if argv is None else argv)])
    print(f'# {title}\n\nCommand: `{command}`\n\n{body}')
    if args.out:
        write_results(args.out, title, body, data, command=command)
    return 0


if __name__ == '__main__':
    sys.exit(main())
