"""tools/benchmarks/gpu_figures.sh: the GPU benchmarks in one script. Its --smoke mode runs the
same commands at CPU size, so every benchmark it names starts, ends and prints its figures; a
wrong argument is one usage line."""
import os
import os.path as osp
import re
import sys

import pytest

from helpers import ROOT, run_cmd

SCRIPT = osp.join(ROOT, 'tools', 'benchmarks', 'gpu_figures.sh')


@pytest.mark.parametrize('args', [[], ['run'], ['run', 'OUT', 'nothing'],
                                  ['run', 'OUT', 'all', '--fast'], ['prepare', 'x'],
                                  ['run', 'OUT', '--smoke', '--smoke'],
                                  ['run', 'OUT', 'scorer', 'generator']])
def test_wrong_arguments_print_the_usage(tmp_path, args):
    res = run_cmd(['bash', SCRIPT, *[str(tmp_path / a) if a == 'OUT' else a for a in args]],
                  returncode=2)
    assert res.stderr.strip().splitlines() == [
        f'usage: {SCRIPT} prepare | run OUT [scorer|generator|all] [--smoke]']
    assert not (tmp_path / 'OUT').exists()


def test_a_relative_out_and_a_failed_benchmark(tmp_path):
    """A relative OUT named another folder once the script changed to the repository root
    (tee: no such file, no logs); a benchmark that failed (a package missing without the
    wheels) ended the run with status 0."""
    stub = tmp_path / 'python'
    stub.write_text('#!/usr/bin/env bash\necho "stub $*"\n'
                    'case "$*" in *bench_*) exit "${STUB_RC:-0}";; esac\n')
    stub.chmod(0o755)
    (tmp_path / 'wheels').mkdir()
    env = dict(PYTHON=str(stub), WHEELS_DIR=str(tmp_path / 'wheels'))
    run_cmd(['bash', SCRIPT, 'run', 'rel', 'generator', '--smoke'], cwd=str(tmp_path), env=env)
    assert sorted(os.listdir(tmp_path / 'rel')) == ['device.log', 'generator.log']
    assert 'stub tools/benchmarks/bench_generator.py' in (tmp_path / 'rel' / 'generator.log'
                                                          ).read_text()
    # --smoke first: its WHAT was dropped and all five ran; a second run into the same OUT
    # replaced the first one's device.log
    res = run_cmd(['bash', SCRIPT, 'run', 'rel', '--smoke', 'scorer'], cwd=str(tmp_path),
                  env=env)
    assert '== generator' not in res.stdout and '== scorer: exit 0' in res.stdout
    device = (tmp_path / 'rel' / 'device.log').read_text()
    assert device.count('== run ') == 2 and '== run scorer --smoke' in device
    res = run_cmd(['bash', SCRIPT, 'run', str(tmp_path / 'out'), 'scorer', '--smoke'],
                  env=dict(env, STUB_RC='1'), returncode=1)
    assert res.stderr.splitlines()[-1] == (
        f'{SCRIPT}: failed: scorer scorer_compiled step_mocov2 step_mocov3 (see '
        f'{tmp_path}/out/<name>.log)')
    # a package missing (markdown, requests, scikit-image were not in the wheels): one line
    # in seconds, instead of every benchmark failing on its imports in turn
    stub.write_text('#!/usr/bin/env bash\ncase "$*" in *skimage*) echo "ModuleNotFoundError: '
                    'No module named skimage" >&2; exit 1;; esac\necho "stub $*"\n')
    res = run_cmd(['bash', SCRIPT, 'run', str(tmp_path / 'miss'), 'generator'], env=env,
                  returncode=1)
    assert res.stderr.splitlines()[-2:] == [
        'ModuleNotFoundError: No module named skimage',
        f'{SCRIPT}: a package the benchmarks need is missing (see {tmp_path}/miss/imports.log)']
    assert os.listdir(tmp_path / 'miss') == ['imports.log'] and '==' not in res.stdout
    res = run_cmd(['bash', SCRIPT, 'run', str(tmp_path / 'miss'), 'scorer'], env=env)
    assert '== scorer: exit 0' in res.stdout  # the scorer's benchmarks need no photos


@pytest.mark.slow
def test_smoke_run_writes_every_benchmark_log(tmp_path):
    """Without wheels (an empty WHEELS_DIR) it uses this interpreter's packages."""
    wheels, out = tmp_path / 'wheels', tmp_path / 'out'
    wheels.mkdir()
    res = run_cmd(['bash', SCRIPT, 'run', str(out), '--smoke'], timeout=900,
                  env=dict(PYTHON=sys.executable, WHEELS_DIR=str(wheels)))
    names = ['scorer', 'scorer_compiled', 'step_mocov2', 'step_mocov3', 'generator']
    assert sorted(os.listdir(out)) == sorted([f'{n}.log' for n in names] + ['device.log'])
    for name in names:
        assert f'== {name}: exit 0' in res.stdout
    logs = {n: (out / f'{n}.log').read_text() for n in names}
    # the default scorer keeps the strict accuracy rule; the compiled one prints its verdict
    assert "within the accuracy rule (errors <= O's): yes" in logs['scorer']
    assert 'compile=True' in logs['scorer_compiled'] and re.search(
        r"within the accuracy rule \(errors <= O's\): (yes|no)", logs['scorer_compiled'])
    for name in ('step_mocov2', 'step_mocov3'):
        assert re.search(r'genview\[tiny-clip\]: ms/step \(median of 2\) .* overhead ratio='
                         r'[\d.]+', logs[name])
    assert re.search(r'ratio_p_over_o=[\d.]+ psnr_p_to_o_db=[\d.]+', logs['generator'])
    # compiled, as on the GPU: 5 images in calls of 2 leave a padded tail
    assert 'compile=True' in logs['generator']
    assert re.search(r'p_padded_rows=[1-9]', logs['generator'])
    assert re.search(r'psnr_o_fp16_to_o_fp32_db=[\d.]+', logs['generator'])
    assert 'torch ' in (out / 'device.log').read_text()
