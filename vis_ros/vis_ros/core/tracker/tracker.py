"""The online tracker: per-frame instance masks in, track ids that persist across frames out.

One call per frame, `step(instances, stamp_ns, frame=None, *, camera_motion=None) -> Tracks`:
1. check the inputs (a rejected frame leaves the tracker unchanged);
2. camera motion: the given transform, else an estimate from this and the previous frame;
   Kalman states are moved with it (the last masks follow the moved prediction);
3. Kalman prediction over the real time gap between stamps;
4. staged Hungarian matching (ByteTrack / BoT-SORT / LOMM):
   a. CONFIRMED and LOST tracks vs high-score instances: mask IoU of the moved last mask + box IoU
      + appearance, gated by motion (overlap with the prediction), class and looks (a LOST track
      must look like the instance); as in ByteTrack, a track lost a frame ago is still where its
      prediction says and must win its instance back from a neighbour;
   b. the tracks still unmatched vs low-score instances (overlap only);
   c. LOST tracks vs remaining high-score instances (re-entry: appearance + plausible position);
   d. TENTATIVE tracks vs remaining high-score instances;
   e. late re-entry: a young track whose clear view looks like a LOST track hands its instance to
      it (the old id comes back, the young id ends);
5. births, last, for unmatched instances with score >= birth_score that do not duplicate an
   instance already taken by a track (LOMM: existing tracks before new ones).

Life cycle: TENTATIVE (born, age 0) -> CONFIRMED after `confirm_hits` consecutive matches; a
CONFIRMED track that is not matched becomes LOST (box and mask predicted by motion, detection_index
-1); a TENTATIVE track ends on its first miss. Any track not seen for more than `lost_timeout_s` of
stamp time ends at the start of the step, BEFORE matching: after a long frame gap (a dropped
stream, a rate limit) a returning object gets a new id, never the timed-out one. Ended tracks are
not output (TrackState.REMOVED is never produced by the tracker); their ids go to `ended_ids`.

Ended ids: every id that ever appeared in `Tracks.tracks` (tentative ones too, since a node may
publish tentative tracks) is reported in `Tracks.ended_ids` exactly once, in the step where it
ended (or the first step after `reset()`). A node that does not publish tentative tracks may
forward only the ended ids it published; forwarding the others is harmless (never seen ids).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from vis_ros.core.errors import InputError, OutOfOrderFrame
from vis_ros.core.tracker import appearance, association, kalman
from vis_ros.core.tracker.camera_motion import (CameraMotionEstimator, as_homography, is_identity,
                                                local_jacobians, warp_points)
from vis_ros.core.tracker.config import TrackerConfig
from vis_ros.core.tracker.maskpool import MaskPool
from vis_ros.core.tracker.observations import Observations, observe
from vis_ros.core.tracker.region import grid_iou
from vis_ros.core.tracker.track import TrackRecord
from vis_ros.core.types import Instances, Tracks, TrackState


class Tracker:
    """Online multi-object tracker over instance masks; deterministic, one thread, no I/O."""

    def __init__(self, config: Optional[TrackerConfig] = None):
        """Start with no tracks; ids start at 1."""
        self.config = config if config is not None else TrackerConfig()
        if not isinstance(self.config, TrackerConfig):
            raise InputError(f'Tracker needs a TrackerConfig, got {type(self.config).__name__}')
        self._next_id = 1
        self._tracks: list[TrackRecord] = []
        self._clear_states()
        self._pending_ended: list[int] = []
        self._mask_pool = MaskPool()   # full-frame buffers of LOST tracks' predicted masks
        self._camera = CameraMotionEstimator(self.config.camera_motion, self.config.camera_motion_width)
        self._last_stamp: Optional[int] = None
        self._image_size: Optional[tuple[int, int]] = None
        self._previous_boxes = np.zeros((0, 4), np.float32)

    def reset(self) -> None:
        """Start a new stream: drop all tracks, forget the last stamp, frame size and camera image.

        The id counter is NOT reset: a planner that saw id 7 before the reset must never see a
        different object called 7 afterwards (ids are unique within a run). The ids of the dropped
        tracks are announced in the next step's `ended_ids`.
        """
        self._pending_ended.extend(t.track_id for t in self._tracks)
        self._tracks = []
        self._clear_states()
        self._mask_pool.clear()
        self._camera.reset()
        self._last_stamp = None
        self._image_size = None
        self._previous_boxes = np.zeros((0, 4), np.float32)

    def _clear_states(self) -> None:
        # Kalman states of all tracks, row k for self._tracks[k], stacked once for the batched
        # filter (not gathered from and scattered back to the records several times a step)
        self._means = np.zeros((0, 8))
        self._covs = np.zeros((0, 8, 8))

    def _keep(self, rows: list[int]) -> None:
        """Keep only the tracks at `rows` (in that order), with their Kalman states."""
        self._tracks = [self._tracks[k] for k in rows]
        self._means, self._covs = self._means[rows].reshape(-1, 8), self._covs[rows].reshape(-1, 8, 8)

    @property
    def next_id(self) -> int:
        """The id the next new track will get."""
        return self._next_id

    def continue_ids(self, next_id: int) -> None:
        """Number new tracks from `next_id` on: a node that rebuilds its tracker keeps ids unique."""
        if int(next_id) < self._next_id:
            raise InputError(f'continue_ids({next_id}) would reuse ids; the next id is already '
                             f'{self._next_id}')
        self._next_id = int(next_id)

    @property
    def num_tracks(self) -> int:
        """Alive tracks (TENTATIVE, CONFIRMED and LOST)."""
        return len(self._tracks)

    def step(self, instances: Instances, stamp_ns: int, frame: Optional[np.ndarray] = None, *,
             camera_motion=None) -> Tracks:
        """Advance all tracks to `stamp_ns` with this frame's instances; returns the tracks.

        instances: this frame's instances; those with score < low_score or an empty mask are
            ignored. Empty Instances still age the tracks (LOST ones time out).
        stamp_ns: capture time (ns), strictly later than the previous step's (else OutOfOrderFrame).
        frame: the (H, W, 3) uint8 RGB image the instances come from, optional; enables the color
            appearance descriptor and camera-motion estimation.
        camera_motion: optional 2x3 affine or 3x3 homography mapping the previous frame's pixels to
            this frame's (e.g. from odometry); when given, no estimate is made.
        """
        stamp_ns, homography = self._check(instances, stamp_ns, frame, camera_motion)
        dt = 0.0 if self._last_stamp is None else (stamp_ns - self._last_stamp) * 1e-9
        self._last_stamp, self._image_size = stamp_ns, instances.image_size
        if homography is None and frame is not None and self.config.camera_motion != 'off':
            homography = self._camera.estimate(frame, self._previous_boxes)
        elif frame is not None and self.config.camera_motion != 'off':
            self._camera.remember(frame)   # the next estimate starts from this image
        elif frame is None:
            self._camera.reset()   # an estimate across a frameless step would miss that step's motion
        bins = None if frame is None else appearance.bin_image(frame, self.config.mask_stride)
        obs = observe(instances, bins, self.config.mask_stride, self.config.low_score,
                      self.config.occlusion_iou)
        self._previous_boxes = obs.boxes
        # expiry first: a track unseen for longer than lost_timeout_s (a frame gap, a rate limit)
        # must not take an instance back; its id ends here and the object gets a new one
        ended = self._expire(stamp_ns)
        self._predict(dt, None if is_identity(homography) else homography)
        matches, retired = self._associate(obs, stamp_ns)
        self._apply_matches(matches, obs, stamp_ns)
        ended += self._handle_misses(set(matches), retired)
        self._birth(obs, set(matches.values()), stamp_ns)
        return self._output(stamp_ns, instances, ended)

    # --- input checks ----------------------------------------------------------------------

    def _check(self, instances, stamp_ns, frame, camera_motion) -> tuple[int, Optional[np.ndarray]]:
        if not isinstance(instances, Instances):
            raise InputError('instances must be vis_ros.core.types.Instances, '
                             f'got {type(instances).__name__}')
        size = instances.image_size
        if size[0] <= 0 or size[1] <= 0:
            raise InputError(f'instances cover a {size[1]}x{size[0]} image; the frame must not be empty')
        try:
            stamp = int(stamp_ns)
        except (TypeError, ValueError):
            raise InputError(f'stamp_ns must be an integer (ns), got {stamp_ns!r}') from None
        if stamp != stamp_ns or stamp < 0:
            raise InputError(f'stamp_ns must be a non-negative integer (ns), got {stamp_ns!r}')
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise OutOfOrderFrame(f'stamp {stamp} ns is not later than the previous {self._last_stamp} ns; '
                                  'frames must be given in capture order (call reset() to start a new '
                                  'stream, e.g. when a bag loops)')
        if self._image_size is not None and size != self._image_size:
            raise InputError(f'frame size changed from {self._image_size[1]}x{self._image_size[0]} to '
                             f'{size[1]}x{size[0]}; call reset() when the camera resolution changes')
        if frame is not None:
            if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
                    or frame.shape[2] != 3:
                got = f'{getattr(frame, "shape", None)} {getattr(frame, "dtype", type(frame).__name__)}'
                raise InputError(f'frame must be an (H, W, 3) uint8 RGB array, got {got}')
            if frame.shape[:2] != size:
                raise InputError(f'frame is {frame.shape[1]}x{frame.shape[0]} but the instance masks are '
                                 f'{size[1]}x{size[0]}; give the image the instances were computed from')
        homography = None if camera_motion is None else as_homography(camera_motion)
        return stamp, homography

    # --- motion ----------------------------------------------------------------------------

    def _predict(self, dt: float, homography: Optional[np.ndarray]) -> None:
        if not self._tracks:
            return
        means, covs = self._means, self._covs
        if homography is not None:
            centers = means[:, :2]
            means, covs = kalman.warp(means, covs, local_jacobians(homography, centers),
                                      warp_points(homography, centers))
            # where each object was last seen moves with the camera (re-entry looks there)
            anchors = warp_points(homography, np.array([t.anchor for t in self._tracks]))
            for track, anchor in zip(self._tracks, anchors):
                track.anchor = anchor
        means, covs = kalman.predict(means, covs, dt)
        # a LOST track's velocity fades: a stale velocity would carry the prediction away; its
        # size stops changing (a box shrinking while it left the view must not turn negative)
        lost = np.array([t.frames_since_seen > 0 for t in self._tracks])
        means[lost, 4:6] *= np.exp(-dt / self.config.lost_velocity_decay_s)
        means[lost, 6:] = 0.0
        self._means, self._covs = means, covs
        for track in self._tracks:
            track.age += 1

    # --- association -----------------------------------------------------------------------

    def _associate(self, obs: Observations, stamp_ns: int) -> tuple[dict[int, int], set[int]]:
        """Stage the matching; return {track position: observation row} and retired positions."""
        cfg = self.config
        lost = np.array([t.state == TrackState.LOST for t in self._tracks], bool)
        features = association.pair_features(self._tracks, self._means, obs, cfg, stamp_ns, lost)
        overlap = association.overlap_similarity(features, cfg, lost)
        by_state = {TrackState.CONFIRMED: [], TrackState.LOST: [], TrackState.TENTATIVE: []}
        for i, track in enumerate(self._tracks):
            by_state[track.state].append(i)
        is_high = obs.scores >= cfg.high_score
        high, low = np.flatnonzero(is_high).tolist(), np.flatnonzero(~is_high).tolist()
        matches: dict[int, int] = {}

        def run(similarity, rows, cols, threshold):
            taken = set(matches.values())
            free_rows = [i for i in rows if i not in matches]
            free_cols = [j for j in cols if j not in taken]
            matches.update(association.assign(similarity, free_rows, free_cols, threshold))

        # LOST tracks join the first stage (as in ByteTrack): one lost for a frame or two is still
        # where its prediction says, and must be able to win its instance back from a neighbour
        visible = by_state[TrackState.CONFIRMED] + by_state[TrackState.LOST]
        run(overlap, visible, high, cfg.match_threshold)
        if low:   # (each stage's similarity is computed only when the stage has rows and columns)
            run(association.low_score_similarity(features, cfg), visible, low, cfg.low_score_iou)
        if by_state[TrackState.LOST]:
            run(association.reentry_similarity(features, cfg, lost), by_state[TrackState.LOST], high,
                cfg.match_threshold)
        run(overlap, by_state[TrackState.TENTATIVE], high, cfg.match_threshold)
        return matches, self._reclaim(matches, features, obs, stamp_ns)

    def _reclaim(self, matches: dict[int, int], features: association.PairFeatures,
                 obs: Observations, stamp_ns: int) -> set[int]:
        """Hand a young track's instance to the LOST track it turns out to be; return retired positions.

        A re-entering object is often first seen as a sliver at the border or behind an occluder,
        too unlike its memory to be re-identified, and starts a new track. Once a clear, unoccluded
        view of it looks like a LOST track (lost before the young one was born, plausible position,
        same class), the LOST track takes the young one's motion state and the instance: the old id
        comes back and the young id ends (announced in ended_ids).
        """
        cfg = self.config
        window_ns = cfg.late_reentry_s * 1e9
        lost = [k for k, t in enumerate(self._tracks) if t.state == TrackState.LOST and k not in matches]
        retired: set[int] = set()
        for i in sorted(matches):
            young, j = self._tracks[i], matches[i]
            if young.state == TrackState.LOST or stamp_ns - young.born_ns > window_ns \
                    or obs.occluded[j] or obs.scores[j] < cfg.memory_min_score:
                continue
            owners = [k for k in lost if self._tracks[k].last_seen_ns < young.born_ns
                      and features.appearance_known[k, j] and features.proximity[k, j] >= 0
                      and features.appearance[k, j] >= cfg.reentry_appearance and features.class_match[k, j]]
            if not owners:
                continue
            owner = max(owners, key=lambda k: (features.appearance[k, j], -k))
            self._tracks[owner].adopt(young)
            self._means[owner], self._covs[owner] = self._means[i], self._covs[i]
            matches[owner] = matches.pop(i)
            lost.remove(owner)
            retired.add(i)
        return retired

    def _apply_matches(self, matches: dict[int, int], obs: Observations, stamp_ns: int) -> None:
        if not matches:
            return
        rows = sorted(matches)
        tracks = [self._tracks[i] for i in rows]
        measurements = obs.xyah[[matches[i] for i in rows]]
        self._means[rows], self._covs[rows] = kalman.update(self._means[rows], self._covs[rows], measurements)
        cfg = self.config
        TrackRecord.observe_many(tracks, obs, [matches[i] for i in rows], stamp_ns)
        for track in tracks:
            if track.state == TrackState.LOST or track.streak >= cfg.confirm_hits:
                track.state = TrackState.CONFIRMED
        self._remember([(track, matches[row]) for track, row in zip(tracks, rows)], obs)

    def _remember(self, pairs: list[tuple[TrackRecord, int]], obs: Observations) -> None:
        """Update appearance memories (batched) from confident, unoccluded views; seed empty ones."""
        cfg = self.config
        pairs = [(t, j) for t, j in pairs if (obs.scores[j] >= cfg.memory_min_score and not obs.occluded[j])
                 or (t.histogram is None and t.embedding is None)]
        if not pairs:
            return
        rows = [j for _, j in pairs]
        if obs.histograms is not None:
            memories = appearance.update_memories([t.histogram for t, _ in pairs], obs.histograms[rows],
                                                  cfg.memory_momentum)
            for (track, _), memory in zip(pairs, memories):
                track.histogram = memory
        if obs.embeddings is not None:
            memories = appearance.update_memories([t.embedding for t, _ in pairs], obs.embeddings[rows],
                                                  cfg.memory_momentum)
            for (track, _), memory in zip(pairs, memories):
                track.embedding = memory

    def _expire(self, stamp_ns: int) -> list[int]:
        """End every track not seen for more than lost_timeout_s at `stamp_ns`; return their ids."""
        timeout_ns = self.config.lost_timeout_s * 1e9
        ended = [t.track_id for t in self._tracks if stamp_ns - t.last_seen_ns > timeout_ns]
        if ended:
            self._keep([k for k, t in enumerate(self._tracks) if stamp_ns - t.last_seen_ns <= timeout_ns])
        return ended

    def _handle_misses(self, matched: set[int], retired: set[int]) -> list[int]:
        """Send unmatched tracks to LOST (tentative ones end), end the retired ones; return ended ids.

        Timed-out tracks were already ended by `_expire`, before matching.
        """
        ended, alive = [], []
        predicted = kalman.xyah_to_xyxy(self._means)
        predicted.flags.writeable = False   # its rows become LOST tracks' output boxes
        for i, track in enumerate(self._tracks):
            if i in retired:
                ended.append(track.track_id)
                continue
            if i not in matched:
                track.miss()
                track.box = predicted[i]
                if track.state == TrackState.TENTATIVE:
                    ended.append(track.track_id)
                    continue
                track.state = TrackState.LOST
            alive.append(i)
        if len(alive) < len(self._tracks):
            self._keep(alive)
        return ended

    def _birth(self, obs: Observations, taken: set[int], stamp_ns: int) -> None:
        """Start tentative tracks, best score first, skipping duplicates of instances already taken."""
        cfg = self.config
        candidates = [j for j in range(len(obs)) if j not in taken and obs.scores[j] >= cfg.birth_score]
        candidates.sort(key=lambda j: (-obs.scores[j], j))
        claimed = [obs.grids[j] for j in sorted(taken)]
        born, states = [], []
        for j in candidates:
            if claimed and grid_iou(claimed, [obs.grids[j]]).max() >= cfg.birth_max_overlap:
                continue
            claimed.append(obs.grids[j])
            states.append(kalman.initiate(obs.xyah[[j]]))
            track = TrackRecord(self._next_id, stamp_ns)
            self._next_id += 1
            track.age = 0   # frames since birth: 0 in the first frame (Instance.msg `age`)
            track.observe(obs, j, stamp_ns)
            if cfg.confirm_hits <= 1:
                track.state = TrackState.CONFIRMED
            self._tracks.append(track)
            born.append((track, j))
        if states:
            self._means = np.concatenate([self._means, *(m for m, _ in states)])
            self._covs = np.concatenate([self._covs, *(c for _, c in states)])
        self._remember(born, obs)

    def _output(self, stamp_ns: int, instances: Instances, ended: list[int]) -> Tracks:
        height, width = instances.image_size
        out = []
        boxes, box_covs = kalman.box_estimates(self._means, self._covs)
        boxes.flags.writeable = box_covs.flags.writeable = False   # rows are then read-only views
        centers, velocities = self._means[:, :2].tolist(), self._means[:, 4:6].tolist()
        for track, box, box_cov, center, velocity in zip(self._tracks, boxes, box_covs, centers, velocities):
            if track.detection_index >= 0:
                mask = instances.masks[track.detection_index]
            else:
                mask = track.predicted_mask(height, width, center, self._mask_pool)
            out.append(track.snapshot(mask, tuple(velocity), box, box_cov))
        ended_ids = tuple(sorted(self._pending_ended + ended))
        self._pending_ended = []
        return Tracks(stamp_ns=stamp_ns, image_size=(height, width), tracks=tuple(out), ended_ids=ended_ids)

    def predicted_boxes(self, stamp_ns: int) -> list[tuple[int, int, np.ndarray]]:
        """(track id, class id, predicted [x1, y1, x2, y2]) of each CONFIRMED/LOST track at `stamp_ns`.

        Read-only (nothing in the tracker changes): for tracking by segmentation, a promptable
        backend looks for each track at its Kalman prediction (no camera-motion correction: that
        is estimated inside `step`).
        """
        rows = [k for k, t in enumerate(self._tracks) if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        if not rows:
            return []
        dt = 0.0 if self._last_stamp is None else max(int(stamp_ns) - self._last_stamp, 0) * 1e-9
        means, _ = kalman.predict(self._means[rows], self._covs[rows], dt)
        boxes = kalman.xyah_to_xyxy(means)
        return [(self._tracks[k].track_id, self._tracks[k].class_id, box) for k, box in zip(rows, boxes)]
