"""InstanceArray size on the wire and conversion times, next to the full-frame-mask alternative.

Measures, in one run on this machine:
- serialized size (rclpy serialize_message) of a 20-instance 640x480 InstanceArray with realistic
  blob masks (ellipses 40-120 px across) vs 20 full-frame mono8 mask Images (what
  ultralytics_ros-style nodes publish);
- encode_mask / decode_mask time for one 640x480 mask (median of many);
- tracks_to_instance_array and instance_array_to_masks time for the 20 instances, and the part of
  it that is message building rather than RLE.

Usage: python benchmarks/message_size.py [--repeats 200] [--out benchmarks/results/message_size.md]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from rclpy.serialization import serialize_message

from vis_ros.core.masks import decode_mask, encode_mask, mask_box
from vis_ros.core.types import Track, Tracks, TrackState
from vis_ros.ros.convert import (
    instance_array_to_masks, make_header, numpy_to_image, tracks_to_instance_array)

HEIGHT, WIDTH, INSTANCES = 480, 640, 20
CLASSES = ('object',)


def blob_masks(count: int, seed: int = 0) -> list:
    """Return `count` filled ellipses 40-120 px across at random places in a 640x480 frame."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(count):
        canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
        center = (int(rng.integers(60, WIDTH - 60)), int(rng.integers(60, HEIGHT - 60)))
        axes = (int(rng.integers(20, 61)), int(rng.integers(20, 61)))
        cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        masks.append(canvas.astype(bool))
    return masks


def make_tracks(masks) -> Tracks:
    """Return confirmed tracks 1..N holding `masks`."""
    tracks = tuple(Track(track_id=i + 1, state=TrackState.CONFIRMED, box=mask_box(m), mask=m, score=0.9,
                         class_id=0, age=10, hits=10, frames_since_seen=0, velocity=(1.5, -2.0))
                   for i, m in enumerate(masks))
    return Tracks(stamp_ns=1_700_000_000_000_000_000, image_size=(HEIGHT, WIDTH), tracks=tracks)


def median_ms(function, repeats: int) -> float:
    """Return the median wall time of `function()` in milliseconds over `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(repeats: int) -> list:
    """Return table rows (figure, value) for the message sizes and conversion times."""
    masks = blob_masks(INSTANCES)
    tracks = make_tracks(masks)
    header = make_header(tracks.stamp_ns, 'camera_optical')
    msg = tracks_to_instance_array(tracks, header, CLASSES)
    instance_bytes = len(serialize_message(msg))
    mono8_bytes = sum(len(serialize_message(numpy_to_image(m.astype(np.uint8) * 255, 'mono8', header)))
                      for m in masks)
    rle_bytes = sum(len(i.mask_rle) for i in msg.instances)
    one = masks[0]
    roi, data = encode_mask(one)
    encode_ms = median_ms(lambda: encode_mask(one), repeats * 5)
    decode_ms = median_ms(lambda: decode_mask(roi, data, HEIGHT, WIDTH), repeats * 5)
    all_encode_ms = median_ms(lambda: [encode_mask(m) for m in masks], repeats)
    build_ms = median_ms(lambda: tracks_to_instance_array(tracks, header, CLASSES), repeats)
    decode_all_ms = median_ms(lambda: instance_array_to_masks(msg), repeats)
    serialize_ms = median_ms(lambda: serialize_message(msg), repeats)
    area = statistics.mean(int(m.sum()) for m in masks)
    return [
        ('InstanceArray, 20 blob instances, serialized', f'{instance_bytes:,} B'),
        ('  of which mask_rle payload', f'{rle_bytes:,} B ({rle_bytes / INSTANCES:.0f} B per mask, '
                                        f'mean mask area {area:,.0f} px)'),
        ('20 full-frame mono8 mask Images, serialized', f'{mono8_bytes:,} B'),
        ('size ratio (mono8 / InstanceArray)', f'{mono8_bytes / instance_bytes:,.0f}x'),
        ('encode_mask, one 640x480 blob mask (median)', f'{encode_ms:.3f} ms'),
        ('decode_mask, one 640x480 blob mask (median)', f'{decode_ms:.3f} ms'),
        ('encode_mask x 20 (median)', f'{all_encode_ms:.3f} ms'),
        ('tracks_to_instance_array, 20 instances (median)', f'{build_ms:.3f} ms'),
        ('  minus RLE encoding = message building (difference of medians)',
         f'{build_ms - all_encode_ms:.3f} ms'),
        ('instance_array_to_masks, 20 instances (median)', f'{decode_all_ms:.3f} ms'),
        ('rclpy serialize_message of the InstanceArray (median)', f'{serialize_ms:.3f} ms'),
    ]


def markdown_body(rows) -> str:
    """Return the rows as a markdown table (results_io adds the title and command line)."""
    lines = ['| figure | value |', '|---|---|']
    lines += [f'| {name.strip()} | {value} |' for name, value in rows]
    lines += ['', 'Quality bar: InstanceArray with 20 instances at 640x480 <= 20 KB '
              '(20 full-frame mono8 masks = 6 MB). Times are on a shared 2-core CPU: compare ratios.']
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Print the table; also write it (markdown + .json, via results_io) when --out is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=200, help='timed calls per figure (default 200)')
    parser.add_argument('--out', type=Path, help='write a markdown table (and its .json) here too')
    args = parser.parse_args(argv)
    rows = measure(args.repeats)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f'{name:<{width}}  {value}')
    if args.out:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results_io import command_line, write_results
        command = command_line([str(Path(__file__)), *(sys.argv[1:] if argv is None else argv)])
        write_results(args.out, 'InstanceArray size and conversion time', markdown_body(rows),
                      {'repeats': args.repeats, 'rows': [{'figure': n.strip(), 'value': v} for n, v in rows]},
                      command=command)
        print(f'wrote {args.out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
