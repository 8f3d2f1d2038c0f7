"""What `vis-ros replay` writes per frame: out.mcap, overlay.mp4 and frames.jsonl.

The messages are the node's own: built by vis_ros.ros.convert from the same tracks the node would
publish (`select_tracks`), serialized by rclpy, with the SOURCE image header. Each file is valid
after every frame: frames.jsonl is flushed per line, and `close()` (always called, also after an
error) finalizes the MCAP index and the MP4, so a replay that fails midway leaves complete files
holding the frames processed before the failure.
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from vis_ros.core.covariance import class_table_version
from vis_ros.core.overlay import draw_overlay, label_image
from vis_ros.core.types import Frame, Tracks
from vis_ros.tools.bag_io import BagWriter, deserialize_cdr

TOPIC_INSTANCES = '/vis_ros/instances'
TOPIC_OVERLAY = '/vis_ros/overlay'
TOPIC_LABELS = '/vis_ros/labels'
TOPIC_CLASSES = '/vis_ros/classes'
_ARRAY = 'vis_ros_msgs/msg/InstanceArray'
_IMAGE = 'sensor_msgs/msg/Image'
OUTPUT_FILES = ('out.mcap', 'overlay.mp4', 'frames.jsonl', 'summary.json')


def instance_record(array, index: int, bag_time_ns: int) -> dict:
    """One frames.jsonl line of an InstanceArray: ids, states, classes, boxes, scores, RLE masks.

    boxes are the mask ROIs as [x1, y1, x2, y2] (x2/y2 exclusive); masks are {'roi': [x, y, w, h],
    'rle': base64 of the message's mask_rle bytes} (decode with core.masks.decode_mask).
    """
    stamp = array.header.stamp
    instances = list(array.instances)
    rois = [(int(i.roi.x_offset), int(i.roi.y_offset), int(i.roi.width), int(i.roi.height))
            for i in instances]
    return {
        'index': int(index), 'stamp_ns': int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
        'bag_time_ns': int(bag_time_ns), 'frame_id': str(array.header.frame_id),
        'height': int(array.image_height), 'width': int(array.image_width),
        'ids': [int(i.id) for i in instances], 'states': [int(i.state) for i in instances],
        'classes': [int(i.class_id) for i in instances],
        'class_names': [str(i.class_name) for i in instances],
        'scores': [round(float(i.score), 6) for i in instances],
        'boxes': [[x, y, x + w, y + h] for x, y, w, h in rois],
        'masks': [{'roi': list(roi), 'rle': base64.b64encode(bytes(i.mask_rle)).decode('ascii')}
                  for roi, i in zip(rois, instances)],
        'ended_ids': [int(i) for i in array.ended_ids],
    }


class ReplayOutputs:
    """Writers of one replay's output folder; `write()` once per processed frame, `close()` once."""

    def __init__(self, out_dir: Path, input_topic: str, input_connection, class_names: Sequence[str],
                 backend: str, overlay_alpha: float = 0.45, video_fps: float = 30.0):
        """Open out.mcap (topics registered) and frames.jsonl; the video opens on the first frame."""
        self.out_dir = Path(out_dir)
        self.class_names = tuple(class_names)
        self.backend = backend
        self.overlay_alpha = overlay_alpha
        self.video_fps = video_fps
        self.input_topic = input_topic
        self.frames_written = 0
        self._video: Optional[cv2.VideoWriter] = None
        self._video_size: Optional[tuple[int, int]] = None
        self.video_error = ''
        self._jsonl = (self.out_dir / 'frames.jsonl').open('w')
        self.bag = BagWriter(self.out_dir / 'out.mcap', storage='mcap', single_file=True)
        # The input images are copied byte for byte, with the definition the source bag stored.
        self.bag.add_topic(input_topic, input_connection.msgtype,
                           msgdef=input_connection.msgdef.data or None, digest=input_connection.digest)
        for topic, msgtype in ((TOPIC_INSTANCES, _ARRAY), (TOPIC_OVERLAY, _IMAGE), (TOPIC_LABELS, _IMAGE),
                               (TOPIC_CLASSES, 'vis_ros_msgs/msg/ClassTable')):
            self.bag.add_topic(topic, msgtype)

    def _write_class_table(self, bag_time_ns: int, stamp_ns: int) -> None:
        types = self.bag.typestore.types
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
            frame_id='')
        table = types['vis_ros_msgs/msg/ClassTable'](header=header, backend=self.backend,
                                                     class_names=list(self.class_names),
                                                     version=class_table_version(self.backend,
                                                                                 self.class_names))
        self.bag.write(TOPIC_CLASSES, bag_time_ns, self.bag.serialize(table, 'vis_ros_msgs/msg/ClassTable'))

    def write(self, index: int, bag_time_ns: int, raw_input: bytes, header, frame: Frame,
              shown: Tracks, estimates=None) -> dict:
        """Write one frame's messages, overlay video frame and JSON line; returns the record."""
        from vis_ros.ros import cdr, convert
        if self.frames_written == 0:
            self._write_class_table(bag_time_ns, frame.stamp_ns)
        array = convert.tracks_to_instance_array(shown, header, self.class_names, publish_tentative=True)
        array.class_table_version = class_table_version(self.backend, self.class_names)
        if estimates is not None:   # the 3D block, from the bag's depth (tools/depth_tools.py)
            convert.set_positions_3d(array, estimates)
        labels = label_image(shown.tracks, frame.height, frame.width)
        overlay = draw_overlay(frame.image, shown.tracks, self.class_names, alpha=self.overlay_alpha)
        self.bag.write(self.input_topic, bag_time_ns, raw_input)
        self.bag.write(TOPIC_INSTANCES, bag_time_ns, self._canonical(cdr.serialize(array), _ARRAY))
        self.bag.write(TOPIC_LABELS, bag_time_ns,
                       self._canonical(cdr.serialize(convert.labels_to_image(labels, header)), _IMAGE))
        self.bag.write(TOPIC_OVERLAY, bag_time_ns,
                       self._canonical(cdr.serialize(convert.rgb_to_image(overlay, header)), _IMAGE))
        self._write_video(overlay)
        record = instance_record(array, index, bag_time_ns)
        self._jsonl.write(json.dumps(record, separators=(',', ':')) + '\n')
        self._jsonl.flush()
        self.frames_written += 1
        return record

    def _canonical(self, raw: bytes, msgtype: str) -> bytes:
        """Return the same CDR message with zeroed alignment padding.

        rclpy (Fast-CDR) leaves its alignment padding bytes uninitialized, so two serializations
        of one message can differ in those bytes; decoding and re-encoding with rosbags keeps every
        field and zeroes the padding, which makes replays byte-for-byte reproducible. It also drops
        Fast-CDR's trailing alignment after an empty uint64[] (ended_ids), which rosbags-based
        readers refuse; rclpy reads both forms to equal messages (tested).
        """
        store = self.bag.typestore
        return bytes(store.serialize_cdr(deserialize_cdr(store, raw, msgtype), msgtype))

    def _write_video(self, overlay: np.ndarray) -> None:
        if self.video_error:
            return
        height, width = overlay.shape[:2]
        if self._video is None:
            path = self.out_dir / 'overlay.mp4'
            self._video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'),
                                          float(self.video_fps), (width, height))
            self._video_size = (width, height)
            if not self._video.isOpened():
                self.video_error = f'cv2.VideoWriter could not open {path} (mp4v codec missing?)'
                print(f'vis-ros replay: warning: {self.video_error}; overlay.mp4 is skipped '
                      '(the overlay is still in out.mcap)', file=sys.stderr)
                return
        if (width, height) != self._video_size:  # a camera that changes size mid-bag
            overlay = cv2.resize(overlay, self._video_size, interpolation=cv2.INTER_AREA)
        self._video.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finalize every file; safe to call twice."""
        if self._video is not None:
            self._video.release()
            self._video = None
        if not self._jsonl.closed:
            self._jsonl.close()
        self.bag.close()


def prepare_out_dir(out_dir: Path) -> None:
    """Create the output folder and replace outputs of an earlier replay (only our file names).

    InputError when the folder cannot be created or written, before anything is processed.
    """
    from vis_ros.core.errors import InputError
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / '.write_test'
        probe.write_bytes(b'')
        probe.unlink()
        for name in OUTPUT_FILES + ('.out.mcap.tmp',):
            path = out_dir / name
            if path.is_dir():
                import shutil
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    except OSError as err:
        raise InputError(f'cannot write to output folder {out_dir}: {err.strerror or err}; '
                         'choose a writable --out folder') from err
