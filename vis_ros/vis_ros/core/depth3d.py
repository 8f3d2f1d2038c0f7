"""3D position and size of a mask from a depth image registered to the colour camera.

The point reported is the object's VISIBLE SURFACE point: the median depth over the mask's valid
depth pixels, at the centroid of the pixels near that median (pixels of the background that a
loose mask edge covers are far from the median and are left out). Invalid depth is ignored:
0 (no return), NaN/inf, and anything beyond `max_range_m` or nearer than `min_range_m`.

Pinhole model of sensor_msgs/CameraInfo: pixel (u, v) (column, row, pixel centres at integer
coordinates) at depth z is X = (u - cx) z / fx, Y = (v - cy) z / fy, Z = z in the optical frame
(x right, y down, z forward). The measurement covariance propagates a centroid noise of
`pixel_sigma` px and the noise of the median depth through that model: each pixel has
depth_sigma_m + depth_sigma_per_m2 * z^2 (stereo and time-of-flight cameras grow with z^2), and
the median of n pixels has that times sqrt(pi/2 * depth_correlated_px / n) (its standard error
when the noise is independent over patches of depth_correlated_px pixels). With few pixels or a
sharp centroid the covariance is elongated along the ray.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Optional

import numpy as np

from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.options import dataclass_options, validate_options


def _knob(default, description: str, lo=None, hi=None):
    return field(default=default, metadata={'description': description, 'min': lo, 'max': hi})


@dataclass(frozen=True)
class DepthConfig:
    """Knobs of the depth -> 3D path (node parameters depth.<field>)."""

    enabled: bool = _knob(False, 'subscribe to `depth` (sensor_msgs/Image 16UC1 mm or 32FC1 m, '
                          'registered to the colour image) and `camera_info`, and fill the 3D block '
                          'of ~/instances and ~/markers')
    sync_tolerance_s: float = _knob(0.02, 'a depth image matches a colour frame when their stamps differ '
                                    'by at most this (s); the nearest one wins (ApproximateTime-style)',
                                    0.0, 1.0)
    min_range_m: float = _knob(0.1, 'depth below this is invalid (m)', 0.0, 100.0)
    max_range_m: float = _knob(10.0, 'depth beyond this is invalid (m); set it to the sensor range',
                               0.1, 1000.0)
    min_valid_pixels: int = _knob(20, 'a mask needs at least this many valid depth pixels to give a '
                                  '3D measurement; fewer -> no measurement this frame', 1, 1000000)
    max_samples: int = _knob(1500, 'about at most this many mask pixels are read per measurement: a '
                             'mask whose box is larger is read on a grid of every k-th row and column '
                             '(bounds the cost per track)', 100, 10000000)
    pixel_sigma: float = _knob(3.0, 'noise of the mask centroid (px, 1 sigma): mask edges jitter '
                               'by a few pixels between frames', 0.01, 100.0)
    depth_sigma_m: float = _knob(0.01, 'depth noise at zero range (m, 1 sigma)', 0.0, 10.0)
    depth_sigma_per_m2: float = _knob(0.0015, 'depth noise growth with range: sigma += this * z^2 (1/m)',
                                      0.0, 10.0)
    depth_correlated_px: float = _knob(9.0, 'depth noise is correlated over about this many pixels '
                                       '(a stereo matching window; 1 = independent): the median of n '
                                       'pixels has the per-pixel sigma * sqrt(pi/2 * this / n)',
                                       1.0, 1e6)
    accel_sigma: float = _knob(2.0, 'process noise of the 3D constant-velocity model: acceleration std '
                               '(m/s^2) of steady motion; lower smooths velocity more', 0.01, 100.0)
    jerk_sigma: float = _knob(10.0, 'process noise of the 3D constant-acceleration model that takes '
                              'over during manoeuvres (turns, braking, a panning camera): jerk std '
                              '(m/s^3)', 0.01, 1000.0)
    manoeuvre_s: float = _knob(0.65, 'mean time (s) the motion stays steady or manoeuvring: sets how '
                               'fast the filter switches between the two models', 0.01, 100.0)
    stale_s: float = _knob(0.5, 'a track keeps has_position_3d this long (s) after its last 3D '
                           'measurement (a LOST track is predicted by the filter); 0 = only when '
                           'measured this frame', 0.0, 60.0)

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]] = None) -> 'DepthConfig':
        """Build from a name -> value mapping (node parameters), every value checked."""
        return cls(**validate_options(dataclass_options(cls), options, 'depth'))

    def __post_init__(self):
        for spec in dataclass_options(type(self)):   # direct construction is checked too
            spec.check(getattr(self, spec.name), 'depth')
        if self.min_range_m >= self.max_range_m:
            raise ConfigError(f'depth.min_range_m ({self.min_range_m}) must be below depth.max_range_m '
                              f'({self.max_range_m})')


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics (px) of the image the masks are in: CameraInfo K for width x height."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        if not (self.fx > 0 and self.fy > 0 and np.isfinite([self.fx, self.fy, self.cx, self.cy]).all()):
            raise InputError(f'camera_info K has fx={self.fx}, fy={self.fy}: an uncalibrated camera '
                             '(K all zero) cannot give 3D; publish a calibrated camera_info')
        if self.width <= 0 or self.height <= 0:
            raise InputError(f'camera_info is {self.width}x{self.height}; it must give the image size')

    @classmethod
    def from_k(cls, k, width: int, height: int) -> 'CameraIntrinsics':
        """From the row-major 3x3 K of sensor_msgs/CameraInfo and its image size."""
        k = np.asarray(k, np.float64).reshape(-1)
        if k.size != 9:
            raise InputError(f'camera_info K must have 9 numbers, got {k.size}')
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))

    def scaled_to(self, width: int, height: int) -> 'CameraIntrinsics':
        """The same camera at another resolution (a binned or resized stream)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                                (self.cy + 0.5) * sy - 0.5, int(width), int(height))

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) optical-frame points (m) -> (N, 2) pixel coordinates (u, v)."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        z = np.maximum(points[:, 2], 1e-9)
        return np.stack([self.fx * points[:, 0] / z + self.cx, self.fy * points[:, 1] / z + self.cy], 1)


@dataclass(frozen=True)
class Measurement3D:
    """One frame's 3D measurement of a mask: point (m), its (3, 3) covariance, size (m), pixels used."""

    position: np.ndarray
    cov: np.ndarray
    size: np.ndarray
    valid_pixels: int


class Estimate3D(NamedTuple):
    """A track's filtered 3D state, as published: position, velocity (m/s), covariances, size.

    Immutable; a NamedTuple because one is built per track and frame (a frozen dataclass takes 5x
    longer to build). The arrays are fresh each frame, never views of a filter's state.
    """

    position: np.ndarray
    position_cov: np.ndarray
    velocity: np.ndarray
    velocity_cov: np.ndarray
    size: np.ndarray


def depth_to_metres(depth: np.ndarray) -> np.ndarray:
    """(H, W) uint16 millimetres or float32 metres -> float32 metres, invalid (0, NaN, inf) as NaN."""
    if depth.ndim != 2:
        raise InputError(f'depth must be one channel (H, W), got shape {depth.shape}')
    if depth.dtype == np.uint16:
        metres = depth.astype(np.float32) * np.float32(0.001)
    elif depth.dtype == np.float32:
        metres = depth.astype(np.float32, copy=True)
    else:
        raise InputError(f'depth must be uint16 (16UC1, mm) or float32 (32FC1, m), got {depth.dtype}')
    metres[~(metres > 0) | ~np.isfinite(metres)] = np.nan
    return metres


def check_depth(depth: np.ndarray) -> np.ndarray:
    """A depth image as measure_mask takes it: (H, W) uint16 mm or float32 m, unchanged (no copy)."""
    if depth.ndim != 2 or depth.dtype not in (np.uint16, np.float32):
        raise InputError(f'depth must be (H, W) uint16 (16UC1, mm) or float32 (32FC1, m), '
                         f'got {depth.shape} {depth.dtype}')
    return depth


def _crop_bounds(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = np.asarray(box, np.float64).tolist()   # numpy scalar math is slow
    return (max(math.floor(left), 0), max(math.floor(top), 0), min(math.ceil(right), width),
            min(math.ceil(bottom), height))


@dataclass(frozen=True)
class Measurements3D:
    """measure_masks' result for n masks, row i for mask i; ok[i] False: no measurement (zeros)."""

    ok: np.ndarray            # (n,) bool
    position: np.ndarray      # (n, 3) m
    cov: np.ndarray           # (n, 3, 3) m^2
    size: np.ndarray          # (n, 3) m
    valid_pixels: np.ndarray  # (n,) pixels near the median depth that the point was taken from

    def get(self, i: int) -> Optional[Measurement3D]:
        """Row i as a Measurement3D, None where there is none."""
        if not self.ok[i]:
            return None
        return Measurement3D(self.position[i], self.cov[i], self.size[i], int(self.valid_pixels[i]))


def measure_mask(depth: np.ndarray, mask: np.ndarray, box: np.ndarray, camera: CameraIntrinsics,
                 config: DepthConfig) -> Optional[Measurement3D]:
    """3D point, covariance and size of `mask` (full frame, bool) inside `box` [x1, y1, x2, y2].

    depth: (H, W) uint16 millimetres or float32 metres, the mask's size. None when fewer than
    config.min_valid_pixels mask pixels have valid depth. One mask of measure_masks.
    """
    return measure_masks(depth, (mask,), (box,), camera, config).get(0)


@functools.lru_cache(maxsize=4)
def _pixel_index(height: int, width: int) -> np.ndarray:
    """(H, W) flat index of every pixel (read-only): a mask picks its own indices from it."""
    index = np.arange(height * width, dtype=np.intp).reshape(height, width)   # intp: gathers need no cast
    index.flags.writeable = False
    return index


def _samples(masks, boxes, height: int, width: int, max_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-frame flat pixel indices of every mask inside its box, mask after mask, and their counts.

    A box of more than max_samples pixels is read on a regular grid of every k-th row and column
    (k = ceil(sqrt(box area / max_samples))): it bounds the cost, scanning included, and samples
    the mask evenly in both directions.
    """
    pixel_index = _pixel_index(height, width)
    index, counts = [], np.zeros(len(masks), np.int64)
    for i, (mask, box) in enumerate(zip(masks, boxes)):
        x1, y1, x2, y2 = _crop_bounds(box, height, width)
        if x2 <= x1 or y2 <= y1:
            continue
        step = max(1, math.ceil(math.sqrt((x2 - x1) * (y2 - y1) / max_samples)))
        index.append(pixel_index[y1:y2:step, x1:x2:step][mask[y1:y2:step, x1:x2:step]])   # row-major
        counts[i] = index[-1].size
    return (np.concatenate(index) if index else np.zeros(0, np.intp)), counts


def _bounds(starts: np.ndarray, ends: np.ndarray, size: int) -> np.ndarray:
    """reduceat indices of the nonempty segments [starts[k], ends[k]) of `size` values: [s0, e0, s1, ...]."""
    bounds = np.empty(2 * starts.size, np.int64)
    bounds[0::2], bounds[1::2] = starts, ends
    if bounds.size and bounds[-1] == size:
        bounds = bounds[:-1]   # the last segment runs to the end; reduceat refuses an index == size
    return bounds


def _reduce(ufunc, values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """ufunc over each segment of _bounds (every other reduceat result is between two segments)."""
    return ufunc.reduceat(values, bounds)[::2] if bounds.size else np.zeros(0, values.dtype)


def measure_masks(depth: np.ndarray, masks, boxes, camera: CameraIntrinsics,
                  config: DepthConfig) -> Measurements3D:
    """measure_mask for many masks of one depth image at once (one gather, one sort, array ops).

    Only the masks' pixels are converted (a full-frame conversion would cost more than the whole
    3D path). The point is the lower median of the valid depths (a real sample, never between two
    surfaces) at the centroid of the valid pixels within max(0.2 m, 10%) of it: the object's
    surface, not the background a loose mask edge covers.
    """
    height, width = depth.shape
    n, minimum = len(masks), config.min_valid_pixels
    index, counts = _samples(masks, boxes, height, width, config.max_samples)
    ends = np.cumsum(counts)
    starts, has = ends - counts, counts > 0
    raw = depth.ravel()[index]   # a flat gather: 5x faster than depth[rows, cols]
    z = _metres(raw)
    valid = (z >= config.min_range_m) & (z <= config.max_range_m)   # NaN compares False
    good = _per_mask(valid, starts, ends, has)
    ok = good >= minimum
    if not ok.any():
        return _finish(ok, np.zeros(n), good, np.zeros((n, 5)), camera, config)
    ordered = _sorted_per_mask(raw, z, valid, counts)   # ordered(k): k-th value of each mask's valid ones
    median = ordered(np.where(ok, starts + (good - 1) // 2, 0))
    near_m = np.repeat(np.maximum(0.2, 0.1 * median.astype(np.float64)).astype(np.float32), counts)
    distance = z - np.repeat(median, counts)
    near = valid & (np.abs(distance) <= near_m)
    used = _per_mask(near, starts, ends, has)
    first = starts + _per_mask(valid & (distance < -near_m), starts, ends, has)   # surface starts here
    ok &= used >= minimum
    last = np.maximum(used - 1, 0)   # 5th / 95th percentile depth of the surface: no interpolation
    spread = (ordered(np.where(ok, first + np.ceil(0.95 * last).astype(np.int64), 0))
              - ordered(np.where(ok, first + (0.05 * last).astype(np.int64), 0)))
    extent = _pixel_extent(index[near], used, ok, width)
    extent[:, 4] = spread   # (rows without a measurement: 0 - 0)
    return _finish(ok, median.astype(np.float64), used, extent, camera, config)


def _per_mask(flags: np.ndarray, starts: np.ndarray, ends: np.ndarray, has: np.ndarray) -> np.ndarray:
    """How many of each mask's samples are flagged."""
    where, reduce = _segments(starts, ends, has, flags.size)
    out = np.zeros(starts.size, np.int64)
    out[where] = reduce(np.add, flags)
    return out


def _segments(starts: np.ndarray, ends: np.ndarray, include: np.ndarray, size: int):
    """(rows, reduce) for per-mask reductions over the samples of the `include` masks.

    reduce(ufunc, values) is ufunc over each segment [starts, ends) of the `size` values, one per
    `include` mask (each nonempty), in order: assign it to out[rows].
    """
    if include.all():   # the usual frame: the segments tile the values, one reduceat over the starts
        return slice(None), lambda ufunc, values: ufunc.reduceat(values, starts)
    bounds = _bounds(starts[include], ends[include], size)
    return include, lambda ufunc, values: _reduce(ufunc, values, bounds)


def _metres(raw: np.ndarray) -> np.ndarray:
    """float32 metres of uint16 millimetres (0, no return, -> 0 m: invalid) or of float32 metres."""
    return raw * np.float32(0.001) if raw.dtype == np.uint16 else raw


def _sorted_per_mask(raw: np.ndarray, z: np.ndarray, valid: np.ndarray,
                     counts: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Sort each mask's valid depths (then its invalid ones) with one sort over all masks.

    Returns ordered(positions) -> the float32 depth (m) at each position of the sorted samples.
    Millimetres sort as uint32 keys mask << 17 | invalid << 16 | mm; metres as float64 keys
    mask * span + depth, invalid ones as span - 1 (every float32 depth is exact in the key). Either
    way the order statistics are real samples.
    """
    seg = np.repeat(np.arange(counts.size, dtype=np.uint32), counts)
    if raw.dtype == np.uint16 and counts.size < 2 ** 15:
        key = (seg << 17) | (~valid).astype(np.uint32) << 16 | raw
        key.sort()
        return lambda positions: _metres((key[positions] & 0xFFFF).astype(np.uint16))
    span = float(np.ceil(np.nanmax(np.where(valid, z, 0.0), initial=0.0))) + 2.0
    key = np.where(valid, z, span - 1.0) + seg * span
    key.sort()
    return lambda positions: (key[positions] - np.arange(positions.size) * span).astype(np.float32)


def _pixel_extent(index: np.ndarray, counts: np.ndarray, ok: np.ndarray, width: int) -> np.ndarray:
    """(n, 5): column sum, row sum, column extent, row extent (px) of each mask's used pixels; 0."""
    out = np.zeros((ok.size, 5))
    rows = index // width
    cols = index - rows * width
    ends = np.cumsum(counts)
    segment, reduce = _segments(ends - counts, ends, ok, index.size)
    for k, values in enumerate((cols, rows)):
        out[segment, k] = reduce(np.add, values)
        out[segment, 2 + k] = reduce(np.maximum, values) - reduce(np.minimum, values) + 1
    return out


def _finish(ok, depth_m, counts, extent, camera: CameraIntrinsics, config: DepthConfig) -> Measurements3D:
    """Back-project the per-mask centroids and depths; zero rows where there is no measurement."""
    pixels = np.maximum(counts, 1)
    depth_m = np.where(ok, depth_m, 0.0)
    slope_x = (extent[:, 0] / pixels - camera.cx) / camera.fx   # X / Z of the centroid's ray
    slope_y = (extent[:, 1] / pixels - camera.cy) / camera.fy
    position = np.empty((ok.size, 3))
    position[:, 0], position[:, 1], position[:, 2] = slope_x * depth_m, slope_y * depth_m, depth_m
    size = np.empty((ok.size, 3))
    size[:, 0], size[:, 1] = extent[:, 2] * depth_m / camera.fx, extent[:, 3] * depth_m / camera.fy
    size[:, 2] = np.where(ok, extent[:, 4], 0.0)
    cov = _measurement_cov(slope_x, slope_y, depth_m, pixels, camera, config)
    cov[~ok] = 0.0
    return Measurements3D(ok, position, cov, size, np.where(ok, counts, 0))


def _measurement_cov(slope_x: np.ndarray, slope_y: np.ndarray, z: np.ndarray, pixels: np.ndarray,
                     camera: CameraIntrinsics, config: DepthConfig) -> np.ndarray:
    """(n, 3, 3) covariance (m^2) of back-projecting a centroid ray at depth z (first order).

    J diag(p^2, p^2, s^2) J^T written out, with J = d(X, Y, Z)/d(u, v, z) = [[z/fx, 0, X/Z],
    [0, z/fy, Y/Z], [0, 0, 1]], p = pixel_sigma and s the noise of the depth: the median of
    `pixels` samples has the per-pixel sigma times sqrt(pi / 2 * c / pixels) (the standard error
    of a median, c pixels per independent noise sample), never more than one pixel's.
    """
    depth_sigma = config.depth_sigma_m + config.depth_sigma_per_m2 * z * z
    depth_var = depth_sigma ** 2 * np.minimum(np.pi / 2 * config.depth_correlated_px / pixels, 1.0)
    ray = np.stack([slope_x, slope_y, np.ones_like(z)], 1)   # the depth column of J: (X/Z, Y/Z, 1)
    cov = (depth_var[:, None, None] * ray[:, :, None]) * ray[:, None, :]
    cov[:, 0, 0] += (z / camera.fx) ** 2 * config.pixel_sigma ** 2
    cov[:, 1, 1] += (z / camera.fy) ** 2 * config.pixel_sigma ** 2
    return cov
