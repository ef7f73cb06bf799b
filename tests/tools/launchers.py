"""Run a launch script of tools/ in a scratch copy with stand-in programs, and see which of
its processes outlive a signal (tests/tools/test_launch_signals.py)."""
import os
import os.path as osp
import shutil
import signal
import stat
import subprocess
import time
from typing import List, Set

from helpers import TOOLS

# stand-in interpreter/srun/bootstrap: records its PID, then runs until killed (the preflight
# step, or slurm_generate.sh's --check-args, ends at once unless $CHECK_SLEEPS is set: a test
# of slurm_generate.sh waited the whole 300 s on its check)
STAND_IN = '''#!/usr/bin/env bash
echo $$ >> "$PIDS"
case "$*" in *check_config.py*|*--check-args*) [ -n "${CHECK_SLEEPS:-}" ] || exit 0;; esac
exec sleep 300
'''


def executable(path: str, text: str) -> str:
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def scratch_tools(root: str, *scripts: str) -> dict:
    """``root/tools`` with copies of ``scripts`` and their sourced helpers, a stand-in python
    (``PYTHON``), srun and bootstrap_env.sh, and a venv whose python is the stand-in."""
    tools = osp.join(root, 'tools')
    os.makedirs(osp.join(root, 'bin'))
    os.makedirs(osp.join(root, 'venv', 'bin'))
    os.makedirs(tools)
    for name in ('_python.sh', '_signals.sh', *scripts):
        if osp.exists(osp.join(TOOLS, name)):
            shutil.copy(osp.join(TOOLS, name), tools)
    fake = executable(osp.join(root, 'bin', 'python'), STAND_IN)
    executable(osp.join(root, 'bin', 'srun'), STAND_IN)
    executable(osp.join(root, 'venv', 'bin', 'python'), STAND_IN)
    executable(osp.join(tools, 'bootstrap_env.sh'), STAND_IN.replace(
        '*check_config.py*', '*'))  # ends at once unless $CHECK_SLEEPS
    pids = osp.join(root, 'pids.txt')
    return dict(PIDS=pids, PYTHON=fake, GENVIEW_VENV=osp.join(root, 'venv'),
                PATH=osp.join(root, 'bin') + os.pathsep + os.environ['PATH'])


def recorded(pids_file: str) -> List[int]:
    try:
        with open(pids_file) as f:
            return [int(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def session_processes(sid: int) -> Set[int]:
    """Live (not zombie) processes of session ``sid``."""
    found = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if fields[0] != 'Z' and int(fields[3]) == sid:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def survivors_of_signal(cmd: List[str], env: dict, started: int, sig=signal.SIGTERM,
                        start_timeout: float = 30, stop_timeout: float = 30):
    """Start ``cmd`` in a new session, wait until ``started`` PIDs are recorded in
    ``env['PIDS']``, send ``sig`` to it, and return (its exit status, the PIDs of its session or
    recorded that still run ``stop_timeout`` seconds later). Survivors are killed afterwards."""
    proc = subprocess.Popen(cmd, env=dict(os.environ, **env), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + start_timeout
        while len(recorded(env['PIDS'])) < started:
            assert proc.poll() is None, f'{cmd} ended early: {proc.stdout.read()}'
            assert time.time() < deadline, f'{cmd}: {recorded(env["PIDS"])} started'
            time.sleep(0.05)
        proc.send_signal(sig)
        status = proc.wait(timeout=stop_timeout)
        deadline = time.time() + stop_timeout
        while time.time() < deadline:
            left = session_processes(proc.pid) | {p for p in recorded(env['PIDS']) if alive(p)}
            if not left:
                break
            time.sleep(0.1)
        return status, left
    finally:
        for pid in session_processes(proc.pid) | set(recorded(env['PIDS'])):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
