"""The launch tools' options as a user writes them (parsed, nothing run)."""
import os.path as osp
import sys

from helpers import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'demo', 'mocov2_r18_tiny_cpu.py')


def test_a_repeated_cfg_options_keeps_every_item(monkeypatch):
    """``--cfg-options a=1 --cfg-options b=2`` (a job script that adds its own) kept only b=2:
    the first item was dropped silently (the preflight then checked the config's data folder,
    and training ran with the config's value). MMEngine's DictAction, upstream's tools, merges
    them; a key given twice takes its last value, as there."""
    argv = ['--cfg-options', 'a=1', 'b=x', '--amp', '--cfg-options', 'c=2', 'a=3']
    want = ['a=1', 'b=x', 'c=2', 'a=3']
    assert load_tool('train').parse_args([CONFIG, *argv]).cfg_options == want
    assert load_tool('test').parse_args([CONFIG, 'ckpt.pth', *argv]).cfg_options == want
    args = load_tool('check_config').parse_args([CONFIG, *argv])
    assert args.cfg_options == want
    assert load_tool('_launch_args').cfg_options(args) == dict(a=3, b='x', c=2)
    monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', '--config', CONFIG, *argv[:3],
                                      *argv[4:]])
    assert load_tool('visualize_pairs').parse_args().cfg_options == want
