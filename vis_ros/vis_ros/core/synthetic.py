"""Synthetic video scenes with multi-object ground truth, and detections made from them.

What a scene holds (see `Scene`): textured objects (ellipses, rectangles, blobs; the shape is the
class: 0 ellipse, 1 rectangle, 2 blob) that move with varied dynamics (constant velocity,
acceleration, turning, stop-and-go), cross and occlude each other and scenery, leave and re-enter
the view, while the camera pans and zooms over a large textured world, the lighting drifts and
pixel noise is added. Ground truth is each object's VISIBLE mask with a persistent id (> 0).
Stamps are spaced irregularly around 1/fps so trackers see variable time steps. Everything is
deterministic given (preset, seed, num_frames, height, width); a 150-frame 640x480 scene renders in
well under a second.

Presets (`PRESETS`):
- crossing:  pairs of same-class objects cross head-on (identity swaps are the risk).
- occlusion: objects hidden > 1 s behind a hanging pillar (one stops behind it) and behind a larger
             object, then visible again with the same id.
- reentry:   objects leave the view, turn around out of sight and come back.
- crowd:     30 small objects, slow camera pan and zoom.
- pan:       fast camera pan (~600 px/s at 640 wide) with zoom over a wide world.

Detections (`synthetic_noise`): `scene_instances` (perfect, score 0.95) and `noisy_instances`
(a seeded model of a real detector's errors: misses, false positives, boundary errors, score
noise, class flips, splits and merges; knobs and defaults in `DetectorNoise`). The `iter_*` forms
yield one frame at a time, for long or crowded scenes.

On disk (`synthetic_io`): `save_scene(scene, folder)` writes frames/NNNNNN.png (RGB),
labels/NNNNNN.png (16-bit, pixel = GT id of the visible object, 0 = none; visible masks never
overlap) and scene.json (fps, stamps, ids per frame, class of each id); `load_scene_gt(folder)`
reads the ground truth back, `load_scene(folder)` the frames too.
"""
from vis_ros.core.synthetic_io import SceneGT, label_image, load_scene, load_scene_gt, save_scene
from vis_ros.core.synthetic_noise import (
    CLEAN, PERFECT_SCORE, DetectorNoise, iter_noisy_instances, iter_scene_instances,
    noise_description, noisy_instances, scene_instances)
from vis_ros.core.synthetic_presets import CLASS_NAMES, PRESETS
from vis_ros.core.synthetic_scene import GtMasks, Scene, make_scene

__all__ = [
    'CLASS_NAMES', 'CLEAN', 'PERFECT_SCORE', 'PRESETS', 'DetectorNoise', 'GtMasks', 'Scene', 'SceneGT',
    'iter_noisy_instances', 'iter_scene_instances', 'label_image', 'load_scene', 'load_scene_gt',
    'make_scene', 'noise_description', 'noisy_instances', 'save_scene', 'scene_instances',
]
