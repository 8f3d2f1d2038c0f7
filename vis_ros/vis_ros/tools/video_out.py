"""Overlay videos that browsers and IDE previews play: VP8 or VP9 in WebM, mp4v only as a fallback.

Why these codecs: the encoder is the libvpx (BSD-3-Clause) inside the FFmpeg that the
opencv-python-headless wheel already ships (an LGPL-2.1 build, dynamically linked; no x264, no
GPL part), so no new dependency and nothing GPL. PyAV's wheels were rejected: they bundle libx264
and libx265 (GPL). H.264 is not in OpenCV's wheel at all. VP8 is the default because OpenCV's
writer exposes no libvpx speed setting and VP9 then costs about 7x more time per frame (measured
0.5 s vs 0.075 s per 640x480 frame on a 2-core machine); both play in Chromium, Firefox and Safari.
MPEG-4 Part 2 (`mp4v`) is used only when libvpx is missing, with a warning: browsers do not play it.

A video is written under a hidden temporary name and renamed to its final name only by `close()`,
so a killed process never leaves a truncated file under the final name.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

# name -> (fourcc, suffix); the first that opens wins, mp4v is the last resort.
CODECS = {'vp8': ('VP80', '.webm'), 'vp9': ('VP90', '.webm'), 'mp4v': ('mp4v', '.mp4')}
DEFAULT_CODEC = 'vp8'
FALLBACK_CODEC = 'mp4v'


@contextmanager
def _quiet_stderr():
    """Silence OpenCV's fourcc-tag chatter on fd 2 (WebM has no fourcc tags); we check isOpened()."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def fourcc_of(path: Path) -> str:
    """The codec fourcc the decoder reports for a video file ('' when it cannot be opened)."""
    capture = cv2.VideoCapture(str(path))
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF if capture.isOpened() else 0
    finally:
        capture.release()
    return code.to_bytes(4, 'little').decode('ascii', 'replace').strip('\x00') if code else ''


class VideoFile:
    """One RGB video: `write(rgb)` per frame, `close()` once; `path` is set by the first frame.

    stem: the final path without suffix (e.g. out/overlay); the suffix follows the codec used.
    codecs: preference order; mp4v is tried last with a warning printed to stderr.
    """

    def __init__(self, stem: Path, fps: float, codec: str = DEFAULT_CODEC, prog: str = 'vis-ros'):
        """Remember where and how to write; the file opens on the first frame (its size)."""
        if codec not in CODECS:
            raise ValueError(f'video codec must be one of {", ".join(CODECS)}, got {codec!r}')
        self.stem = Path(stem)
        self.fps = float(fps)
        self.codecs = tuple(dict.fromkeys((codec, FALLBACK_CODEC)))
        self.prog = prog
        self.codec = ''
        self.path: Optional[Path] = None
        self.error = ''
        self.frames = 0
        self._tmp: Optional[Path] = None
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[tuple[int, int]] = None

    def _open(self, width: int, height: int) -> None:
        for name in self.codecs:
            fourcc, suffix = CODECS[name]
            tmp = self.stem.with_name(f'.{self.stem.name}.partial{suffix}')
            tmp.unlink(missing_ok=True)
            with _quiet_stderr():
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height))
            if writer.isOpened():
                self._writer, self._tmp, self.codec = writer, tmp, name
                self.path, self._size = self.stem.with_suffix(suffix), (width, height)
                if name == FALLBACK_CODEC and name != self.codecs[0]:
                    print(f'{self.prog}: warning: no {self.codecs[0]} encoder in this OpenCV build; '
                          f'{self.path.name} is MPEG-4 Part 2 (mp4v), which browsers do not play',
                          file=sys.stderr)
                return
            writer.release()
            tmp.unlink(missing_ok=True)
        self.error = f'cv2.VideoWriter could not open any of {", ".join(self.codecs)} for {self.stem}'
        print(f'{self.prog}: warning: {self.error}; no overlay video is written', file=sys.stderr)

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB frame (resized to the first frame's size when a camera changes size)."""
        if self.error:
            return
        height, width = rgb.shape[:2]
        if self._writer is None:
            self._open(width, height)
            if self._writer is None:
                return
        if (width, height) != self._size:
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Optional[Path]:
        """Finish the file and give it its final name; returns that path (None if nothing written)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        writer.release()
        self._tmp.replace(self.path)
        return self.path
