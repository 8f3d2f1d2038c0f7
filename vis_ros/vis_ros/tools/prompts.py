"""`--prompt FILE.json` for replay and demo: feed a file's prompts to the pipeline at the right frame.

The file is a JSON list of {"frame": N or "stamp_ns": T, "box": [x1, y1, x2, y2] or "point": [x, y],
"label": "..."} (core.prompts.read_prompt_file). "frame" counts the images of the replayed topic
(the demo's camera frames) from 0; the prompt gets that image's stamp. "stamp_ns" prompts go to the
pipeline at once and apply to the frame nearest their stamp (within detect_sam.prompt_tolerance_s).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from vis_ros.core.prompts import read_prompt_file
from vis_ros.core.types import Frame


class PromptFeeder:
    """Gives a prompt file's entries to a Pipeline as the frames go by."""

    def __init__(self, path: Path, pipeline):
        """Read and check the file; stamp prompts are queued now (ConfigError if no prompt backend)."""
        entries = read_prompt_file(path)
        self.path = path
        self.pipeline = pipeline
        self._by_frame = sorted(((f, p) for f, p in entries if f is not None), key=lambda e: e[0])
        stamped = [p for f, p in entries if f is None]
        pipeline.add_prompts(stamped)
        self.given = len(entries)
        self.prompted_ids: set[int] = set()

    @classmethod
    def open(cls, path: Optional[Path], pipeline) -> Optional['PromptFeeder']:
        """A feeder for --prompt PATH, or None without one."""
        return None if path is None else cls(Path(path), pipeline)

    def before(self, index: int, frame: Frame) -> None:
        """Queue the frame prompts due at image `index` (the first processed image at or after N)."""
        due = [p for f, p in self._by_frame if f <= index]
        self._by_frame = [(f, p) for f, p in self._by_frame if f > index]
        self.pipeline.add_prompts([replace(p, stamp_ns=frame.stamp_ns) for p in due])

    def after(self, result) -> None:
        """Remember which tracks are prompted."""
        self.prompted_ids |= set(result.prompted_ids)

    def summary(self) -> dict:
        """Counts for summary.json: prompts given, dropped as bad (with reasons), prompted ids."""
        session = self.pipeline.prompting
        never = [f'prompt for frame {f} never applied: the stream has fewer images'
                 for f, _ in self._by_frame]
        errors = list(session.errors) + never
        return {'file': str(self.path), 'given': self.given, 'bad': session.bad_prompts + len(never),
                'errors': errors, 'prompted_ids': sorted(self.prompted_ids)}


def demo_prompt_sender(path: Optional[Path], recorder, node_path: str, image_topic: str):
    """With --prompt on the demo: a ros.prompt_input.PromptSender on the recorder's node, else None."""
    if path is None:
        return None
    from vis_ros.ros.prompt_input import PromptSender
    return PromptSender(recorder.node, node_path, image_topic, read_prompt_file(path))
