"""Full-frame buffers for the predicted masks of LOST tracks, reused once nobody holds them.

A LOST track outputs its last mask moved to the prediction: a new full-frame (H, W) bool array
each step it moves. A fresh 640x480 array is 300 kB of new pages, and the page faults of zeroing
them cost more than the rest of that track's step. So the tracker keeps its own buffers. A buffer
leaves the tracker only through read-only views; every numpy view (and every view of a view)
holds a reference to the buffer itself, so a buffer whose reference count is back to that of an
unused one has no view alive anywhere (the caller dropped the Tracks that held it). Only then is
it reused: the rectangle written last time is cleared and the next predicted mask written into
it, so the masks hold the same values as freshly allocated ones.
"""
from __future__ import annotations

import sys

import numpy as np

MAX_BUFFERS = 64          # buffers kept at most (more LOST masks alive at once: plain allocations)
MAX_BYTES = 64 << 20      # and at most this much memory in them


class MaskPool:
    """Zeroed full-frame bool buffers: `take` one, write inside the declared rectangle, hand out views."""

    def __init__(self):
        """Start empty; buffers are made on demand."""
        # slot 0: a sentinel held by this list only, whose reference count is what an unused
        # buffer's count reads as (measured the same way, so no interpreter detail is assumed)
        self._buffers: list[np.ndarray] = [np.zeros(0, bool)]
        self._dirty: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)]   # (y1, y2, x1, x2) last written

    def clear(self) -> None:
        """Drop every buffer (a new stream may have another frame size)."""
        del self._buffers[1:], self._dirty[1:]

    @property
    def size(self) -> int:
        """Buffers kept."""
        return len(self._buffers) - 1

    def take(self, height: int, width: int, rect: tuple[int, int, int, int]) -> np.ndarray:
        """An all-zero writeable (height, width) bool buffer; the caller writes only inside `rect`.

        rect: (y1, y2, x1, x2), the region the caller will write (cleared before the next reuse).
        The caller hands the buffer out only as read-only views and keeps no other reference.
        """
        buffers = self._buffers
        unused = sys.getrefcount(buffers[0])
        for k in range(1, len(buffers)):
            if sys.getrefcount(buffers[k]) == unused and buffers[k].shape == (height, width):
                y1, y2, x1, x2 = self._dirty[k]
                buffers[k][y1:y2, x1:x2] = False
                self._dirty[k] = rect
                return buffers[k]
        buffer = np.zeros((height, width), bool)
        if self.size < MAX_BUFFERS and (self.size + 1) * buffer.nbytes <= MAX_BYTES:
            buffers.append(buffer)
            self._dirty.append(rect)
        return buffer
