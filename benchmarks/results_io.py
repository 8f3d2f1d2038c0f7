r"""Write a results table and its .json together, both naming the exact command that made them.

Every table under benchmarks/results/ comes from a script run, never from a hand edit: the .md
carries a 'Command: <the command in backticks>' line near its top and the .json the same string
under "command", so anyone can rerun it (test_bench_provenance checks that each .md has its
.json and the two agree).
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """`python benchmarks/x.py args...` as typed from the repository root (paths made relative)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        script_text = str(script.relative_to(ROOT))
    except ValueError:
        script_text = str(script)
    return shlex.join(['python', script_text, *argv[1:]])


def write_results(md_path: Path, title: str, body: str, data: dict[str, Any],
                  command: Optional[str] = None) -> tuple[Path, Path]:
    """Write `md_path` (title, Command line, body) and `md_path` with .json (data + "command").

    Both files are written to temporary names first and renamed, so an interrupted run never
    leaves a table without its data (or the reverse) under the final names.
    """
    command = command or command_line()
    md_path = Path(md_path)
    json_path = md_path.with_suffix('.json')
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_text = f'# {title}\n\nCommand: `{command}`\n\n{body.rstrip()}\n'
    json_text = json.dumps({'command': command, **data}, indent=1, sort_keys=False, default=_plain) + '\n'
    for path, text in ((json_path, json_text), (md_path, md_text)):
        tmp = path.with_name(path.name + '.part')
        tmp.write_text(text)
        os.replace(tmp, path)
    return md_path, json_path


def _plain(value):
    """numpy scalars and arrays, Paths, tuples -> JSON types."""
    if hasattr(value, 'tolist'):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f'cannot write {type(value).__name__} to JSON')
