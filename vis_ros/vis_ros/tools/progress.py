"""A one-line progress bar on stderr (frames, frames/s, ETA), drawn by tqdm.

It redraws at most a few times a second, and stays silent when stderr is not a terminal unless
forced, so logs of CI runs do not fill up with bar updates. `Progress` keeps the small API the tools
use (update / line / close, `count`) so callers never see tqdm's options.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from tqdm import tqdm

# The rate as frames per second (tqdm's own {rate_fmt} would read "fr/s") and a free note (tqdm's
# {postfix} starts with a comma); both are filled per draw.
_BAR = '{desc} [{bar:20}] {n_fmt}/{total_fmt} {fps} ETA {remaining} {note}'
_COUNT = '{desc} {n_fmt} {fps} {note}'


def _format_dict(n: int, elapsed: float, **extra) -> dict:
    rate = n / elapsed if elapsed > 0 else 0.0
    return {'n': n, 'elapsed': elapsed, 'fps': f'{rate:.1f} fps', **extra}


class _Bar(tqdm):
    """tqdm with `fps` and `note` fields for the bar format."""

    note = ''

    @property
    def format_dict(self):
        """tqdm's fields plus `fps` and `note`."""
        fields = super().format_dict
        fields.update(_format_dict(fields['n'], fields['elapsed'], note=self.note))
        return fields


class Progress:
    """Counts processed items of a known (or unknown) total and draws `[####....] n/N 12.3 fps ETA 00:04`."""

    def __init__(self, total: Optional[int], label: str = '', stream: Optional[TextIO] = None,
                 enabled: Optional[bool] = None, min_interval_s: float = 0.25):
        """Start counting; `enabled` None draws only when `stream` (default stderr) is a terminal."""
        self.total = total
        self.label = label
        stream = sys.stderr if stream is None else stream
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.count = 0
        self._start = time.monotonic()
        self._format = _BAR if total else _COUNT
        self._bar = _Bar(total=total or None, desc=label, file=stream, disable=not self.enabled,
                         mininterval=min_interval_s, miniters=1, ascii=' #', dynamic_ncols=False,
                         bar_format=self._format, leave=True)

    def update(self, n: int = 1, note: str = '') -> None:
        """Add `n` processed items; redraw when due."""
        self.count += n
        if self.enabled:
            self._bar.note = note
            self._bar.update(n)

    def line(self, now: Optional[float] = None, note: str = '') -> str:
        """Return the current bar as text."""
        elapsed = max(1e-9, (now or time.monotonic()) - self._start)
        fields = _format_dict(self.count, elapsed, total=self.total or None, prefix=self.label,
                              note=note, ascii=' #', bar_format=self._format)
        return tqdm.format_meter(**fields).strip()

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._bar.close()
