"""Step time of our tracker vs ByteTrack and BoT-SORT+CMC: 50 tracks x 50 instances, 640x480, one core.

All measured in the same run, side by side, each process pinned to the same core with one thread,
so the ratios hold even when the machine is shared (absolute milliseconds do not). Step times are
CPU time of the stepping thread (time.thread_time). Ours runs on the same noise-free detections as
the peers: with masks and the frame (appearance + camera motion), and with masks only.
"""
from dataclasses import replace

import numpy as np

import tracker_peers as tp


def step_time_case(config, cpu: int, frames: int = 60, warmup: int = 10) -> tuple[list[str], dict]:
    """Lines of the step-time table and its data."""
    from vis_ros.core.synthetic import CLEAN
    from vis_ros.core.synthetic_presets import plan_crowd
    from vis_ros.core.synthetic_scene import render_plan
    plan = replace(plan_crowd(np.random.default_rng(50), 480, 640, count=50, size_range=(22, 40)),
                   num_frames=frames)
    scene = render_plan(plan, 'step50', 50)
    stream, payload = tp.make_stream(scene, 0, CLEAN, config.mask_stride)
    payload['lost_frames'] = np.int64(round(config.lost_timeout_s * scene.fps))
    ms, tracks = {}, {}
    for cue in (tp.OURS_FRAME, tp.OURS):
        run = tp.run_ours(scene, stream, config, cue)
        ms[cue], tracks[cue] = run['ms'], run['tracks']
    if tp.PEERS_PYTHON.exists():
        data = {k: v for k, v in payload.items() if k != 'embeddings'}
        out = tp.run_peer_process(tp.PEERS_PYTHON, ['ByteTrack', 'BoT-SORT'], data, scene.frames, cpu)
        ms['ByteTrack'], ms['BoT-SORT+CMC'] = out['ByteTrack']['ms'], out['BoT-SORT']['ms']
    base = np.median(ms['ByteTrack'][warmup:]) if 'ByteTrack' in ms else float('nan')
    botsort = np.median(ms['BoT-SORT+CMC'][warmup:]) if 'BoT-SORT+CMC' in ms else float('nan')
    lines = [f"{np.mean([len(i) for i in scene.gt_ids]):.1f} visible objects and "
             f"{np.mean(np.diff(payload['offsets'])):.1f} instances per frame on average; "
             f"ours holds {np.mean(tracks[tp.OURS_FRAME][warmup:]):.1f} tracks after warm-up; "
             f"{frames} frames, first {warmup} not timed. Target: ours with masks <= 1.5x ByteTrack.", '',
             '| tracker | input | step ms median | step ms p99 | x ByteTrack | x BoT-SORT+CMC |',
             '|---|---|---|---|---|---|']
    summary = {}
    for name in (tp.OURS_FRAME, tp.OURS, 'ByteTrack', 'BoT-SORT+CMC'):
        if name not in ms:
            continue
        med, p99 = float(np.median(ms[name][warmup:])), float(np.percentile(ms[name][warmup:], 99))
        summary[name] = {'ms_median': med, 'ms_p99': p99, 'x_bytetrack': med / base,
                         'x_botsort_cmc': med / botsort}
        lines.append(f'| {name} | {tp.CUES[name]} | {med:.2f} | {p99:.2f} | {med / base:.2f} | '
                     f'{med / botsort:.2f} |')
    return lines, summary
