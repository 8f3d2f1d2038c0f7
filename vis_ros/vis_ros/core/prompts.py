"""Prompts for promptable backends: a box or a point in image pixels that says "segment this".

Two sources: a user (SAM 2 style: ~/prompt topic, --prompt FILE.json) and the tracker itself
(tracking by segmentation: a track no detection covers is looked for at its predicted box).
Frozen and validated here, once; backends that do not take prompts never see them.
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from vis_ros.core.errors import InputError


class PromptSource(enum.IntEnum):
    """Who asked: a person (kept as a prompted track) or the tracker (a missed detection)."""

    USER = 0
    TRACK = 1


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: exactly one of `box` [x1, y1, x2, y2] or `point` [x, y], in the frame's pixels.

    stamp_ns: the frame it refers to (a user's prompt is applied to the frame nearest this stamp).
    label: optional class name ('' = any); track_id: the tracker's id for TRACK prompts, else 0.
    class_id: class of the track that asked (TRACK prompts), -1 when unknown.
    """

    stamp_ns: int
    box: Optional[np.ndarray] = None
    point: Optional[np.ndarray] = None
    label: str = ''
    source: PromptSource = PromptSource.USER
    track_id: int = 0
    class_id: int = -1

    def __post_init__(self):
        if (self.box is None) == (self.point is None):
            raise InputError('a prompt needs exactly one of box [x1, y1, x2, y2] or point [x, y]')
        if int(self.stamp_ns) < 0:
            raise InputError(f'prompt stamp_ns must be >= 0, got {self.stamp_ns}')
        object.__setattr__(self, 'stamp_ns', int(self.stamp_ns))
        object.__setattr__(self, 'source', PromptSource(self.source))
        for name, size in (('box', 4), ('point', 2)):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value, np.float32).reshape(-1)
            if array.size != size or not np.isfinite(array).all():
                raise InputError(f'prompt {name} must be {size} finite numbers, got {value!r}')
            if name == 'box' and (array[2] <= array[0] or array[3] <= array[1]):
                raise InputError('prompt box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1, '
                                 f'got {array.tolist()}')
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    def inside(self, height: int, width: int) -> bool:
        """True when the box overlaps the image or the point lies in it."""
        if self.point is not None:
            x, y = self.point
            return 0 <= x < width and 0 <= y < height
        x1, y1, x2, y2 = self.box
        return x2 > 0 and y2 > 0 and x1 < width and y1 < height

    def clipped_box(self, height: int, width: int) -> Optional[np.ndarray]:
        """The box clipped to the image (None for a point prompt)."""
        if self.box is None:
            return None
        return np.clip(self.box, 0, [width, height, width, height]).astype(np.float32)


def read_prompt_file(path: Path | str) -> list[tuple[Optional[int], Prompt]]:
    """Read a --prompt file: a JSON list of {"frame": N or "stamp_ns": T, "box"|"point", "label"}.

    Returns (frame index or None, prompt) pairs; a "frame" entry's prompt has stamp 0 until the
    caller knows that frame's stamp. A malformed entry raises InputError naming the file, the entry
    and what was expected.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f'cannot read prompts from {path} ({err}); expected a JSON list of '
                         '{"frame": N, "box": [x1, y1, x2, y2]} objects') from err
    if not isinstance(entries, list):
        raise InputError(f'{path} must hold a JSON list of prompts, got {type(entries).__name__}')
    out = []
    for k, entry in enumerate(entries):
        where = f'{path} entry {k}'
        if not isinstance(entry, dict) or ('frame' in entry) == ('stamp_ns' in entry):
            raise InputError(f'{where}: expected an object with exactly one of "frame" or "stamp_ns", '
                             f'got {entry!r}')
        unknown = sorted(set(entry) - {'frame', 'stamp_ns', 'box', 'point', 'label'})
        if unknown:
            raise InputError(f'{where}: unknown keys {unknown}; use frame|stamp_ns, box|point, label')
        frame = entry.get('frame')
        if frame is not None and (not isinstance(frame, int) or frame < 0):
            raise InputError(f'{where}: frame must be an integer >= 0, got {frame!r}')
        stamp = entry.get('stamp_ns', 0)
        if not isinstance(stamp, int):
            raise InputError(f'{where}: stamp_ns must be an integer (ns), got {stamp!r}')
        try:
            prompt = Prompt(stamp_ns=stamp, box=entry.get('box'), point=entry.get('point'),
                            label=str(entry.get('label', '')))
        except InputError as err:
            raise InputError(f'{where}: {err}') from None
        out.append((frame, prompt))
    return out
