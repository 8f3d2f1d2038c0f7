"""Image sequences on disk: folders of frames, DAVIS-style sequences with masks, ../shared/data.

DAVIS layout: <seq>/JPEGImages/00000.jpg ... and <seq>/Annotations/00000.png (0 background,
>0 object). A plain folder of images is read in file-name order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from vis_ros.core.errors import InputError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
DAVIS_FPS = 24.0   # DAVIS source frame rate; the data carries no stamps


def repo_root() -> Path:
    """The checkout holding this package (vis_ros/vis_ros/core -> repo)."""
    return Path(__file__).resolve().parents[3]


def shared_data_dir() -> Optional[Path]:
    """../shared/data beside the checkout (or $VIS_ROS_SHARED_DATA), None when absent."""
    candidate = Path(os.environ.get('VIS_ROS_SHARED_DATA', repo_root().parent / 'shared' / 'data'))
    return candidate if candidate.is_dir() else None


def image_files(folder: Path) -> list[Path]:
    """Image files of a folder in name order; InputError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f'{folder} is not a folder of images')
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f'{folder} holds no images ({", ".join(IMAGE_SUFFIXES)})')
    return files


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f'cannot read image {path} (missing or not an image)')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG as (H, W) bool (> 0 is foreground)."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError(f'cannot read mask {path}')
    return mask > 0


@dataclass(frozen=True)
class DavisSequence:
    """One DAVIS-style sequence: frames and (optionally) one binary GT mask per frame."""

    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frames)

    def iter_frames(self) -> Iterator[tuple[np.ndarray, Optional[np.ndarray]]]:
        """(rgb, gt_mask or None) per frame, in order."""
        for i, frame in enumerate(self.frames):
            yield read_rgb(frame), (read_mask(self.masks[i]) if self.masks else None)


def load_davis_sequence(folder: Path) -> DavisSequence:
    """A DAVIS sequence folder (JPEGImages/ + Annotations/), or a plain folder of images."""
    folder = Path(folder)
    if (folder / 'JPEGImages').is_dir():
        frames = image_files(folder / 'JPEGImages')
        masks = image_files(folder / 'Annotations') if (folder / 'Annotations').is_dir() else []
        if masks and [m.stem for m in masks] != [f.stem for f in frames]:
            raise InputError(f'{folder}: Annotations do not match JPEGImages frame for frame')
        return DavisSequence(folder.name, tuple(frames), tuple(masks))
    return DavisSequence(folder.name, tuple(image_files(folder)), ())


def davis_sequences(root: Optional[Path] = None) -> list[DavisSequence]:
    """All sequences under <shared data>/davis2016 (empty when the data is absent)."""
    if root is None:
        data = shared_data_dir()
        if data is None or not (data / 'davis2016').is_dir():
            return []
        root = data / 'davis2016'
    return [load_davis_sequence(p) for p in sorted(Path(root).iterdir())
            if (p / 'JPEGImages').is_dir()]
