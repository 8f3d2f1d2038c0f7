"""MOT17 ground truth through a shared detector model: our tracker vs the peers, scored by TrackEval.

For each sequence under --mot17 (MOTChallenge layout, see ../shared/data/mot17/MANIFEST.md) and
each detector-model setting (vis_ros.core.detector_model: 'frcnn-like', 'hard'), one seeded stream
of detections is made from the ground truth and given to every tracker. Boxes only: no frames, so
no appearance and no camera-motion compensation for anyone; ours gets box-shaped masks. Each
tracker runs with its documented defaults at the sequence's frame rate (roboflow `trackers`:
lost_track_buffer 30 frames at 30 fps, rescaled by frame_rate; norfair: hit_counter_max 15,
initialization_delay 7, IoU distance threshold 0.7 as in its box examples; ours: TrackerConfig()).

Every tracker outputs the detections it tracks in a frame (ours: CONFIRMED tracks matched to a
detection this frame; peers: detections returned with an id), written as MOTChallenge files and
scored by trackeval's MotChallenge2DBox (BENCHMARK MOT17): ground truth is class 1 with conf 1;
tracker boxes matched to distractor classes (2, 7, 8, 12) are removed before scoring.
"""
from __future__ import annotations

import contextlib
import io
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tracker_peers as tp

TRACKEVAL_METRICS = ('HOTA', 'IDF1', 'MOTA', 'IDSW', 'DetA', 'AssA', 'IDs')
FOLDER = {'vis_ros (ours)': 'vis_ros', 'SORT': 'SORT', 'ByteTrack': 'ByteTrack', 'OC-SORT': 'OC-SORT',
          'BoT-SORT': 'BoT-SORT', 'McByte': 'McByte', 'norfair': 'norfair'}


def box_instances(det, height: int, width: int):
    """Instances with box-shaped masks (our tracker's input when there are only boxes)."""
    from vis_ros.core.types import Instances
    masks = np.zeros((len(det), height, width), bool)
    for k, (x1, y1, x2, y2) in enumerate(det.boxes):
        masks[k, int(y1):math.ceil(y2), int(x1):math.ceil(x2)] = True
    return Instances(masks=masks, boxes=det.boxes, scores=det.scores,
                     class_ids=np.zeros(len(det), np.int32))


def run_ours_boxes(seq, detections: list, config) -> dict:
    """Our tracker on box-shaped masks; rows (frame, detection row, id) and step ms."""
    from vis_ros.core.tracker import Tracker
    from vis_ros.core.types import TrackState
    tracker, out, step_ms = Tracker(config), [], []
    period_ns = 1e9 / seq.fps
    for t, det in enumerate(detections):
        instances = box_instances(det, seq.height, seq.width)
        start = time.thread_time()
        tracks = tracker.step(instances, int(round(t * period_ns)))
        step_ms.append((time.thread_time() - start) * 1e3)
        out += [(t, tr.detection_index, tr.track_id) for tr in tracks.tracks
                if tr.state == TrackState.CONFIRMED and tr.detection_index >= 0]
    return {'out': np.array(out, np.int64).reshape(-1, 3), 'ms': np.array(step_ms)}


def peer_payload(seq, detections: list) -> dict:
    """The detections as the peer worker takes them (peers' own defaults, no CMC)."""
    counts = [len(d) for d in detections]
    return {'boxes': np.concatenate([d.boxes for d in detections]).astype(np.float32),
            'scores': np.concatenate([d.scores for d in detections]).astype(np.float32),
            'classes': np.zeros(sum(counts), np.int32),
            'offsets': np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            'stamps_s': np.arange(len(detections)) / seq.fps, 'fps': np.float64(seq.fps),
            'lost_frames': np.int64(-1), 'cmc': np.bool_(False)}


def write_mot(path: Path, out: np.ndarray, detections: list) -> None:
    """MOTChallenge tracker file: frame (1-based), id, left, top, width, height, conf, -1, -1, -1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for t, row, track_id in out.tolist():
        if row < 0:
            continue
        x1, y1, x2, y2 = detections[t].boxes[row].tolist()
        lines.append(f'{t + 1},{track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},'
                     f'{detections[t].scores[row]:.3f},-1,-1,-1')
    path.write_text('\n'.join(lines) + ('\n' if lines else ''))


def trackeval_scores(gt_root: Path, trackers_root: Path, names: list, seqs: list) -> dict:
    """{tracker folder: {seq or 'COMBINED_SEQ': metrics}} by trackeval's MotChallenge2DBox."""
    with contextlib.redirect_stdout(io.StringIO()):
        import trackeval
    seqmap = trackers_root / 'seqmap.txt'
    seqmap.write_text('name\n' + '\n'.join(seqs) + '\n')
    dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dataset_config.update(GT_FOLDER=str(gt_root), TRACKERS_FOLDER=str(trackers_root), TRACKERS_TO_EVAL=names,
                          BENCHMARK='MOT17', SPLIT_TO_EVAL='train', SKIP_SPLIT_FOL=True,
                          SEQMAP_FILE=str(seqmap), TRACKER_SUB_FOLDER='data', OUTPUT_FOLDER=None,
                          PRINT_CONFIG=False, DO_PREPROC=True)
    eval_config = trackeval.Evaluator.get_default_eval_config()
    eval_config.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False,
                       OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False,
                       OUTPUT_EMPTY_CLASSES=False,
                       DISPLAY_LESS_PROGRESS=True, BREAK_ON_ERROR=True)
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({'PRINT_CONFIG': False}),
               trackeval.metrics.Identity({'PRINT_CONFIG': False})]   # Evaluator adds Count
    with contextlib.redirect_stdout(io.StringIO()):
        results, _ = trackeval.Evaluator(eval_config).evaluate(
            [trackeval.datasets.MotChallenge2DBox(dataset_config)], metrics)
    out = {}
    for name in names:
        per = results['MotChallenge2DBox'][name]
        out[name] = {seq: _pick(per[seq]['pedestrian']) for seq in per}
    return out


def _pick(res: dict) -> dict:
    return {'HOTA': float(np.mean(res['HOTA']['HOTA'])), 'DetA': float(np.mean(res['HOTA']['DetA'])),
            'AssA': float(np.mean(res['HOTA']['AssA'])), 'IDF1': float(res['Identity']['IDF1']),
            'MOTA': float(res['CLEAR']['MOTA']), 'IDSW': int(res['CLEAR']['IDSW']),
            'IDs': int(res['Count']['IDs'])}


def run_detector(gt_root: Path, seqs: list, model, seed: int, config, peers: list, cpu: int) -> tuple:
    """Every tracker on every sequence with one detector setting; (scores, step ms, det stats)."""
    from vis_ros.core.detector_model import iter_detections
    ms, stats = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seq in seqs:
            detections = list(iter_detections(seq.frames(), model, seed, (seq.height, seq.width)))
            stats[seq.name] = float(np.mean([len(d) for d in detections]))
            outputs = {'vis_ros (ours)': run_ours_boxes(seq, detections, config)}
            for python, names in peers:
                wanted = [n for n in names if n in FOLDER]
                outputs.update(tp.run_peer_process(python, wanted, peer_payload(seq, detections), None, cpu))
            for name, result in outputs.items():
                write_mot(root / FOLDER[name] / 'data' / f'{seq.name}.txt', result['out'], detections)
                ms.setdefault(name, []).append(result['ms'])
            print(f'[tracker_mot17] {model.name} {seq.name} done', file=sys.stderr)
        folders = [FOLDER[n] for n in outputs]
        scores = trackeval_scores(gt_root, root, folders, [s.name for s in seqs])
    by_name = {n: scores[FOLDER[n]] for n in outputs}
    return by_name, {n: float(np.median(np.concatenate(v))) for n, v in ms.items()}, stats


def tables(scores: dict, ms: dict, seqs: list) -> list[str]:
    """Combined table (best IDF1 first) and per-sequence IDF1 / IDSW / HOTA / MOTA."""
    names = sorted(scores, key=lambda n: -scores[n]['COMBINED_SEQ']['IDF1'])
    lines = ['| tracker | HOTA | DetA | AssA | IDF1 | MOTA | ID switches | ids | step ms median |',
             '|---|---|---|---|---|---|---|---|---|']
    for n in names:
        c = scores[n]['COMBINED_SEQ']
        lines.append(f"| {n} | {100 * c['HOTA']:.1f} | {100 * c['DetA']:.1f} | {100 * c['AssA']:.1f} | "
                     f"{100 * c['IDF1']:.1f} | {100 * c['MOTA']:.1f} | {c['IDSW']} | {c['IDs']} | "
                     f"{ms[n]:.2f} |")
    lines += ['', 'Per sequence, HOTA / IDF1 / MOTA / ID switches:', '',
              '| tracker | ' + ' | '.join(s.name for s in seqs) + ' |', '|---' * (len(seqs) + 1) + '|']
    for n in names:
        cells = [f"{100 * scores[n][s.name]['HOTA']:.1f} / {100 * scores[n][s.name]['IDF1']:.1f} / "
                 f"{100 * scores[n][s.name]['MOTA']:.1f} / {scores[n][s.name]['IDSW']}" for s in seqs]
        lines.append(f'| {n} | ' + ' | '.join(cells) + ' |')
    return lines


def report(args, config, peers) -> tuple[str, str, dict]:
    """(title, markdown body, data) of the MOT17 benchmark."""
    from vis_ros.core.detector_model import DETECTOR_MODELS
    from vis_ros.core.mot17 import load_sequence, sequence_folders
    seqs = [load_sequence(f) for f in sequence_folders(args.mot17)]
    seed = args.seeds[0]
    lines = [__doc__.split('\n\n')[1].replace('\n', ' '), '',
             f'Sequences: {", ".join(f"{s.name} ({s.length} frames, {s.fps:g} fps)" for s in seqs)}; '
             f'detector seed {seed}. Scores in %; step ms: median over all frames of all sequences.',
             tp.STEP_TIME_NOTE, '']
    data = {'seed': seed, 'detectors': {}}
    for name in args.detectors:
        model = DETECTOR_MODELS[name]
        scores, ms, stats = run_detector(Path(args.mot17), seqs, model, seed, config, peers, args.cpu)
        data['detectors'][name] = {'model': model.describe(), 'detections_per_frame': stats,
                                   'scores': scores, 'step_ms_median': ms}
        lines += [f'## Detector: {name}', '', f'`{model.describe()}`', '',
                  'Detections per frame: ' + ', '.join(f'{k} {v:.1f}' for k, v in stats.items()) + '.', '',
                  *tables(scores, ms, seqs), '']
    title = 'Tracker vs peers on MOT17 ground truth (shared detector model, boxes only)'
    return title, '\n'.join(lines), data
