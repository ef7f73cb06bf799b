"""Signals: a launch script that gets SIGTERM (``timeout``, ``kill PID``, a scheduler) or SIGINT
stops everything it started: it ``exec``s its last command (torchrun, srun, python) and forwards
the signal to the child of an earlier step (the preflight, the bootstrap). Stand-in programs
play python/srun (tests/tools/launchers.py); one test runs the real torchrun."""
import os.path as osp
import signal
import sys

import pytest

from helpers import free_port
from launchers import executable, recorded, scratch_tools, survivors_of_signal

pytestmark = pytest.mark.slow

# script, its arguments, PIDs recorded once its last command runs (preflight + last command)
LAUNCHERS = [
    ('dist_train.sh', ['cfg.py', '2'], 2),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2'], 2),
    ('slurm_train.sh', ['part', 'job', 'cfg.py', 'work'], 2),
    ('slurm_test.sh', ['part', 'job', 'cfg.py', 'ckpt.pth'], 2),
    ('run_demo.sh', ['--out-dir', 'demo'], 2),
    ('run_tests.sh', ['tests/engine'], 2),
    ('slurm_generate.sh', ['--array-task', 'src', '--out-dir', 'views', '--pca', 'p.pth'], 1),
]


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['TERM', 'INT'])
@pytest.mark.parametrize('script, args, started', LAUNCHERS, ids=[s for s, _, _ in LAUNCHERS])
def test_signal_to_a_launcher_stops_its_last_command(tmp_path, script, args, started, sig):
    env = scratch_tools(str(tmp_path), script)
    env.update(SLURM_ARRAY_TASK_ID='0', GENVIEW_NTASKS='1', GENVIEW_ROOT=str(tmp_path))
    status, left = survivors_of_signal(['bash', str(tmp_path / 'tools' / script), *args], env,
                                       started, sig)
    assert not left, f'{script}: still running after {sig.name}: {left}'
    assert status != 0


@pytest.mark.parametrize('sig, code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=['TERM', 'INT'])
@pytest.mark.parametrize('script, args', [(s, a) for s, a, _ in LAUNCHERS[:5]],
                         ids=[s for s, _, _ in LAUNCHERS[:5]])
def test_signal_during_the_first_step_stops_it(tmp_path, script, args, sig, code):
    """The preflight (or run_demo's bootstrap) is a child; the script forwards the signal and
    exits as documented: 143 for TERM, 130 for Ctrl-C (it was 143: ``set -e`` ended the trap at
    the child's status before its ``exit 130``)."""
    env = scratch_tools(str(tmp_path), script)
    env['CHECK_SLEEPS'] = '1'
    status, left = survivors_of_signal(['bash', str(tmp_path / 'tools' / script), *args], env,
                                       1, sig)
    assert not left, f'{script}: still running after {sig.name}: {left}'
    assert status == code and len(recorded(env['PIDS'])) == 1  # the last command never started


def test_sigterm_to_dist_train_stops_torchrun_and_its_workers(tmp_path):
    """The real torchrun with two stand-in workers (each records its PID and sleeps)."""
    env = scratch_tools(str(tmp_path), 'dist_train.sh')
    tools = tmp_path / 'tools'
    executable(str(tools / 'check_config.py'), 'import sys\nsys.exit(0)\n')
    executable(str(tools / 'train.py'), 'import os, time\nwith open(os.environ["PIDS"], "a") as f:'
               '\n    f.write(f"{os.getpid()}\\n")\ntime.sleep(300)\n')
    env.update(PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    status, left = survivors_of_signal(['bash', str(tools / 'dist_train.sh'), 'cfg.py', '2'],
                                       env, 2, start_timeout=180, stop_timeout=60)
    assert len(recorded(env['PIDS'])) == 2
    assert not left, f'torchrun or its workers still run after SIGTERM: {left}'
    assert status != 0 and osp.isdir(tools)
