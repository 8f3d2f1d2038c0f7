"""What one replay reports: counters and per-stage latencies, and its summary.json.

Kept apart from replay.py (the loop): the summary is the replay's contract with eval, the suite
and users (complete / error / interrupted, frames, drops, latency, backend, provenance).
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from vis_ros.tools.stop_signals import Interrupted


@dataclass
class ReplayStats:
    """Counters and per-stage latencies of one replay."""

    frames: int = 0
    candidates: int = 0
    dropped: int = 0
    stale: int = 0          # --realtime: duplicate / slightly older stamps skipped (as the node)
    new_streams: int = 0    # --realtime: resolution / encoding change or backward jump (as the node)
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


def vis_ros_version() -> str:
    """Return the installed vis_ros version (package metadata; the source tree's when not installed)."""
    import importlib.metadata
    try:
        return importlib.metadata.version('vis_ros')
    except importlib.metadata.PackageNotFoundError:
        from vis_ros.tools import __file__ as tools_init
        text = (Path(tools_init).parents[1] / '__init__.py').read_text()
        return text.split("__version__ = '")[1].split("'")[0] if '__version__' in text else 'unknown'


def replay_summary(rep, topic, reader, argv, error: Optional[BaseException]) -> dict:
    """summary.json of a replay (`rep`, a tools.replay.Replayer) that ended with `error` (None: complete)."""
    from vis_ros.tools.bag_io import bag_fingerprint
    stats = rep.stats
    info = rep.pipeline.backend.info if rep.pipeline is not None else None
    total_ms = sum(stats.latencies.get('total', []))
    video = rep.outputs.video if rep.outputs else None
    return {
        'complete': error is None,
        'error': None if error is None else f'{type(error).__name__}: {error}',
        'interrupted': None if not isinstance(error, Interrupted) else signal_name(error.signum),
        'frames': stats.frames, 'frames_considered': stats.candidates, 'dropped': stats.dropped,
        'stale_frames': stats.stale, 'new_streams': stats.new_streams,
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
        'outputs': {'record': list(rep.args.record), 'compression': rep.args.compression,
                    'video': video.path.name if video and video.path else None,
                    'video_codec': video.codec if video else None,
                    'video_error': rep.outputs.video_error if rep.outputs else '',
                    'sizes_bytes': rep.outputs.written() if rep.outputs else {}},
        'prompts': rep.prompts.summary() if rep.prompts is not None else None,
        'command_line': ['vis-ros', 'replay', *argv],
        'vis_ros_version': vis_ros_version(),
    }


def signal_name(signum: int) -> str:
    """SIGINT / SIGTERM for a signal number."""
    return signal.Signals(signum).name
