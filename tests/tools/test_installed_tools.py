"""Installed without the repository: a wheel built from this checkout carries the tools
(genview_mm/.mim/tools) and the ``genview-*`` commands, and they run from a folder outside the
repository with the checkout off the path, from the installed copy."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from genview_mm.utils.installation import TOOLS
from helpers import ROOT, run_cmd

pytestmark = pytest.mark.slow


def tracked_copy(dest: str) -> str:
    """The checkout's files (tracked or new, not ignored) copied to ``dest`` (a build there
    leaves this checkout as it is)."""
    names = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split('\0')
    for name in filter(None, names):
        src = osp.join(ROOT, name)
        if osp.isfile(src) and not osp.islink(src):
            os.makedirs(osp.dirname(osp.join(dest, name)), exist_ok=True)
            with open(src, 'rb') as fin, open(osp.join(dest, name), 'wb') as fout:
                fout.write(fin.read())
    return dest


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp('wheel')
    src = tracked_copy(str(root / 'src'))
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    run_cmd([*pip, 'wheel', '--no-deps', '--no-build-isolation', '.', '-w', str(root / 'dist')],
            cwd=src, timeout=600)
    wheel, = [osp.join(root, 'dist', n) for n in os.listdir(root / 'dist')]
    target = str(root / 'site')
    run_cmd([*pip, 'install', '--no-deps', '--target', target, wheel], cwd=str(root),
            timeout=600)
    outside = root / 'elsewhere'
    outside.mkdir()
    return dict(target=target, cwd=str(outside), src=src,
                env=dict(PYTHONPATH=target))  # the installed copy, not the checkout


def test_every_user_tool_has_a_command():
    """A tool file of tools/ (not a ``_helper``) has its ``genview-*`` command and module."""
    names = sorted(osp.splitext(n)[0] for n in os.listdir(osp.join(ROOT, 'tools'))
                   if n.endswith('.py') and not n.startswith('_'))
    assert names == sorted(TOOLS)
    for name in names:
        module = osp.join(ROOT, 'genview_mm', 'tools', f'{name}.py')
        assert f"tool_main('{name}')" in open(module).read(), module


def test_wheel_carries_tools_configs_and_commands(installed):
    package = osp.join(installed['target'], 'genview_mm')
    assert osp.isfile(osp.join(package, '.mim', 'configs', 'demo', 'mocov2_r18_tiny_cpu.py'))
    for name in TOOLS:
        assert osp.isfile(osp.join(package, '.mim', 'tools', f'{name}.py')), name
    for name in ('dist_train.sh', '_python.sh', '_signals.sh', '_launch_args.py', '_early.py'):
        assert osp.isfile(osp.join(package, '.mim', 'tools', name)), name
    for command in TOOLS.values():
        assert osp.isfile(osp.join(installed['target'], 'bin', command)), command
    # the build followed the links: the source tree still has links, not copies
    assert osp.islink(osp.join(installed['src'], 'genview_mm', '.mim', 'configs'))


def test_installed_tools_run_outside_the_repository(installed):
    env, cwd, target = installed['env'], installed['cwd'], installed['target']
    where = run_cmd([sys.executable, '-c', 'import genview_mm, genview_mm.utils.installation as r; '
                     'print(genview_mm.__file__); print(r.tools_dir())'], cwd=cwd, env=env)
    package_file, tools_dir = where.stdout.split()[-2:]
    assert package_file == osp.join(target, 'genview_mm', '__init__.py')
    assert tools_dir == osp.join(target, 'genview_mm', '.mim', 'tools')

    usage = run_cmd([osp.join(target, 'bin', 'genview-check-config'), '--help'], cwd=cwd,
                    env=env)
    assert usage.stdout.startswith('usage: check_config.py')  # the tool file runs
    config = osp.join(target, 'genview_mm', '.mim', 'configs', 'demo', 'mocov2_r18_tiny_cpu.py')
    check = run_cmd([sys.executable, '-m', 'genview_mm.tools.check_config', config], cwd=cwd,
                    env=env, returncode=2)  # the demo data is not there
    assert config in check.stdout and 'data' in check.stdout
    assert 'Traceback' not in check.output
    in1k = osp.join(target, 'genview_mm', '.mim', 'configs', 'genview_mocov2_r50_in1k.py')
    check = run_cmd([osp.join(target, 'bin', 'genview-check-config'), in1k, '--quiet'], cwd=cwd,
                    env=dict(env, HF_HUB_OFFLINE='1'), returncode=2)
    assert 'released views: genview-import-views data/imagenet/train_variations' in check.stdout
    assert 'python tools/' not in check.stdout  # no tools/ here to run
    usage = run_cmd([sys.executable, '-m', 'genview_mm.tools.convert_checkpoint', '--help'],
                    cwd=cwd, env=env)
    assert 'pretraining checkpoint' in usage.stdout
    # the demo runs the installed tools and config (it looked for them above site-packages):
    # its PCA stage, run from the installed copy outside the repository
    out = osp.join(cwd, 'demo')
    probe = ('from genview_mm.demo import pipeline as p; d = p.Demo(%r, unclip="unused", '
             'num_images=4); import os; os.makedirs(d.out); d.write_photos(); '
             'd.save_model("scorer"); '
             'd.fit_pca(d.path("models", "tiny_clip"), None, d.path("pca.pth")); '
             'print(p.demo_config())' % out)
    demo_config = run_cmd([sys.executable, '-c', probe], cwd=cwd, env=env).stdout.split()[-1]
    assert demo_config == osp.join(target, 'genview_mm', '.mim', 'configs', 'demo',
                                   'genview_mocov2_r18_tiny_cpu.py') and osp.isfile(demo_config)
    assert osp.isfile(osp.join(out, 'pca.pth'))
    # the early checks load the installed library's rule from its file (tools/_early.py)
    refused = run_cmd([osp.join(target, 'bin', 'genview-train'), config, '--work-dir',
                       '/sys/genview-test-work'], cwd=cwd, env=env, returncode=2)
    assert refused.stderr.strip().endswith('no file can be created in /sys (Permission denied), '
                                           'so it cannot be created: pass a folder path')
