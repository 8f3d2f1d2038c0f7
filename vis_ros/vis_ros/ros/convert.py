"""Message conversions of vis_ros, in one import: images, instance arrays, headers.

The code lives in `image_convert` (sensor_msgs/Image and CompressedImage <-> numpy),
`instance_convert` (core Tracks <-> vis_ros_msgs/InstanceArray) and `header` (stamps).
"""
from vis_ros.ros.header import copy_header, make_header, ns_to_stamp, stamp_to_ns
from vis_ros.ros.image_convert import (
    ENCODINGS, compressed_to_rgb, encoding_info, image_to_numpy, image_to_rgb, labels_to_image,
    numpy_to_image, rgb_to_image)
from vis_ros.ros.instance_convert import (
    instance_array_to_masks, instance_array_to_tracks, instance_kalman_box, instance_mask,
    kalman_box_fields, set_positions_3d, track_to_instance, tracks_to_instance_array)

__all__ = [
    'ENCODINGS', 'compressed_to_rgb', 'copy_header', 'encoding_info', 'image_to_numpy', 'image_to_rgb',
    'instance_array_to_masks', 'instance_array_to_tracks', 'instance_kalman_box', 'instance_mask',
    'kalman_box_fields', 'labels_to_image', 'set_positions_3d',
    'make_header', 'ns_to_stamp', 'numpy_to_image', 'rgb_to_image', 'stamp_to_ns', 'track_to_instance',
    'tracks_to_instance_array',
]
