"""Depth images as the node receives them: 16UC1 / 32FC1 in, clear errors for anything else."""
import numpy as np
import pytest
from sensor_msgs.msg import Image

from vis_ros.core.errors import InputError
from vis_ros.ros.convert import make_header
from vis_ros.ros.depth_input import depth_image_to_numpy, depth_to_image

pytestmark = pytest.mark.ros


@pytest.mark.parametrize('dtype', [np.uint16, np.float32])
def test_depth_round_trips_through_a_message(dtype):
    depth = (np.arange(12 * 7).reshape(7, 12) * 3).astype(dtype)
    msg = depth_to_image(depth, make_header(5, 'cam'))
    assert msg.encoding == ('16UC1' if dtype == np.uint16 else '32FC1')
    back = depth_image_to_numpy(msg)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, depth)


def test_32fc1_with_row_padding_and_big_endian_is_read_right():
    depth = np.array([[1.5, np.nan, 3.25], [0.0, 7.0, np.inf]], np.float32)
    rows = [np.concatenate([row.astype('>f4').view(np.uint8), np.zeros(4, np.uint8)]) for row in depth]
    msg = Image(height=2, width=3, encoding='32FC1', is_bigendian=True, step=16,
                data=np.concatenate(rows).tobytes())
    np.testing.assert_array_equal(depth_image_to_numpy(msg), depth)


@pytest.mark.parametrize('encoding, data, match', [
    ('rgb8', bytes(6 * 3), "expected 16UC1 \\(mm\\) or 32FC1 \\(m\\)"),
    ('32FC1', bytes(20), 'has 20 bytes'),
])
def test_bad_depth_images_are_refused_with_the_reason(encoding, data, match):
    msg = Image(height=2, width=3, encoding=encoding, step=12 if encoding == '32FC1' else 9, data=data)
    with pytest.raises(InputError, match=match):
        depth_image_to_numpy(msg)
