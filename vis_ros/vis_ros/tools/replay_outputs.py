"""What `vis-ros replay` writes per frame: out.mcap, frames.jsonl and (on request) the overlay video.

By default out.mcap holds only /vis_ros/instances and /vis_ros/classes (the input stamps are in
every InstanceArray header and in frames.jsonl), zstd-compressed MCAP chunks: ~100 KB for a
150-frame 640x480 bag instead of the 352 MB that raw images, labels and overlays took.
`record` adds `images` (the input topic, copied byte for byte), `labels` and `overlay` (and
overlay.webm). Compressed (the default), those are sensor_msgs/CompressedImage on
/vis_ros/labels/compressed (lossless 16-bit PNG) and /vis_ros/overlay/compressed (JPEG), as
image_transport's compressed plugin names and formats them; uncompressed, Image on /vis_ros/labels
(mono16) and /vis_ros/overlay (rgb8).

The messages are the node's own: built by vis_ros.ros.convert from the same tracks the node would
publish (core.stream.PublicIds), serialized by rclpy, with the SOURCE image header. frames.jsonl is
flushed per line, and `close()` (always called, also after an error or a signal) finalizes the
MCAP index and renames the video from its temporary name, so a replay that stops midway leaves
complete files holding the frames processed before it stopped.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


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
_COMPRESSED = 'sensor_msgs/msg/CompressedImage'
# what: (format string, cv2.imencode extension, parameters) of the compressed topics
_CODEC = {'overlay': ('rgb8; jpeg compressed bgr8', '.jpg', [cv2.IMWRITE_JPEG_QUALITY, 90]),
          'labels': ('mono16; png compressed mono16', '.png', [cv2.IMWRITE_PNG_COMPRESSION, 3])}
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
        self.compress = compress
        self.frames_written = 0
        self.video = VideoFile(self.out_dir / 'overlay', video_fps, video_codec, 'vis-ros replay') \
            if 'overlay' in self.record else None
        self._jsonl = (self.out_dir / 'frames.jsonl').open('w')
        self.bag = BagWriter(self.out_dir / 'out.mcap', storage='mcap', single_file=True, compress=compress)
        if 'images' in self.record:   # copied byte for byte, with the definition the source bag stored
            self.bag.add_topic(input_topic, input_connection.msgtype,
                               msgdef=input_connection.msgdef.data or None, digest=input_connection.digest)
        self.bag.add_topic(TOPIC_INSTANCES, _ARRAY)
        self.bag.add_topic(TOPIC_CLASSES, 'vis_ros_msgs/msg/ClassTable')
        for what in ('overlay', 'labels'):
            if what in self.record:
                self.bag.add_topic(self.image_topic(what), _COMPRESSED if compress else _IMAGE)

    def image_topic(self, what: str) -> str:
        """Topic of the overlay or label images (image_transport's /compressed when compressed)."""
        base = TOPIC_OVERLAY if what == 'overlay' else TOPIC_LABELS
        return f'{base}/compressed' if self.compress else base

    def _write_image(self, what: str, bag_time_ns: int, header, pixels: np.ndarray) -> None:
        from vis_ros.ros import cdr, convert
        if not self.compress:
            to_msg = convert.rgb_to_image if what == 'overlay' else convert.labels_to_image
            raw = self._canonical(cdr.serialize(to_msg(pixels, header)), _IMAGE)
        else:
            fmt, ext, params = _CODEC[what]
            image = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if what == 'overlay' else pixels
            ok, data = cv2.imencode(ext, image, params)
            if not ok:
                raise RuntimeError(f'cv2.imencode({ext}) failed for a {pixels.shape} {what} image')
            msg = self.bag.typestore.types[_COMPRESSED](header=header, format=fmt, data=data.reshape(-1))
            raw = self.bag.serialize(msg, _COMPRESSED)
        self.bag.write(self.image_topic(what), bag_time_ns, raw)

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
            self._write_image('labels', bag_time_ns, header, labels)
        if 'overlay' in self.record:
            overlay = draw_overlay(frame.image, shown.tracks, self.class_names, alpha=self.overlay_alpha)
            self._write_image('overlay', bag_time_ns, header, overlay)
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


def written_line(summary: dict, out: Path) -> str:
    """'wrote DIR: out.mcap 312.4 KB, frames.jsonl ... (total ...)' from the summary's sizes."""
    sizes = dict(summary['outputs']['sizes_bytes'])
    sizes['summary.json'] = (out / 'summary.json').stat().st_size
    listed = ', '.join(f'{name} {human_size(size)}' for name, size in sizes.items())
    return f'wrote {out}: {listed} (total {human_size(sum(sizes.values()))})'
