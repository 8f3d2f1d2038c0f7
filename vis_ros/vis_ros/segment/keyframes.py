"""CPU keyframes for detect_sam: the image encoder on every Nth frame, flow-carried masks between.

The encoder costs ~0.5 s per frame on two CPU cores; the detector ~20 ms. Between keyframes the
last masks are moved to the current frame by dense optical flow (OpenCV DIS, as the motion backend
uses) and each one that a current detection matches is moved and scaled from the detector box it
last matched (at first the box that prompted it) onto that detection's box (the detector runs on
every frame and keeps boxes fresh). A keyframe is forced early when the carry cannot be trusted:
a confident detection no carried mask explains (a new object), a user prompt, fast camera motion
(median flow above `keyframe_motion_px`) or a scene change (the warped previous frame no longer
matches the current one); `forced` counts them by reason. `keyframe_interval: 1` disables carrying
(GPU setting).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Mapping, Optional, Sequence

import cv2
import numpy as np

from vis_ros.core.masks import box_iou
from vis_ros.core.options import OptionSpec
from vis_ros.core.prompts import Prompt, PromptSource
from vis_ros.core.types import Instances

KEYFRAME_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec('keyframe_interval', 1, 'run the image encoder every N frames (1 = every frame, the GPU '
               'setting); between keyframes masks are carried by optical flow and refitted to the '
               "current detector boxes", 1, 1000),
    OptionSpec('keyframe_motion_px', 24.0, 'force a keyframe when the median optical flow exceeds this '
               '(pixels at the frame size; fast camera motion)', 0.0, 1e4),
    OptionSpec('keyframe_scene_change', 40.0, 'force a keyframe when the mean absolute gray difference '
               'between the flow-warped previous frame and this one exceeds this (0-255; a cut)', 0.0, 255.0),
    OptionSpec('async_encoder', False, 'run keyframes (encoder + decoder) on a worker thread and carry '
               'the masks until they are done, so the output never waits for the encoder (CPU robots; '
               'results then depend on timing)'),
    OptionSpec('keyframe_new_score', 0.5, 'force a keyframe when a detection with at least this score '
               'matches no carried mask (a new object)', 0.0, 1.0),
)
FLOW_WIDTH = 320


class KeyframeScheduler:
    """Decides keyframes and carries the last keyframe's masks to non-keyframes."""

    def __init__(self, opts: Mapping[str, Any]):
        self.interval = int(opts['keyframe_interval'])
        self.motion_px = float(opts['keyframe_motion_px'])
        self.scene_change = float(opts['keyframe_scene_change'])
        self.new_score = float(opts['keyframe_new_score'])
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.reset()

    def reset(self) -> None:
        """Forget the carried state: the next frame is a keyframe."""
        self._gray: Optional[np.ndarray] = None
        self._instances: Optional[Instances] = None
        self._anchors = np.zeros((0, 4), np.float32)
        self._since = 0
        self.forced: dict[str, int] = {}   # keyframes forced early, by reason (for the benchmark)

    def _small_gray(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        scale = min(1.0, FLOW_WIDTH / width)
        size = (max(int(width * scale), 8), max(int(height * scale), 8))
        return cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)

    def remember(self, rgb: np.ndarray, instances: Instances, anchors: Optional[np.ndarray] = None) -> None:
        """A keyframe's result: what the following frames carry.

        anchors: (N, 4) the box each instance was prompted with (default: its mask's box). Carried
        masks are refitted box to box (last matched detection -> current one): a detector box and
        a mask's tight box differ, and mapping one onto the other would stretch every mask.
        """
        self._gray, self._instances, self._since = self._small_gray(rgb), instances, 0
        self._anchors = np.array(instances.boxes if anchors is None else anchors, np.float32).reshape(-1, 4)

    def ready(self, rgb: np.ndarray) -> bool:
        """True when there are masks of this frame size to carry."""
        return self._instances is not None and self._instances.image_size == rgb.shape[:2]

    def carry(self, rgb: np.ndarray, detections, prompts: Sequence[Prompt], force: bool = False
              ) -> Optional[Instances]:
        """The carried instances for this frame, or None when it must be a keyframe.

        force: carry whatever the triggers say (a keyframe is already running in the background).
        """
        if not self.ready(rgb):
            return None
        if not force and (self.interval <= 1 or self._since + 1 >= self.interval
                          or any(p.source == PromptSource.USER for p in prompts)):
            return None
        gray = self._small_gray(rgb)
        flow = self._flow.calc(gray, self._gray, None)   # current pixel -> where it was before
        height, width = rgb.shape[:2]
        scale = width / gray.shape[1]
        grid = _pixel_grid(*gray.shape)
        warped_gray = cv2.remap(self._gray, grid + flow, None, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        if not force and np.median(np.linalg.norm(flow, axis=2)) * scale > self.motion_px:
            return self._force('motion')
        if not force and np.abs(warped_gray.astype(np.float32) - gray).mean() > self.scene_change:
            return self._force('scene_change')
        carried, anchors = self._warp(cv2.resize(flow, (width, height)) * scale, height, width)
        refreshed = self._refit(carried, anchors, detections, force)
        if refreshed is None:
            return self._force('new_object')
        self._gray, (self._instances, self._anchors) = gray, refreshed
        self._since += 1
        return self._instances

    def _force(self, reason: str) -> None:
        self.forced[reason] = self.forced.get(reason, 0) + 1

    def _warp(self, flow: np.ndarray, height: int, width: int) -> tuple[Instances, np.ndarray]:
        """The carried masks moved by the flow; each anchor box shifted as its mask's box moved."""
        previous = self._instances
        if len(previous) == 0:
            return previous, self._anchors
        grid = _pixel_grid(height, width) + flow
        masks = np.stack([cv2.remap(m.astype(np.uint8), grid, None, cv2.INTER_NEAREST) > 0
                          for m in previous.masks])
        keep = masks.reshape(len(masks), -1).any(1)
        moved = Instances.from_masks(masks[keep], previous.scores[keep], previous.class_ids[keep])
        return moved, self._anchors[keep] + (moved.boxes - previous.boxes[keep])

    def _refit(self, carried: Instances, anchors: np.ndarray, detections, force: bool
               ) -> Optional[tuple[Instances, np.ndarray]]:
        """Each carried mask that a detection matches, moved and scaled as its anchor box -> that box."""
        if len(detections) == 0:
            return carried, anchors
        iou = box_iou(detections.boxes, anchors) if len(carried) else np.zeros((len(detections), 0))
        masks, scores, classes = list(carried.masks), list(carried.scores), list(carried.class_ids)
        anchors = anchors.copy()
        taken = set()
        for j in np.argsort(-detections.scores):
            k = int(np.argmax(iou[j])) if iou.shape[1] else -1
            if k < 0 or iou[j, k] < 0.3 or k in taken:
                if detections.scores[j] >= self.new_score and not force:
                    return None   # an object no carried mask explains: the encoder must see it
                continue
            taken.add(k)
            masks[k] = _fit_to_box(carried.masks[k], anchors[k], detections.boxes[j])
            anchors[k] = detections.boxes[j]
            scores[k] = max(float(scores[k]), float(detections.scores[j]))
        keep = [k for k, m in enumerate(masks) if m.any()]
        if not keep:
            return Instances.empty(*carried.image_size), anchors[:0]
        return Instances.from_masks(np.stack([masks[k] for k in keep]), np.asarray(scores, np.float32)[keep],
                                    np.asarray(classes, np.int32)[keep]), anchors[keep]


@lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 x, y of every pixel (the identity map for cv2.remap); read-only, made once."""
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).astype(np.float32)
    grid.flags.writeable = False
    return grid


def _fit_to_box(mask: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`mask` moved and scaled so that its box `source` becomes `target`."""
    sx = (target[2] - target[0]) / max(source[2] - source[0], 1.0)
    sy = (target[3] - target[1]) / max(source[3] - source[1], 1.0)
    matrix = np.array([[sx, 0, target[0] - sx * source[0]], [0, sy, target[1] - sy * source[1]]], np.float32)
    height, width = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST) > 0


class BackgroundKeyframe:
    """One keyframe at a time on a worker thread; its result becomes the carried state when done."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix='detect_sam_keyframe')
        self._job = None   # (future, rgb of the frame it encodes)

    def submit(self, keyframe, rgb: np.ndarray, detections, prompts) -> None:
        """Start `keyframe(rgb, detections, prompts)` unless one is already running."""
        if self._job is None:
            self._job = (self._pool.submit(keyframe, rgb, detections, prompts), rgb)

    def collect(self, scheduler: KeyframeScheduler) -> None:
        """Hand a finished keyframe's instances to the scheduler (its errors are raised here)."""
        if self._job is None or not self._job[0].done():
            return
        future, rgb = self._job
        self._job = None
        instances, anchors = future.result()[:2]
        scheduler.remember(rgb, instances, anchors)

    def drop(self) -> None:
        """Forget the running keyframe (a new stream); it finishes unused."""
        self._job = None

    def close(self) -> None:
        """Wait for the worker and stop it."""
        self._job = None
        self._pool.shutdown(wait=True)
