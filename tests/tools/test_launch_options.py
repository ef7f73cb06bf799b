"""The launch tools' options as a user writes them (parsed, nothing run)."""
import os
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


def test_the_launchers_check_refuses_a_default_work_dir_holding_the_config(tmp_path,
                                                                           monkeypatch, capsys):
    """``dist_train.sh work_dirs/mine/mine.py 8`` (the default work dir is the config's folder,
    whose dump would replace it): the launchers' check (check_config.py, --work-dir not given)
    passed, and every rank then printed the refusal and torchrun ended in a ChildFailedError
    traceback, exit 1. The check refuses it once, as it does a --work-dir holding the config;
    a config whose own work_dir is its folder too. In both modes, --skip-preflight too."""
    work = tmp_path / 'work_dirs' / 'mine'
    work.mkdir(parents=True)
    (work / 'mine.py').write_text(f"_base_ = ['{CONFIG}']\n")
    own = tmp_path / 'own.py'
    own.write_text(f"_base_ = ['{CONFIG}']\nwork_dir = '{tmp_path}'\n")
    monkeypatch.chdir(tmp_path)
    check = load_tool('check_config').main
    for argv, where, config in (
            (['work_dirs/mine/mine.py', '--skip-preflight'], './work_dirs/mine',
             'work_dirs/mine/mine.py'),
            (['work_dirs/mine/mine.py', 'ckpt.pth', '--skip-preflight'], './work_dirs/mine',
             'work_dirs/mine/mine.py'),
            ([str(own), '--skip-preflight', '--resume'], str(tmp_path), str(own))):
        assert check(argv) == 2
        assert capsys.readouterr().err == (
            f'check_config.py: error: the work dir {where} holds the config {config}: the run '
            'writes its config dump there under that name, which would replace it, flattened '
            '(its _base_ lost); pass --work-dir another folder, or keep the config elsewhere\n')
    assert check(['work_dirs/mine/mine.py', '--work-dir', 'elsewhere', '--skip-preflight']) == 0
    assert sorted(os.listdir(work)) == ['mine.py']


def test_a_key_given_again_takes_its_last_value_with_spaces_or_commas_in_the_first():
    """``--cfg-options 'k=/my data' --cfg-options k=/x`` (a job script overriding the user's
    value) kept '/my data': the fix-up of values with spaces or a quoted comma rewrote the key
    from its first item after DictAction had taken the last one."""
    train, launch = load_tool('train'), load_tool('_launch_args')
    for first in ('/my data/x', '"/d/a,b"', "['my data', 'x']"):
        for argv in (['--cfg-options', f'k={first}', '--cfg-options', 'k=/x'],
                     ['--cfg-options', f'k={first}', 'k=/x']):
            assert launch.cfg_options(train.parse_args([CONFIG, *argv])) == dict(k='/x'), argv
    argv = ['--cfg-options', 'k=/x', '--cfg-options', 'k=/my data', 'j="/d/a,b"']
    assert launch.cfg_options(train.parse_args([CONFIG, *argv])) == dict(k='/my data',
                                                                        j='/d/a,b')
