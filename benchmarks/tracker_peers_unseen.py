"""The UNSEEN set: synthetic presets and a detector-noise model the tracker defaults were never tuned on.

The defaults (TrackerConfig) were tuned on the five presets of vis_ros.core.synthetic_presets with
the default DetectorNoise, where every object has its own random, saturated texture, so colour
tells objects apart. Here every object of a scene shares ONE texture (same colour and pattern):
the colour histogram cannot tell them apart, and only motion and shape can. The noise model
differs too: twice the misses but shorter bursts, three times the false positives, coarser mask
boundaries and larger shifts, noisier scores, more class flips and merges.
"""
from dataclasses import replace

import numpy as np

from vis_ros.core.synthetic import DetectorNoise
from vis_ros.core.synthetic_presets import PLANS
from vis_ros.core.synthetic_scene import render_plan

PRESETS = ('same-look-crossing', 'same-look-crowd', 'same-look-occlusion')
NOISE = DetectorNoise(miss_rate=0.16, miss_persist=0.25, fp_rate=1.0, mask_jitter_px=3, shift_px=2.5,
                      score_std=0.15, class_flip_rate=0.06, merge_rate=0.25)
DESCRIPTION = ('UNSEEN set: presets whose objects all share one texture (same colour), and a noise model '
               'unlike the default (see benchmarks/tracker_peers_unseen.py); the tracker defaults were '
               'never tuned on either.')


def make(preset: str, seed: int, height: int = 480, width: int = 640):
    """Render an unseen preset: a base preset's plan with every object given the same texture."""
    base = preset.removeprefix('same-look-')
    if preset not in PRESETS:
        raise ValueError(f'unknown unseen preset {preset!r}; choose from {PRESETS}')
    seeds = np.random.SeedSequence([int(seed), 1000 + PRESETS.index(preset)]).spawn(2)
    plan = PLANS[base](np.random.default_rng(seeds[0]), height, width)
    plan = replace(plan, objects=tuple(replace(o, texture_seed=4242) if o.gt_id > 0 else o
                                       for o in plan.objects))
    return render_plan(plan, preset, seeds[1], None, height, width)
