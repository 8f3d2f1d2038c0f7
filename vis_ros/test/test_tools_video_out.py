"""Overlay videos: VP8/VP9 WebM as the decoder reports them, a temporary name until closed, mp4v fallback."""
import numpy as np
import pytest

from vis_ros.tools import video_out
from vis_ros.tools.video_out import VideoFile, fourcc_of


def frames(count=6, height=120, width=160):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width, 3), np.uint8) for _ in range(count)]


@pytest.mark.parametrize('codec, fourcc', [('vp8', 'VP80'), ('vp9', 'VP90')])
def test_webm_is_written_under_a_temporary_name_and_renamed_on_close(tmp_path, codec, fourcc):
    video = VideoFile(tmp_path / 'overlay', 10.0, codec)
    for rgb in frames():
        video.write(rgb)
    assert [p.name for p in tmp_path.iterdir()] == ['.overlay.partial.webm']   # a kill leaves no overlay.webm
    assert video.close() == tmp_path / 'overlay.webm'
    assert [p.name for p in tmp_path.iterdir()] == ['overlay.webm']
    assert fourcc_of(tmp_path / 'overlay.webm') == fourcc and video.codec == codec
    assert (tmp_path / 'overlay.webm').read_bytes()[:4] == b'\x1a\x45\xdf\xa3'   # EBML: WebM


def test_without_the_preferred_encoder_mp4v_is_used_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(video_out.CODECS, 'vp8', ('ZZZZ', '.webm'))   # an encoder no FFmpeg has
    video = VideoFile(tmp_path / 'overlay', 10.0, 'vp8', prog='test')
    for rgb in frames():
        video.write(rgb)
    assert video.close() == tmp_path / 'overlay.mp4' and video.codec == 'mp4v'
    assert 'browsers do not play' in capsys.readouterr().err
    assert fourcc_of(tmp_path / 'overlay.mp4') in ('FMP4', 'mp4v')
