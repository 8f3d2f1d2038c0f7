"""Overlay tags: at the object (top of its largest part), sized to the image, drawn over every mask."""
import numpy as np

from vis_ros.core.overlay import draw_overlay, label_anchor
from vis_ros.core.types import Track, TrackState


def track(mask, track_id=7, state=TrackState.CONFIRMED):
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    return Track(track_id, state, box, mask, 0.9, 0, 3, 3, 0)


def two_part_mask(height, width):
    """A speck near the top-left corner and a large blob in the lower right: the box corner is far away."""
    mask = np.zeros((height, width), bool)
    mask[2:4, 2:4] = True
    top, left = height // 2, width // 2
    mask[top:top + height // 3, left:left + width // 3] = True
    return mask, (top, left)


def tag_rows(image, drawn, mask):
    """Rows where the overlay changed pixels outside every mask (only the tag does that)."""
    changed = np.any(image != drawn, axis=2) & ~mask
    return np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))


def test_tag_sits_at_the_top_of_the_largest_part_not_at_the_box_corner():
    height, width = 480, 640
    mask, (top, left) = two_part_mask(height, width)
    x, y = label_anchor(mask)
    assert y == top and left <= x < left + width // 3
    image = np.full((height, width, 3), 90, np.uint8)
    rows, cols = tag_rows(image, draw_overlay(image, [track(mask)], ['thing']), mask)
    assert rows.size and rows.max() < top and top - rows.min() < 40      # just above the blob
    assert cols.min() > left - 60 and cols.max() < left + width // 3      # around its top, not at x=2


def test_tag_height_follows_the_image_size():
    heights = []
    for height, width in ((240, 320), (480, 640), (1080, 1920)):
        mask, _ = two_part_mask(height, width)
        image = np.full((height, width, 3), 90, np.uint8)
        rows, _ = tag_rows(image, draw_overlay(image, [track(mask)], ['thing']), mask)
        heights.append(rows.max() - rows.min() + 1)
    assert heights[0] >= 12                                   # readable on a small frame
    assert heights[2] >= 1.8 * heights[1] and heights[1] > heights[0]


def test_tag_goes_inside_an_object_touching_the_top_edge_and_lost_tracks_get_outlines():
    image = np.full((240, 320, 3), 90, np.uint8)
    mask = np.zeros((240, 320), bool)
    mask[0:100, 100:200] = True
    drawn = draw_overlay(image, [track(mask, state=TrackState.LOST)], ['thing'])
    inside = np.any(drawn[:40, 100:200] != image[:40, 100:200], axis=2)
    assert inside[5:30].any()                                # the tag, inside the top of the mask
    assert (drawn[150:, :] == image[150:, :]).all()          # nothing below the object
    assert (drawn[60:95, 120:180] == image[60:95, 120:180]).all()   # LOST: outline only, no fill
