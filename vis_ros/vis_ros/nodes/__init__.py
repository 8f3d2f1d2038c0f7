"""vis_ros.nodes."""
