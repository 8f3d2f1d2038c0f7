"""Prompts around one pipeline step: tracking by segmentation and user prompts (SAM 2 style).

Before the backend runs, `PromptSession.before(frame, tracker)` gathers:
- TRACK prompts: the predicted box of every CONFIRMED/LOST track (the backend skips those a
  detection covers). A track kept alive by its own prompts alone for more than
  `track_prompt_frames` frames gets no more (an object that left must be allowed to end); prompted
  tracks have no such limit: they are kept while the decoder can find them;
- USER prompts whose stamp is within `prompt_tolerance_s` of this frame. Until its track is
  CONFIRMED, a prompted object is re-prompted at its last box (a TENTATIVE track cannot be extended
  by the low-score masks of track prompts).
After the tracker, `after(tracks, backend)` marks the track that took each user prompt's instance
as prompted and, with `track_only_prompted`, keeps only prompted tracks. Bad prompts (outside the
image, stamp far from every frame) are counted and described in `errors`; nothing raises.
Thread-safe `add()`: a ROS callback may add prompts while the worker runs a frame.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Sequence

from vis_ros.core.prompts import Prompt, PromptSource
from vis_ros.core.types import Frame, Tracks

MAX_ERRORS_KEPT = 100


@dataclass(frozen=True)
class PromptOptions:
    """How the session prompts (from the backend's options of the same names)."""

    track_prompts: bool = True
    track_prompt_frames: int = 10
    track_only_prompted: bool = False
    prompt_tolerance_s: float = 0.5


class PromptSession:
    """Per-stream prompt state beside a tracker; see the module docstring."""

    def __init__(self, options: PromptOptions):
        self.options = options
        self._lock = threading.Lock()
        self._pending: list[Prompt] = []
        self.prompted: set[int] = set()
        self.errors: list[str] = []
        self.bad_prompts = 0
        self.reset()

    def reset(self) -> None:
        """A new stream: forget prompted tracks and carried counts (pending user prompts stay)."""
        self.prompted = set()
        self._prompt_only: dict[int, int] = {}   # track id -> consecutive frames held by its prompt
        self._last_boxes: dict[int, object] = {}
        self._sent: list[Prompt] = []

    def add(self, prompts: Sequence[Prompt]) -> None:
        """Queue user prompts (any thread)."""
        with self._lock:
            self._pending.extend(replace(p, source=PromptSource.USER) for p in prompts)

    def _error(self, text: str) -> None:
        self.bad_prompts += 1
        self.errors = (self.errors + [text])[-MAX_ERRORS_KEPT:]

    def _due_user_prompts(self, frame: Frame) -> list[Prompt]:
        tolerance = int(self.options.prompt_tolerance_s * 1e9)
        due, waiting = [], []
        with self._lock:
            pending, self._pending = self._pending, []
        for prompt in pending:
            if prompt.stamp_ns > frame.stamp_ns + tolerance:
                waiting.append(prompt)
            elif prompt.stamp_ns < frame.stamp_ns - tolerance:
                late = (frame.stamp_ns - prompt.stamp_ns) / 1e9
                self._error(f'prompt at stamp {prompt.stamp_ns} ns is {late:.2f} s before frame '
                            f'{frame.stamp_ns} ns and no frame was within '
                            f'{self.options.prompt_tolerance_s:g} s of it; dropped')
            elif not prompt.inside(frame.height, frame.width):
                what = 'box' if prompt.box is not None else 'point'
                value = (prompt.box if prompt.box is not None else prompt.point).tolist()
                self._error(f'prompt {what} {value} lies outside the {frame.width}x{frame.height} image; '
                            'dropped')
            else:
                due.append(prompt)
        with self._lock:
            self._pending = waiting + self._pending
        return due

    def before(self, frame: Frame, tracker) -> list[Prompt]:
        """The prompts for this frame: user prompts first (their indices are prompt_rows keys)."""
        prompts = self._due_user_prompts(frame)
        predicted = {tid: (cls, box) for tid, cls, box in tracker.predicted_boxes(frame.stamp_ns)}
        for tid in sorted(self.prompted - set(predicted)):   # tentative prompted tracks: re-prompt
            if tid in self._last_boxes:
                prompts.append(Prompt(frame.stamp_ns, box=self._last_boxes[tid], track_id=tid))
        if self.options.track_prompts:
            for tid, (cls, box) in predicted.items():
                held = self._prompt_only.get(tid, 0)
                if tid in self.prompted or held < self.options.track_prompt_frames:
                    prompts.append(Prompt(frame.stamp_ns, box=box, source=PromptSource.TRACK,
                                          track_id=tid, class_id=cls))
        self._sent = prompts
        return prompts

    def after(self, tracks: Tracks, prompt_rows: dict[int, int]) -> Tracks:
        """Mark prompted tracks, count prompt-held frames; the tracks to publish.

        prompt_rows: index into this frame's prompts -> the instance row made from it.
        """
        by_row = {t.detection_index: t.track_id for t in tracks if t.detection_index >= 0}
        track_rows = set()
        for k, row in prompt_rows.items():
            if self._sent[k].source == PromptSource.TRACK:
                track_rows.add(row)
            elif row in by_row:
                self.prompted.add(by_row[row])
        for track in tracks:
            row = track.detection_index
            held_by_prompt = row in track_rows
            self._prompt_only[track.track_id] = self._prompt_only.get(track.track_id, 0) + 1 \
                if held_by_prompt else 0
            if track.track_id in self.prompted and row >= 0:
                self._last_boxes[track.track_id] = track.box
        alive = {t.track_id for t in tracks}
        self.prompted &= alive
        self._prompt_only = {k: v for k, v in self._prompt_only.items() if k in alive}
        if not self.options.track_only_prompted:
            return tracks
        kept = tuple(t for t in tracks if t.track_id in self.prompted)
        return Tracks(tracks.stamp_ns, tracks.image_size, kept, tracks.ended_ids)


def session_for(backend) -> PromptSession | None:
    """A PromptSession for a backend that takes prompts (its `prompt_options`), else None."""
    if not getattr(backend, 'takes_prompts', False):
        return None
    return PromptSession(getattr(backend, 'prompt_options', PromptOptions()))
