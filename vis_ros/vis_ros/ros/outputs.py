"""The node's output topics: made in configure, fed once per frame by the worker, destroyed in cleanup.

Every per-frame output carries the SOURCE image header object unchanged (stamp and frame_id), so
consumers can match it to the image, depth and TF at capture time. The tracks published are
chosen once per frame (core.stream.PublicIds: publish_tentative, min_score, and public ids stay
until ended) and that one list orders both ~/instances and ~/labels, so label k is always
instances[k - 1] of the same frame.
"""
from __future__ import annotations

import time
from typing import Sequence

from rclpy.event_handler import PublisherEventCallbacks
from sensor_msgs.msg import Image
from vis_ros_msgs.msg import ClassTable, InstanceArray

from vis_ros.core.covariance import class_table_version
from vis_ros.core.overlay import draw_overlay, label_image
from vis_ros.core.types import Track, Tracks
from vis_ros.ros import convert, qos
from vis_ros.ros.markers import MarkerArray, MarkerTracker

try:  # vision_msgs is optional (interop only); ~/detections exists only where it imports
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:  # pragma: no cover - depends on the install
    Detection2DArray = None


def _detections(tracks: Sequence[Track], header, class_names: Sequence[str]):
    array = Detection2DArray(header=header)
    for track in tracks:
        box = convert.kalman_box_fields(track)   # the same box as ~/instances (issue 15)
        det = Detection2D(header=header, id=str(track.track_id))
        det.bbox.center.position.x, det.bbox.center.position.y = box['box_center_x'], box['box_center_y']
        det.bbox.size_x, det.bbox.size_y = box['box_width'], box['box_height']
        hypothesis = ObjectHypothesisWithPose()
        cov = box['box_covariance']   # BoundingBox2D has no covariance: x, y go in the pose's
        hypothesis.pose.covariance[0], hypothesis.pose.covariance[1] = float(cov[0]), float(cov[1])
        hypothesis.pose.covariance[6], hypothesis.pose.covariance[7] = float(cov[1]), float(cov[4])
        cid = int(track.class_id)
        hypothesis.hypothesis.class_id = class_names[cid] if 0 <= cid < len(class_names) else str(cid)
        hypothesis.hypothesis.score = float(track.score)
        det.results = [hypothesis]
        array.detections.append(det)
    return array


def _events(node, topic: str, offered) -> PublisherEventCallbacks:
    """Warn (throttled) when a subscriber asks for QoS this publisher cannot give."""
    def on_incompatible(event) -> None:
        node.get_logger().warning(
            f'a subscriber of {topic} requests QoS incompatible with the offered '
            f'{qos.describe_qos(offered)} (policy {event.last_policy_kind.name}); it gets nothing '
            'until its QoS matches', throttle_duration_sec=10.0)
    return PublisherEventCallbacks(incompatible_qos=on_incompatible)


class Outputs:
    """Publishers of ~/instances, ~/labels, ~/overlay, ~/detections, ~/classes (lifecycle-gated)."""

    def __init__(self, node, config, class_names: Sequence[str]):
        """Create the publishers the NodeConfig asks for (~/instances and ~/classes always)."""
        self._node = node
        self._class_names = tuple(class_names)
        self.class_table_version = 0   # set by publish_classes

        def publisher(msg_type, topic, profile):
            events = _events(node, node.resolve_topic_name(topic), profile)
            return node.create_lifecycle_publisher(msg_type, topic, profile, event_callbacks=events)
        self.instances = publisher(InstanceArray, '~/instances', qos.INSTANCES_OUT)
        self.labels = publisher(Image, '~/labels', qos.OVERLAY_OUT) if config.publish_labels else None
        self.overlay = publisher(Image, '~/overlay', qos.OVERLAY_OUT) if config.publish_overlay else None
        self.detections = None
        if config.publish_detections and Detection2DArray is not None:
            self.detections = publisher(Detection2DArray, '~/detections', qos.INSTANCES_OUT)
        elif config.publish_detections:
            node.get_logger().info('~/detections is off: vision_msgs is not installed here '
                                   '(install ros-<distro>-vision-msgs to enable it)')
        # Plain (not lifecycle) publisher: the class table is latched configuration, valid from
        # configure on, and late subscribers get it through transient-local durability.
        self.classes = node.create_publisher(ClassTable, '~/classes', qos.LATCHED)
        # issue 15: ~/markers (RViz boxes at the 3D positions) exists when the depth input is on
        self.markers = self._marker_tracker = None
        if config.depth_options.get('enabled'):
            self.markers = publisher(MarkerArray, '~/markers', qos.INSTANCES_OUT)
            self._marker_tracker = MarkerTracker(class_names)

    def publish_classes(self, backend: str) -> None:
        """Send the latched class table of the configured backend."""
        self.class_table_version = class_table_version(backend, self._class_names)
        msg = ClassTable(backend=backend, class_names=list(self._class_names),
                         version=self.class_table_version)
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self.classes.publish(msg)

    def publish(self, tracks: Tracks, header, image, overlay_alpha: float,
                estimates=None) -> dict[str, float]:
        """Publish one frame's outputs with the source `header`.

        estimates: {track id: core Estimate3D} from the depth input (None without one): the 3D
        block of ~/instances and ~/markers.

        Returns stage milliseconds: encode (InstanceArray build), publish (~/instances sent),
        then labels / overlay / detections when someone subscribes to them, and `instances_done`:
        time.monotonic_ns() right after ~/instances went out (what planners wait for).
        """
        stages = {}
        t0 = time.perf_counter()
        array = convert.tracks_to_instance_array(tracks, header, self._class_names,
                                                 publish_tentative=True)
        array.class_table_version = self.class_table_version
        if estimates is not None:
            convert.set_positions_3d(array, estimates)
        t1 = time.perf_counter()
        self.instances.publish(array)
        stages['instances_done'] = time.monotonic_ns()
        t2 = time.perf_counter()
        stages.update(encode=(t1 - t0) * 1e3, publish=(t2 - t1) * 1e3)
        height, width = tracks.image_size
        if self.labels is not None and self.labels.get_subscription_count() > 0:
            self.labels.publish(convert.labels_to_image(label_image(tracks.tracks, height, width), header))
            stages['labels'] = (time.perf_counter() - t2) * 1e3
        t3 = time.perf_counter()
        if self.overlay is not None and self.overlay.get_subscription_count() > 0:
            picture = draw_overlay(image, tracks.tracks, self._class_names, alpha=overlay_alpha)
            self.overlay.publish(convert.rgb_to_image(picture, header))
            stages['overlay'] = (time.perf_counter() - t3) * 1e3
        t4 = time.perf_counter()
        if self.markers is not None and estimates is not None:
            if self.markers.get_subscription_count() > 0:
                self.markers.publish(self._marker_tracker.build(tracks.tracks, estimates, header))
                stages['markers'] = (time.perf_counter() - t4) * 1e3
            else:   # nobody holds our markers: nothing to delete later either
                self._marker_tracker.forget()
        t4 = time.perf_counter()
        if self.detections is not None and self.detections.get_subscription_count() > 0:
            self.detections.publish(_detections(tracks.tracks, header, self._class_names))
            stages['detections'] = (time.perf_counter() - t4) * 1e3
        return stages

    def publish_ended(self, ended: Tracks, frame_id: str) -> None:
        """Announce ids ending outside a frame (new stream, deactivate, shutdown): no instances.

        Stamped with the node clock now (there is no source image); frame_id of the last frame.
        """
        from std_msgs.msg import Header
        header = Header(stamp=self._node.get_clock().now().to_msg(), frame_id=frame_id)
        self.instances.publish(convert.tracks_to_instance_array(ended, header, self._class_names))

    def destroy(self) -> None:
        """Destroy every publisher (the node stays)."""
        for pub in (self.instances, self.labels, self.overlay, self.detections, self.markers):
            if pub is not None:
                self._node.destroy_lifecycle_publisher(pub)
        self._node.destroy_publisher(self.classes)
        self.instances = self.labels = self.overlay = self.detections = self.classes = self.markers = None
