"""Peer-tracker worker: runs inside a peer venv (numpy + the peer package only, no vis_ros).

benchmarks/tracker_peers.py and tracker_mot17.py start it as a subprocess of the peer's venv:

    <peer python> benchmarks/tracker_peers_worker.py --names SORT,ByteTrack --input in.npz \
        --output out.npz --cpu 0 [--frames frames.npy]

Input npz: boxes (N, 4) xyxy, scores (N,), classes (N,), offsets (T + 1,) per-frame row ranges,
stamps_s (T,), fps, lost_frames (< 0: each peer's own default), cmc (bool: BoT-SORT / McByte get
the frame for camera-motion compensation) and optional embeddings (N, E) for norfair's re-id.
Output npz: per peer `<name>__out` rows (frame, input row within the frame or -1, track id) and
`<name>__ms` step times. Peers return the input detections they track; each output box is mapped
back to its input row by IoU >= 0.9.
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS'):
    os.environ[_var] = '1'    # one core, one thread (set before numpy loads)

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

TRACKERS_PEERS = ('SORT', 'ByteTrack', 'OC-SORT', 'BoT-SORT', 'McByte')
NORFAIR_HIT_COUNTER_MAX = 15   # norfair's documented default (frames)


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
    """(N, M) IoU of xyxy boxes."""
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


def make_trackers_peer(name: str, fps: float, lost_frames: int, cmc: bool):
    """A roboflow `trackers` tracker; lost_frames < 0 keeps its default (30 frames at 30 fps, rescaled)."""
    import trackers
    common = dict(frame_rate=fps)
    if lost_frames >= 0:
        common['lost_track_buffer'] = lost_frames
    classes = {'SORT': trackers.SORTTracker, 'ByteTrack': trackers.ByteTrackTracker,
               'OC-SORT': trackers.OCSORTTracker}
    if name in classes:
        return classes[name](**common)
    if name == 'BoT-SORT':
        return trackers.BoTSORTTracker(enable_cmc=cmc, **common)
    if name == 'McByte':
        return trackers.McByteTracker(enable_cmc=cmc, **common)
    raise ValueError(f'unknown trackers peer {name!r}')


def run_trackers_peer(name: str, data: dict, frames) -> dict:
    """Feed one `trackers` tracker the stream; (frame, detection, id) of its outputs and step ms."""
    import supervision as sv
    cmc = bool(data['cmc']) and frames is not None
    tracker = make_trackers_peer(name, float(data['fps']), int(data['lost_frames']), cmc)
    needs_frame = cmc and name in ('BoT-SORT', 'McByte')
    out, step_ms = [], []
    offsets = data['offsets']
    for t in range(len(offsets) - 1):
        a, b = offsets[t], offsets[t + 1]
        dets = sv.Detections(xyxy=data['boxes'][a:b].astype(np.float32),
                             confidence=data['scores'][a:b], class_id=data['classes'][a:b].astype(int))
        frame = np.ascontiguousarray(frames[t]) if needs_frame else None
        start = time.thread_time()
        result = tracker.update(dets, frame=frame, timestamp=float(data['stamps_s'][t]))
        step_ms.append((time.thread_time() - start) * 1e3)
        keep = result.tracker_id >= 0
        index = detection_index(result.xyxy[keep], data['boxes'][a:b])
        out += [(t, int(i), int(k)) for i, k in zip(index, result.tracker_id[keep])]
    return {'out': np.array(out, np.int64).reshape(-1, 3), 'ms': np.array(step_ms)}


def _cosine_distance(matched, candidate) -> float:
    """norfair re-id distance: 1 - cosine of the two objects' last embeddings (unit vectors)."""
    a, b = matched.last_detection.embedding, candidate.last_detection.embedding
    if a is None or b is None:
        return 1.0
    return float(1.0 - np.dot(a, b))


def make_norfair(data: dict):
    """norfair on boxes: IoU distance (threshold 0.7, as in its box examples).

    Documented defaults otherwise (lost_frames < 0), or our lost time and confirmation.

    With embeddings, norfair's re-id stage (reid_distance_function) compares a re-appearing
    object with the lost ones by the same cosine similarity our tracker uses (threshold: our
    reentry_appearance, given as data['reid_similarity']).
    """
    from norfair import Tracker
    lost = int(data['lost_frames'])
    kwargs = dict(distance_function='iou', distance_threshold=0.7, hit_counter_max=NORFAIR_HIT_COUNTER_MAX)
    if lost >= 0:   # as long as ours, confirmed as soon (its default delay is hit_counter_max // 2)
        kwargs.update(hit_counter_max=lost, initialization_delay=2)
    if 'embeddings' in data:
        kwargs.update(reid_distance_function=_cosine_distance,
                      reid_distance_threshold=1.0 - float(data['reid_similarity']),
                      reid_hit_counter_max=kwargs['hit_counter_max'])
    return Tracker(**kwargs)


def run_norfair(data: dict) -> dict:
    """Feed norfair the stream; outputs as in run_trackers_peer (detections below 0.3 dropped)."""
    from norfair import Detection
    tracker = make_norfair(data)
    embeddings = data.get('embeddings')
    out, step_ms = [], []
    offsets = data['offsets']
    for t in range(len(offsets) - 1):
        a, b = offsets[t], offsets[t + 1]
        dets = [Detection(points=data['boxes'][k].reshape(2, 2).astype(np.float64),
                          scores=np.full(2, data['scores'][k]), label=int(data['classes'][k]), data=k - a,
                          embedding=None if embeddings is None else embeddings[k])
                for k in range(a, b) if data['scores'][k] >= 0.3]
        start = time.thread_time()
        objects = tracker.update(detections=dets)
        step_ms.append((time.thread_time() - start) * 1e3)
        current = {id(d) for d in dets}
        out += [(t, int(o.last_detection.data), int(o.id)) for o in objects
                if o.id is not None and id(o.last_detection) in current]
    return {'out': np.array(out, np.int64).reshape(-1, 3), 'ms': np.array(step_ms)}


def main(argv=None) -> int:
    """Run the named peers on --input, write their outputs to --output (npz)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--names', required=True, help='comma-separated peer names')
    parser.add_argument('--input', required=True)
    parser.add_argument('--output', required=True)
    parser.add_argument('--frames')
    parser.add_argument('--cpu', type=int, default=0)
    args = parser.parse_args(argv)
    pin_one_core(args.cpu)
    warnings.simplefilter('ignore')
    data = dict(np.load(args.input))
    frames = np.load(args.frames, mmap_mode='r') if args.frames else None
    results = {}
    for name in args.names.split(','):
        result = run_norfair(data) if name == 'norfair' else run_trackers_peer(name, data, frames)
        results.update({f'{name}__out': result['out'], f'{name}__ms': result['ms']})
    np.savez(args.output, **results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
