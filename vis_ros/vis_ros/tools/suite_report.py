"""The aggregated report of `vis-ros suite`: SUITE.md, suite.json and plots; `--compare` deltas.

SUITE.md has one table per kind of ground truth (DAVIS J&F; multi-object HOTA/IDF1/MOTA), a row
per sequence and the overall mean, then the bags replayed without ground truth, the failed bags
with their errors, and the plots. `compare()` reads an older suite.json and lists per sequence the
delta of each headline figure; a drop beyond the threshold, or a bag that scored before and fails
now, is a regression.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vis_ros.core.errors import ConfigError

# the figures per kind of ground truth that the tables show and --compare checks (higher is better)
HEADLINE = {'single': ('J&F', 'J', 'F', 'J&F_best'), 'multi': ('HOTA', 'DetA', 'AssA', 'IDF1', 'MOTA')}
TITLES = {'single': 'Single object (DAVIS J&F, one id)', 'multi': 'Multi-object tracking'}
REPORT_JSON = 'suite.json'
REPORT_MD = 'SUITE.md'


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:.3f}' if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    return lines + ['| ' + ' | '.join(_fmt(v) for v in row) + ' |' for row in rows]


def sequence_rows(outcomes: Sequence[dict]) -> list[dict]:
    """One flat row per bag (name order): status, kind, figures, counts, how it ran."""
    rows = []
    for outcome in sorted(outcomes, key=lambda o: o['result']['name']):
        result, info = outcome['result'], outcome.get('run') or {}
        scores = result.get('scores') or {}
        replay = result.get('replay') or {}
        rows.append({'name': result['name'], 'status': result['status'], 'error': result.get('error'),
                     'kind': scores.get('kind'), 'figures': scores.get('figures', {}),
                     'frames': replay.get('frames'), 'tracks_seen': replay.get('tracks_seen'),
                     'backend': result.get('backend'), 'skipped': bool(info.get('skipped')),
                     'attempts': info.get('attempt'), 'wall_s': info.get('wall_s'),
                     'host': info.get('host'), 'ray_node': info.get('ray_node'),
                     'input_key': result.get('input_key')})
    return rows


def overall(rows: Sequence[dict]) -> dict:
    """Mean of each headline figure per kind over the scored bags."""
    means = {}
    for kind, keys in HEADLINE.items():
        chosen = [r for r in rows if r['status'] == 'ok' and r['kind'] == kind]
        if chosen:
            means[kind] = {k: float(np.mean([r['figures'][k] for r in chosen])) for k in keys}
            means[kind]['sequences'] = len(chosen)
    return means


def _kind_table(rows: Sequence[dict], kind: str, means: dict) -> list[str]:
    keys = HEADLINE[kind]
    chosen = [r for r in rows if r['status'] == 'ok' and r['kind'] == kind]
    body = [[r['name'], *(r['figures'].get(k) for k in keys), r['frames'], r['tracks_seen']] for r in chosen]
    body.append(['**overall**', *(means[k] for k in keys), sum(r['frames'] or 0 for r in chosen), '-'])
    return [f'### {TITLES[kind]}', '', *_table(['sequence', *keys, 'frames', 'tracks'], body), '']


def _plot(rows: Sequence[dict], out: Path) -> list[str]:
    """The eval report's per-sequence bar plots (J/F/J&F, HOTA/IDF1/MOTA) over the scored bags."""
    # shared with `vis-ros eval` so both reports draw a sequence the same way
    from vis_ros.tools.report import _plot_sequences
    scored = [r for r in rows if r['status'] == 'ok' and r['kind']]
    return _plot_sequences(scored, out) + [_plot_time(rows, out)]


def _plot_time(rows: Sequence[dict], out: Path) -> str:
    """Seconds per bag in its worker, coloured by outcome: where the suite's time went."""
    import matplotlib
    matplotlib.use('Agg')   # files only; no display on a cluster node or in CI
    import matplotlib.pyplot as plt
    colours = {'ok': '#4c72b0', 'failed': '#c44e52', 'unchanged': '#bbbbbb'}
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.3 * len(rows) + 1)))
    for y, row in enumerate(rows):
        state = 'unchanged' if row['skipped'] else ('ok' if row['status'] == 'ok' else 'failed')
        ax.barh(y, row['wall_s'] or 0.0, color=colours[state], label=state)
    ax.set_yticks(range(len(rows)), [r['name'] for r in rows])
    ax.invert_yaxis()
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc='lower right', fontsize=8)
    ax.set_xlabel('seconds in the worker (unchanged: the earlier run)')
    ax.set_title('time per bag')
    fig.tight_layout()
    fig.savefig(out / 'suite_time.png', dpi=100)
    plt.close(fig)
    return 'suite_time.png'


def _where(row: dict) -> str:
    node = row.get('ray_node')
    return f'{row["host"]} (Ray node {node[:8]})' if node else str(row['host'])


def write_suite_report(outcomes: Sequence[dict], out: Path, run_info: dict,
                       comparison: Optional[dict] = None) -> dict:
    """Write SUITE.md, suite.json and the plots into `out`; returns the suite.json content."""
    out = Path(out)
    rows = sequence_rows(outcomes)
    means = overall(rows)
    failed = [r for r in rows if r['status'] != 'ok']
    unscored = [r for r in rows if r['status'] == 'ok' and r['kind'] is None]
    lines = ['# vis_ros suite', '',
             f'{len(rows)} bags: {len(rows) - len(failed)} ok ({sum(r["skipped"] for r in rows)} unchanged, '
             f'not rerun), {len(failed)} failed. Executor: {run_info["executor"]}; wall time '
             f'{run_info["wall_s"]:.1f} s. Per-bag outputs: bags/NAME/ (replay/, eval/, result.json).', '']
    for kind in HEADLINE:
        if kind in means:
            lines += _kind_table(rows, kind, means[kind])
    if unscored:
        lines += ['### Replayed without ground truth', '',
                  *_table(['sequence', 'frames', 'tracks'], [[r['name'], r['frames'], r['tracks_seen']]
                                                             for r in unscored]), '']
    if failed:
        lines += ['### Failed', '', *_table(['sequence', 'error'],
                                            [[r['name'], (r['error'] or '?').replace('|', '/')]
                                             for r in failed]), '']
    lines += ['### Runs', '', *_table(['sequence', 'status', 'backend', 'attempts', 'wall s', 'host'],
                                      [[r['name'], 'unchanged' if r['skipped'] else r['status'], r['backend'],
                                        r['attempts'], r['wall_s'], _where(r)] for r in rows]), '']
    lines += [f'![{name}]({name})' for name in _plot(rows, out)]
    if comparison is not None:
        lines += ['', *comparison_lines(comparison)]
    report = {'suite': run_info, 'overall': means, 'sequences': rows, 'comparison': comparison}
    (out / REPORT_MD).write_text('\n'.join(lines) + '\n')
    (out / REPORT_JSON).write_text(json.dumps(report, indent=1, default=float) + '\n')
    return report


def load_old_report(path: Path) -> dict:
    """An older suite.json (or the folder holding it); ConfigError when it is not one."""
    path = Path(path)
    path = path / REPORT_JSON if path.is_dir() else path
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f'--compare {path}: cannot read an earlier suite report ({err}); give the '
                          f'{REPORT_JSON} (or the folder) that a previous `vis-ros suite` wrote') from err
    if not isinstance(old, dict) or 'sequences' not in old:
        raise ConfigError(f'--compare {path} is not a {REPORT_JSON} of `vis-ros suite` (no "sequences")')
    return old


def compare(old: dict, outcomes: Sequence[dict], threshold: float) -> dict:
    """Per-sequence deltas of the headline figures against an older report; regressions flagged."""
    before = {r['name']: r for r in old['sequences']}
    rows, regressions = [], []
    for now in sequence_rows(outcomes):
        then = before.get(now['name'])
        if then is None:
            rows.append({'name': now['name'], 'note': 'new sequence'})
            continue
        if then['status'] == 'ok' and now['status'] != 'ok':
            regressions.append(f'{now["name"]}: scored before, fails now ({now["error"]})')
        for key in HEADLINE.get(now['kind'] or then.get('kind') or '', ()):
            old_v, new_v = then.get('figures', {}).get(key), now['figures'].get(key)
            if old_v is None or new_v is None:
                continue
            delta = new_v - old_v
            flagged = delta < -threshold
            rows.append({'name': now['name'], 'figure': key, 'old': old_v, 'new': new_v, 'delta': delta,
                         'regression': flagged})
            if flagged:
                regressions.append(f'{now["name"]}: {key} {old_v:.3f} -> {new_v:.3f} ({delta:+.3f})')
    missing = sorted(set(before) - {r['name'] for r in sequence_rows(outcomes)})
    return {'threshold': threshold, 'rows': rows, 'regressions': regressions, 'missing': missing}


def comparison_lines(comparison: dict) -> list[str]:
    """Markdown of a comparison: the deltas table, then the regressions."""
    rows = [[r['name'], r['figure'], r['old'], r['new'], f'{r["delta"]:+.3f}',
             '**REGRESSION**' if r['regression'] else ''] for r in comparison['rows'] if 'figure' in r]
    lines = [f'## Compared with the earlier report (regression: a drop of more than '
             f'{comparison["threshold"]})', '',
             *_table(['sequence', 'figure', 'old', 'new', 'delta', ''], rows)]
    lines += [f'- new: {r["name"]}' for r in comparison['rows'] if r.get('note')]
    lines += [f'- missing now: {name}' for name in comparison['missing']]
    lines += [f'- **regression** {text}' for text in comparison['regressions']] or ['', 'No regression.']
    return lines
