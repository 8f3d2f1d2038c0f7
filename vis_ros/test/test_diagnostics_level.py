"""The /diagnostics level and message from NodeStats, at chosen times (no node, no DDS)."""
import time

from diagnostic_msgs.msg import DiagnosticStatus

from vis_ros.ros.diagnostics import NodeStats, diagnostic_level


def level_at(stats: NodeStats, now: float):
    return diagnostic_level(stats, now, receiving=True, active=True, stall_s=3.0)


def test_stall_names_stale_frames_even_when_the_window_has_none():
    # A loaded machine: the stale frames came more than one window before the status is built.
    stats = NodeStats(window_s=1.0)
    stats.add_latencies({'total': 1.0})
    for _ in range(3):
        stats.add_stale_frame()
    level, message = level_at(stats, time.monotonic() + 5.0)
    assert level == DiagnosticStatus.ERROR, message
    assert '3 frames skipped as stale' in message and 'stamp_source:=receive' in message, message


def test_stall_names_bad_frames_and_output_clears_the_cause():
    stats = NodeStats(window_s=1.0)
    stats.add_latencies({'total': 1.0})
    stats.add_bad_frame()
    level, message = level_at(stats, time.monotonic() + 5.0)
    assert level == DiagnosticStatus.ERROR and '1 bad frames since then' in message, message
    stats.add_latencies({'total': 1.0})   # output resumes: nothing skipped since it
    level, message = level_at(stats, time.monotonic() + 5.0)
    assert level == DiagnosticStatus.ERROR and message.endswith('s'), message
    assert 'bad' not in message and 'stale' not in message, message
