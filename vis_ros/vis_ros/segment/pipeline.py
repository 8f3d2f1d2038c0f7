"""Segment + track, one frame at a time: the pipeline the node, bag replay and demo all run.

Keeping it in one place is what makes an offline replay score the same thing the robot runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from vis_ros.core.types import Frame, Instances, Tracks
from vis_ros.core.errors import ConfigError
from vis_ros.segment.base import SegmentBackend, make_backend
from vis_ros.segment.prompting import session_for


@dataclass(frozen=True)
class PipelineResult:
    """What one frame produced, with wall-clock milliseconds per stage.

    timings_ms keys: 'segment' (the whole backend call), 'track', plus the backend's own
    breakdown when it reports one (e.g. 'preprocess', 'inference', 'decode').
    """

    frame: Frame
    instances: Instances
    tracks: Tracks
    timings_ms: dict[str, float] = field(default_factory=dict)
    prompted_ids: frozenset = frozenset()   # tracks of objects a user prompted (segment/prompting.py)


class Pipeline:
    """Owns a backend and a tracker; `process(frame)` runs both, in order, on one thread."""

    def __init__(self, backend: SegmentBackend, tracker):
        self.backend = backend
        self.tracker = tracker
        self.prompting = session_for(backend)   # None unless the backend takes prompts

    @classmethod
    def build(cls, backend: str, backend_options: Optional[Mapping[str, Any]] = None,
              tracker_options: Optional[Mapping[str, Any]] = None) -> 'Pipeline':
        """Load the named backend and a tracker configured from a plain mapping."""
        from vis_ros.core.tracker import Tracker, TrackerConfig
        config = TrackerConfig.from_options(dict(tracker_options or {}))
        return cls(make_backend(backend, backend_options), Tracker(config))

    def process(self, frame: Frame) -> PipelineResult:
        """Segment `frame`, then step the tracker with it (frame given for camera-motion compensation)."""
        t0 = time.perf_counter()
        if self.prompting is None:
            instances = self.backend.segment(frame)
        else:
            instances = self.backend.segment(frame, self.prompting.before(frame, self.tracker))
        t1 = time.perf_counter()
        tracks = self.tracker.step(instances, frame.stamp_ns, frame=frame.image)
        t2 = time.perf_counter()
        timings = {'segment': (t1 - t0) * 1e3, 'track': (t2 - t1) * 1e3}
        timings.update(getattr(self.backend, 'stage_ms', None) or {})
        if self.prompting is None:
            return PipelineResult(frame, instances, tracks, timings)
        tracks = self.prompting.after(tracks, self.backend.prompt_rows)
        return PipelineResult(frame, instances, tracks, timings, frozenset(self.prompting.prompted))

    def add_prompts(self, prompts) -> None:
        """Queue user prompts (core.prompts.Prompt) for the coming frames (any thread)."""
        if self.prompting is None:
            raise ConfigError(f'backend {self.backend.info.name!r} takes no prompts; use backend: detect_sam')
        self.prompting.add(prompts)

    def reset(self) -> None:
        """Start a new stream: clear backend state and tracks (track ids keep increasing)."""
        self.backend.reset()
        self.tracker.reset()
        if self.prompting is not None:
            self.prompting.reset()

    def close(self) -> None:
        """Release the backend; safe to call twice."""
        self.backend.close()
