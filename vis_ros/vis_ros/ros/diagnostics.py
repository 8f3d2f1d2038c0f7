"""Health of the node as numbers: rates, drops, bad frames, latency per stage -> /diagnostics.

`NodeStats` is filled by the worker (and the input callback) and read by a ~1 Hz timer that
publishes one diagnostic_msgs/DiagnosticStatus. Keys are stable (tools and tests read them):

  frames_received, frames_processed, frames_dropped, bad_frames, processing_errors, stale_frames
  (duplicate or slightly older stamps, skipped), new_streams, input_rate_hz, output_rate_hz,
  backend, device, tracks_confirmed, tracks_lost, tracks_tentative, tracks_ended_total,
  latency_<stage>_p50_ms / _p99_ms for stage in wait (in the latest-frame slot), convert,
  segment (+ the backend's own breakdown as segment.<stage>, e.g. segment.inference), track, encode
  (InstanceArray), publish (~/instances), labels / overlay / detections (when subscribed),
  instances_out (receive -> ~/instances published), total (receive -> every output published),
  overhead (instances_out - segment: what the node adds beyond the backend).

The level looks at a recent window (`window_s`, parameter diagnostics_window_s), so it recovers:
ERROR while backend errors happened in the window, or while input arrives but nothing has been
published for longer than the stall time (the message names the stale or bad frames skipped since
the last output, the usual cause); WARN while bad or stale frames arrived in the window, or
when no input arrives; else OK. The counters are totals since configure.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Iterable, Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class RecentEvents:
    """Times of one kind of event; how many fell in the last `window_s` seconds (monotonic clock)."""

    def __init__(self, window_s: float):
        """Remember events for `window_s` seconds."""
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()

    def add(self, now: float | None = None) -> None:
        """Record one event."""
        self._times.append(time.monotonic() if now is None else now)

    def count(self, now: float | None = None) -> int:
        """Events in the last window."""
        now = time.monotonic() if now is None else now
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
        return len(self._times)


class RateMeter(RecentEvents):
    """Events per second over a sliding time window (monotonic clock)."""

    def __init__(self, window_s: float = 2.0):
        """Count events over the last `window_s` seconds."""
        super().__init__(window_s)

    def tick(self, now: float | None = None) -> None:
        """Record one event."""
        self.add(now)

    def rate_hz(self, now: float | None = None) -> float:
        """Events per second over the last window."""
        return self.count(now) / self.window_s


class NodeStats:
    """Counters and latency windows shared by the input callback, the worker and the timer."""

    def __init__(self, latency_window: int = 300, window_s: float = 10.0):
        """Keep the last `latency_window` frames' latencies per stage, level events for `window_s`."""
        self._lock = threading.Lock()
        self.recent = {kind: RecentEvents(window_s) for kind in ('error', 'bad', 'stale')}
        self.stale_frames = 0
        self.new_streams = 0
        # Skipped frames since the last published one: why output stalls, whatever the window.
        self.skipped_since_output = {'bad': 0, 'stale': 0}
        self.last_output = time.monotonic()   # reset by mark_active; a stall is measured from it
        self._latency: dict[str, collections.deque[float]] = {}
        self._window = latency_window
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self.processed = 0
        self.bad_frames = 0
        self.processing_errors = 0   # exceptions from the backend / outputs (bugs, not bad input)
        self.ended_total = 0
        self.received_before = 0   # input counts of earlier activations (the slot is per activation)
        self.dropped_before = 0
        self.track_counts: dict[str, int] = {'confirmed': 0, 'lost': 0, 'tentative': 0}

    def add_latencies(self, stages_ms: Mapping[str, float]) -> None:
        """Record one processed frame's per-stage milliseconds."""
        with self._lock:
            for stage, ms in stages_ms.items():
                window = self._latency.setdefault(stage, collections.deque(maxlen=self._window))
                window.append(float(ms))
            self.processed += 1
            self.output_rate.tick()
            self.last_output = time.monotonic()
            self.skipped_since_output = {'bad': 0, 'stale': 0}

    def mark_active(self) -> None:
        """Start measuring output stalls from now (on activate)."""
        self.last_output = time.monotonic()

    def add_bad_frame(self) -> None:
        """Count one frame that could not be converted or processed."""
        with self._lock:
            self.bad_frames += 1
            self.recent['bad'].add()
            self.skipped_since_output['bad'] += 1

    def add_processing_error(self) -> None:
        """Count one frame lost to an unexpected exception."""
        with self._lock:
            self.processing_errors += 1
            self.recent['error'].add()

    def add_stale_frame(self) -> None:
        """Count one frame skipped because its stamp was not later than the last processed one."""
        with self._lock:
            self.stale_frames += 1
            self.recent['stale'].add()
            self.skipped_since_output['stale'] += 1

    def percentiles(self) -> dict[str, tuple[float, float]]:
        """Return stage -> (p50, p99) milliseconds over the window."""
        with self._lock:
            windows = {stage: np.array(values) for stage, values in self._latency.items() if values}
        return {stage: (float(np.percentile(v, 50)), float(np.percentile(v, 99)))
                for stage, v in windows.items()}


def diagnostic_level(stats: NodeStats, now: float, *, receiving: bool, active: bool,
                     stall_s: float) -> tuple[bytes, str]:
    """Level and message from the recent window (see the module doc); `now` is time.monotonic()."""
    if not active:
        return DiagnosticStatus.OK, 'inactive'
    if not receiving:
        return DiagnosticStatus.WARN, 'no input frames (check the image remap and QoS)'
    window = stats.recent['error'].window_s
    recent = {kind: events.count(now) for kind, events in stats.recent.items()}
    if recent['error']:
        return DiagnosticStatus.ERROR, (f'{recent["error"]} frames failed in the backend in the last '
                                        f'{window:g} s (see log)')
    silent_s = now - stats.last_output
    if silent_s > stall_s:
        # Counted since the last output, not in the window: a stall longer than the window (or a
        # loaded machine that delivered nothing in its last second) still names its cause.
        skipped = dict(stats.skipped_since_output)
        why = (f'; {skipped["stale"]} frames skipped as stale since then: repeated stamps need '
               'stamp_source:=receive' if skipped['stale']
               else f'; {skipped["bad"]} bad frames since then' if skipped['bad'] else '')
        return DiagnosticStatus.ERROR, f'input arrives but nothing was published for {silent_s:.1f} s{why}'
    if recent['bad'] or recent['stale']:
        return DiagnosticStatus.WARN, (f'{recent["bad"]} bad and {recent["stale"]} stale frames skipped '
                                       f'in the last {window:g} s (see log)')
    return DiagnosticStatus.OK, 'processing'


def build_diagnostics(node_name: str, stamp, stats: NodeStats, *, received: int, dropped: int,
                      backend: str, device: str, active: bool, stall_s: float = 3.0,
                      extra: Iterable[tuple[str, object]] = ()) -> DiagnosticArray:
    """One DiagnosticArray with the node's status and every key documented above."""
    now = time.monotonic()
    input_rate, output_rate = stats.input_rate.rate_hz(now), stats.output_rate.rate_hz(now)
    level, message = diagnostic_level(stats, now, receiving=input_rate > 0, active=active, stall_s=stall_s)
    values = [
        ('frames_received', received), ('frames_processed', stats.processed),
        ('frames_dropped', dropped), ('bad_frames', stats.bad_frames),
        ('processing_errors', stats.processing_errors), ('stale_frames', stats.stale_frames),
        ('new_streams', stats.new_streams),
        ('input_rate_hz', f'{input_rate:.2f}'), ('output_rate_hz', f'{output_rate:.2f}'),
        ('backend', backend), ('device', device),
        ('tracks_confirmed', stats.track_counts['confirmed']), ('tracks_lost', stats.track_counts['lost']),
        ('tracks_tentative', stats.track_counts['tentative']), ('tracks_ended_total', stats.ended_total),
    ]
    values += list(extra)   # e.g. the depth input's counters (ros/depth_input.py)
    for stage, (p50, p99) in sorted(stats.percentiles().items()):
        values += [(f'latency_{stage}_p50_ms', f'{p50:.3f}'), (f'latency_{stage}_p99_ms', f'{p99:.3f}')]
    status = DiagnosticStatus(level=level, name=f'vis_ros: {node_name}', message=message,
                              hardware_id=f'{backend} on {device}', values=_key_values(values))
    return DiagnosticArray(header=_header(stamp), status=[status])


def _key_values(pairs: Iterable[tuple[str, object]]) -> list[KeyValue]:
    return [KeyValue(key=key, value=str(value)) for key, value in pairs]


def _header(stamp):
    from std_msgs.msg import Header
    return Header(stamp=stamp)


def diagnostics_values(array: DiagnosticArray, name_contains: str = 'vis_ros') -> dict[str, str]:
    """Return key -> value of the first status whose name contains `name_contains` ({} if none)."""
    for status in array.status:
        if name_contains in status.name:
            return {kv.key: kv.value for kv in status.values}
    return {}
