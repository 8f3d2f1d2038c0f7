"""What `vis-ros replay` writes per frame: out.mcap, frames.jsonl and (on request) the overlay video.

By default out.mcap holds only /vis_ros/instances and /vis_ros/classes (the input stamps are in
every InstanceArray header and in frames.jsonl), zstd-compressed MCAP chunks: a few hundred KB for
a 150-frame 640x480 bag instead of the 369 MB that raw images, labels and overlays took.
`record` adds `images` (the input topic, copied byte for byte), `labels` (/vis_ros/labels) and
`overlay` (/vis_ros/overlay and overlay.webm).

The messages are the node's own: built by vis_ros.ros.convert from the same tracks the node would
publish (`select_tracks`), serialized by rclpy, with the SOURCE image header. frames.jsonl is
flushed per line, and `close()` (always called, also after an error or a signal) finalizes the
MCAP index and renames the video from its temporary name, so a replay that stops midway leaves
complete files holding the frames processed before it stopped.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Sequence


from vis_ros.core.covariance import class_table_version
from vis_ros.core.overlay import draw_overlay, label_image
from vis_ros.core.types import Frame, Tracks
from vis_ros.tools.bag_io import BagWriter, deserialize_cdr
from vis_ros.tools.video_out import DEFAULT_CODEC, VideoFile

TOPIC_INSTANCES = '/vis_ros/instances'
TOPIC_OVERLAY = '/vis_ros/overlay'
TOPIC_LABELS = '/vis_ros/labels'
TOPIC_CLASSES = '/vis_ros/classes'
_ARRAY = 'vis_ros_msgs/msg/InstanceArray'
_IMAGE = 'sensor_msgs/msg/Image'
RECORDABLE = ('images', 'overlay', 'labels')
OUTPUT_FILES = ('out.mcap', 'overlay.webm', 'overlay.mp4', 'frames.jsonl', 'summary.json')


def human_size(size: int) -> str:
    """Format a byte count as B, KB, MB or GB (powers of 1000, like `ls -lh --si`)."""
    for unit in ('B', 'KB', 'MB'):
        if size < 1000:
            return f'{size:.0f} {unit}' if unit == 'B' else f'{size:.1f} {unit}'
        size /= 1000
    return f'{size:.2f} GB'


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
    """Writers of one replay's output folder; `write()` once per processed frame, `close()` once.

    record: any of RECORDABLE; compress: zstd MCAP chunks (readable by Foxglove, ros2 bag, rosbags).
    """

    def __init__(self, out_dir: Path, input_topic: str, input_connection, class_names: Sequence[str],
                 backend: str, overlay_alpha: float = 0.45, video_fps: float = 30.0, *,
                 record: Sequence[str] = (), compress: bool = True, video_codec: str = DEFAULT_CODEC):
        """Open out.mcap (topics registered) and frames.jsonl; the video opens on the first frame."""
        self.out_dir = Path(out_dir)
        self.class_names = tuple(class_names)
        self.backend = backend
        self.overlay_alpha = overlay_alpha
        self.input_topic = input_topic
        self.record = frozenset(record)
        self.frames_written = 0
        self.video = VideoFile(self.out_dir / 'overlay', video_fps, video_codec, 'vis-ros replay') \
            if 'overlay' in self.record else None
        self._jsonl = (self.out_dir / 'frames.jsonl').open('w')
        self.bag = BagWriter(self.out_dir / 'out.mcap', storage='mcap', single_file=True, compress=compress)
        if 'images' in self.record:   # copied byte for byte, with the definition the source bag stored
            self.bag.add_topic(input_topic, input_connection.msgtype,
                               msgdef=input_connection.msgdef.data or None, digest=input_connection.digest)
        topics = [(TOPIC_INSTANCES, _ARRAY), (TOPIC_CLASSES, 'vis_ros_msgs/msg/ClassTable')]
        topics += [(t, _IMAGE) for t, what in ((TOPIC_OVERLAY, 'overlay'), (TOPIC_LABELS, 'labels'))
                   if what in self.record]
        for topic, msgtype in topics:
            self.bag.add_topic(topic, msgtype)

    @property
    def video_error(self) -> str:
        """Why no overlay video was written ('' when it was, or was not asked for)."""
        return self.video.error if self.video else ''

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
        if 'images' in self.record:
            self.bag.write(self.input_topic, bag_time_ns, raw_input)
        self.bag.write(TOPIC_INSTANCES, bag_time_ns, self._canonical(cdr.serialize(array), _ARRAY))
        if 'labels' in self.record:
            labels = label_image(shown.tracks, frame.height, frame.width)
            self.bag.write(TOPIC_LABELS, bag_time_ns,
                           self._canonical(cdr.serialize(convert.labels_to_image(labels, header)), _IMAGE))
        if 'overlay' in self.record:
            overlay = draw_overlay(frame.image, shown.tracks, self.class_names, alpha=self.overlay_alpha)
            self.bag.write(TOPIC_OVERLAY, bag_time_ns,
                           self._canonical(cdr.serialize(convert.rgb_to_image(overlay, header)), _IMAGE))
            self.video.write(overlay)
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

    def close(self) -> None:
        """Finalize every file (the video gets its final name only now); safe to call twice."""
        if self.video is not None:
            self.video.close()
        if not self._jsonl.closed:
            self._jsonl.close()
        self.bag.close()

    def written(self) -> dict[str, int]:
        """Sizes in bytes of the files this replay wrote (after close)."""
        names = ['out.mcap', 'frames.jsonl']
        if self.video is not None and self.video.path is not None:
            names.append(self.video.path.name)
        return {name: (self.out_dir / name).stat().st_size for name in names
                if (self.out_dir / name).is_file()}


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
        for name in OUTPUT_FILES + ('.out.mcap.tmp', '.overlay.partial.webm', '.overlay.partial.mp4'):
            path = out_dir / name
            if path.is_dir():
                import shutil
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    except OSError as err:
        raise InputError(f'cannot write to output folder {out_dir}: {err.strerror or err}; '
                         'choose a writable --out folder') from err
