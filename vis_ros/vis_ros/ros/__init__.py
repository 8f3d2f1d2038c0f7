"""vis_ros.ros."""
