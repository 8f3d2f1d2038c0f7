"""vis_ros.tools."""
