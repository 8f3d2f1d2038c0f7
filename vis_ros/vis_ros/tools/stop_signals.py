"""Ctrl-C and SIGTERM for the file-writing tools: stop at a frame boundary, never mid-write.

Inside `StopSignals()`, the first SIGINT or SIGTERM only records itself; the tool checks
`stop.requested` between frames, closes every file, writes its summary and exits 128 + signal
(130 for SIGINT, 143 for SIGTERM, as shells do). A second signal raises `Interrupted` at once,
for a frame that never finishes; the `finally` blocks still close the files.
"""
from __future__ import annotations

import signal
from typing import Optional

from vis_ros.core.errors import VisError

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(VisError):
    """The user stopped the tool with SIGINT or SIGTERM; `exit_code` is 128 + signal number."""

    def __init__(self, signum: int, detail: str = ''):
        """Name the signal and what was (or was not) written."""
        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f'interrupted by {name}' + (f'; {detail}' if detail else ''))


class StopSignals:
    """Context manager: SIGINT/SIGTERM set `requested` (the signal number); handlers restored on exit."""

    def __init__(self):
        """Nothing requested yet."""
        self.requested: Optional[int] = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, _frame) -> None:
        if self.requested is not None:
            raise Interrupted(signum, 'second signal: stopped inside a frame')
        self.requested = signum

    def check(self, detail: str = '') -> None:
        """Raise Interrupted when a stop was requested."""
        if self.requested is not None:
            raise Interrupted(self.requested, detail)

    def __enter__(self) -> 'StopSignals':
        """Install the handlers (main thread only, as Python requires)."""
        for signum in _HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        """Restore the previous handlers."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
