"""A digest of everything the tracker outputs, to prove a refactor or speed-up changes no output.

Every step's `Tracks` goes into a SHA-256: stamp, image size, ended ids, and per track every field
(id, state, box, mask, score, class, age, hits, frames since seen, velocity, detection index,
Kalman box and covariance). A mask that is the caller's input mask (same buffer) is recorded as
"input mask"; any other mask (a LOST track's prediction) is hashed pixel by pixel.

Two digests per case: `exact` hashes the float fields bit for bit (the proof on one machine) and
`portable` hashes them rounded to 1e-3 (what a committed golden file can hold across machines
whose BLAS rounds the last bit differently). The cases cover the synthetic presets with each cue
our benchmarks use (masks; masks + embedding; masks + frame), the unseen presets and noise, the
50 x 50 step-time workload, and MOT17 ground truth through the detector model (box-shaped masks).

    python benchmarks/tracker_digest.py --write /tmp/before.json      # before a change
    python benchmarks/tracker_digest.py --check /tmp/before.json      # after it: exit 1 on a change
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CUES = ('masks', 'embedding', 'frame')
FLOAT_FIELDS = ('box', 'score', 'velocity', 'kalman_box', 'kalman_box_cov')


def _floats(value, exact: bool) -> bytes:
    array = np.asarray(value, np.float64)
    return array.tobytes() if exact else np.round(array, 3).tobytes()


def _mask_bytes(mask: np.ndarray, instances) -> bytes:
    address = mask.__array_interface__['data'][0]
    for k in range(len(instances)):
        source = instances.masks[k]
        if source.__array_interface__['data'][0] == address and source.shape == mask.shape:
            return b'input %d' % k
    return hashlib.sha256(np.packbits(mask).tobytes()).digest()


def update(hashes: dict, tracks, instances) -> None:
    """Add one step's output to the exact and portable hashes."""
    head = repr((tracks.stamp_ns, tuple(tracks.image_size), tuple(tracks.ended_ids))).encode()
    for h in hashes.values():
        h.update(head)
    for track in tracks.tracks:
        ints = repr((track.track_id, int(track.state), track.class_id, track.age, track.hits,
                     track.frames_since_seen, track.detection_index)).encode()
        mask = _mask_bytes(track.mask, instances)
        for exact, h in ((True, hashes['exact']), (False, hashes['portable'])):
            h.update(ints + mask)
            for name in FLOAT_FIELDS:
                h.update(_floats(getattr(track, name), exact))


def digest_stream(stream, config=None) -> dict:
    """Run a fresh Tracker over [(instances, stamp_ns, frame or None)]; {'exact', 'portable', 'steps'}."""
    from vis_ros.core.tracker import Tracker, TrackerConfig
    tracker = Tracker(config or TrackerConfig())
    hashes = {'exact': hashlib.sha256(), 'portable': hashlib.sha256()}
    steps = 0
    for instances, stamp_ns, frame in stream:
        update(hashes, tracker.step(instances, stamp_ns, frame=frame), instances)
        steps += 1
    return {'exact': hashes['exact'].hexdigest(), 'portable': hashes['portable'].hexdigest(), 'steps': steps}


def synthetic_stream(scene, seed: int, cue: str, noise=None):
    """The benchmark's noisy stream of a scene with one cue (tracker_peers.run_ours's inputs)."""
    from vis_ros.core.synthetic import iter_noisy_instances
    from tracker_peers import histogram_embeddings
    for t, instances in enumerate(iter_noisy_instances(scene, seed=seed, noise=noise)):
        if cue == 'embedding':
            instances = replace(instances, embeddings=histogram_embeddings(instances, scene.frames[t], 4))
        yield instances, scene.stamps_ns[t], scene.frames[t] if cue == 'frame' else None


def synthetic_cases(presets, seeds, num_frames=None) -> dict:
    """{name: digest} of each preset x seed x cue (default presets and noise)."""
    from vis_ros.core.synthetic import make_scene
    out = {}
    for preset in presets:
        for seed in seeds:
            scene = make_scene(preset, seed=seed, num_frames=num_frames)
            for cue in CUES:
                out[f'{preset}/{seed}/{cue}'] = digest_stream(synthetic_stream(scene, seed, cue))
    return out


def unseen_cases(seeds) -> dict:
    """{name: digest} of the unseen presets with the unseen noise model, masks and frame cues."""
    import tracker_peers_unseen as unseen
    out = {}
    for preset in unseen.PRESETS:
        for seed in seeds:
            scene = unseen.make(preset, seed)
            for cue in ('masks', 'frame'):
                stream = synthetic_stream(scene, seed, cue, unseen.NOISE)
                out[f'{preset}/{seed}/{cue}'] = digest_stream(stream)
    return out


def step_time_case() -> dict:
    """The 50 tracks x 50 instances workload of tracker_peers_step (clean detections), masks only."""
    from vis_ros.core.synthetic import CLEAN
    from vis_ros.core.synthetic_presets import plan_crowd
    from vis_ros.core.synthetic_scene import render_plan
    plan = plan_crowd(np.random.default_rng(50), 480, 640, count=50, size_range=(22, 40))
    plan = replace(plan, num_frames=60)
    scene = render_plan(plan, 'step50', 50)
    return {'step50/masks': digest_stream(synthetic_stream(scene, 0, 'masks', CLEAN))}


def mot17_cases(root: Path, frames: int, detectors=('frcnn-like', 'hard'), sequences=None) -> dict:
    """{name: digest} of MOT17 sequences (first `frames` frames) through each detector model, boxes only."""
    from tracker_mot17 import box_instances
    from vis_ros.core.detector_model import DETECTOR_MODELS, iter_detections
    from vis_ros.core.mot17 import load_sequence, sequence_folders
    out = {}
    for folder in sequence_folders(root):
        seq = load_sequence(folder)
        if sequences and seq.name not in sequences:
            continue
        for name in detectors:
            detections = iter_detections(seq.frames()[:frames], DETECTOR_MODELS[name], 0,
                                         (seq.height, seq.width))
            stream = ((box_instances(d, seq.height, seq.width), int(round(t * 1e9 / seq.fps)), None)
                      for t, d in enumerate(detections))
            out[f'{seq.name}/{name}/{frames}'] = digest_stream(stream)
    return out


def all_cases(mot17: Path | None, frames: int) -> dict:
    """Every case of the full check."""
    from vis_ros.core.synthetic_presets import PRESETS
    cases = synthetic_cases(PRESETS, (0, 1, 2))
    cases.update(unseen_cases((0, 1)))
    cases.update(step_time_case())
    if mot17 is not None:
        cases.update(mot17_cases(mot17, frames))
    return cases


def main(argv=None) -> int:
    """Write the digests (--write) or compare them with a file written before (--check)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--write', type=Path, help='write the digests here (JSON)')
    parser.add_argument('--check', type=Path, help='compare with an earlier --write; exit 1 on a change')
    parser.add_argument('--mot17', type=Path, help='MOT17 folder (../shared/data/mot17)')
    parser.add_argument('--frames', type=int, default=300, help='MOT17 frames per sequence')
    args = parser.parse_args(argv)
    cases = all_cases(args.mot17, args.frames)
    if args.write:
        args.write.write_text(json.dumps(cases, indent=1, sort_keys=True) + '\n')
    changed = []
    if args.check:
        before = json.loads(args.check.read_text())
        changed = [k for k in sorted(set(before) | set(cases)) if before.get(k) != cases.get(k)]
    for name, digest in cases.items():
        print(f"{name}: {digest['exact'][:16]} {digest['portable'][:16]} ({digest['steps']} steps)"
              + ('  CHANGED' if name in changed else ''))
    print(f'{len(cases)} cases' + (f', {len(changed)} changed' if args.check else ''))
    return 1 if changed else 0


if __name__ == '__main__':
    sys.exit(main())
