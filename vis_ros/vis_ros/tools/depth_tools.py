"""Depth in the bag tools (issue 15): make-bag writes it, replay uses it, eval scores it.

- make-bag `synthetic:<preset> --depth`: a 16UC1 (mm) depth image on DEPTH_TOPIC and a
  sensor_msgs/CameraInfo on INFO_TOPIC with every colour frame (same stamps), and the 3D truth in
  BAG_gt/depth_truth.json (core/synthetic_depth.py).
- replay: when the bag has an Image topic with 'depth' in its name and a CameraInfo topic, each
  frame gets the depth image nearest in stamp (within depth.sync_tolerance_s, the node's matcher),
  the node's 3D filters fill the InstanceArray's 3D block, and OUT/tracks3d.jsonl gets one line
  per frame: {"index", "stamp_ns", "tracks": {id: {"position", "velocity", "size", "settled"}}}.
- eval: with depth_truth.json beside the ground truth and tracks3d.jsonl beside the predictions,
  the report gets the 3D position error (median, p90; metres and % of range) and velocity error.
"""
from __future__ import annotations

import bisect
import json
from pathlib import Path
from typing import Any, Collection, Mapping, Optional

import numpy as np

from vis_ros.core.depth3d import CameraIntrinsics, DepthConfig, check_depth
from vis_ros.core.metrics3d import SETTLE_S, match_masks, pair_errors, summarize
from vis_ros.core.stamp_match import StampMatcher
from vis_ros.core.tracker3d import Tracker3D
from vis_ros.core.types import Tracks

DEPTH_TOPIC = '/camera/depth/image_raw'
INFO_TOPIC = '/camera/camera_info'
TRUTH_FILE = 'depth_truth.json'
TRACKS3D_FILE = 'tracks3d.jsonl'
_IMAGE, _INFO = 'sensor_msgs/msg/Image', 'sensor_msgs/msg/CameraInfo'


# ---- make-bag ----------------------------------------------------------------------------------

class DepthBagWriter:
    """Writes a DepthScene's depth image + camera_info beside each colour frame of make-bag."""

    def __init__(self, bag, depth_scene, frame_id: str):
        """Add the two topics to `bag` (a BagWriter)."""
        self.bag, self.depth, self.frame_id = bag, depth_scene, frame_id
        bag.add_topic(DEPTH_TOPIC, _IMAGE)
        bag.add_topic(INFO_TOPIC, _INFO)

    def write(self, index: int, stamp_ns: int, header) -> None:
        """Write frame `index`'s depth and camera_info with the colour frame's header and stamp."""
        types = self.bag.typestore.types
        depth = self.depth.depth_mm[index]
        height, width = depth.shape
        image = types[_IMAGE](header=header, height=height, width=width, encoding='16UC1',
                              is_bigendian=0, step=width * 2,
                              data=np.ascontiguousarray(depth.astype('<u2')).view(np.uint8).reshape(-1))
        cam = self.depth.camera
        k = np.array([cam.fx, 0, cam.cx, 0, cam.fy, cam.cy, 0, 0, 1], np.float64)
        p = np.array([cam.fx, 0, cam.cx, 0, 0, cam.fy, cam.cy, 0, 0, 0, 1, 0], np.float64)
        roi = types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        info = types[_INFO](header=header, height=height, width=width, distortion_model='plumb_bob',
                            d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=p, binning_x=0, binning_y=0,
                            roi=roi)
        self.bag.write(DEPTH_TOPIC, stamp_ns, self.bag.serialize(image, _IMAGE))
        self.bag.write(INFO_TOPIC, stamp_ns, self.bag.serialize(info, _INFO))


def save_depth_truth(depth_scene, gt_dir: Path, stamps_ns) -> Path:
    """Write BAG_gt/depth_truth.json: the camera and, per frame, each visible object's 3D truth."""
    cam = depth_scene.camera

    def entry(pos, vel):
        return {'position': [float(v) for v in pos], 'velocity': [float(v) for v in vel]}
    frames = [{'stamp_ns': int(stamp), 'objects': {str(i): entry(*pv) for i, pv in truth.items()}}
              for stamp, truth in zip(stamps_ns, depth_scene.truth)]
    path = Path(gt_dir) / TRUTH_FILE
    path.write_text(json.dumps({'camera': {'fx': cam.fx, 'fy': cam.fy, 'cx': cam.cx, 'cy': cam.cy,
                                           'width': cam.width, 'height': cam.height},
                                'frames': frames}))
    return path


# ---- replay ------------------------------------------------------------------------------------

def _find_topics(reader) -> tuple[Optional[str], Optional[str]]:
    depth = [t.topic for t in reader.topics() if t.msgtype == _IMAGE and 'depth' in t.topic]
    info = [t.topic for t in reader.topics() if t.msgtype == _INFO]
    return (depth[0] if depth else None), (info[0] if info else None)


class BagDepth:
    """Depth of a bag for replay: matched to each colour frame like the node does, 3D per track."""

    def __init__(self, reader, depth_topic: str, info_topic: str, out_dir: Path, config: DepthConfig):
        """Index the depth messages by header stamp (raw bytes kept, decoded only when matched)."""
        self.reader, self.config = reader, config
        self._stamps, self._raw = [], []
        for _, raw, conn in reader.messages(depth_topic):
            msg = reader.deserialize(raw, conn.msgtype)
            self._stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
            self._raw.append((raw, conn.msgtype))
        order = np.argsort(self._stamps, kind='stable')
        self._stamps = [self._stamps[i] for i in order]
        self._raw = [self._raw[i] for i in order]
        info = next(iter(reader.messages(info_topic)), None)
        self.camera = None
        if info is not None:
            msg = reader.deserialize(info[1], info[2].msgtype)
            self.camera = CameraIntrinsics.from_k(msg.k, int(msg.width), int(msg.height))
        self._next = 0
        self._matcher = StampMatcher(int(round(config.sync_tolerance_s * 1e9)))
        self._tracker = Tracker3D(config)
        self._first_ns: dict[int, int] = {}
        self._jsonl = (Path(out_dir) / TRACKS3D_FILE).open('w')

    @classmethod
    def open(cls, reader, out_dir: Path, depth_options: Mapping[str, Any]) -> Optional['BagDepth']:
        """A BagDepth when the bag has depth and camera_info topics, else None."""
        depth_topic, info_topic = _find_topics(reader)
        if depth_topic is None or info_topic is None:
            return None
        return cls(reader, depth_topic, info_topic, out_dir, DepthConfig.from_options(depth_options))

    def step(self, index: int, tracks: Tracks, published: Collection[int]) -> dict:
        """3D estimates {track id: Estimate3D} for this frame; one line of tracks3d.jsonl.

        Every track's filter runs (a tentative track's 3D state is ready when it is first shown), but
        tracks3d.jsonl mirrors the published 3D block: only the `published` ids are written.
        """
        from vis_ros.ros.depth_input import depth_image_to_numpy
        limit = tracks.stamp_ns + self._matcher.tolerance_ns   # what a live node could have by now
        end = bisect.bisect_right(self._stamps, limit)
        for k in range(self._next, end):
            self._matcher.add(self._stamps[k], self._raw[k])
        self._next = max(self._next, end)
        matched = self._matcher.match(tracks.stamp_ns)
        depth = camera = None
        if matched is not None and self.camera is not None:
            depth = check_depth(depth_image_to_numpy(self.reader.deserialize(*matched)))
            camera = self.camera.scaled_to(depth.shape[1], depth.shape[0])
        estimates = self._tracker.step(tracks, depth, camera)
        self._write(index, tracks.stamp_ns, estimates, published)
        return estimates

    def _write(self, index: int, stamp_ns: int, estimates: dict, published: Collection[int]) -> None:
        lines = {}
        for track_id, est in estimates.items():
            first = self._first_ns.setdefault(track_id, stamp_ns)   # settling counts from the first estimate
            if track_id not in published:
                continue
            lines[str(track_id)] = {'position': [round(float(v), 5) for v in est.position],
                                    'velocity': [round(float(v), 5) for v in est.velocity],
                                    'size': [round(float(v), 4) for v in est.size],
                                    'settled': (stamp_ns - first) / 1e9 >= SETTLE_S}
        self._jsonl.write(json.dumps({'index': index, 'stamp_ns': stamp_ns, 'tracks': lines}) + '\n')

    def summary(self) -> dict:
        """Matched / missing / late depth counts, for summary.json."""
        return self._matcher.counts()

    def close(self) -> None:
        """Close tracks3d.jsonl."""
        self._jsonl.close()


# ---- eval --------------------------------------------------------------------------------------

def load_tracks3d(pred_dir: Path) -> Optional[dict[int, dict]]:
    """{frame index: record} of OUT/tracks3d.jsonl, None when the replay had no depth."""
    path = Path(pred_dir) / TRACKS3D_FILE
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {int(r['index']): r for r in records}


def depth_errors(pred, gt, pred_dir: Path, gt_dir: Path, states) -> Optional[dict]:
    """3D error summary of one replay against its scene's depth truth, None without either."""
    truth_path = Path(gt_dir) / TRUTH_FILE
    tracks3d = load_tracks3d(pred_dir)
    if tracks3d is None or not truth_path.is_file():
        return None
    truth = json.loads(truth_path.read_text())['frames']
    pairs = []
    for index, record in sorted(tracks3d.items()):
        if index >= len(truth) or not record['tracks']:
            continue
        pred_ids, pred_masks = pred.masks(index, gt.height, gt.width, states)
        gt_ids, gt_masks = gt.frame(index)
        for track_id, gt_id in match_masks(pred_ids, pred_masks, gt_ids, gt_masks):
            est, true = record['tracks'].get(str(track_id)), truth[index]['objects'].get(str(gt_id))
            if est is not None and true is not None:
                pairs.append(pair_errors(est['position'], est['velocity'], true['position'],
                                         true['velocity'], est['settled']))
    return summarize(pairs)


def format_depth(summary: dict) -> str:
    """One text line of a depth error summary."""
    pos, rel = summary['position_m'], summary['position_relative']
    vel, settled = summary['velocity_mps'], summary['velocity_settled_mps']
    return (f'3D: {pos["count"]} matched; position error median {pos["median"]:.3f} m '
            f'({100 * rel["median"]:.1f}% of range), p90 {pos["p90"]:.3f} m ({100 * rel["p90"]:.1f}%); '
            f'velocity error median {vel["median"]:.3f} m/s (p90 {vel["p90"]:.3f}), '
            f'settled tracks median {settled["median"]:.3f} m/s (p90 {settled["p90"]:.3f})')
