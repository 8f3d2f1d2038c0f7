"""tools.progress.Progress (drawn by tqdm): silent unless enabled, known and unknown totals, notes."""
import io

from vis_ros.tools.progress import Progress


def test_disabled_bar_writes_nothing_but_still_counts():
    stream = io.StringIO()         # not a terminal: enabled=None means off
    bar = Progress(5, 'replay', stream=stream)
    bar.update(3)
    bar.close()
    assert stream.getvalue() == ''
    assert bar.count == 3 and '3/5' in bar.line()


def test_note_and_unknown_total_are_drawn():
    stream = io.StringIO()
    bar = Progress(None, 'replay', stream=stream, enabled=True, min_interval_s=0)
    bar.update(2, note='drops 1')
    bar.close()
    last = stream.getvalue().rstrip('\n').split('\r')[-1]
    assert last.startswith('replay 2 ') and 'fps' in last and last.rstrip().endswith('drops 1')
    assert '/' not in last         # no total, so no n/N and no ETA
