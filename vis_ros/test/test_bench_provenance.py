"""Every results table names the command that wrote it, and its .json (written with it) agrees."""
import json
import re
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / 'benchmarks' / 'results'
TABLES = sorted(RESULTS.glob('*.md'))
COMMAND = re.compile(r'^Command: `(.+)`\s*$', re.MULTILINE)


def test_results_folder_has_tables():
    assert TABLES, f'no tables under {RESULTS}'


@pytest.mark.parametrize('table', TABLES, ids=[t.name for t in TABLES])
def test_table_has_json_with_the_same_command(table):
    found = COMMAND.findall(table.read_text())
    assert len(found) == 1, f'{table.name}: needs exactly one "Command: `...`" line, found {len(found)}'
    data = table.with_suffix('.json')
    assert data.is_file(), f'{table.name} has no {data.name}: rerun the command that writes both'
    recorded = json.loads(data.read_text()).get('command')
    assert recorded == found[0], f'{table.name} says {found[0]!r} but {data.name} says {recorded!r}'
    assert found[0].startswith('python benchmarks/'), f'{table.name}: command must run a benchmarks/ script'
