"""Weight-free default backend: instances of everything that moves independently of the camera.

The "Segment Any Motion" idea with classical tools, one frame at a time:

1. the frame is downscaled to `work_width` and turned gray;
2. dense optical flow (OpenCV DIS) from the current frame back to a reference frame up to
   `frame_gap` frames earlier (nearer when the camera moves fast, see `max_camera_px`), and
   forward again when `forward_backward` is on (pixels whose round trip does not close are
   unreliable: occlusions, flow errors); flow on textureless pixels is not trusted (`min_gradient`);
3. camera ego-motion: a homography fitted with RANSAC to flow samples of the background
   (pixels already known to move are left out); the residual flow is what moves on its own;
4. residual magnitude -> evidence in [0, 1] with a threshold relative to the frame's median
   residual (the noise of the camera model), so it adapts to blur, parallax and speed;
5. temporal accumulation: last frame's foreground map is carried along the flow to this frame and
   blended with the new evidence (`memory`), so a slow or briefly still object is not lost at once
   and a one-frame flicker does not become an object;
6. an online foreground/background color model fills in object parts that do not move;
7. morphology, a guided filter that snaps the soft mask to full-resolution image edges, connected
   components -> one instance per moving object (class 'object'), scored by motion strength;
   optional 64-value color-histogram embeddings for the tracker.

Behavior to know:
- the first frame of a stream (and the first after `reset()`) returns no instances: motion needs
  two frames;
- a frame of another size than the previous one starts a new stream (reset, then continue), as a
  camera that changed resolution is a new stream; no error, no log;
- deterministic: the same frames give the same instances (OpenCV's RANSAC seeds itself).
"""
from __future__ import annotations

import time
from typing import Any, Mapping, Optional

import cv2
import numpy as np

from vis_ros.core.options import OptionSpec, validate_options
from vis_ros.core.types import Frame, Instances
from vis_ros.segment.base import BackendInfo
from vis_ros.segment.motion_flow import (camera_flow, fb_inconsistency, fit_camera_homography,
                                         pixel_grid, propagate, residual_evidence, texture_confidence)
from vis_ros.segment.motion_refine import (ColorModel, color_index, components_to_instances,
                                           guided_upsample)

DIS_PRESETS = {'ultrafast': cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               'fast': cv2.DISOPTICAL_FLOW_PRESET_FAST,
               'medium': cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec('work_width', 320, 'width frames are downscaled to for flow and masks (pixels); '
               'smaller is faster, larger finds smaller objects', 64, 1920),
    OptionSpec('flow_preset', 'ultrafast', 'OpenCV DIS optical-flow preset (speed vs accuracy)',
               choices=tuple(DIS_PRESETS)),
    OptionSpec('flow_finest_scale', 1, 'finest pyramid level DIS computes flow at (0 = working '
               'resolution, 1 = half of it, ...; -1 = the preset\'s own, 2 for ultrafast/fast)', -1, 4),
    OptionSpec('frame_gap', 3, 'compare each frame with the one this many frames earlier: slow '
               'objects move more pixels over a longer gap', 1, 10),
    OptionSpec('max_camera_px', 6.0, 'the gap shrinks (down to 1) so that the camera\'s median '
               'motion over it stays below this (working pixels, L1)', 0.5, 100.0),
    OptionSpec('min_gradient', 2.0, 'local gray-level gradient (per pixel) below which flow is not '
               'trusted: textureless road, sky, walls; 0 = trust everywhere', 0.0, 100.0),
    OptionSpec('forward_backward', True, 'also compute forward flow and ignore pixels whose '
               'backward-forward round trip does not close (occlusions, flow errors); ~1.5x flow time'),
    OptionSpec('fb_tolerance_px', 1.0, 'round-trip error (working pixels) above which a pixel\'s '
               'motion is not trusted', 0.1, 20.0),
    OptionSpec('ransac_px', 1.0, 'RANSAC inlier distance of the camera homography (working pixels)',
               0.1, 20.0),
    OptionSpec('sample_step', 6, 'grid step of the flow samples the camera homography is fitted '
               'to (working pixels)', 2, 64),
    OptionSpec('min_residual_px', 0.6, 'smallest residual motion per frame (working pixels) that '
               'counts as independent motion', 0.05, 50.0),
    OptionSpec('noise_factor', 3.0, 'motion threshold as a multiple of the frame\'s median residual '
               '(the camera model\'s noise)', 1.0, 50.0),
    OptionSpec('memory', 0.6, 'weight of the previous frame\'s foreground map (carried along the '
               'flow) against this frame\'s motion evidence; 0 = no memory', 0.0, 0.95),
    OptionSpec('color_model', True, 'fill in still object parts with an online foreground/background '
               'color model'),
    OptionSpec('color_weight', 0.3, 'share of the color model in the foreground probability near '
               'moving regions', 0.0, 1.0),
    OptionSpec('color_memory', 0.8, 'weight of past frames in the color histograms', 0.0, 0.99),
    OptionSpec('color_reach_px', 4, 'how far (working pixels) around moving regions the color '
               'model may add foreground', 0, 100),
    OptionSpec('threshold', 0.5, 'foreground probability above which a pixel is part of an object',
               0.05, 0.95),
    OptionSpec('morph_px', 2, 'radius of the opening/closing that removes specks and fills '
               'pinholes (working pixels); 0 = off', 0, 20),
    OptionSpec('edge_radius', 4, 'guided-filter radius that snaps masks to image edges (working '
               'pixels); 0 = plain bilinear upsampling', 0, 32),
    OptionSpec('edge_eps', 0.01, 'guided-filter regularization: larger follows edges less', 1e-5, 1.0),
    OptionSpec('merge_px', 6, 'components closer than this (working pixels) are one instance', 0, 64),
    OptionSpec('min_area', 0.002, 'smallest instance as a fraction of the image area', 0.0, 0.5),
    OptionSpec('max_instances', 20, 'keep at most this many instances, largest first', 1, 255),
    OptionSpec('embeddings', False, 'attach 64-value color-histogram descriptors '
               '(Instances.embeddings) for the tracker\'s appearance matching'),
)


class MotionSegmenter:
    """Segments independently moving objects; stateful across frames (see the module docstring)."""

    info = BackendInfo(name='motion', class_names=('object',), input_size=None, device='cpu',
                       detail='DIS optical flow + RANSAC homography ego-motion, no weights')

    def __init__(self, **options: Any):
        """Validate the options (OPTIONS names; ConfigError naming a bad one) and start a stream."""
        self.options = validate_options(OPTIONS, options, 'motion')
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.options['flow_preset']])
        if self.options['flow_finest_scale'] >= 0:
            self._dis.setFinestScale(self.options['flow_finest_scale'])
        self.stage_ms: dict[str, float] = {}
        self.reset()

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]] = None) -> 'MotionSegmenter':
        """Registry factory: a plain mapping of OPTIONS names (ConfigError on a bad one)."""
        return cls(**dict(options or {}))

    def reset(self) -> None:
        """Forget the previous frame, the foreground map and the color model (new stream)."""
        self._frame_size: Optional[tuple[int, int]] = None
        self._grays: list[np.ndarray] = []     # last frame_gap gray frames, oldest first
        self._probs: list[np.ndarray] = []     # their foreground maps
        self._prev_prob: Optional[np.ndarray] = None
        self._grid: Optional[np.ndarray] = None
        self._colors = ColorModel(self.options['color_memory'])

    def close(self) -> None:
        """Nothing to release (no model, no device); safe to call twice."""
        self._grays, self._probs, self._prev_prob = [], [], None

    def segment(self, frame: Frame) -> Instances:
        """Instances of the independently moving objects in `frame` (none on a stream's first frame)."""
        t0 = time.perf_counter()
        height, width = frame.height, frame.width
        if self._frame_size != (height, width):
            self.reset()
            self._frame_size = (height, width)
        rgb_small, gray_small = self._downscale(frame.image)
        if not self._grays:
            self._remember(gray_small, np.zeros(gray_small.shape, np.float32))
            self.stage_ms = {'preprocess': (time.perf_counter() - t0) * 1e3}
            return Instances.empty(height, width)
        t1 = time.perf_counter()
        flow_back, previous = self._flow_to_reference(gray_small)
        flow_fwd = self._dis.calc(previous, gray_small, None) if self.options['forward_backward'] else None
        t2 = time.perf_counter()
        strength = self._motion_strength(flow_back, flow_fwd, gray_small)
        prob = self._foreground_probability(strength, rgb_small)
        t3 = time.perf_counter()
        self._remember(gray_small, prob)
        instances = self._instances(prob, strength, gray_small, frame.image, rgb_small)
        t4 = time.perf_counter()
        self.stage_ms = {'preprocess': (t1 - t0) * 1e3, 'flow': (t2 - t1) * 1e3,
                         'motion': (t3 - t2) * 1e3, 'masks': (t4 - t3) * 1e3}
        return instances

    def _flow_to_reference(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward flow to the reference frame, and that frame; sets the carried foreground map.

        The reference is up to `frame_gap` frames back (slow objects move more over a longer gap),
        but nearer when the camera moves fast: over a long gap a fast pan moves the background so
        far that the flow breaks down. The gap is the longest that keeps the camera's median
        motion within `max_camera_px`.
        """
        flow_back = self._dis.calc(gray, self._grays[-1], None)
        index = len(self._grays) - 1
        if len(self._grays) > 1:
            step = float(np.median(np.abs(flow_back[::4, ::4]).sum(-1))) + 1e-3
            gap = int(np.clip(self.options['max_camera_px'] // step, 1, len(self._grays)))
            if gap > 1:
                index = len(self._grays) - gap
                flow_back = self._dis.calc(gray, self._grays[index], None)
        self._prev_prob = self._probs[index]
        return flow_back, self._grays[index]

    def _remember(self, gray: np.ndarray, prob: np.ndarray) -> None:
        """Keep the last `frame_gap` frames and foreground maps."""
        self._grays.append(gray)
        self._probs.append(prob)
        del self._grays[:-self.options['frame_gap']], self._probs[:-self.options['frame_gap']]

    def _downscale(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB and gray at the working resolution (never upscaled)."""
        height, width = image.shape[:2]
        work_w = min(width, self.options['work_width'])
        work_h = max(8, round(height * work_w / width))
        small = cv2.resize(image, (work_w, work_h), interpolation=cv2.INTER_AREA) \
            if (work_w, work_h) != (width, height) else np.ascontiguousarray(image)
        return small, cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)

    def _motion_strength(self, flow_back: np.ndarray, flow_fwd: Optional[np.ndarray],
                         gray: np.ndarray) -> np.ndarray:
        """Accumulated independent-motion strength in [0, 1] at the working resolution."""
        opts = self.options
        if self._grid is None or self._grid.shape[:2] != flow_back.shape[:2]:
            self._grid = pixel_grid(*flow_back.shape[:2])
        carried = propagate(self._prev_prob, flow_back, self._grid)
        homography = fit_camera_homography(flow_back, carried > opts['threshold'], opts['sample_step'],
                                           opts['ransac_px'])
        residual = flow_back - camera_flow(homography, self._grid)
        evidence, _ = residual_evidence(residual, opts['min_residual_px'], opts['noise_factor'])
        if flow_fwd is not None:
            loop_error = fb_inconsistency(flow_back, flow_fwd, self._grid)
            evidence[loop_error > opts['fb_tolerance_px']] = 0.0
        if opts['min_gradient'] > 0:
            evidence *= texture_confidence(gray, opts['min_gradient'])
        memory = opts['memory']
        return (1.0 - memory) * evidence + memory * carried

    def _foreground_probability(self, strength: np.ndarray, rgb_small: np.ndarray) -> np.ndarray:
        """Motion strength blended with the color model near moving regions."""
        opts = self.options
        prob = strength
        if opts['color_model'] and opts['color_weight'] > 0:
            bins = color_index(rgb_small)
            self._colors.update(bins, strength > 0.8, strength < 0.1)
            color_prob = self._colors.probability(bins)
            if color_prob is not None:
                near = (strength > 0.5 * opts['threshold']).view(np.uint8)
                if opts['color_reach_px'] > 0:
                    reach = 2 * opts['color_reach_px'] + 1
                    near = cv2.dilate(near, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
                weight = opts['color_weight']
                prob = np.where(near > 0, (1.0 - weight) * strength + weight * color_prob, strength)
        return prob.astype(np.float32)

    def _instances(self, prob: np.ndarray, strength: np.ndarray, gray_small: np.ndarray,
                   image: np.ndarray, rgb_small: np.ndarray) -> Instances:
        """Clean and edge-snap the foreground, then split it into instances."""
        opts = self.options
        binary = (prob > opts['threshold']).view(np.uint8)
        if opts['morph_px'] > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * opts['morph_px'] + 1,) * 2)
            binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
            binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
        height, width = image.shape[:2]
        soft = np.where(binary > 0, np.maximum(prob, opts['threshold']), np.minimum(prob, opts['threshold']))
        if opts['edge_radius'] > 0:
            gray_full = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1 / 255)
            soft_full = guided_upsample(soft.astype(np.float32), gray_small.astype(np.float32) * (1 / 255),
                                        gray_full, opts['edge_radius'], opts['edge_eps'])
        else:
            soft_full = cv2.resize(soft.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return components_to_instances(soft_full > opts['threshold'], binary > 0, strength, opts['merge_px'],
                                       opts['min_area'], opts['max_instances'],
                                       rgb_small if opts['embeddings'] else None)
