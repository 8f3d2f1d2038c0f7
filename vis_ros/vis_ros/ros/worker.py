"""Latest-frame slot and the worker thread that drains it: inference never blocks the executor.

The subscription callback only puts the raw message (plus its receive time) into a one-item slot;
an older message still waiting is replaced and counted as dropped. One worker thread takes the
newest item, converts, segments, tracks and publishes. So a slow backend lowers the output rate,
never raises latency: the camera is always processed at its freshest frame.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True, slots=True)
class SlotItem:
    """A raw input message, when it arrived (time.monotonic_ns of the callback) and the node clock then.

    receive_stamp_ns: ROS time (node clock, sim time aware) at arrival; the tracker's time base
    with stamp_source:=receive.
    """

    msg: Any
    received_ns: int
    receive_stamp_ns: int = 0


class LatestSlot:
    """A thread-safe slot holding at most one item; `put` replaces (and counts) a waiting one."""

    def __init__(self):
        """Start empty."""
        self._cond = threading.Condition()
        self._item: Optional[SlotItem] = None
        self._closed = False
        self.dropped = 0   # items replaced before the worker took them
        self.received = 0

    def put(self, msg: Any, receive_stamp_ns: int = 0) -> None:
        """Offer the newest message; an unprocessed older one is dropped."""
        item = SlotItem(msg, time.monotonic_ns(), receive_stamp_ns)
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.received += 1
            self._cond.notify()

    def take(self, timeout_s: float) -> Optional[SlotItem]:
        """Take the waiting item (slot emptied); None after `timeout_s` or once closed."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._item is None and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item, self._item = self._item, None
            return item

    def discard(self) -> None:
        """Drop a waiting item (counted), e.g. when the rate limit says not yet."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
                self._item = None

    def close(self) -> None:
        """Wake the waiting worker for good; later puts are ignored by nobody taking them."""
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()


class FrameWorker:
    """One daemon thread that calls `handle(item)` for the newest slot item until stopped.

    min_period_s() is read before each item (max_rate_hz may change at runtime): when the last
    processed frame is more recent than that, the worker waits and frames arriving meanwhile
    replace each other in the slot (dropped), so the frame processed is still the newest.
    """

    def __init__(self, slot: LatestSlot, handle: Callable[[SlotItem], None],
                 min_period_s: Callable[[], float] = lambda: 0.0, name: str = 'vis_worker'):
        """Prepare the thread (not started)."""
        self._slot = slot
        self._handle = handle
        self._min_period_s = min_period_s
        self._stop = threading.Event()
        self._last_start = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._last_start + self._min_period_s() - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 0.1))
                continue
            item = self._slot.take(timeout_s=0.1)
            if item is None or self._stop.is_set():
                continue
            self._last_start = time.monotonic()
            self._handle(item)

    @property
    def alive(self) -> bool:
        """Whether the thread still runs (e.g. a handle() call that did not return)."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop and join the thread; True when it has ended (safe to call twice).

        False means a handle() call is still running: its resources (the backend) are in use and
        must not be freed.
        """
        self._stop.set()
        self._slot.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()
