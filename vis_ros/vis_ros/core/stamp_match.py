"""Match a side stream (depth) to colour frames by stamp, the way message_filters ApproximateTime does.

message_filters is not installed here (no PyPI wheel), so this is our own, pure and testable:
each colour frame takes the buffered side message with the NEAREST stamp, if it is within
`tolerance_ns`. It never waits: a depth image that has not arrived when its colour frame is
processed is counted as missing and the 2D output goes out without 3D. Side messages older than
the last colour frame matched can never be used any more; they are dropped and counted as late.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Optional


class StampMatcher:
    """A short buffer of (stamp_ns, item) side messages and the counters /diagnostics reports."""

    def __init__(self, tolerance_ns: int, capacity: int = 8):
        """Keep at most `capacity` side messages (the newest); match within `tolerance_ns`."""
        self.tolerance_ns = int(tolerance_ns)
        self._buffer: deque[tuple[int, Any]] = deque(maxlen=max(1, int(capacity)))
        self._lock = threading.Lock()   # the subscription callback adds, the worker matches
        self._last_matched_ns = -1
        self.matched = self.missing = self.late = 0

    def add(self, stamp_ns: int, item: Any) -> bool:
        """Buffer a side message; False (counted late) when it is older than the last match."""
        with self._lock:
            if stamp_ns <= self._last_matched_ns - self.tolerance_ns:
                self.late += 1
                return False
            self._buffer.append((int(stamp_ns), item))
            return True

    def match(self, stamp_ns: int) -> Optional[Any]:
        """The buffered item nearest to `stamp_ns` within the tolerance (None, counted missing)."""
        with self._lock:
            best = min(self._buffer, key=lambda entry: abs(entry[0] - stamp_ns), default=None)
            if best is None or abs(best[0] - stamp_ns) > self.tolerance_ns:
                self.missing += 1
                return None
            self.matched += 1
            self._last_matched_ns = max(self._last_matched_ns, stamp_ns)
            # what is older than this frame can only match older frames, which are gone
            while self._buffer and self._buffer[0][0] < best[0]:
                self._buffer.popleft()
            return best[1]

    def counts(self) -> dict[str, int]:
        """{'matched', 'missing', 'late'} so far."""
        with self._lock:
            return {'matched': self.matched, 'missing': self.missing, 'late': self.late}
