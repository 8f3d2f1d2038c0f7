"""`vis-ros replay BAG --out DIR`: run the node's pipeline over a rosbag, offline.

The same Pipeline (backend + tracker) and the same message conversions as vis_node, in-process,
frame by frame in bag order: deterministic, nothing dropped, unless `--realtime` emulates the live
node (a frame that arrives, by bag time, while the previous one is still being processed waits in
a one-frame slot, and a newer arrival replaces it; replaced frames are counted as drops).

Outputs in DIR: out.mcap (/vis_ros/instances and /vis_ros/classes, with the input headers; with
--record also the input images, /vis_ros/labels, /vis_ros/overlay and overlay.webm), frames.jsonl
and summary.json. Every argument, the params file and the bag's topic are checked before anything
is written. An error midway (corrupt bag chunk, undecodable image), Ctrl-C or SIGTERM stops the
replay at a frame boundary; the files then hold every frame processed before it, properly closed,
and summary.json says `"complete": false` with the reason. Exit codes: 0 ok, 1 failed, 2 usage,
130 / 143 stopped by SIGINT / SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from vis_ros.core.errors import BagError, ConfigError, InputError, OutOfOrderFrame, VisError
from vis_ros.core.stream import DEFAULT_BACKWARDS_TOLERANCE_S, PublicIds, StreamAction, StreamWatch
from vis_ros.core.types import Frame
from vis_ros.tools.backend_args import add_backend_arguments, backend_overrides
from vis_ros.tools.bag_io import BagReader, format_topics
from vis_ros.tools.depth_tools import BagDepth
from vis_ros.tools.params_file import NodeParams, full_names, load_node_params
from vis_ros.tools.progress import Progress
from vis_ros.tools.replay_outputs import RECORDABLE, ReplayOutputs, prepare_out_dir, written_line
from vis_ros.tools.replay_summary import ReplayStats, replay_summary
from vis_ros.tools.stop_signals import Interrupted, StopSignals
from vis_ros.tools.video_out import CODECS, DEFAULT_CODEC

_NS = 1_000_000_000


def build_parser() -> argparse.ArgumentParser:
    """Build the replay command line (each default is stated once, in its help)."""
    p = argparse.ArgumentParser(prog='vis-ros replay', description=__doc__.split('\n')[0])
    p.add_argument('bag', type=Path, help='rosbag2 folder, .mcap or .db3 file')
    p.add_argument('--out', type=Path, required=True, metavar='DIR',
                   help='output folder (created; only our file names are replaced)')
    p.add_argument('--topic', help='image topic (sensor_msgs/Image or CompressedImage); default: the '
                   "bag's only image topic (with several, they are listed)")
    add_backend_arguments(p, "segmentation backend; default: the params file's, else motion")
    p.add_argument('--params', type=Path, metavar='FILE',
                   help='vis_node params YAML (backend, <backend>.*, tracker.*, node parameters)')
    p.add_argument('--record', default='', metavar='LIST',
                   help=f'also record a comma list of: {", ".join(RECORDABLE)} (input images, '
                   'overlay topic + overlay.webm, label images); default: only instances, classes, stamps')
    p.add_argument('--compression', choices=('zstd', 'none'), default='zstd',
                   help='zstd: compressed MCAP chunks, JPEG overlay and PNG label images; none: raw '
                   '(default: zstd)')
    p.add_argument('--video-codec', choices=tuple(c for c in CODECS if c != 'mp4v'), default=DEFAULT_CODEC,
                   help=f'overlay video codec, WebM (default: {DEFAULT_CODEC}; vp9 is ~7x slower to encode)')
    p.add_argument('--start', type=float, default=0.0, metavar='SEC',
                   help='skip the first SEC seconds of the bag (default: 0)')
    p.add_argument('--duration', type=float, metavar='SEC', help='replay at most SEC seconds (default: all)')
    p.add_argument('--every', type=int, default=1, metavar='N',
                   help='process every N-th image of the topic (default: 1)')
    p.add_argument('--realtime', action='store_true',
                   help='emulate the live node: drop frames that arrive while busy (by bag time)')
    p.add_argument('--stamps', choices=('header', 'bag'), default='header',
                   help="frame time: the image header stamp, as the node (default), or the bag's receive "
                   'time (for cameras that send zero or repeated stamps)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar on stderr')
    p.add_argument('--prompt', type=Path, help='JSON list of user prompts ({"frame": N, "box": [x1, y1, x2, '
                   'y2]} or "point": [x, y], optional "label"); backend detect_sam (tools/prompts.py)')
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2) for bad values, found before anything is read or written."""
    if args.start < 0:
        parser.error(f'--start must be >= 0 seconds, got {args.start:g}')
    if args.duration is not None and not args.duration > 0:
        parser.error(f'--duration must be > 0 seconds, got {args.duration:g}')
    if args.every < 1:
        parser.error(f'--every must be >= 1, got {args.every}')
    record = [r.strip() for r in args.record.split(',') if r.strip()]
    unknown = sorted(set(record) - set(RECORDABLE))
    if unknown:
        parser.error(f'--record: unknown {", ".join(unknown)}; choose from {", ".join(RECORDABLE)}')
    args.record = tuple(r for r in RECORDABLE if r in record)


def choose_topic(reader: BagReader, requested: Optional[str]):
    """Pick the image topic to replay; BagError lists what the bag holds when none fits."""
    topics = reader.topics()
    # a depth topic is an input of the colour frames, not a candidate (tools/depth_tools.py)
    images = [t for t in topics if t.is_image and 'depth' not in t.topic]
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

    def __init__(self, args: argparse.Namespace, params: NodeParams, overrides: dict):
        """Resolve backend and options: params file, then --model / --backend-options on top."""
        self.args = args
        self.params = params
        self.backend = args.backend or params.backend or 'motion'
        self.backend_options = {**params.backend_options.get(self.backend, {}), **overrides}
        self.node = params.node_options
        self.stats = ReplayStats()
        self.pipeline = None
        self.outputs: Optional[ReplayOutputs] = None
        self.stop: Optional[StopSignals] = None
        self.depth = None   # tools/depth_tools.BagDepth when the bag has depth + camera_info
        self.prompts = None   # tools.prompts.PromptFeeder with --prompt
        # The node's id contract (an id is public from its first publication until it is ended)
        # and, with --realtime, its new-stream policy (core/stream.py).
        self.public = PublicIds()
        self.watch = StreamWatch(float(self.node.get('stream_jump_back_s', DEFAULT_BACKWARDS_TOLERANCE_S)))

    def window(self, reader: BagReader) -> tuple[Optional[int], Optional[int]]:
        """(start, stop) bag times of --start/--duration; InputError when the bag is shorter."""
        end_ns = int(max((r.end_time for r in reader.reader.readers), default=0))
        start = reader.start_ns + int(self.args.start * _NS) if self.args.start else None
        if start is not None and start > end_ns:
            raise InputError(f'--start {self.args.start:g} s is past the end of the bag '
                             f'({(end_ns - reader.start_ns) / _NS:.3f} s long)')
        stop = None
        if self.args.duration is not None:
            stop = (start or reader.start_ns) + int(self.args.duration * _NS)
        return start, stop

    def _process(self, reader, index, bag_time_ns, raw, conn) -> float:
        """Convert, segment, track and write one frame; returns its processing time in seconds."""
        t0 = time.perf_counter()
        frame, msg = _frame_of(reader, raw, conn.msgtype, bag_time_ns, self.args.stamps)
        t1 = time.perf_counter()
        encoding = getattr(msg, 'encoding', getattr(msg, 'format', ''))
        if self.args.realtime and not self._accept(frame, encoding):
            return t1 - t0
        if self.prompts is not None:
            self.prompts.before(index, frame)
        result = self.pipeline.process(frame)
        if self.prompts is not None:
            self.prompts.after(result)
        shown = self.public.select(result.tracks,
                                   publish_tentative=bool(self.node.get('publish_tentative', False)),
                                   min_score=float(self.node.get('min_score', 0.0)))
        estimates = (self.depth.step(index, result.tracks, {t.track_id for t in shown.tracks})
                     if self.depth else None)
        t2 = time.perf_counter()
        record = self.outputs.write(index, bag_time_ns, raw, msg.header, frame, shown, estimates=estimates)
        t3 = time.perf_counter()
        self.stats.track_ids.update(record['ids'])
        self.stats.frames += 1
        self.stats.add({'convert': (t1 - t0) * 1e3, **result.timings_ms, 'outputs': (t3 - t2) * 1e3,
                        'total': (t3 - t0) * 1e3})
        return t3 - t0

    def _accept(self, frame: Frame, encoding: str) -> bool:
        """The live node's stream policy: False for a stale frame; a new stream resets first."""
        verdict = self.watch.check(frame.stamp_ns, frame.image.shape[:2], encoding)
        if verdict.action == StreamAction.REJECT:
            self.stats.stale += 1
            return False
        if verdict.action == StreamAction.NEW_STREAM:
            self.pipeline.reset()   # every live id ends in this frame's ended_ids; ids go on
            self.stats.new_streams += 1
            print(f'vis-ros replay: warning: new stream: {verdict.reason}', file=sys.stderr)
        return True

    def run(self, reader: BagReader, topic, start: Optional[int], stop: Optional[int]) -> None:
        """Replay the chosen topic; outputs must be open. Realtime mode drops like the live node."""
        progress = Progress(-(-topic.count // self.args.every), 'replay',
                            enabled=False if self.args.no_progress else None)
        busy_until = -1          # bag time (ns) at which the emulated worker becomes free
        pending = None           # the one-frame slot of the live node (realtime mode only)
        wall0 = time.perf_counter()
        try:
            for index, (bag_time, raw, conn) in enumerate(reader.messages(topic.topic, start, stop)):
                self.stop.check(f'{self.stats.frames} frames processed')   # a frame boundary
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
                self.stop.check(f'{self.stats.frames} frames processed')
                self._process(reader, *pending)
        finally:
            self.stats.wall_s = time.perf_counter() - wall0
            progress.close()


def _video_fps(topic, reader: BagReader) -> float:
    """Estimate the topic's mean rate (for overlay.mp4) from its count and the bag's duration."""
    span = int(reader.reader.duration)
    fps = (topic.count - 1) / (span / _NS) if span > 0 and topic.count > 1 else 30.0
    return float(min(120.0, max(1.0, fps)))


def load_params(args: argparse.Namespace) -> NodeParams:
    """Read --params; unknown names warn (with close matches), values are checked with the node's table."""
    if not args.params:
        return NodeParams()
    from vis_ros.ros.params import check_node_values, check_param_names
    params = load_node_params(args.params)
    values = full_names(params)
    # strict_params: true in the file makes unknown names an error here too, as in the node
    warning = check_param_names(values, where=f'replay --params {args.params}',
                                strict=values.get('strict_params') is True)
    if warning:
        print(f'vis-ros replay: warning: {warning}', file=sys.stderr)
    try:
        check_node_values(values)
    except ConfigError as err:
        raise ConfigError(f'params file {args.params}: {err}') from None
    return params


def _run_outputs(rep: Replayer, reader: BagReader, topic, window, argv) -> tuple[dict, Optional[Exception]]:
    """Open the outputs, replay, close them and write summary.json; (summary, error or None)."""
    args = rep.args
    prepare_out_dir(args.out)
    conn = reader.connections(topic.topic)[0]
    rep.outputs = ReplayOutputs(args.out, topic.topic, conn, rep.pipeline.backend.info.class_names,
                                rep.backend, float(rep.node.get('overlay_alpha', 0.45)),
                                _video_fps(topic, reader), record=args.record,
                                compress=args.compression == 'zstd', video_codec=args.video_codec)
    rep.depth = BagDepth.open(reader, args.out, {k[len('depth.'):]: v for k, v in rep.node.items()
                                                 if k.startswith('depth.')})
    error = None
    try:
        rep.run(reader, topic, *window)
        if rep.stats.frames == 0:
            error = InputError(f'no message of {topic.topic} falls in the chosen window (--start '
                               f'{args.start:g}, --duration {args.duration}); nothing was replayed')
    except OutOfOrderFrame as err:
        error = InputError(f'{err}; the image header stamps do not increase (camera driver '
                           'without stamps?): replay with --stamps bag')
    except Exception as err:  # outputs stay valid up to here; summary says why it stopped
        error = err
    finally:
        rep.outputs.close()
        if rep.depth is not None:
            rep.depth.close()
    summary = replay_summary(rep, topic, reader, argv, error)
    if rep.depth is not None:
        summary['depth'] = rep.depth.summary()
    (args.out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    return summary, error


def replay(rep: Replayer, argv: Sequence[str]) -> dict:
    """Run one replay; returns the summary (also written to DIR/summary.json)."""
    from vis_ros.segment.pipeline import Pipeline
    from vis_ros.tools.prompts import PromptFeeder
    args = rep.args
    with BagReader(args.bag) as reader:
        topic = choose_topic(reader, args.topic)
        if topic.count == 0:
            raise BagError(f'topic {topic.topic} in bag {reader.path} has no messages: the bag is empty, '
                           'nothing to replay (record some images, or pick another --topic)')
        window = rep.window(reader)
        rep.pipeline = Pipeline.build(rep.backend, rep.backend_options, rep.params.tracker_options)
        try:
            rep.prompts = PromptFeeder.open(args.prompt, rep.pipeline)
            rep.stop.check('nothing was written')
            summary, error = _run_outputs(rep, reader, topic, window, argv)
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
    print(written_line(summary, out))


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str],
         stop: StopSignals) -> int:
    try:
        params = load_params(args)
        backend = args.backend or params.backend or 'motion'
        try:
            overrides = backend_overrides(backend, args.model, args.backend_options)
        except ConfigError as err:
            parser.error(str(err))
        rep = Replayer(args, params, overrides)
        rep.stop = stop
        summary = replay(rep, argv)
    except VisError as err:
        what = 'stopped' if isinstance(err, Interrupted) else 'error'
        print(f'vis-ros replay: {what}: {err}', file=sys.stderr)
        partial = getattr(err, 'partial_outputs', None)
        if partial:
            print(f'vis-ros replay: partial outputs (complete: false) are in {partial}', file=sys.stderr)
        return err.exit_code if isinstance(err, Interrupted) else 1
    _print_summary(summary, args.out)
    return 0


def run_replay(argv: Sequence[str], stop: Optional[StopSignals] = None) -> dict:
    """Library entry point (vis-ros suite): `vis-ros replay ARGV` in this process; the summary.

    Raises VisError (ConfigError for bad options) instead of printing and exiting; `stop` defaults
    to one that no signal sets (a suite worker is stopped by its pool, not by SIGINT handlers).
    """
    argv = list(argv)
    args = build_parser().parse_args(argv)
    params = load_params(args)
    rep = Replayer(args, params, backend_overrides(args.backend or params.backend or 'motion', args.model,
                                                   args.backend_options))
    rep.stop = stop if stop is not None else StopSignals()
    return replay(rep, argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `vis-ros replay`; 0 ok, 1 failed, 2 usage, 130/143 SIGINT/SIGTERM."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    with StopSignals() as stop:
        return _run(parser, args, argv, stop)


if __name__ == '__main__':
    sys.exit(main())
