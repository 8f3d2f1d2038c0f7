"""REPORT.md, report.json and PNG plots of `vis-ros eval` (matplotlib, Agg backend: no display).

Layout of REPORT.md: the headline figures table first (one row per sequence, then the mean), then
the replay that produced the predictions (backend, frames, drops, throughput, latency), then per
sequence the plots and a per-frame table.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from vis_ros.core.overlay import id_color

SINGLE_COLUMNS = (('J&F', 'J&F (one id)'), ('J', 'J'), ('F', 'F'), ('J&F_best', 'J&F per-frame best'),
                  ('J&F_union', 'J&F union'))
MULTI_COLUMNS = (('HOTA', 'HOTA'), ('DetA', 'DetA'), ('AssA', 'AssA'), ('IDF1', 'IDF1'), ('MOTA', 'MOTA'),
                 ('IDSW', 'ID switches'))
_STATE_ALPHA = {0: 0.3, 1: 1.0, 2: 0.35}   # tentative faint, confirmed solid, lost faint


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')   # files only; never needs a display
    import matplotlib.pyplot as plt
    return plt


def outside_legend(ax) -> None:
    """Legend to the right of the axes, so it never covers bars or lines."""
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0.0)


def _slug(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name) or 'sequence'


def _fmt(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{float(value):.3f}'


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(_fmt(v) if not isinstance(v, str) else v for v in row) + ' |' for row in rows]
    return lines


def _headline(results: Sequence[dict], kind: str) -> tuple[list[str], dict]:
    chosen = [r for r in results if r['kind'] == kind]
    columns = SINGLE_COLUMNS if kind == 'single' else MULTI_COLUMNS
    header = ['sequence', *(label for _, label in columns), 'frames scored', 'tracks']
    rows = [[r['name'], *(r['figures'][key] for key, _ in columns), r['frames_scored'], r['tracks_seen']]
            for r in chosen]
    means = {key: float(np.mean([r['figures'][key] for r in chosen])) for key, _ in columns}
    if len(chosen) > 1:
        rows.append(['**mean**', *(means[key] for key, _ in columns),
                     sum(r['frames_scored'] for r in chosen), '-'])
    return _table(header, rows), means


def _replay_table(results: Sequence[dict]) -> list[str]:
    rows = []
    for r in results:
        s = r.get('replay') or {}
        total = (s.get('latency_ms') or {}).get('total', {})
        backend = (s.get('backend') or {}).get('name', '?')
        rows.append([r['name'], backend, s.get('frames', '-'), s.get('dropped', '-'),
                     s.get('fps', float('nan')),
                     total.get('p50', float('nan')), total.get('p99', float('nan')),
                     '**INCOMPLETE**' if r.get('incomplete') else 'yes'])
    return _table(['sequence', 'backend', 'frames', 'dropped', 'frames/s', 'latency p50 ms',
                   'latency p99 ms', 'complete'], rows)


def _plot_sequences(results: Sequence[dict], out: Path) -> list[str]:
    plt = _pyplot()
    names = []
    for kind, keys in (('single', ('J', 'F', 'J&F')), ('multi', ('HOTA', 'IDF1', 'MOTA'))):
        chosen = [r for r in results if r['kind'] == kind]
        if not chosen:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(chosen) + 3), 3.5))
        x = np.arange(len(chosen))
        for k, key in enumerate(keys):
            ax.bar(x + (k - 1) * 0.27, [r['figures'][key] for r in chosen], 0.27, label=key)
        ax.set_xticks(x, [r['name'] for r in chosen], rotation=20, ha='right')
        ax.set_ylim(min(0.0, *(r['figures'][k] for r in chosen for k in keys)), 1.0)
        ax.set_title('per sequence')
        outside_legend(ax)
        fig.tight_layout()
        name = f'sequences_{kind}.png'
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        names.append(name)
    return names


def _plot_iou(result: dict, out: Path) -> str:
    plt = _pyplot()
    frames = [row['frame'] for row in result['frames']]
    fig, ax = plt.subplots(figsize=(8.5, 3))
    if result['kind'] == 'single':
        for key, label in (('j_track', f'J one id ({result["track_id"]})'), ('j_best', 'J per-frame best'),
                           ('j_union', 'J union')):
            ax.plot(frames, [row[key] for row in result['frames']], label=label, lw=1.2)
    else:
        ax.plot(frames, [row['mean_best_iou'] for row in result['frames']],
                label='mean best IoU per GT object')
    ax.set_ylim(0, 1.02)
    ax.set_xlabel('frame')
    ax.set_ylabel('IoU')
    ax.set_title(f'{result["name"]}: per-frame IoU')
    outside_legend(ax)
    fig.tight_layout()
    name = f'iou_{_slug(result["name"])}.png'
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _plot_timeline(result: dict, out: Path) -> str:
    plt = _pyplot()
    timeline = result['timeline']
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.25 * len(timeline) + 1)))
    for row, (track_id, points) in enumerate(timeline.items()):
        color = np.array(id_color(int(track_id))) / 255.0
        for frame, state in points:
            ax.barh(row, 1, left=frame - 0.5, height=0.7, color=color, alpha=_STATE_ALPHA.get(state, 1.0),
                    linewidth=0)
    ax.set_yticks(range(len(timeline)), list(timeline))
    frames = [row['frame'] for row in result['frames']]
    if frames:
        ax.set_xlim(min(frames) - 0.5, max(frames) + 0.5)
    ax.invert_yaxis()
    ax.set_xlabel('frame (faint: lost / tentative)')
    ax.set_ylabel('track id')
    ax.set_title(f'{result["name"]}: track timeline')
    fig.tight_layout()
    name = f'timeline_{_slug(result["name"])}.png'
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _frame_table(result: dict) -> list[str]:
    if result['kind'] == 'single':
        keys = ('j_track', 'f_track', 'j_best', 'j_union', 'instances')
        header = ['frame', 'J one id', 'F one id', 'J per-frame best', 'J union', 'instances']
    else:
        keys = ('mean_best_iou', 'gt_objects', 'instances')
        header = ['frame', 'mean best IoU', 'GT objects', 'instances']
    return _table(header, [[row['frame'], *(row[k] for k in keys)] for row in result['frames']])


def _sequence_section(result: dict, out: Path) -> list[str]:
    lines = ['', f'## {result["name"]}', '',
             f'- predictions: `{result["pred"]}`; ground truth: `{result["gt"]}` ({result["layout"]})',
             f'- frames scored {result["frames_scored"]} of {result["gt_frames"]} '
             f'(unscored: {result["frames_unscored"]}, no prediction for them)']
    if result['kind'] == 'single':
        lines.append(f'- one id: track {result["track_id"]} (best mean J of {result["tracks_seen"]} tracks)')
    else:
        f = result['figures']
        lines.append(f'- ids: {f.get("num_pred_ids")} predicted for {f.get("num_gt_ids")} GT objects; '
                     f'IDTP {f.get("IDTP")} IDFP {f.get("IDFP")} IDFN {f.get("IDFN")}; '
                     f'TP {f.get("TP")} FP {f.get("FP")} FN {f.get("FN")}; Frag {f.get("Frag")}')
    iou, timeline = _plot_iou(result, out), _plot_timeline(result, out)
    lines += ['', f'![per-frame IoU]({iou})', '', f'![track timeline]({timeline})', '']
    return lines + _frame_table(result)


def write_report(results: Sequence[dict], out: Path, states: str = 'confirmed,lost') -> dict:
    """Write REPORT.md, report.json and plots into `out`; returns the headline figures."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ['# vis_ros evaluation', '']
    lines += [f'> **WARNING: {r["name"]} is INCOMPLETE** (scored with --allow-incomplete): {r["incomplete"]}'
              for r in results if r.get('incomplete')]
    lines += ['', f'Scored instance states: {states}. Frames are matched by order '
              '(ground-truth frame k = k-th message of the replayed topic).', '']
    headline, text = {}, []
    for kind, title in (('single', 'Single object (DAVIS J&F)'), ('multi', 'Multi-object tracking')):
        if any(r['kind'] == kind for r in results):
            table, means = _headline(results, kind)
            headline[kind] = means
            lines += [f'### {title}', '', *table, '']
            text.append(f'{title}: ' + '  '.join(f'{k} {_fmt(v)}' for k, v in means.items()))
    lines += ['### Replay', '', *_replay_table(results), '']
    lines += [f'![per sequence]({name})' for name in _plot_sequences(results, out)]
    for result in results:
        lines += _sequence_section(result, out)
    (out / 'REPORT.md').write_text('\n'.join(lines) + '\n')
    (out / 'report.json').write_text(json.dumps({'headline': headline, 'sequences': results}, indent=1,
                                                default=float) + '\n')
    return {'headline': headline, 'headline_text': '\n'.join(text)}
