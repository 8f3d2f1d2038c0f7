"""vis_ros: online video instance segmentation with persistent track ids for ROS 2."""

__version__ = '0.1.0'
