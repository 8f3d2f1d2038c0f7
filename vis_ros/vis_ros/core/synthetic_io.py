"""Save a synthetic scene as a folder of images + ground truth, and read it back.

Folder format ("vis_ros.synthetic/1"), readable without vis_ros:

    scene.json          {"format": "vis_ros.synthetic/1", "name", "fps", "height", "width",
                         "class_names": [...], "objects": {"<gt id>": class_id, ...},
                         "frames": [{"image": "frames/000000.png", "labels": "labels/000000.png",
                                     "stamp_ns": int, "ids": [gt ids visible, in GT order]}, ...]}
    frames/NNNNNN.png   the RGB frame (8-bit PNG, lossless)
    labels/NNNNNN.png   16-bit single-channel PNG: each pixel holds the GT id of the object visible
                        there, 0 where none is. Visible masks never overlap (the nearest object
                        wins), so one label image holds them all: the mask of id k is labels == k.

This is the MOTS instance-PNG idea (KITTI MOTS / MOTSChallenge) with the plain id per pixel
instead of class * 1000 + id; the class of each id is in scene.json.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vis_ros.core.errors import InputError
from vis_ros.core.masks import Roi
from vis_ros.core.synthetic_scene import GtMasks, Scene

FORMAT = 'vis_ros.synthetic/1'


@dataclass(frozen=True)
class SceneGT:
    """A saved scene's ground truth (frames stay on disk as `frame_files`); fields as in Scene."""

    name: str
    fps: float
    height: int
    width: int
    frame_files: tuple
    stamps_ns: tuple
    gt_ids: tuple
    gt_masks: GtMasks
    gt_classes: tuple
    gt_boxes: tuple
    gt_crops: tuple
    class_names: tuple

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.frame_files)


def label_image(crops, ids, height: int, width: int) -> np.ndarray:
    """(height, width) uint16 image holding each id on its visible (Roi, crop) pixels."""
    labels = np.zeros((height, width), np.uint16)
    for (roi, part), gt_id in zip(crops, ids):
        labels[roi.y:roi.y + roi.height, roi.x:roi.x + roi.width][part] = int(gt_id)
    return labels


def save_scene(scene: Scene, folder) -> Path:
    """Write `scene` to `folder` (created; existing files of the same names are replaced)."""
    folder = Path(folder)
    (folder / 'frames').mkdir(parents=True, exist_ok=True)
    (folder / 'labels').mkdir(parents=True, exist_ok=True)
    entries, objects = [], {}
    png = [cv2.IMWRITE_PNG_COMPRESSION, 1]   # fast; PNG is lossless at any level
    for t, frame in enumerate(scene.frames):
        image, labels = f'frames/{t:06d}.png', f'labels/{t:06d}.png'
        if not cv2.imwrite(str(folder / image), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), png):
            raise InputError(f'cannot write {folder / image}; check the folder is writable')
        ids = [int(i) for i in scene.gt_ids[t]]
        cv2.imwrite(str(folder / labels), label_image(scene.gt_crops[t], ids, scene.height, scene.width), png)
        objects.update({str(i): int(c) for i, c in zip(ids, scene.gt_classes[t])})
        entries.append({'image': image, 'labels': labels, 'stamp_ns': int(scene.stamps_ns[t]), 'ids': ids})
    meta = {'format': FORMAT, 'name': scene.name, 'fps': scene.fps, 'height': scene.height,
            'width': scene.width, 'class_names': list(scene.class_names), 'objects': objects,
            'frames': entries}
    (folder / 'scene.json').write_text(json.dumps(meta, indent=1))
    return folder


def _read_meta(folder: Path) -> dict:
    path = folder / 'scene.json'
    if not path.is_file():
        raise InputError(f'{path} not found: is {folder} a folder written by save_scene?')
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f'{path} is not valid JSON ({exc}); rewrite it with save_scene') from exc
    if meta.get('format') != FORMAT:
        raise InputError(f'{path} has format {meta.get("format")!r}, expected {FORMAT!r}')
    return meta


def _crops_from_labels(labels: np.ndarray, ids: list[int], path: Path) -> tuple:
    crops = []
    for gt_id in ids:
        mask = labels == gt_id
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
        if w == 0:
            raise InputError(f'{path} has no pixel of id {gt_id} that scene.json lists for it')
        crops.append((Roi(x, y, w, h), mask[y:y + h, x:x + w].copy()))
    return tuple(crops)


def load_scene_gt(folder) -> SceneGT:
    """Read the ground truth of a folder written by `save_scene` (frames are not loaded)."""
    folder = Path(folder)
    meta = _read_meta(folder)
    height, width, objects = int(meta['height']), int(meta['width']), meta['objects']
    crops, ids, classes, boxes = [], [], [], []
    for entry in meta['frames']:
        path = folder / entry['labels']
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if labels is None or labels.shape != (height, width) or labels.dtype != np.uint16:
            got = 'unreadable' if labels is None else f'{labels.shape} {labels.dtype}'
            raise InputError(f'{path} must be a {height}x{width} 16-bit label PNG, got {got}')
        frame_ids = [int(i) for i in entry['ids']]
        frame_crops = _crops_from_labels(labels, frame_ids, path)
        crops.append(frame_crops)
        ids.append(np.array(frame_ids, np.int64))
        classes.append(np.array([objects[str(i)] for i in frame_ids], np.int32))
        boxes.append(np.array([[r.x, r.y, r.x + r.width, r.y + r.height] for r, _ in frame_crops],
                              np.float32).reshape(-1, 4))
    return SceneGT(name=meta['name'], fps=float(meta['fps']), height=height, width=width,
                   frame_files=tuple(str(folder / e['image']) for e in meta['frames']),
                   stamps_ns=tuple(int(e['stamp_ns']) for e in meta['frames']), gt_ids=tuple(ids),
                   gt_masks=GtMasks(tuple(crops), height, width), gt_classes=tuple(classes),
                   gt_boxes=tuple(boxes), gt_crops=tuple(crops), class_names=tuple(meta['class_names']))


def load_scene(folder) -> Scene:
    """Read a whole scene (frames and ground truth) written by `save_scene`."""
    gt = load_scene_gt(folder)
    frames = []
    for path in gt.frame_files:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f'cannot read frame {path}; the scene folder is incomplete')
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return Scene(name=gt.name, fps=gt.fps, frames=tuple(frames), stamps_ns=gt.stamps_ns, gt_ids=gt.gt_ids,
                 gt_masks=gt.gt_masks, gt_classes=gt.gt_classes, gt_boxes=gt.gt_boxes,
                 gt_crops=gt.gt_crops, class_names=gt.class_names)
