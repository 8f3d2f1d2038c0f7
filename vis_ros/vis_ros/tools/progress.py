"""A one-line progress bar on stderr (frames, frames/s, ETA); no tqdm needed.

It redraws with a carriage return at most a few times a second, and stays silent when stderr is
not a terminal unless forced, so logs of CI runs do not fill up with bar updates.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """Counts processed items of a known (or unknown) total and draws `[####....] n/N 12.3 fps ETA 4s`."""

    def __init__(self, total: Optional[int], label: str = '', stream: Optional[TextIO] = None,
                 enabled: Optional[bool] = None, min_interval_s: float = 0.25):
        """Start counting; `enabled` None draws only when `stream` (default stderr) is a terminal."""
        self.total = total
        self.label = label
        stream = sys.stderr if stream is None else stream
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.min_interval_s = min_interval_s
        self.count = 0
        self._start = time.monotonic()
        self._last_draw = 0.0

    def update(self, n: int = 1, note: str = '') -> None:
        """Add `n` processed items; redraw when due."""
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= self.min_interval_s:
            self._last_draw = now
            self._draw(now, note)

    def line(self, now: Optional[float] = None, note: str = '') -> str:
        """Return the current bar as text."""
        elapsed = max(1e-9, (now or time.monotonic()) - self._start)
        rate = self.count / elapsed
        if self.total:
            done = min(1.0, self.count / self.total)
            bar = '#' * int(done * 20)
            eta = (self.total - self.count) / rate if rate > 0 else float('inf')
            eta_text = f'ETA {eta:.0f}s' if eta != float('inf') else 'ETA ?'
            text = f'[{bar:<20}] {self.count}/{self.total} {rate:.1f} fps {eta_text}'
        else:
            text = f'{self.count} {rate:.1f} fps'
        return f'{self.label} {text} {note}'.strip()

    def _draw(self, now: float, note: str) -> None:
        self.stream.write('\r' + self.line(now, note).ljust(79))
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.monotonic(), '')
            self.stream.write('\n')
            self.stream.flush()
