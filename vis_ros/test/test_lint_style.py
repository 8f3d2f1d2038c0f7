"""Style: flake8 (pycodestyle, pyflakes) with pep257 docstrings, configured by the repo's .flake8.

Product code (the vis_ros package, launch files, setup.py) and the code around it (tests,
benchmarks) are checked separately so a failure says which one broke. The failure message counts
the problems per file and per code, then lists the first ones.
"""
import collections
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / '.flake8'
PRODUCT = ('vis_ros/vis_ros', 'vis_ros/launch', 'vis_ros/setup.py')
SUPPORT = ('vis_ros/test', 'benchmarks')
LINE = re.compile(r'^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+) ')


def run_flake8(paths):
    pytest.importorskip('flake8', reason='flake8 is not installed (scripts/requirements-test.txt)')
    pytest.importorskip('flake8_docstrings', reason='flake8-docstrings is not installed')
    existing = [p for p in paths if (ROOT / p).exists()]
    result = subprocess.run([sys.executable, '-m', 'flake8', '--config', str(CONFIG), *existing],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    problems = [line for line in result.stdout.splitlines() if LINE.match(line)]
    if result.returncode not in (0, 1) or (result.returncode == 1 and not problems):
        pytest.fail(f'flake8 itself failed ({result.returncode}): {result.stderr[-2000:]}')
    return problems


def summary(problems) -> str:
    per_file = collections.Counter(LINE.match(p)['path'] for p in problems)
    per_code = collections.Counter(LINE.match(p)['code'] for p in problems)
    lines = [f'{len(problems)} flake8 problems in {len(per_file)} files']
    lines += [f'  {count:4d}  {path}' for path, count in sorted(per_file.items())]
    lines.append('by code: ' + ', '.join(f'{code} x{count}' for code, count in per_code.most_common()))
    lines += problems[:40]
    return '\n'.join(lines)


def test_config_enables_pep257_docstrings_and_line_length(tmp_path):
    bad = tmp_path / 'bad_module.py'
    bad.write_text('def public_function():\n    return "' + 'x' * 110 + '"\n')
    result = subprocess.run([sys.executable, '-m', 'flake8', '--config', str(CONFIG), str(bad)],
                            capture_output=True, text=True, timeout=120)
    codes = {LINE.match(line)['code'] for line in result.stdout.splitlines() if LINE.match(line)}
    assert {'D100', 'D103', 'E501'} <= codes, result.stdout + result.stderr


def test_product_code_is_clean():
    problems = run_flake8(PRODUCT)
    assert not problems, summary(problems)


def test_tests_and_benchmarks_are_clean():
    problems = run_flake8(SUPPORT)
    assert not problems, summary(problems)
