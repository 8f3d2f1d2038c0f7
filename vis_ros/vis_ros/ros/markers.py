"""~/markers: one RViz box per track at its 3D position (coloured by id) with its id and class.

Markers exist only for tracks with a 3D estimate. A marker whose track ended, or lost its 3D
estimate, is DELETEd in the next MarkerArray (RViz would otherwise keep drawing it); every marker
also has a short lifetime, so a node that dies leaves nothing stale behind.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from builtin_interfaces.msg import Duration
from visualization_msgs.msg import Marker, MarkerArray

from vis_ros.core.depth3d import Estimate3D
from vis_ros.core.overlay import id_color
from vis_ros.core.types import Track

NS_BOX, NS_TEXT = 'vis_ros/tracks', 'vis_ros/labels'
_LIFETIME = Duration(sec=1)
_MIN_SCALE = 0.05   # m: a sliver seen edge-on still shows


def _marker_id(track_id: int) -> int:
    return int(track_id) % (2 ** 31)   # Marker.id is int32; track ids are uint64


class MarkerTracker:
    """Builds each frame's MarkerArray and remembers which ids RViz holds, to delete them later."""

    def __init__(self, class_names: Sequence[str]):
        """Markers label classes with `class_names[class_id]`."""
        self._class_names = tuple(class_names)
        self._shown: set[int] = set()

    def forget(self) -> None:
        """No subscriber got the last markers: the next build deletes nothing."""
        self._shown = set()

    def build(self, tracks: Sequence[Track], estimates: Mapping[int, Estimate3D], header) -> MarkerArray:
        """Markers for `tracks` that have an estimate, DELETEs for ids shown before and not now."""
        out = MarkerArray()
        now = set()
        for track in tracks:
            est = estimates.get(track.track_id)
            if est is None:
                continue
            now.add(track.track_id)
            out.markers += self._track_markers(track, est, header)
        for gone in sorted(self._shown - now):
            for ns in (NS_BOX, NS_TEXT):
                out.markers.append(Marker(header=header, ns=ns, id=_marker_id(gone), action=Marker.DELETE))
        self._shown = now
        return out

    def _track_markers(self, track: Track, est: Estimate3D, header) -> list[Marker]:
        r, g, b = (c / 255.0 for c in id_color(track.track_id))
        box = Marker(header=header, ns=NS_BOX, id=_marker_id(track.track_id), type=Marker.CUBE,
                     action=Marker.ADD, lifetime=_LIFETIME)
        box.pose.position.x, box.pose.position.y, box.pose.position.z = (float(v) for v in est.position)
        box.pose.orientation.w = 1.0
        box.scale.x, box.scale.y, box.scale.z = (max(float(v), _MIN_SCALE) for v in est.size)
        box.color.r, box.color.g, box.color.b, box.color.a = r, g, b, 0.6
        cid = int(track.class_id)
        name = self._class_names[cid] if 0 <= cid < len(self._class_names) else 'unknown'
        text = Marker(header=header, ns=NS_TEXT, id=_marker_id(track.track_id),
                      type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, lifetime=_LIFETIME,
                      text=f'{track.track_id} {name}')
        text.pose.position.x, text.pose.position.y = float(est.position[0]), float(est.position[1])
        # optical frame: y points down, so "above the box" is -y
        text.pose.position.z = float(est.position[2])
        text.pose.position.y -= max(float(est.size[1]), _MIN_SCALE) / 2 + 0.1
        text.pose.orientation.w = 1.0
        text.scale.z = 0.15
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        return [box, text]
