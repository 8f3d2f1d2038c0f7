"""Stream an image sequence over DDS like a camera: `python -m vis_ros.tools.camera_publisher`.

Sources: a DAVIS sequence from ../shared/data (--sequence car-roundabout), a built-in synthetic
scene (--synthetic crossing) or any folder of images (--folder DIR). Frames go out as
sensor_msgs/Image rgb8 at --rate Hz, stamped with the ROS clock at send time; --stamps-out writes
the (index, stamp_ns) pairs as JSON so outputs can be matched back to ground truth.

Exit codes: 0 sent, 1 failed (no subscriber appeared, unreadable source), 2 usage.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vis_ros.core.errors import VisError
from vis_ros.core.sequences import DAVIS_FPS, load_davis_sequence, read_rgb, shared_data_dir

DEFAULT_SEQUENCE = 'car-roundabout'   # one large car moving on a smooth path: motion segmentation's best case
DEFAULT_SYNTHETIC = 'crossing'


@dataclass(frozen=True)
class Source:
    """Frames to stream plus their ground truth, if any.

    gt_masks: per frame, DAVIS: (H, W) bool foreground; synthetic: (K, H, W) bool per object.
    gt_ids: synthetic only, per frame (K,) object ids matching gt_masks.
    why: how this source was chosen (asked for, or a fallback and its cause), for the user.
    """

    name: str
    kind: str          # 'davis' | 'synthetic' | 'folder'
    frames: list[np.ndarray]
    fps: float
    gt_masks: Optional[list[np.ndarray]] = None
    gt_ids: Optional[list[np.ndarray]] = None
    why: str = ''


def load_source(sequence: Optional[str] = None, synthetic: Optional[str] = None,
                folder: Optional[str] = None, num_frames: Optional[int] = None) -> Source:
    """Load the chosen source; with none chosen, DAVIS DEFAULT_SEQUENCE if present, else synthetic."""
    if folder:
        files = load_davis_sequence(Path(folder))
        frames = [read_rgb(f) for f in files.frames[:num_frames]]
        return Source(Path(folder).name, 'folder', frames, DAVIS_FPS, why=f'--folder {folder}')
    data = shared_data_dir()
    if synthetic is None and (sequence or data is not None):
        source = _davis_source(sequence or DEFAULT_SEQUENCE, num_frames)
        why = f'--sequence {sequence}' if sequence else f'the default DAVIS sequence ({data} is present)'
        return dataclasses.replace(source, why=f'{why}; frames and ground truth from {data / "davis2016"}')
    from vis_ros.core.synthetic import make_scene
    scene = make_scene(synthetic or DEFAULT_SYNTHETIC, seed=0, num_frames=num_frames)
    why = f'--synthetic {synthetic}' if synthetic else (
        f'FALLBACK: no DAVIS data at {missing_data_hint()}, so a built-in synthetic scene is streamed '
        'instead (set VIS_ROS_SHARED_DATA=/path/to/shared/data or pass --sequence to use DAVIS)')
    return Source(synthetic or DEFAULT_SYNTHETIC, 'synthetic', list(scene.frames), float(scene.fps),
                  [np.asarray(m) for m in scene.gt_masks], [np.asarray(i) for i in scene.gt_ids], why)


def missing_data_hint() -> str:
    """Where the shared data was looked for ($VIS_ROS_SHARED_DATA, else ../shared/data)."""
    import os

    from vis_ros.core.sequences import repo_root
    return os.environ.get('VIS_ROS_SHARED_DATA') or str(repo_root().parent / 'shared' / 'data')


def _davis_source(name: str, num_frames: Optional[int]) -> Source:
    data = shared_data_dir()
    folder = None if data is None else data / 'davis2016' / name
    if folder is None or not folder.is_dir():
        where = 'absent' if data is None else f'{data / "davis2016"}'
        raise VisError(f'DAVIS sequence {name!r} not found (../shared/data: {where}); '
                       f'use --synthetic {DEFAULT_SYNTHETIC} or set VIS_ROS_SHARED_DATA')
    seq = load_davis_sequence(folder)
    frames, masks = [], []
    for rgb, gt in seq.iter_frames():
        frames.append(rgb)
        masks.append(gt)
        if num_frames and len(frames) >= num_frames:
            break
    return Source(name, 'davis', frames, DAVIS_FPS, masks if masks[0] is not None else None)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (defaults shown in --help)."""
    parser = argparse.ArgumentParser(prog='camera_publisher', description=__doc__.split('\n')[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--sequence', help=f'DAVIS sequence in ../shared/data (default: {DEFAULT_SEQUENCE} '
                       'when the data is present, else the synthetic scene)')
    group.add_argument('--synthetic', help='synthetic scene preset, e.g. crossing, occlusion, reentry')
    group.add_argument('--folder', help='folder of images (name order)')
    parser.add_argument('--topic', default='/camera/image_raw',
                        help='image topic (default: /camera/image_raw)')
    parser.add_argument('--rate', type=float, help="frames per second (default: the source's)")
    parser.add_argument('--num-frames', type=int, metavar='N',
                        help='send only the first N frames (default: all)')
    parser.add_argument('--frame-id', default='camera',
                        help='header.frame_id of every frame (default: camera)')
    parser.add_argument('--reliability', default='best_effort', choices=('best_effort', 'reliable'),
                        help='publisher QoS reliability (default: best_effort, as camera drivers)')
    parser.add_argument('--wait-subscriber-s', type=float, default=30.0,
                        help='wait this long for a subscriber before sending (default: 30)')
    parser.add_argument('--settle-s', type=float, default=0.5,
                        help='pause after the subscriber appears, for discovery to finish (default: 0.5)')
    parser.add_argument('--go-on-stdin', action='store_true',
                        help='after the subscriber appears, wait for a line on stdin before sending '
                             '(lets a recorder get ready first)')
    parser.add_argument('--stamps-out', type=Path, help='write {"stamps_ns": [...]} JSON here')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Stream the source once; exit 0 ok, 1 failed, 2 usage."""
    args = build_parser().parse_args(argv)
    if args.rate is not None and not 0 < args.rate <= 1000:
        print(f'camera_publisher: --rate must be in (0, 1000], got {args.rate}', file=sys.stderr)
        return 2
    from vis_ros.ros.camera_source import CameraSource
    # The publisher exists before the (slow) frame loading, so the node sees its camera at once.
    with CameraSource(args.topic, reliability=args.reliability, frame_id=args.frame_id) as camera:
        try:
            source = load_source(args.sequence, args.synthetic, args.folder, args.num_frames)
        except VisError as err:
            print(f'camera_publisher: {err}', file=sys.stderr)
            return 1
        rate = args.rate or source.fps
        if not camera.wait_for_subscriber(args.wait_subscriber_s):
            print(f'camera_publisher: nobody subscribed to {args.topic} within '
                  f'{args.wait_subscriber_s:g} s (is vis_node running, same ROS_DOMAIN_ID?)', file=sys.stderr)
            return 1
        if args.go_on_stdin:
            sys.stdin.readline()
        time.sleep(args.settle_s)
        print(f'camera_publisher: streaming {len(source.frames)} frames of {source.name} at '
              f'{rate:g} Hz to {args.topic}', file=sys.stderr)
        sent = camera.stream(source.frames, rate)
    if args.stamps_out:
        args.stamps_out.write_text(json.dumps({'source': source.name, 'rate_hz': rate,
                                               'stamps_ns': [stamp for _, stamp in sent]}))
    print(f'camera_publisher: sent {len(sent)} frames', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
