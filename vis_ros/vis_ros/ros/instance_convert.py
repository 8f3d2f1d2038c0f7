"""core Tracks <-> vis_ros_msgs/InstanceArray (ROI + varint-RLE masks, the wire format of Instance.msg).

The inverse functions read rclpy messages and rosbags messages alike (mask_rle is an
`array.array`, `bytes` or a 1-D `np.uint8` array), so the bag tools can decode recorded output.
"""
from __future__ import annotations

import array
from typing import Sequence

import numpy as np
from sensor_msgs.msg import RegionOfInterest
from vis_ros_msgs.msg import Instance, InstanceArray

from vis_ros.core.covariance import pack_upper, unpack_upper
from vis_ros.core.errors import InputError
from vis_ros.core.masks import Roi, decode_mask, encode_mask
from vis_ros.core.types import Track, Tracks, TrackState
from vis_ros.ros.header import copy_header, stamp_to_ns

# Tracks a planner may act on; TENTATIVE ones join only with publish_tentative (they may die
# unconfirmed, and a planner that saw them would see flicker ids).
_PUBLISHED_STATES = (TrackState.CONFIRMED, TrackState.LOST)


def _class_name(class_id: int, class_names: Sequence[str]) -> str:
    return str(class_names[class_id]) if 0 <= class_id < len(class_names) else ''


def track_to_instance(track: Track, class_names: Sequence[str]) -> Instance:
    """Convert one track to a vis_ros_msgs/Instance: counters, class, velocity, roi and RLE mask."""
    roi, rle = encode_mask(track.mask)
    class_id = int(track.class_id)
    return Instance(
        id=int(track.track_id), state=int(track.state), class_id=class_id,
        class_name=_class_name(class_id, class_names), score=float(track.score),
        age=int(track.age), hits=int(track.hits), frames_since_seen=int(track.frames_since_seen),
        velocity_x=float(track.velocity[0]), velocity_y=float(track.velocity[1]),
        roi=RegionOfInterest(x_offset=roi.x, y_offset=roi.y, width=roi.width, height=roi.height,
                             do_rectify=False),
        mask_rle=rle,   # bytes: rclpy's fast path for uint8[]
        **kalman_box_fields(track))


# ---- issue 15: Kalman box and 3D block -------------------------------------------------------
_UNKNOWN_BOX_COV = np.array([-1.0] + [0.0] * 9, np.float32)   # box_covariance[0] = -1: unknown


def kalman_box_fields(track: Track) -> dict:
    """Instance fields of the track's Kalman box (the mask's box with unknown covariance if none)."""
    if track.kalman_box is not None:
        (cx, cy, w, h), cov = track.kalman_box, pack_upper(track.kalman_box_cov)
    else:
        x1, y1, x2, y2 = (float(v) for v in track.box)
        cx, cy, w, h, cov = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, _UNKNOWN_BOX_COV
    return dict(box_center_x=float(cx), box_center_y=float(cy), box_width=float(w),
                box_height=float(h), box_covariance=cov)


def instance_kalman_box(instance) -> tuple[np.ndarray, np.ndarray] | None:
    """([cx, cy, w, h] float32, (4, 4) float32 covariance) of an Instance, None if unknown."""
    cov = np.asarray(getattr(instance, 'box_covariance', _UNKNOWN_BOX_COV), np.float32)
    if cov.size != 10 or cov[0] < 0:
        return None
    box = np.array([instance.box_center_x, instance.box_center_y, instance.box_width,
                    instance.box_height], np.float32)
    return box, unpack_upper(cov, 4).astype(np.float32)


def set_positions_3d(msg, estimates) -> None:
    """Fill the 3D block of each Instance in `msg` from `estimates` {track id: core Estimate3D}.

    Instances without an estimate keep has_position_3d false and zeros (the message default).
    """
    for inst in msg.instances:
        est = estimates.get(int(inst.id))
        if est is None:
            continue
        inst.has_position_3d = True
        inst.position_3d = np.asarray(est.position, np.float32)
        inst.position_3d_covariance = pack_upper(est.position_cov)
        inst.velocity_3d = np.asarray(est.velocity, np.float32)
        inst.velocity_3d_covariance = pack_upper(est.velocity_cov)
        inst.size_3d = np.asarray(est.size, np.float32)


def tracks_to_instance_array(tracks: Tracks, header, class_names: Sequence[str],
                             publish_tentative: bool = False) -> InstanceArray:
    """Convert one tracker step to an InstanceArray with an exact copy of the source image `header`.

    Instances are the CONFIRMED and LOST tracks (plus TENTATIVE ones if `publish_tentative`),
    ordered by id; `ended_ids` are the tracks that ended in this step. class_name is
    class_names[class_id], or '' for an id outside the table (-1 = unknown).
    """
    states = _PUBLISHED_STATES + ((TrackState.TENTATIVE,) if publish_tentative else ())
    msg = InstanceArray()
    msg.header = copy_header(header)
    msg.image_height, msg.image_width = (int(v) for v in tracks.image_size)
    chosen = sorted((t for t in tracks.tracks if t.state in states), key=lambda t: t.track_id)
    msg.instances = [track_to_instance(track, class_names) for track in chosen]
    msg.ended_ids = array.array('Q', sorted(int(i) for i in tracks.ended_ids))
    return msg


def _instance_roi(instance) -> Roi:
    roi = instance.roi
    return Roi(int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))


def instance_mask(instance, height: int, width: int) -> np.ndarray:
    """Decode one Instance's full (height, width) bool mask; InputError names the instance if corrupt."""
    try:
        return decode_mask(_instance_roi(instance), instance.mask_rle, height, width)
    except InputError as error:
        raise InputError(f'Instance id {int(instance.id)}: {error}') from error


def _image_size(msg) -> tuple[int, int]:
    height, width = int(msg.image_height), int(msg.image_width)
    if height == 0 or width == 0:
        raise InputError(f'InstanceArray.image_width x image_height is {width}x{height}; '
                         'masks need the source image size')
    return height, width


def instance_array_to_masks(msg) -> dict[int, np.ndarray]:
    """Decode every instance's full-frame (H, W) bool mask, keyed by track id."""
    height, width = _image_size(msg)
    return {int(inst.id): instance_mask(inst, height, width) for inst in msg.instances}


def instance_array_to_tracks(msg) -> Tracks:
    """Rebuild the core Tracks an InstanceArray describes (the inverse of tracks_to_instance_array).

    Each track's box is its mask's ROI, its kalman_box the message's Kalman box (None when the
    message says unknown), and detection_index is -1.
    """
    height, width = _image_size(msg)
    tracks = []
    for inst in msg.instances:
        x, y, w, h = _instance_roi(inst)
        try:
            state = TrackState(int(inst.state))
        except ValueError:
            raise InputError(f'Instance id {int(inst.id)} has state {int(inst.state)}; '
                             'expected 0..3 (STATE_* constants)') from None
        kalman = instance_kalman_box(inst)
        tracks.append(Track(
            kalman_box=None if kalman is None else kalman[0],
            kalman_box_cov=None if kalman is None else kalman[1],
            track_id=int(inst.id), state=state, box=np.array([x, y, x + w, y + h], np.float32),
            mask=instance_mask(inst, height, width), score=float(inst.score),
            class_id=int(inst.class_id), age=int(inst.age), hits=int(inst.hits),
            frames_since_seen=int(inst.frames_since_seen),
            velocity=(float(inst.velocity_x), float(inst.velocity_y))))
    return Tracks(stamp_ns=stamp_to_ns(msg.header.stamp), image_size=(height, width),
                  tracks=tuple(tracks), ended_ids=tuple(int(i) for i in msg.ended_ids))
