"""Top-down plot (x right, z forward, metres) of the 3D tracks of a `vis-ros replay` with depth.

Each track id is a coloured line of its published 3D positions (OUT/tracks3d.jsonl), with a dot at
its last one; with --gt the true visible-surface points of the synthetic scene's objects
(BAG_gt/depth_truth.json) are drawn as thin grey lines underneath. The camera is at the origin,
looking up the plot.

    vis-ros make-bag synthetic:crossing --depth --out /tmp/crossing
    vis-ros replay /tmp/crossing --out /tmp/crossing_out
    python benchmarks/plot_tracks3d.py /tmp/crossing_out --gt /tmp/crossing_gt --png /tmp/tracks3d.png
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vis_ros.core.overlay import id_color
from vis_ros.tools.depth_tools import TRUTH_FILE, load_tracks3d


def tracks_xz(records: dict) -> dict[int, np.ndarray]:
    """{track id: (K, 2) x, z} in frame order."""
    paths: dict[int, list] = {}
    for _, record in sorted(records.items()):
        for track_id, est in record['tracks'].items():
            paths.setdefault(int(track_id), []).append((est['position'][0], est['position'][2]))
    return {k: np.array(v) for k, v in paths.items()}


def truth_xz(gt_dir: Path) -> dict[int, np.ndarray]:
    """{gt id: (K, 2) x, z} of the scene's truth."""
    paths: dict[int, list] = {}
    for frame in json.loads((gt_dir / TRUTH_FILE).read_text())['frames']:
        for gt_id, obj in frame['objects'].items():
            paths.setdefault(int(gt_id), []).append((obj['position'][0], obj['position'][2]))
    return {k: np.array(v) for k, v in paths.items()}


def main() -> int:
    """Draw the plot to --png."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('replay_out', type=Path, help='a `vis-ros replay` output folder of a bag with depth')
    parser.add_argument('--gt', type=Path, help='the synthetic ground truth folder (BAG_gt) to draw too')
    parser.add_argument('--png', type=Path, required=True)
    args = parser.parse_args()
    records = load_tracks3d(args.replay_out)
    if records is None:
        print(f'{args.replay_out} has no tracks3d.jsonl: replay a bag with depth + camera_info',
              file=sys.stderr)
        return 1
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 7))
    if args.gt is not None:
        for k, (gt_id, path) in enumerate(sorted(truth_xz(args.gt).items())):
            ax.plot(path[:, 0], path[:, 1], color='0.75', lw=4, zorder=1, label='truth' if k == 0 else None)
    for track_id, path in sorted(tracks_xz(records).items()):
        color = tuple(c / 255 for c in id_color(track_id))
        ax.plot(path[:, 0], path[:, 1], '-', color=color, lw=1.5, zorder=2)
        ax.plot(path[-1, 0], path[-1, 1], 'o', color=color, zorder=3)
        ax.annotate(str(track_id), path[-1], textcoords='offset points', xytext=(4, 4), fontsize=8)
    ax.plot([0], [0], 'k^', ms=10, label='camera')
    ax.set_xlabel('x (m, right)')
    ax.set_ylabel('z (m, forward)')
    ax.set_aspect('equal')
    ax.grid(alpha=0.3)
    ax.legend(loc='upper right')
    ax.set_title(f'3D tracks from above: {args.replay_out.name} ({len(records)} frames)')
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=110)
    print(f'wrote {args.png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
