"""Pictures of tracks for people and costmaps: colored overlay and label image.

Colors are a pure function of the track id (golden-ratio hue steps), so an object keeps its color
across frames, runs, the live node and offline replay.
"""
from __future__ import annotations

import colorsys
from typing import Sequence

import cv2
import numpy as np

from vis_ros.core.types import Track, TrackState


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB color for a track id."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _class_name(class_names: Sequence[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else ''


def draw_overlay(image: np.ndarray, tracks: Sequence[Track], class_names: Sequence[str] = (),
                 alpha: float = 0.45) -> np.ndarray:
    """RGB image with filled masks of seen tracks, outlines of LOST ones, and 'id class' labels."""
    out = np.array(image, dtype=np.uint8, copy=True)
    for track in tracks:
        if track.state == TrackState.REMOVED or not track.mask.any():
            continue
        color = np.array(id_color(track.track_id), np.float32)
        if track.state == TrackState.LOST:
            contours, _ = cv2.findContours(track.mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in color), 1)
        else:
            region = out[track.mask].astype(np.float32)
            out[track.mask] = (region * (1 - alpha) + color * alpha).astype(np.uint8)
        x1, y1 = int(track.box[0]), int(track.box[1])
        label = f'{track.track_id} {_class_name(class_names, track.class_id)}'.strip()
        cv2.putText(out, label, (x1, max(12, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (x1, max(12, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    tuple(int(c) for c in color), 1, cv2.LINE_AA)
    return out


def label_image(tracks: Sequence[Track], height: int, width: int) -> np.ndarray:
    """(H, W) uint16: 0 background, k = 1 + index of the track in `tracks` (later tracks on top)."""
    labels = np.zeros((height, width), np.uint16)
    for index, track in enumerate(tracks):
        labels[track.mask] = index + 1
    return labels
