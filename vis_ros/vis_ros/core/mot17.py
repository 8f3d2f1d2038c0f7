"""MOTChallenge ground truth (gt/gt.txt + seqinfo.ini) as per-frame boxes for the detector model.

Only reading: scoring follows TrackEval's MotChallenge2DBox rules and is done by trackeval itself
from the same files (benchmarks/tracker_mot17.py). Columns of gt.txt: frame, id, left, top, width,
height, conf, class, visibility; frames are 1-based.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vis_ros.core.detector_model import GtBoxes
from vis_ros.core.errors import InputError

PEDESTRIAN = 1
# classes a pedestrian detector also fires on; TrackEval removes tracker boxes matched to the
# distractor ones (2, 7, 8, 12), so detecting them is realistic and costs nothing when scored
PERSON_LIKE = (1, 2, 7, 8, 12)


@dataclass(frozen=True)
class MotSequence:
    """One sequence's metadata and its ground-truth rows (float64, 9 columns)."""

    name: str
    fps: float
    length: int
    width: int
    height: int
    rows: np.ndarray

    def frames(self, classes=PERSON_LIKE) -> list[GtBoxes]:
        """Per frame (index 0 = frame 1), the boxes of the given classes."""
        rows = self.rows[np.isin(self.rows[:, 7].astype(int), classes)]
        order = np.lexsort((rows[:, 1], rows[:, 0]))
        rows = rows[order]
        starts = np.searchsorted(rows[:, 0], np.arange(1, self.length + 2))
        out = []
        for t in range(self.length):
            part = rows[starts[t]:starts[t + 1]]
            xyxy = np.stack([part[:, 2], part[:, 3], part[:, 2] + part[:, 4], part[:, 3] + part[:, 5]], 1)
            out.append(GtBoxes(ids=part[:, 1].astype(np.int64), boxes=xyxy.reshape(-1, 4),
                               visibility=np.clip(part[:, 8], 0.0, 1.0)))
        return out


def load_sequence(folder) -> MotSequence:
    """Read <folder>/seqinfo.ini and <folder>/gt/gt.txt."""
    folder = Path(folder)
    info, gt = folder / 'seqinfo.ini', folder / 'gt' / 'gt.txt'
    if not info.is_file() or not gt.is_file():
        raise InputError(f'{folder} is not a MOTChallenge sequence: need seqinfo.ini and gt/gt.txt')
    parser = configparser.ConfigParser()
    parser.read(info)
    seq = parser['Sequence']
    rows = np.loadtxt(gt, delimiter=',', ndmin=2)
    if rows.shape[1] != 9:
        raise InputError(f'{gt}: expected 9 columns, got {rows.shape[1]}')
    return MotSequence(name=seq['name'], fps=float(seq['frameRate']), length=int(seq['seqLength']),
                       width=int(seq['imWidth']), height=int(seq['imHeight']), rows=rows)


def sequence_folders(root) -> list[Path]:
    """The sequence folders under a MOTChallenge root (those with seqinfo.ini), sorted."""
    folders = sorted(p.parent for p in Path(root).glob('*/seqinfo.ini'))
    if not folders:
        raise InputError(f'no MOTChallenge sequences (*/seqinfo.ini) under {root}')
    return folders
