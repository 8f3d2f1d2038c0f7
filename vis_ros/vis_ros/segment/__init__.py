"""vis_ros.segment."""
