"""sensor_msgs/Image and CompressedImage <-> numpy: every encoding, padding, byte order, errors."""
import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from vis_ros.core.errors import InputError
from vis_ros.core.sequences import image_files, shared_data_dir
from vis_ros.ros.convert import (
    ENCODINGS, compressed_to_rgb, encoding_info, image_to_numpy, image_to_rgb, labels_to_image,
    numpy_to_image, rgb_to_image)

pytestmark = pytest.mark.ros
RNG = np.random.default_rng(7)
H, W = 6, 8


def random_pixels(encoding, height=H, width=W):
    info = encoding_info(encoding)
    high = 256 if info.dtype == 'uint8' else 65536
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    return RNG.integers(0, high, shape).astype(info.dtype)


def smooth_rgb(height=48, width=64):
    """Return a smooth colour ramp (lossy codecs and 4:2:2 chroma keep it nearly exact)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)],
                    axis=2).astype(np.uint8)


def raw_image(encoding, data, height, width, step, is_bigendian=0):
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=is_bigendian)
    msg.data = bytes(data)
    return msg


def test_header_is_copied_exactly():
    header = Header(stamp=Time(sec=1_700_000_123, nanosec=999_999_999), frame_id='cam0_optical')
    msg = rgb_to_image(np.zeros((2, 2, 3), np.uint8), header)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == \
        (1_700_000_123, 999_999_999, 'cam0_optical')
    assert msg.header is not header


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_every_encoding_round_trips_bit_exact(encoding):
    pixels = random_pixels(encoding)
    msg = numpy_to_image(pixels, encoding)
    assert msg.step == W * encoding_info(encoding).pixel_bytes
    assert len(msg.data) == msg.step * H
    back = image_to_numpy(msg)
    assert back.dtype == pixels.dtype and back.shape == pixels.shape
    np.testing.assert_array_equal(back, pixels)


@pytest.mark.parametrize('encoding, order', [
    ('rgb8', [0, 1, 2]), ('bgr8', [2, 1, 0]), ('rgba8', [0, 1, 2]), ('bgra8', [2, 1, 0]),
    ('8UC3', [2, 1, 0]), ('8UC4', [2, 1, 0]),
    ('mono8', [0, 0, 0]), ('8UC1', [0, 0, 0]),
])
def test_8bit_encodings_give_rgb(encoding, order):
    pixels = random_pixels(encoding)
    rgb = image_to_rgb(numpy_to_image(pixels, encoding))
    planes = pixels[:, :, None] if pixels.ndim == 2 else pixels
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, planes[:, :, order])


@pytest.mark.parametrize('encoding, order', [
    ('rgb16', [0, 1, 2]), ('bgr16', [2, 1, 0]), ('rgba16', [0, 1, 2]), ('bgra16', [2, 1, 0]),
    ('16UC3', [2, 1, 0]), ('mono16', [0, 0, 0]), ('16UC1', [0, 0, 0]),
])
def test_16bit_encodings_keep_the_high_byte(encoding, order):
    pixels = random_pixels(encoding)
    rgb = image_to_rgb(numpy_to_image(pixels, encoding))
    planes = pixels[:, :, None] if pixels.ndim == 2 else pixels
    np.testing.assert_array_equal(rgb, (planes[:, :, order] >> 8).astype(np.uint8))


def test_mono16_minmax_stretches_to_full_range():
    depth_mm = np.array([[500, 1000], [1500, 2500]], np.uint16)
    rgb = image_to_rgb(numpy_to_image(depth_mm, 'mono16'), scale16='minmax')
    np.testing.assert_array_equal(rgb[:, :, 0], [[0, 64], [128, 255]])
    assert (image_to_rgb(numpy_to_image(depth_mm, 'mono16'))[:, :, 0] <= 9).all()   # >> 8: dark
    with pytest.raises(InputError, match='scale16'):
        image_to_rgb(numpy_to_image(depth_mm, 'mono16'), scale16='log')


def test_rgb8_without_padding_is_not_copied():
    msg = rgb_to_image(random_pixels('rgb8'))
    rgb = image_to_rgb(msg)
    assert np.shares_memory(rgb, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize('encoding, padding', [('rgb8', 5), ('bgr8', 3), ('mono8', 1), ('mono16', 6),
                                               ('uyvy', 4), ('rgba16', 2)])
def test_padded_rows_are_skipped(encoding, padding):
    pixels = random_pixels(encoding)
    dense = numpy_to_image(pixels, encoding)
    rows = np.frombuffer(dense.data, np.uint8).reshape(H, dense.step)
    padded_rows = np.concatenate([rows, np.full((H, padding), 0xEE, np.uint8)], axis=1)
    msg = raw_image(encoding, padded_rows.tobytes(), H, W, dense.step + padding,
                    dense.is_bigendian)
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)
    np.testing.assert_array_equal(image_to_rgb(msg), image_to_rgb(dense))


@pytest.mark.parametrize('encoding', ['mono16', '16UC1', 'rgb16'])
def test_16bit_byte_order_follows_is_bigendian(encoding):
    pixels = random_pixels(encoding)
    step = W * encoding_info(encoding).pixel_bytes
    big = raw_image(encoding, pixels.astype('>u2').tobytes(), H, W, step, is_bigendian=1)
    little = raw_image(encoding, pixels.astype('<u2').tobytes(), H, W, step, is_bigendian=0)
    for msg in (big, little):
        out = image_to_numpy(msg)
        assert out.dtype == np.uint16 and out.dtype.isnative
        np.testing.assert_array_equal(out, pixels)
    np.testing.assert_array_equal(image_to_rgb(big), image_to_rgb(little))


def test_big_endian_mono16_with_odd_padding_is_rejected_clearly():
    with pytest.raises(InputError, match='multiple of the 2-byte'):
        image_to_numpy(raw_image('mono16', bytes(H * (2 * W + 1)), H, W, 2 * W + 1, 1))


@pytest.mark.parametrize('encoding, code', [
    ('uyvy', cv2.COLOR_YUV2RGB_UYVY), ('yuv422', cv2.COLOR_YUV2RGB_UYVY),
    ('yuyv', cv2.COLOR_YUV2RGB_YUY2), ('yuv422_yuy2', cv2.COLOR_YUV2RGB_YUY2),
])
def test_yuv422_matches_opencv(encoding, code):
    packed = random_pixels(encoding)
    msg = numpy_to_image(packed, encoding)
    np.testing.assert_array_equal(image_to_rgb(msg), cv2.cvtColor(packed, code))


def test_uyvy_and_yuyv_read_their_own_byte_order():
    rgb = smooth_rgb()
    yuyv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2)
    uyvy = yuyv.reshape(rgb.shape[0], -1, 2)[:, :, ::-1].reshape(yuyv.shape)   # Y0 U Y1 V -> U Y0 V Y1
    from_yuyv = image_to_rgb(numpy_to_image(np.ascontiguousarray(yuyv), 'yuyv'))
    from_uyvy = image_to_rgb(numpy_to_image(np.ascontiguousarray(uyvy), 'uyvy'))
    np.testing.assert_array_equal(from_yuyv, from_uyvy)
    assert np.abs(from_yuyv.astype(int) - rgb).mean() < 4      # 4:2:2 loses only chroma detail
    wrong = image_to_rgb(numpy_to_image(np.ascontiguousarray(uyvy), 'yuyv'))
    assert np.abs(wrong.astype(int) - rgb).mean() > 20


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_patterns_recover_a_flat_colour(pattern):
    colour = {'r': 200, 'g': 120, 'b': 40}
    mosaic = np.zeros((16, 16), np.uint8)
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mosaic[dy::2, dx::2] = colour[pattern[k]]
    rgb = image_to_rgb(numpy_to_image(mosaic, f'bayer_{pattern}8'))
    np.testing.assert_allclose(rgb[4:-4, 4:-4].reshape(-1, 3).mean(0), [200, 120, 40], atol=2)


def test_rosbags_image_messages_convert_too():
    rosbags_typesys = pytest.importorskip('rosbags.typesys')
    store = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_KILTED)
    types = store.types
    pixels = random_pixels('mono16')
    header = types['std_msgs/msg/Header'](stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=2),
                                          frame_id='cam')
    msg = types['sensor_msgs/msg/Image'](
        header=header, height=H, width=W, encoding='mono16', is_bigendian=1, step=2 * W,
        data=np.frombuffer(pixels.astype('>u2').tobytes(), np.uint8).copy())
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)
    rgb = random_pixels('bgr8')
    msg = types['sensor_msgs/msg/Image'](header=header, height=H, width=W, encoding='bgr8',
                                         is_bigendian=0, step=3 * W, data=rgb.reshape(-1))
    np.testing.assert_array_equal(image_to_rgb(msg), rgb[:, :, ::-1])
    assert rgb_to_image(rgb, header).header.frame_id == 'cam'


def test_labels_image_is_mono16():
    labels = np.arange(H * W, dtype=np.int64).reshape(H, W) * 1000
    msg = labels_to_image(labels, Header(frame_id='cam'))
    assert (msg.encoding, msg.step, msg.header.frame_id) == ('mono16', 2 * W, 'cam')
    np.testing.assert_array_equal(image_to_numpy(msg), labels)
    with pytest.raises(InputError, match='0..65535'):
        labels_to_image(labels * 100)
    with pytest.raises(InputError, match='integer'):
        labels_to_image(labels.astype(np.float32))


# --- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('encoding, data_len, height, width, step, match', [
    ('rgb8', 1000 * 480, 480, 640, 1000,
     r'Image.step is 1000 but width 640 x 3 bytes \(rgb8\) needs >= 1920'),
    ('rgb8', 1920 * 479, 480, 640, 1920, r'has 919680 bytes but step 1920 x height 480 = 921600 \(truncated'),
    ('rgb8', 1920 * 481, 480, 640, 1920, 'longer than its header says'),
    ('mono8', 0, 0, 0, 0, r'empty \(0x0'),
    ('mono8', 0, 4, 0, 0, r'empty \(0x4'),
    ('yuyv', 6 * 2, 2, 3, 6, 'even width'),
    ('32FC1', 4 * 4, 2, 2, 8, "Image.encoding '32FC1' is not supported"),
    ('', 4, 2, 2, 2, "Image.encoding '' is not supported"),
])
def test_malformed_images_are_rejected(encoding, data_len, height, width, step, match):
    msg = raw_image(encoding, bytes(data_len), height, width, step)
    with pytest.raises(InputError, match=match):
        image_to_numpy(msg)
    with pytest.raises(InputError, match=match):
        image_to_rgb(msg)


@pytest.mark.parametrize('array, encoding, match', [
    (np.zeros((4, 4, 3), np.uint16), 'rgb8', r'rgb8 needs a \(H, W, 3\) uint8 array, got \(4, 4, 3\) uint16'),
    (np.zeros((4, 4), np.uint8), 'rgb8', r'needs a \(H, W, 3\)'),
    (np.zeros((4, 4, 3), np.uint8), 'mono16', r'mono16 needs a \(H, W\) uint16'),
    (np.zeros((0, 4, 3), np.uint8), 'rgb8', 'empty'),
    (np.zeros((4, 4, 3), np.uint8), 'rgb9', "'rgb9' is not supported"),
])
def test_numpy_to_image_rejects_mismatched_arrays(array, encoding, match):
    with pytest.raises(InputError, match=match):
        numpy_to_image(array, encoding)


# --- CompressedImage -------------------------------------------------------------------------------

def compressed(data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = bytes(data)
    return msg


def encode(ext, array):
    ok, buf = cv2.imencode(ext, array)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize('fmt', ['png', 'bgr8; png compressed bgr8', 'rgb8; png compressed bgr8', ''])
def test_png_decodes_exactly(fmt):
    rgb = random_pixels('rgb8', 20, 30)
    png = encode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png, fmt)), rgb)


@pytest.mark.parametrize('fmt', ['jpeg', 'jpg', 'rgb8; jpeg compressed bgr8', ''])
def test_jpeg_decodes_close_to_the_source(fmt):
    rgb = smooth_rgb()
    jpeg = encode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = compressed_to_rgb(compressed(jpeg, fmt))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 3


def test_png_stored_as_rgb_is_read_as_rgb():
    rgb = random_pixels('rgb8', 10, 12)
    png = encode('.png', rgb)    # channels written unswapped: the format says so
    np.testing.assert_array_equal(compressed_to_rgb(compressed(png, 'rgb8; png compressed rgb8')), rgb)


def test_gray_and_16bit_png():
    gray = random_pixels('mono8', 10, 12)
    out = compressed_to_rgb(compressed(encode('.png', gray), 'mono8; png compressed mono8'))
    np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))
    deep = random_pixels('mono16', 10, 12)
    out = compressed_to_rgb(compressed(encode('.png', deep), 'mono16; png compressed mono16'))
    np.testing.assert_array_equal(out[:, :, 1], deep >> 8)


def test_real_camera_jpeg_matches_opencv_imread():
    root = shared_data_dir()
    if root is None or not (root / 'davis2016' / 'dog' / 'JPEGImages').is_dir():
        pytest.skip('../shared/data/davis2016/dog is absent: real JPEG check skipped')
    path = image_files(root / 'davis2016' / 'dog' / 'JPEGImages')[0]
    out = compressed_to_rgb(compressed(path.read_bytes(), 'rgb8; jpeg compressed bgr8'))
    np.testing.assert_array_equal(out, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize('data, fmt, match', [
    (b'', 'jpeg', 'data is empty'),
    (b'\xff\xd8\xff' + bytes(100), 'jpeg', r'not a decodable jpeg image'),
    ('truncated_png', 'png', r'not a decodable png image'),
    ('truncated_jpeg', 'jpeg', r'not a decodable jpeg image \(corrupt or truncated\)'),
    (b'\x00\x00\x00\x01\x67', 'h264', "format 'h264' names no supported codec"),
    (bytes(16), '', "format '' names no supported codec"),
    (b'\x00' * 12 + b'\x89PNG', '16UC1; compressedDepth png', 'compressedDepth'),
])
def test_bad_compressed_images_are_rejected(data, fmt, match):
    if data == 'truncated_png':
        data = encode('.png', random_pixels('rgb8', 20, 20))[:40]
    elif data == 'truncated_jpeg':
        full = encode('.jpg', random_pixels('rgb8', 64, 64))
        data = full[:len(full) * 2 // 3]
    with pytest.raises(InputError, match=match):
        compressed_to_rgb(compressed(data, fmt))
