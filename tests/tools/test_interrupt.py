"""Ctrl-C in a tool prints one line (``<tool>: interrupted``) and ends the process by SIGINT
(status 130 in a shell), installed once for every tool by ``import genview_mm``
(genview_mm.utils.interrupt); and the demo's SIGTERM stops the stage it runs."""
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest

from genview_mm.utils import interrupt
from helpers import ROOT, TOOLS, tool_env
from launchers import alive, recorded

SLEEPER = '''import os, sys, time
import genview_mm  # noqa: F401  (what every tool imports)
with open(os.environ['PIDS'], 'a') as f:
    f.write(f'{os.getpid()}\\n')
time.sleep(300)
'''


def test_hook_prints_one_line_and_passes_other_errors_on(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(sys, 'excepthook', lambda *exc: seen.append(exc[0]))
    monkeypatch.setattr(sys, 'argv', ['/x/tools/train.py', 'cfg.py'])
    interrupt.install()
    interrupt.install()  # idempotent: one wrapper
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert capsys.readouterr().err == 'train.py: interrupted\n' and seen == []
    sys.excepthook(ValueError, ValueError('x'), None)
    assert seen == [ValueError]


def test_only_tools_get_the_hook(monkeypatch, tmp_path):
    main = types.ModuleType('__main__')
    monkeypatch.setitem(sys.modules, '__main__', main)
    main.__file__ = osp.join(TOOLS, 'train.py')
    assert interrupt.is_tool_process()
    main.__file__ = str(tmp_path / 'tools' / 'my_script.py')  # a user's tools/ folder
    assert not interrupt.is_tool_process()
    main.__spec__ = types.SimpleNamespace(name='genview_mm.tools.check_config')
    assert interrupt.is_tool_process()


def start(cmd, pids, **env):
    proc = subprocess.Popen(cmd, env=tool_env(PIDS=pids, **env), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not recorded(pids):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.1)
    return proc


@pytest.mark.slow
def test_ctrl_c_in_a_tool_is_one_line_and_status_130(tmp_path):
    tools = tmp_path / 'tools'  # a tool: a file next to tools/_launch_args.py
    tools.mkdir()
    shutil.copy(osp.join(TOOLS, '_launch_args.py'), tools)
    (tools / 'sleeper.py').write_text(SLEEPER)
    pids = str(tmp_path / 'pids')
    shell = start(['bash', '-c', f'"{sys.executable}" {tools / "sleeper.py"}; echo "status=$?"'],
                  pids)
    os.kill(recorded(pids)[0], signal.SIGINT)  # what Ctrl-C sends
    out, err = shell.communicate(timeout=60)
    assert out.strip() == 'status=130'
    assert [line for line in err.splitlines() if 'Warning' not in line] == [
        'sleeper.py: interrupted'], err


@pytest.mark.slow
def test_sigterm_to_the_demo_stops_its_stage(tmp_path):
    pids = str(tmp_path / 'pids')
    code = ('from genview_mm.demo.pipeline import Demo\n'
            'from genview_mm.utils.interrupt import exit_on_sigterm\n'
            'exit_on_sigterm()\n'
            f'Demo({str(tmp_path / "demo")!r}).run_tool(["bash", "-c", '
            '"echo $$ >> $PIDS; exec sleep 300"], "stage")\n')
    proc = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT, start_new_session=True,
                            env=tool_env(PIDS=pids), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not recorded(pids):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    stage = recorded(pids)[0]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    try:
        assert proc.returncode == 143 and not alive(stage)
    finally:
        if alive(stage):
            os.kill(stage, signal.SIGKILL)


def test_deferred_stop_leaves_an_ignored_signal_ignored():
    """A tool started with SIGINT ignored (``tool &`` in a script: a Ctrl-C at the terminal
    reaches the whole process group) went on with its scan; deferred_stop must not turn that
    ignored SIGINT into a stop."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt.deferred_stop() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert not stop.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_repeated_sigterm_lets_the_first_ones_cleanup_finish():
    """SIGTERM reaches a torchrun worker (or the demo's generate_views stage) twice: from Slurm
    or ``timeout``, which signal every process, then passed on by torchrun (or the demo). The
    second SystemExit was raised inside the first one's finally: generate_views stopped
    before journaling the views its writers had finished."""
    previous = signal.getsignal(signal.SIGTERM)
    cleaned = []
    try:
        interrupt.exit_on_sigterm()
        with pytest.raises(SystemExit) as exc:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # (the handler runs at once)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # the repeat, during the cleanup
                time.sleep(0.05)
                cleaned.append(True)
        assert exc.value.code == 143 and cleaned == [True]
    finally:
        signal.signal(signal.SIGTERM, previous)
