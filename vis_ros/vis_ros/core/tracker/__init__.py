"""Online multi-object tracking of instance masks: `Tracker(config).step(instances, stamp_ns, frame)`.

See tracker.py for the pipeline and life cycle, config.py for every knob.
"""
from vis_ros.core.tracker.config import TrackerConfig
from vis_ros.core.tracker.tracker import Tracker

__all__ = ['Tracker', 'TrackerConfig']
