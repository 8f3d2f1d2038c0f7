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


def label_scale(height: int, width: int) -> float:
    """OpenCV font scale whose capital letters are ~2.8% of the shorter image side (>= 10 px).

    FONT_HERSHEY_SIMPLEX at scale 1 has 22 px capitals; a fixed scale is unreadable on a 1080p
    frame and huge on a 160x120 one.
    """
    return max(0.45, 0.028 * min(height, width) / 22.0)


def label_anchor(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(x, y) of the top of the mask's largest connected part: the middle of its highest row.

    A box corner can be far from the object (an L-shaped or two-part mask); this point is always
    on the object. `offset` is added (the position of a cropped mask in its image).
    """
    count, parts, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return offset
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    top = int(stats[largest, cv2.CC_STAT_TOP])
    columns = np.flatnonzero(parts[top] == largest)
    return offset[0] + int(columns[len(columns) // 2]), offset[1] + top


def draw_label(out: np.ndarray, text: str, anchor: tuple[int, int], color: tuple[int, int, int],
               scale: float) -> None:
    """Draw `text` on a filled tag of `color`, centred above `anchor` (below it at the top edge)."""
    thickness = max(1, int(round(scale * 1.6)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, int(th * 0.3))
    height, width = out.shape[:2]
    x = min(max(0, anchor[0] - tw // 2 - pad), max(0, width - tw - 2 * pad))
    y = anchor[1] - th - base - 2 * pad - 2
    if y < 0:   # no room above the object: put the tag just inside its top
        y = min(anchor[1] + 2, max(0, height - th - base - 2 * pad))
    cv2.rectangle(out, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), color, cv2.FILLED)
    ink = (0, 0, 0) if sum(c * w for c, w in zip(color, (0.299, 0.587, 0.114))) > 140 else (255, 255, 255)
    cv2.putText(out, text, (x + pad, y + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness,
                cv2.LINE_AA)


def draw_overlay(image: np.ndarray, tracks: Sequence[Track], class_names: Sequence[str] = (),
                 alpha: float = 0.45) -> np.ndarray:
    """RGB image with filled masks of seen tracks, outlines of LOST ones, and 'id class' tags.

    Each tag sits at the top of its mask's largest part, sized to the image (label_scale).
    """
    out = np.array(image, dtype=np.uint8, copy=True)
    scale = label_scale(*out.shape[:2])
    tags = []
    for track in tracks:
        if track.state == TrackState.REMOVED:
            continue
        # Work inside the mask's bounding rectangle: a 30-track frame stays cheap.
        x, y, w, h = cv2.boundingRect(track.mask.view(np.uint8))
        if w == 0:
            continue
        mask, view = track.mask[y:y + h, x:x + w], out[y:y + h, x:x + w]
        color = id_color(track.track_id)
        if track.state == TrackState.LOST:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(view, contours, -1, color, max(1, int(round(scale * 2))))
        else:
            view[mask] = (view[mask] * (1 - alpha) + np.array(color, np.float32) * alpha).astype(np.uint8)
        label = f'{track.track_id} {_class_name(class_names, track.class_id)}'.strip()
        tags.append((label, label_anchor(mask, (x, y)), color))
    for label, anchor, color in tags:   # after every mask, so no mask is painted over a tag
        draw_label(out, label, anchor, color, scale)
    return out


def label_image(tracks: Sequence[Track], height: int, width: int) -> np.ndarray:
    """(H, W) uint16: 0 background, k = 1 + index of the track in `tracks` (later tracks on top)."""
    labels = np.zeros((height, width), np.uint16)
    for index, track in enumerate(tracks):
        labels[track.mask] = index + 1
    return labels
