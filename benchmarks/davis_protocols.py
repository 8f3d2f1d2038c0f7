"""Scoring protocols of benchmarks/davis_eval.py and a memo that lets extra passes reuse model runs.

Every protocol scores EVERY frame of a sequence (a frame with no prediction scores J = 0, except the
prompted protocol, which scores frames 1..N-1 as the semi-supervised DAVIS protocol does). Tracks of
all states that the tracker outputs (TENTATIVE, CONFIRMED, LOST) count as the node's
`publish_tentative: true` would publish them.
- union:   all instances of the frame merged (DAVIS-2016 unsupervised).
- first0:  ids chosen without hindsight at the first frame where a track overlaps the ground truth:
           every id whose mask lies at least half inside it (a rider and a bike stay two ids), else
           the id with the highest IoU; per frame the union of those ids' masks.
- oracle:  the single id with the highest total J over the sequence (hindsight).
- prompted: frame 0's ground-truth box given as a user prompt; the prompted track's mask.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np

from vis_ros.core.metrics import jaccard


class MemoRunner:
    """Wraps a model runner: identical inputs return the stored outputs (counted as calls).

    The encoder's embeddings are returned as the same stored object, so the decoder key can use its
    identity instead of hashing 4 MB per call.
    """

    def __init__(self, runner, store: dict):
        self._runner, self._store = runner, store
        self.device, self.detail = runner.device, runner.detail
        self.calls = 0
        self.seconds = 0.0   # wall time inside run() (hits included)
        self.miss_ms: list[float] = []   # real model runs only

    def _key(self, feeds) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for name in sorted(feeds):
            value = feeds[name]
            if name == 'image_embeddings':
                digest.update(str(id(value)).encode())
                continue
            value = np.ascontiguousarray(value)
            if value.nbytes > 1 << 20:   # an image: a sparse sample tells frames apart, cheaply
                digest.update(name.encode() + value.ravel()[::97].tobytes())
            else:
                digest.update(name.encode() + value.tobytes())
        return digest.digest()

    def run(self, feeds, outputs):
        """Stored outputs for these feeds, else run the model and store them."""
        start = time.perf_counter()
        key = self._key(feeds) + '|'.join(outputs).encode()
        if key not in self._store:
            miss = time.perf_counter()
            self._store[key] = self._runner.run(feeds, outputs)
            self.miss_ms.append((time.perf_counter() - miss) * 1e3)
        self.calls += 1
        self.seconds += time.perf_counter() - start
        return self._store[key]

    def close(self) -> None:
        """Leave the real runner open: other passes share it."""


class StreamScorer:
    """Per-frame J of the union, first0 and per-id protocols of one pass over a sequence."""

    def __init__(self):
        self.union, self.first0 = [], []
        self.per_id: dict[int, dict[int, float]] = {}
        self.first0_ids: set[int] | None = None
        self.ids_seen: set[int] = set()
        self.frames = 0

    def add(self, index: int, instances_masks, tracks, gt: np.ndarray) -> None:
        """Score one frame's instances and tracks against its ground truth."""
        self.frames += 1
        union = np.logical_or.reduce(list(instances_masks)) if len(instances_masks) else np.zeros_like(gt)
        self.union.append(jaccard(union, gt))
        for track in tracks:
            self.ids_seen.add(track.track_id)
            self.per_id.setdefault(track.track_id, {})[index] = jaccard(np.asarray(track.mask), gt)
        if self.first0_ids is None:
            self.first0_ids = choose_ids(tracks, gt)
        chosen = [np.asarray(t.mask) for t in tracks if self.first0_ids and t.track_id in self.first0_ids]
        pred = np.logical_or.reduce(chosen) if chosen else np.zeros_like(gt)
        self.first0.append(jaccard(pred, gt))

    def oracle(self) -> float:
        """Mean J of the best single id over all frames."""
        if not self.per_id:
            return 0.0
        return max(sum(v.values()) for v in self.per_id.values()) / max(self.frames, 1)

    def gt_ids(self) -> int:
        """Ids that ever overlapped the ground truth by J >= 0.1 (the object's identities)."""
        return sum(1 for v in self.per_id.values() if max(v.values()) >= 0.1)

    def summary(self) -> dict:
        """Mean J per protocol and id counts."""
        return {'union': float(np.mean(self.union)), 'first0': float(np.mean(self.first0)),
                'oracle': self.oracle(), 'ids': len(self.ids_seen), 'gt_ids': self.gt_ids(),
                'first0_ids': sorted(self.first0_ids or ())}


def choose_ids(tracks, gt: np.ndarray) -> set[int] | None:
    """first0's choice at the first frame where a track overlaps the ground truth (None: not yet)."""
    overlapping = []
    for track in tracks:
        mask = np.asarray(track.mask)
        inter = np.logical_and(mask, gt).sum()
        if inter:
            overlapping.append((track.track_id, inter / max(mask.sum(), 1), jaccard(mask, gt)))
    if not overlapping:
        return None
    inside = {tid for tid, frac, _ in overlapping if frac >= 0.5}
    return inside or {max(overlapping, key=lambda o: o[2])[0]}
