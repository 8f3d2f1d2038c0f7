"""`vis-ros make-bag SRC --out BAG`: turn images, a video or a synthetic scene into a rosbag2.

SRC is one of
- a folder of images (read in file-name order), a DAVIS sequence folder (its JPEGImages/ is used)
  or its JPEGImages/ folder;
- a video file (anything cv2.VideoCapture opens);
- `synthetic:<preset>` (vis_ros.core.synthetic: crossing, occlusion, reentry, crowd, pan); its
  ground truth is saved next to the bag, in BAG_gt/ (format of core.synthetic.save_scene), for
  `vis-ros eval`.

Messages are sensor_msgs/Image rgb8 (or CompressedImage jpeg with --compressed) with real
stamps: the first frame at a fixed epoch (1.7e9 s, so two runs give identical bags), then 1/rate
apart (synthetic scenes keep their own, slightly irregular, spacing unless --rate is given); the
bag's receive time equals the header stamp. The bag is written to a temporary folder and renamed
into place at the end, so a failure never leaves a half-written BAG behind.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np

from vis_ros.core.errors import InputError, VisError
from vis_ros.tools.bag_io import STORAGES, BagWriter
from vis_ros.tools.depth_tools import DepthBagWriter, save_depth_truth
from vis_ros.tools.stop_signals import Interrupted, StopSignals

EPOCH_NS = 1_700_000_000 * 1_000_000_000
SYNTHETIC = 'synthetic:'
JPEG_QUALITY = 90


@dataclass
class Source:
    """Frames to write: an iterator of (rgb, offset_ns or None), its rate, count and a description."""

    frames: Iterator[tuple[np.ndarray, Optional[int]]]
    fps: float
    count: Optional[int]
    description: str
    scene: object = None
    depth: object = None   # a core.synthetic_depth.DepthScene with --depth (issue 15)


_PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'


def image_damage(data: bytes) -> str:
    """Why an encoded JPEG or PNG is cut short or broken ('' when its structure is whole).

    OpenCV decodes a truncated JPEG without an error (the missing rows come out grey) and a PNG
    cut after its last complete row too, so the file's own end markers are checked: a JPEG must
    start with SOI and end with EOI (FFD9, trailing padding allowed), a PNG must end with IEND.
    """
    if data[:2] == b'\xff\xd8':
        return '' if data.rstrip(b'\x00\r\n ').endswith(b'\xff\xd9') else \
            'JPEG without its end marker (FFD9): the file is truncated'
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        return '' if data.rstrip(b'\x00').endswith(_PNG_END) else \
            'PNG without its IEND chunk: the file is truncated'
    return ''


def read_image_checked(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; InputError names a truncated or corrupt file."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f'cannot read image {path}: {err.strerror or err}') from None
    damage = image_damage(data)
    bgr = None if damage else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if damage or bgr is None:
        raise InputError(f'cannot read image {path}: {damage or "not a decodable image"}; '
                         'replace or remove the file (make-bag writes no bag with a damaged frame)')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _folder_source(folder: Path, limit: Optional[int]) -> Source:
    from vis_ros.core.sequences import DAVIS_FPS, image_files
    davis = (folder / 'JPEGImages').is_dir()
    files = image_files(folder / 'JPEGImages' if davis else folder)[:limit]
    fps = DAVIS_FPS if davis or folder.name == 'JPEGImages' else 30.0
    return Source(((read_image_checked(f), None) for f in files), fps, len(files),
                  f'{len(files)} images from {folder}')


def _video_frames(capture, path: Path, limit: Optional[int]) -> Iterator[tuple[np.ndarray, None]]:
    try:
        index = 0
        while limit is None or index < limit:
            ok, bgr = capture.read()
            if not ok:
                break
            index += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None
        if index == 0:
            raise InputError(f'video {path} has no readable frame (empty, or a codec OpenCV cannot decode)')
    finally:
        capture.release()


def _video_source(path: Path, limit: Optional[int]) -> Source:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f'cannot open video {path}: not a video OpenCV can read (try an .mp4 or .avi, '
                         'or extract frames to a folder of images)')
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if count is not None and limit is not None:
        count = min(count, limit)
    return Source(_video_frames(capture, path, limit), float(fps), count, f'video {path}')


def _synthetic_source(spec: str, limit: Optional[int], size: tuple[int, int], seed: int,
                      depth: bool = False) -> Source:
    from vis_ros.core.synthetic import PRESETS, make_scene
    from vis_ros.core.synthetic_depth import make_depth_scene
    preset = spec[len(SYNTHETIC):]
    if preset not in PRESETS:
        raise InputError(f'unknown synthetic preset {preset!r}; '
                         f'choose synthetic:<one of {", ".join(PRESETS)}>')
    width, height = size
    depth_scene = make_depth_scene(preset, seed, limit, height, width) if depth else None
    scene = depth_scene.scene if depth else make_scene(preset, seed=seed, num_frames=limit, height=height,
                                                       width=width)
    first = int(scene.stamps_ns[0])
    frames = ((frame, int(stamp) - first) for frame, stamp in zip(scene.frames, scene.stamps_ns))
    return Source(frames, float(scene.fps), len(scene.frames),
                  f'synthetic scene {preset} ({len(scene.frames)} frames {width}x{height}, seed {seed})'
                  + (' with depth' if depth else ''), scene, depth_scene)


def open_source(spec: str, limit: Optional[int] = None, size: tuple[int, int] = (640, 480),
                seed: int = 0, depth: bool = False) -> Source:
    """Open SRC (folder, video file or synthetic:<preset>); InputError names a bad one."""
    if spec.startswith(SYNTHETIC):
        return _synthetic_source(spec, limit, size, seed, depth)
    if depth:
        raise InputError('--depth needs a synthetic:<preset> source (only those have true depth)')
    path = Path(spec)
    if path.is_dir():
        return _folder_source(path, limit)
    if path.is_file():
        return _video_source(path, limit)
    raise InputError(f'source {spec} does not exist; give a folder of images, a video file or '
                     'synthetic:<preset>')


def _image_message(store, rgb: np.ndarray, header, compressed: bool):
    """Build a rosbags sensor_msgs Image (rgb8) or CompressedImage (jpeg) message."""
    if compressed:
        ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise InputError(f'JPEG encoding of a {rgb.shape} frame failed')
        return store.types['sensor_msgs/msg/CompressedImage'](
            header=header, format='rgb8; jpeg compressed bgr8', data=jpeg.reshape(-1))
    height, width = rgb.shape[:2]
    return store.types['sensor_msgs/msg/Image'](
        header=header, height=height, width=width, encoding='rgb8', is_bigendian=0, step=width * 3,
        data=np.ascontiguousarray(rgb).reshape(-1))


def write_bag(source: Source, out: Path, *, topic: str, frame_id: str, rate: Optional[float],
              compressed: bool, storage: str, stop: Optional[StopSignals] = None) -> int:
    """Write every frame of `source` to a new bag at `out`; returns the number of messages.

    A stop request (SIGINT/SIGTERM) is honoured between frames: the partial bag is removed.
    """
    msgtype = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    # A hidden sibling folder holds the bag until it is complete; the bag inside already has its
    # final name, because rosbag2 names its storage file after the bag folder.
    staging = out.with_name(f'.{out.name}.partial')
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    partial = staging / out.name
    period_ns = int(round(1e9 / (rate or source.fps)))
    count = 0
    try:
        with BagWriter(partial, storage=storage) as bag:
            bag.add_topic(topic, msgtype)
            depth = None if source.depth is None else DepthBagWriter(bag, source.depth, frame_id)
            types = bag.typestore.types
            for index, (rgb, offset_ns) in enumerate(source.frames):
                if stop is not None:
                    stop.check(f'after {index} frames; no bag was written')
                own_stamp = offset_ns is not None and rate is None
                stamp = EPOCH_NS + (offset_ns if own_stamp else index * period_ns)
                header = types['std_msgs/msg/Header'](
                    stamp=types['builtin_interfaces/msg/Time'](sec=stamp // 10**9, nanosec=stamp % 10**9),
                    frame_id=frame_id)
                bag.write(topic, stamp, bag.serialize(_image_message(bag.typestore, rgb, header, compressed),
                                                      msgtype))
                if depth is not None:
                    depth.write(index, stamp, header)
                count += 1
        if count == 0:
            raise InputError(f'{source.description} gave no frames; nothing to write')
        partial.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count


def build_parser() -> argparse.ArgumentParser:
    """Build the make-bag command line (each default is stated once, in its help)."""
    p = argparse.ArgumentParser(prog='vis-ros make-bag', description=__doc__.split('\n')[0])
    p.add_argument('src', help='folder of images, DAVIS sequence folder, video file, or synthetic:<preset> '
                   '(crossing, occlusion, reentry, crowd, pan)')
    p.add_argument('--out', type=Path, required=True, metavar='BAG', help='the bag folder to create')
    p.add_argument('--rate', type=float, metavar='HZ', help="frames per second; default: the source's "
                   '(DAVIS 24, images 30, a video its own fps, a synthetic scene its own stamps)')
    p.add_argument('--compressed', action='store_true', help='write sensor_msgs/CompressedImage (jpeg) '
                   'instead of Image rgb8')
    p.add_argument('--storage', choices=STORAGES, default='mcap',
                   help='rosbag2 storage format (default: mcap)')
    p.add_argument('--topic', help='image topic; default: /camera/image_raw, or '
                   '/camera/image_raw/compressed with --compressed')
    p.add_argument('--frame-id', default='camera', help='header.frame_id of every image (default: camera)')
    p.add_argument('--max-frames', type=int, metavar='N', help='write at most N frames (default: all)')
    p.add_argument('--size', default='640x480', metavar='WxH',
                   help='size of synthetic scenes (default: 640x480)')
    p.add_argument('--seed', type=int, default=0, help='seed of synthetic scenes (default: 0)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing bag at --out')
    p.add_argument('--depth', action='store_true', help='synthetic scenes: also write a 16UC1 depth '
                   'image and camera_info per frame, and the 3D truth in BAG_gt/depth_truth.json')
    return p


def _check_args(parser: argparse.ArgumentParser, args) -> tuple[int, int]:
    """Usage errors (exit 2) for bad option values; InputError for an --out that must not be replaced."""
    if args.rate is not None and not 0 < args.rate <= 10000:
        parser.error(f'--rate must be in (0, 10000] Hz, got {args.rate:g}')
    if args.max_frames is not None and args.max_frames < 1:
        parser.error(f'--max-frames must be >= 1, got {args.max_frames}')
    try:
        width, height = (int(v) for v in args.size.lower().split('x'))
    except ValueError:
        parser.error(f'--size must be WxH, e.g. 640x480, got {args.size!r}')
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        parser.error(f'--size must be between 16x16 and 8192x8192, got {args.size}')
    if args.out.exists():
        if not args.overwrite:
            raise InputError(f'{args.out} exists already; remove it, pick another --out, or pass --overwrite')
        if args.out.is_dir() and not (args.out / 'metadata.yaml').is_file():
            raise InputError(f'{args.out} is a folder but not a rosbag2; refusing to replace it')
    return width, height


def _make(args, size: tuple[int, int], topic: str, stop: StopSignals) -> tuple[int, object, str]:
    source = open_source(args.src, args.max_frames, size, args.seed, args.depth)
    stop.check('no bag was written')
    if args.out.exists():
        shutil.rmtree(args.out) if args.out.is_dir() else args.out.unlink()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    count = write_bag(source, args.out, topic=topic, frame_id=args.frame_id, rate=args.rate,
                      compressed=args.compressed, storage=args.storage, stop=stop)
    gt_note = ''
    if source.scene is not None:
        from vis_ros.core.synthetic import save_scene
        gt_dir = args.out.with_name(f'{args.out.name}_gt')
        shutil.rmtree(gt_dir, ignore_errors=True)
        save_scene(source.scene, gt_dir)
        if source.depth is not None:
            first = source.scene.stamps_ns[0]
            save_depth_truth(source.depth, gt_dir, [EPOCH_NS + s - first for s in source.scene.stamps_ns])
        gt_note = f'; ground truth in {gt_dir} (vis-ros eval ... --gt {gt_dir})'
    return count, source, gt_note


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `vis-ros make-bag`; 0 ok, 1 failed, 2 usage, 130/143 SIGINT/SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    topic = args.topic or ('/camera/image_raw/compressed' if args.compressed else '/camera/image_raw')
    with StopSignals() as stop:
        try:
            size = _check_args(parser, args)
            count, source, gt_note = _make(args, size, topic, stop)
        except (VisError, OSError) as err:
            print(f'vis-ros make-bag: error: {err}', file=sys.stderr)
            return err.exit_code if isinstance(err, Interrupted) else 1
    kind = 'CompressedImage jpeg' if args.compressed else 'Image rgb8'
    print(f'wrote {args.out} ({args.storage}): {count} {kind} messages on {topic} '
          f'from {source.description}{gt_note}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
