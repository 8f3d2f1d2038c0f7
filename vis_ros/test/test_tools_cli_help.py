"""`vis-ros COMMAND --help`: help on every option, each default stated once, choices listed, no None."""
import argparse
import re

import pytest

from vis_ros.tools import camera_publisher, demo, evaluate, make_bag, replay
from vis_ros.tools.cli import main as cli

PARSERS = {'replay': replay.build_parser, 'make-bag': make_bag.build_parser, 'eval': evaluate.build_parser,
           'demo': demo.build_parser, 'camera_publisher': camera_publisher.build_parser}


@pytest.mark.parametrize('name', PARSERS)
def test_every_option_has_help_with_one_default_and_its_choices(name):
    parser = PARSERS[name]()
    text = parser.format_help()
    assert 'None' not in text, text
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        label = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f'{name} {label} has no help'
        assert len(re.findall(r'default', action.help)) <= 1, f'{name} {label}: {action.help}'
        if action.choices:   # listed in the usage line / metavar, e.g. {motion,onnx,litert,tensorrt}
            assert '{' + ','.join(map(str, action.choices)) + '}' in text, f'{name} {label}'
        if action.required:
            assert 'default' not in action.help, f'{name} {label} is required: {action.help}'


def test_backend_choices_are_listed_and_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as done:
        cli(['replay', '--help'])
    assert done.value.code == 0
    assert '--backend {motion,onnx,litert,tensorrt,detect_sam}' in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli(['eval', 'pred', '--gt', 'gt', '--out', 'r', '--states', 'confirmed,nope'])
    assert done.value.code == 2 and '--states must list some of' in capsys.readouterr().err
