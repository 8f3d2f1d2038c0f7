"""Publisher half of test_ros_interprocess.py: InstanceArrays built from known masks, from another process.

Usage: python ipc_publisher.py --topic /ipc/instances --count 10 --seed 3
The domain comes from ROS_DOMAIN_ID in the environment. Waits (steady clock) until a subscriber
matches, publishes `count` messages on a reliable keep-all-sized queue, then waits until every
message is acknowledged before exiting, so a slow subscriber still gets all of them. Exit code 0
on success, 1 when no subscriber appeared or the messages were not acknowledged in time.
"""
import argparse
import sys

import cv2
import numpy as np

from vis_ros.core.masks import mask_box
from vis_ros.core.types import Track, Tracks, TrackState

HEIGHT, WIDTH = 480, 640
INSTANCES = 20
BASE_STAMP_NS = 1_700_000_000_123_456_789
FRAME_NS = 33_333_333
CLASS_NAMES = ('person', 'bicycle', 'car')


def expected_tracks(seed: int, index: int) -> Tracks:
    """Return the tracks of message `index`: 20 ellipses of 40-120 px, fixed by (seed, index)."""
    rng = np.random.default_rng([seed, index])
    tracks = []
    for k in range(INSTANCES):
        canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
        center = (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT)))
        axes = (int(rng.integers(20, 61)), int(rng.integers(20, 61)))
        cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        mask = canvas.astype(bool)
        tracks.append(Track(
            track_id=index * 100 + k + 1, state=TrackState.CONFIRMED if k % 4 else TrackState.LOST,
            box=mask_box(mask), mask=mask, score=float(np.float32(rng.uniform(0.3, 1.0))),
            class_id=k % len(CLASS_NAMES), age=index + k, hits=index + 1, frames_since_seen=int(k % 4 == 0),
            velocity=(float(np.float32(rng.normal(0, 20))), float(np.float32(rng.normal(0, 20))))))
    return Tracks(stamp_ns=BASE_STAMP_NS + index * FRAME_NS, image_size=(HEIGHT, WIDTH),
                  tracks=tuple(tracks), ended_ids=(index * 100 + 99,))


def expected_frame_id(seed: int) -> str:
    """Return the header.frame_id every message of this run carries."""
    return f'ipc_camera_{seed}_optical'


def main(argv=None) -> int:
    """Publish the messages; exit 0 once all are acknowledged."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--topic', required=True)
    parser.add_argument('--count', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--timeout', type=float, default=20.0, help='seconds for matching and acks')
    args = parser.parse_args(argv)

    import rclpy
    from rclpy.duration import Duration
    from vis_ros_msgs.msg import InstanceArray

    from vis_ros.ros.convert import make_header, tracks_to_instance_array
    from vis_ros.ros.qos import make_qos
    from vis_ros.ros.recorder import wait_for

    messages = []
    for index in range(args.count):
        tracks = expected_tracks(args.seed, index)
        header = make_header(tracks.stamp_ns, expected_frame_id(args.seed))
        messages.append(tracks_to_instance_array(tracks, header, CLASS_NAMES))
    rclpy.init()
    try:
        node = rclpy.create_node(f'ipc_publisher_{args.seed}')
        publisher = node.create_publisher(InstanceArray, args.topic, make_qos('reliable', args.count))
        if not wait_for(lambda: publisher.get_subscription_count() > 0, args.timeout):
            print(f'[ipc_publisher] no subscriber on {args.topic} after {args.timeout} s', file=sys.stderr)
            return 1
        for msg in messages:
            publisher.publish(msg)
        if not publisher.wait_for_all_acked(Duration(seconds=args.timeout)):
            print(f'[ipc_publisher] {args.count} messages not acknowledged in {args.timeout} s',
                  file=sys.stderr)
            return 1
        print(f'[ipc_publisher] published {args.count} messages on {args.topic}', flush=True)
        return 0
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
