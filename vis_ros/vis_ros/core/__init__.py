"""vis_ros.core."""
