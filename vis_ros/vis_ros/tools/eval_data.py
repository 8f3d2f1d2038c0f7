"""Inputs of `vis-ros eval`: replay predictions (frames.jsonl) and ground truth in three layouts.

Ground truth layouts (`load_ground_truth`, auto-detected):
- davis: a DAVIS sequence folder (Annotations/*.png) or a folder of 8-bit PNG masks; one object,
  foreground = pixel > 0. Scored with J&F.
- scene: a folder written by core.synthetic.save_scene (scene.json + 16-bit labels/). Multi-object
  with ids; scored with HOTA/IDF1/ID switches.
- mots: a folder of 16-bit instance PNGs (KITTI MOTS / MOTSChallenge: pixel = class * 1000 + id,
  0 background, 10000 ignore), or a MOTS txt file (`frame id class height width rle`, COCO
  compressed RLE, column-major). Multi-object.

Frames are matched by ORDER: ground-truth frame k (k-th file in name order, or frame k of the txt)
is compared with the prediction record whose `index` is k, i.e. the k-th message of the replayed
topic in the bag (DAVIS has no stamps; make-bag writes frame k as message k). Ground-truth frames
without a record (skipped with --every, dropped with --realtime, or past --duration) are not
scored and are counted as `frames_unscored`.
"""
from __future__ import annotations

import base64
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from vis_ros.core.errors import InputError
from vis_ros.core.masks import Roi, decode_mask

MOTS_IGNORE = 10000
STATE_NAMES = {'tentative': 0, 'confirmed': 1, 'lost': 2}


@dataclass
class Predictions:
    """A replay's records by frame index and its summary.json (empty dict when absent).

    incomplete: why the replay did not finish ('' when summary.json says complete: true).
    """

    name: str
    records: dict[int, dict]
    summary: dict
    incomplete: str = ''

    def masks(self, index: int, height: int, width: int, states) -> tuple[np.ndarray, np.ndarray]:
        """Decode one frame's instances in `states`: ids (K,) and (K, H, W) bool mask array."""
        record = self.records.get(index)
        if record is None:
            return np.zeros(0, np.int64), np.zeros((0, height, width), bool)
        if (record['height'], record['width']) != (height, width):
            raise InputError(f'prediction frame {index} is {record["width"]}x{record["height"]}, ground '
                             f'truth {width}x{height}: replay the bag made from this ground truth')
        keep = [k for k, s in enumerate(record['states']) if s in states]
        ids = np.array([record['ids'][k] for k in keep], np.int64)
        masks = np.zeros((len(keep), height, width), bool)
        for row, k in enumerate(keep):
            mask = record['masks'][k]
            masks[row] = decode_mask(Roi(*mask['roi']), base64.b64decode(mask['rle']), height, width)
        return ids, masks


def load_predictions(path: Path) -> Predictions:
    """Read a replay output folder (or a frames.jsonl file)."""
    path = Path(path)
    jsonl = path / 'frames.jsonl' if path.is_dir() else path
    if not jsonl.is_file():
        raise InputError(f'{jsonl} not found; PRED must be a `vis-ros replay` output folder')
    records = {}
    for number, line in enumerate(jsonl.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f'{jsonl} line {number} is not JSON ({err}); the replay output is damaged, '
                             'replay the bag again') from err
        records[int(record['index'])] = record
    summary_path = jsonl.parent / 'summary.json'
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return Predictions(jsonl.parent.name, records, summary, _incomplete_reason(summary_path, summary))


def _incomplete_reason(summary_path: Path, summary: dict) -> str:
    if not summary:
        return (f'{summary_path} is missing: the replay did not finish (killed, or still running), '
                'so its frames.jsonl may cover only part of the bag')
    if summary.get('complete') is not True:
        why = summary.get('error') or 'no reason recorded'
        return (f'{summary_path} says complete: false ({why}) after {summary.get("frames", "?")} frames, '
                'so the score would cover only part of the bag')
    return ''


def check_complete(pred: Predictions, allow_incomplete: bool) -> None:
    """InputError for an incomplete replay unless allowed (then the report flags it)."""
    if pred.incomplete and not allow_incomplete:
        raise InputError(f'{pred.incomplete}; replay the bag again to the end, or pass '
                         '--allow-incomplete to score it anyway (the report then marks it INCOMPLETE)')


@dataclass
class GroundTruth:
    """Ground truth of one sequence: per frame, object ids and (K, H, W) masks (read on demand)."""

    name: str
    kind: str           # 'single' (J&F) or 'multi' (HOTA/IDF1)
    layout: str         # davis | scene | mots
    height: int
    width: int
    num_frames: int
    _frame_reader: object = None

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ids (K,) and masks (K, H, W) bool of frame `index`."""
        return self._frame_reader(index)


def _png_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == '.png')


def _davis_gt(folder: Path, files: list[Path], name: str) -> GroundTruth:
    from vis_ros.core.sequences import read_mask
    first = read_mask(files[0])

    def read(index):
        mask = read_mask(files[index])
        return (np.array([1], np.int64), mask[None]) if mask.any() else (
            np.zeros(0, np.int64), np.zeros((0,) + mask.shape, bool))
    return GroundTruth(name, 'single', 'davis', first.shape[0], first.shape[1], len(files), read)


def _ids_from_label_png(path: Path) -> tuple[np.ndarray, np.ndarray]:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise InputError(f'{path} must be a single-channel instance PNG')
    ids = np.array([v for v in np.unique(labels) if v not in (0, MOTS_IGNORE)], np.int64)
    return ids, labels[None] == ids.reshape(-1, 1, 1)


def _mots_png_gt(folder: Path, files: list[Path]) -> GroundTruth:
    first = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    return GroundTruth(folder.name, 'multi', 'mots', first.shape[0], first.shape[1], len(files),
                       lambda index: _ids_from_label_png(files[index]))


def _scene_gt(folder: Path) -> GroundTruth:
    from vis_ros.core.synthetic import load_scene_gt
    scene = load_scene_gt(folder)
    return GroundTruth(scene.name or folder.name, 'multi', 'scene', scene.height, scene.width, len(scene),
                       lambda index: (np.asarray(scene.gt_ids[index], np.int64), scene.gt_masks[index]))


def coco_rle_decode(text: str, height: int, width: int) -> np.ndarray:
    """Decode a COCO compressed RLE string (MOTS txt) to an (H, W) bool mask, with pycocotools."""
    from pycocotools import mask as coco_mask   # imported here: only MOTS txt ground truth needs it
    try:
        with warnings.catch_warnings():   # pycocotools 2.0.x's numpy-2 `copy=` notice, not ours to fix
            warnings.simplefilter('ignore', DeprecationWarning)
            decoded = coco_mask.decode({'size': [height, width], 'counts': text.encode('ascii')})
    except (UnicodeEncodeError, ValueError, TypeError) as err:
        raise InputError(f'bad COCO RLE for a {height}x{width} mask: {err}') from err
    return decoded.astype(bool)


def _mots_txt_gt(path: Path) -> GroundTruth:
    frames: dict[int, list] = {}
    height = width = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise InputError(f'{path} line {number}: expected `frame id class height width rle`, '
                             f'got {line!r}')
        frame, obj, cls, height, width = (int(v) for v in parts[:5])
        if cls != 10 and obj != MOTS_IGNORE:   # class 10 = ignore region in MOTS
            frames.setdefault(frame, []).append((obj, parts[5]))
    if not frames:
        raise InputError(f'{path} holds no MOTS objects')
    first = min(frames)

    def read(index):
        objects = frames.get(first + index, [])
        masks = np.array([coco_rle_decode(rle, height, width) for _, rle in objects], bool)
        return np.array([o for o, _ in objects], np.int64), masks.reshape(len(objects), height, width)
    return GroundTruth(path.stem, 'multi', 'mots', height, width, max(frames) - first + 1, read)


def load_ground_truth(path: Path, layout: str = 'auto') -> GroundTruth:
    """Load the ground truth at `path` (layouts in the module docstring); InputError says what is expected."""
    path = Path(path)
    if not path.exists():
        raise InputError(f'ground truth {path} does not exist')
    if path.is_file():
        if path.suffix == '.txt' and layout in ('auto', 'mots'):
            return _mots_txt_gt(path)
        raise InputError(f'ground truth file {path} is not a MOTS .txt; give a folder')
    if (path / 'scene.json').is_file() and layout in ('auto', 'scene'):
        return _scene_gt(path)
    folder = path / 'Annotations' if (path / 'Annotations').is_dir() else path
    files = _png_files(folder)
    if not files:
        raise InputError(f'{path} holds no ground truth: expected scene.json (synthetic scene), '
                         'Annotations/*.png (DAVIS), *.png masks or a MOTS .txt file')
    sample = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    if sample is None:
        raise InputError(f'cannot read {files[0]}')
    if layout == 'mots' or (layout == 'auto' and sample.dtype == np.uint16):
        return _mots_png_gt(folder, files)
    name = path.name if folder is not path else path.parent.name if path.name == 'Annotations' else path.name
    return _davis_gt(folder, files, name)


def parse_states(text: str) -> tuple[int, ...]:
    """Parse the instance states to score from 'confirmed,lost' (names of Instance.STATE_*)."""
    names = [s.strip().lower() for s in text.split(',') if s.strip()]
    unknown = [n for n in names if n not in STATE_NAMES]
    if unknown or not names:
        raise InputError(f'--states must list some of {", ".join(STATE_NAMES)}, got {text!r}')
    return tuple(STATE_NAMES[n] for n in names)


def gt_name(gt: GroundTruth, predictions: Optional[Predictions]) -> str:
    """Return a sequence name for tables: the ground truth's, else the prediction folder's."""
    return gt.name or (predictions.name if predictions else 'sequence')
