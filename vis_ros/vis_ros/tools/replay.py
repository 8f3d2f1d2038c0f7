"""`vis-ros replay BAG --topic T --out DIR`: run the node's pipeline over a rosbag, offline.

The same Pipeline (backend + tracker) and the same message conversions as vis_node, in-process,
frame by frame in bag order: deterministic, nothing dropped, unless `--realtime` emulates the live
node (a frame that arrives, by bag time, while the previous one is still being processed waits in
a one-frame slot, and a newer arrival replaces it; replaced frames are counted as drops).

Outputs in DIR: out.mcap (input images, /vis_ros/instances, /vis_ros/labels, /vis_ros/overlay,
/vis_ros/classes; all with the input headers), overlay.mp4, frames.jsonl, summary.json.
Errors found before the first frame (missing bag, wrong topic, bad params, unwritable DIR) write
nothing. An error midway (corrupt bag chunk, undecodable image) stops the replay; the files then
hold every frame processed before it, properly closed, and summary.json says
`"complete": false` with the error. Exit codes: 0 ok, 1 failed, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vis_ros.core.errors import BagError, InputError, OutOfOrderFrame, VisError
from vis_ros.core.types import Frame
from vis_ros.tools.bag_io import BagReader, format_topics
from vis_ros.tools.params_file import NodeParams, load_node_params
from vis_ros.tools.progress import Progress
from vis_ros.tools.replay_outputs import ReplayOutputs, prepare_out_dir

_NS = 1_000_000_000


def build_parser() -> argparse.ArgumentParser:
    """Build the replay command line."""
    p = argparse.ArgumentParser(prog='vis-ros replay', description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('bag', type=Path, help='rosbag2 folder, .mcap or .db3 file')
    p.add_argument('--topic', help='image topic (sensor_msgs/Image or CompressedImage); '
                   'omitted: the only image topic, else the image topics are listed')
    p.add_argument('--out', type=Path, required=True, help='output folder (created; our files replaced)')
    p.add_argument('--backend', help='segmentation backend (default: the params file\'s, else motion)')
    p.add_argument('--params', type=Path, help='vis_node params YAML (backend, <backend>.*, tracker.*)')
    p.add_argument('--start', type=float, default=0.0, help='skip the first SEC seconds of the bag')
    p.add_argument('--duration', type=float, help='replay at most SEC seconds')
    p.add_argument('--every', type=int, default=1, help='process every N-th image of the topic')
    p.add_argument('--realtime', action='store_true',
                   help='emulate the live node: drop frames that arrive while busy (by bag time)')
    p.add_argument('--stamps', choices=('header', 'bag'), default='header',
                   help="frame time: the image header stamp (as the node), or the bag's receive time "
                   '(for cameras that send zero or repeated stamps)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar on stderr')
    p.add_argument('--prompt', type=Path, help='JSON list of user prompts ({"frame": N, "box": [x1, y1, x2, '
                   'y2]} or "point": [x, y], optional "label"); backend detect_sam (tools/prompts.py)')
    return p


@dataclass
class ReplayStats:
    """Counters and per-stage latencies of one replay."""

    frames: int = 0
    candidates: int = 0
    dropped: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    track_ids: set[int] = field(default_factory=set)
    wall_s: float = 0.0

    def add(self, stages: dict[str, float]) -> None:
        """Record one frame's per-stage milliseconds."""
        for name, ms in stages.items():
            self.latencies.setdefault(name, []).append(float(ms))

    def latency_table(self) -> dict[str, dict[str, float]]:
        """Return p50/p99/mean milliseconds per stage."""
        return {name: {'p50': round(float(np.percentile(v, 50)), 3),
                       'p99': round(float(np.percentile(v, 99)), 3),
                       'mean': round(float(np.mean(v)), 3)} for name, v in sorted(self.latencies.items())}


def choose_topic(reader: BagReader, requested: Optional[str]):
    """Pick the image topic to replay; BagError lists what the bag holds when none fits."""
    topics = reader.topics()
    images = [t for t in topics if t.is_image]
    table = format_topics(topics)
    if requested is None:
        if len(images) == 1:
            print(f'vis-ros replay: using the only image topic {images[0].topic}', file=sys.stderr)
            return images[0]
        what = 'has no image topic' if not images else f'has {len(images)} image topics'
        raise BagError(f'bag {reader.path} {what}; pass --topic with one of its '
                       f'sensor_msgs/Image or CompressedImage topics. Topics in the bag:\n{table}')
    match = [t for t in topics if t.topic == requested]
    if not match:
        raise BagError(f'topic {requested} is not in bag {reader.path}; topics in the bag:\n{table}')
    if not match[0].is_image:
        raise BagError(f'topic {requested} is {match[0].msgtype}, not sensor_msgs/Image or '
                       f'CompressedImage; pick an image topic. Topics in the bag:\n{table}')
    return match[0]


def _frame_of(reader: BagReader, raw: bytes, msgtype: str, bag_time_ns: int, stamps: str):
    """(Frame, rosbags message) of one image message, converted exactly as the node converts."""
    from vis_ros.ros import convert
    msg = reader.deserialize(raw, msgtype)
    to_rgb = convert.compressed_to_rgb if msgtype.endswith('CompressedImage') else convert.image_to_rgb
    rgb = to_rgb(msg)
    stamp = convert.stamp_to_ns(msg.header.stamp) if stamps == 'header' else bag_time_ns
    return Frame(rgb, stamp, str(msg.header.frame_id)), msg


class Replayer:
    """One replay: bag in, pipeline, outputs; `run()` returns the summary dict."""

    def __init__(self, args: argparse.Namespace, params: NodeParams):
        """Resolve backend and options from the command line and the params file."""
        self.args = args
        self.params = params
        self.backend = args.backend or params.backend or 'motion'
        self.backend_options = dict(params.backend_options.get(self.backend, {}))
        self.node = params.node_options
        self.stats = ReplayStats()
        self.pipeline = None
        self.outputs: Optional[ReplayOutputs] = None
        self.prompts = None   # tools.prompts.PromptFeeder with --prompt

    def _window(self, reader: BagReader) -> tuple[Optional[int], Optional[int]]:
        if self.args.start < 0 or (self.args.duration is not None and self.args.duration <= 0):
            raise InputError('--start must be >= 0 and --duration > 0 (seconds), got '
                             f'{self.args.start} and {self.args.duration}')
        start = reader.start_ns + int(self.args.start * _NS) if self.args.start else None
        stop = None
        if self.args.duration is not None:
            stop = (start or reader.start_ns) + int(self.args.duration * _NS)
        return start, stop

    def _process(self, reader, index, bag_time_ns, raw, conn) -> float:
        """Convert, segment, track and write one frame; returns its processing time in seconds."""
        from vis_ros.ros.outputs import select_tracks
        t0 = time.perf_counter()
        frame, msg = _frame_of(reader, raw, conn.msgtype, bag_time_ns, self.args.stamps)
        t1 = time.perf_counter()
        if self.prompts is not None:
            self.prompts.before(index, frame)
        result = self.pipeline.process(frame)
        if self.prompts is not None:
            self.prompts.after(result)
        shown = select_tracks(result.tracks,
                              publish_tentative=bool(self.node.get('publish_tentative', False)),
                              min_score=float(self.node.get('min_score', 0.0)))
        t2 = time.perf_counter()
        record = self.outputs.write(index, bag_time_ns, raw, msg.header, frame, shown)
        t3 = time.perf_counter()
        self.stats.track_ids.update(record['ids'])
        self.stats.frames += 1
        self.stats.add({'convert': (t1 - t0) * 1e3, **result.timings_ms, 'outputs': (t3 - t2) * 1e3,
                        'total': (t3 - t0) * 1e3})
        return t3 - t0

    def run(self, reader: BagReader, topic) -> None:
        """Replay the chosen topic; outputs must be open. Realtime mode drops like the live node."""
        start, stop = self._window(reader)
        progress = Progress(-(-topic.count // self.args.every), 'replay',
                            enabled=False if self.args.no_progress else None)
        busy_until = -1          # bag time (ns) at which the emulated worker becomes free
        pending = None           # the one-frame slot of the live node (realtime mode only)
        wall0 = time.perf_counter()
        try:
            for index, (bag_time, raw, conn) in enumerate(reader.messages(topic.topic, start, stop)):
                if index % self.args.every:
                    continue
                self.stats.candidates += 1
                item = (index, bag_time, raw, conn)
                if not self.args.realtime:
                    self._process(reader, *item[:2], raw, conn)
                    progress.update()
                    continue
                while pending is not None and busy_until <= bag_time:
                    busy_until += int(self._process(reader, *pending) * _NS)
                    pending = None
                if busy_until <= bag_time:
                    busy_until = bag_time + int(self._process(reader, *item) * _NS)
                else:
                    self.stats.dropped += pending is not None
                    pending = item
                progress.update(note=f'drops {self.stats.dropped}' if self.args.realtime else '')
            if pending is not None:
                self._process(reader, *pending)
        finally:
            self.stats.wall_s = time.perf_counter() - wall0
            progress.close()


def _video_fps(topic, reader: BagReader) -> float:
    """Estimate the topic's mean rate (for overlay.mp4) from its count and the bag's duration."""
    span = int(reader.reader.duration)
    fps = (topic.count - 1) / (span / _NS) if span > 0 and topic.count > 1 else 30.0
    return float(min(120.0, max(1.0, fps)))


def vis_ros_version() -> str:
    """Return the installed vis_ros version (package metadata; the source tree's when not installed)."""
    import importlib.metadata
    try:
        return importlib.metadata.version('vis_ros')
    except importlib.metadata.PackageNotFoundError:
        from vis_ros.tools import __file__ as tools_init
        text = (Path(tools_init).parents[1] / '__init__.py').read_text()
        return text.split("__version__ = '")[1].split("'")[0] if '__version__' in text else 'unknown'


def _summary(rep: Replayer, topic, reader: BagReader, argv, error: Optional[BaseException]) -> dict:
    from vis_ros.tools.bag_io import bag_fingerprint
    stats = rep.stats
    info = rep.pipeline.backend.info if rep.pipeline is not None else None
    total_ms = sum(stats.latencies.get('total', []))
    return {
        'complete': error is None,
        'error': None if error is None else f'{type(error).__name__}: {error}',
        'frames': stats.frames, 'frames_considered': stats.candidates, 'dropped': stats.dropped,
        'fps': round(stats.frames / stats.wall_s, 3) if stats.wall_s > 0 else 0.0,
        'pipeline_fps': round(stats.frames / (total_ms / 1e3), 3) if total_ms > 0 else 0.0,
        'latency_ms': stats.latency_table(),
        'tracks_seen': len(stats.track_ids), 'track_ids': sorted(stats.track_ids),
        'topic': topic.topic, 'msgtype': topic.msgtype, 'topic_messages': topic.count,
        'backend': {'name': rep.backend, 'options': rep.backend_options,
                    'class_names': list(info.class_names) if info else [],
                    'device': info.device if info else '', 'detail': info.detail if info else '',
                    'input_size': list(info.input_size) if info and info.input_size else None},
        'tracker_options': rep.params.tracker_options,
        'node_options': rep.node,
        'mode': {'realtime': rep.args.realtime, 'start_s': rep.args.start,
                 'duration_s': rep.args.duration, 'every': rep.args.every, 'stamps': rep.args.stamps},
        'bag': bag_fingerprint(reader.path),
        'outputs': {'video_error': rep.outputs.video_error if rep.outputs else ''},
        'prompts': rep.prompts.summary() if rep.prompts is not None else None,
        'command_line': ['vis-ros', 'replay', *argv],
        'vis_ros_version': vis_ros_version(),
    }


def replay(args: argparse.Namespace, argv: Sequence[str]) -> dict:
    """Run one replay; returns the summary (also written to DIR/summary.json)."""
    from vis_ros.segment.pipeline import Pipeline
    from vis_ros.tools.prompts import PromptFeeder
    if args.every < 1:
        raise InputError(f'--every must be >= 1, got {args.every}')
    params = load_node_params(args.params) if args.params else NodeParams()
    rep = Replayer(args, params)
    with BagReader(args.bag) as reader:
        topic = choose_topic(reader, args.topic)
        conn = reader.connections(topic.topic)[0]
        rep.pipeline = Pipeline.build(rep.backend, rep.backend_options, params.tracker_options)
        try:
            rep.prompts = PromptFeeder.open(args.prompt, rep.pipeline)
            prepare_out_dir(args.out)
            rep.outputs = ReplayOutputs(args.out, topic.topic, conn, rep.pipeline.backend.info.class_names,
                                        rep.backend, float(rep.node.get('overlay_alpha', 0.45)),
                                        _video_fps(topic, reader))
            error = None
            try:
                rep.run(reader, topic)
            except OutOfOrderFrame as err:
                error = InputError(f'{err}; the image header stamps do not increase (camera driver '
                                   'without stamps?): replay with --stamps bag')
            except Exception as err:  # outputs stay valid up to here; summary says why it stopped
                error = err
            finally:
                rep.outputs.close()
            summary = _summary(rep, topic, reader, argv, error)
            (args.out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
        finally:
            rep.pipeline.close()
    if error is not None:
        error.partial_outputs = args.out
        raise error
    return summary


def _print_summary(summary: dict, out: Path) -> None:
    lat = summary['latency_ms'].get('total', {})
    print(f'frames {summary["frames"]}  dropped {summary["dropped"]}  fps {summary["fps"]:.1f}  '
          f'(pipeline {summary["pipeline_fps"]:.1f})  total latency p50 {lat.get("p50", 0):.1f} ms '
          f'p99 {lat.get("p99", 0):.1f} ms  tracks {summary["tracks_seen"]}')
    print(f'outputs: {out}/out.mcap overlay.mp4 frames.jsonl summary.json')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `vis-ros replay`; 0 ok, 1 failed, 2 usage."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        summary = replay(args, argv)
    except VisError as err:
        print(f'vis-ros replay: error: {err}', file=sys.stderr)
        if getattr(err, 'partial_outputs', None):
            print(f'vis-ros replay: partial outputs (complete: false) are in {args.out}', file=sys.stderr)
        return 1
    _print_summary(summary, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
