"""Distributed helpers: which worker this process is (:func:`launch_from`: flags, torchrun or
the environment, no process group needed) and its device (:func:`resolve_device`), and
gathers built on ``mmengine.dist`` (a no-op without a process group)."""
import os
import socket
from typing import List, Mapping, NamedTuple, Optional, Tuple

import torch
from mmengine import dist as mm_dist


def gather_variable(x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """All-gather a 1-D tensor whose length may differ between ranks.

    ``mmengine.dist.all_gather`` needs equal shapes on every rank: the sizes are gathered first
    and each rank's tensor is padded to the largest.

    Args:
        x (torch.Tensor): (n,) this rank's values.

    Returns:
        Tuple[torch.Tensor, int]: the (sum n,) concatenation in rank order and the offset of
        this rank's slice in it. Without a process group of several ranks: ``(x, 0)``.
    """
    if not mm_dist.is_distributed():
        return x, 0
    sizes = [int(s.item()) for s in
             mm_dist.all_gather(torch.tensor([x.numel()], device=x.device, dtype=torch.long))]
    padded = x.new_zeros(max(sizes))
    padded[:x.numel()] = x
    chunks = mm_dist.all_gather(padded)
    full = torch.cat([c[:n] for c, n in zip(chunks, sizes)])
    return full, sum(sizes[:mm_dist.get_rank()])


class Launch(NamedTuple):
    rank: int
    world_size: int
    local_rank: int
    mode: str  # 'single', 'flags' (--rank/--world-size), 'torchrun', 'environment'


#: how each launch mode reads in a log line
LAUNCH_MODES = {'single': 'one process', 'flags': 'separate task (--rank/--world-size)',
                'torchrun': 'torchrun (RANK/WORLD_SIZE/LOCAL_RANK from its agent)',
                'environment': 'RANK/WORLD_SIZE from the environment, no torchrun agent: a '
                               'separate task'}


def summed_counts(*counts: float) -> List[float]:
    """``counts`` summed over the processes of a distributed run (one all-reduce of a few
    numbers, on the group's device and back), so that every process decides alike: one
    stopping alone would leave the others waiting in their next collective (plain ``srun``:
    until it times out). Alone: the counts as they are."""
    if mm_dist.get_world_size() < 2:
        return [float(c) for c in counts]
    total = torch.tensor(counts, dtype=torch.float64)
    mm_dist.all_reduce(total)
    return total.tolist()


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, '')
    try:
        return int(value) if value != '' else default
    except ValueError:
        raise ValueError(f'{name}={value!r} in the environment is not an integer') from None


def launch_from(rank: Optional[int] = None, world_size: Optional[int] = None,
                env: Optional[Mapping[str, str]] = None) -> Launch:
    """This worker from ``--rank/--world-size``, else RANK/WORLD_SIZE (and LOCAL_RANK, set by a
    torchrun agent or by hand: one process per GPU of a node); pure, ValueError naming the
    fix. With the flags, a LOCAL_RANK of the environment is not this task's: GPU 0."""
    env = os.environ if env is None else env
    if (rank is None) != (world_size is None):
        raise ValueError('--rank and --world-size go together: pass both (or neither and let '
                         'torchrun / RANK and WORLD_SIZE set them)')
    flags = rank is not None
    if not flags:
        rank, world_size = _int_env(env, 'RANK', 0), _int_env(env, 'WORLD_SIZE', 1)
        if ('RANK' in env) != ('WORLD_SIZE' in env):  # WORLD_SIZE alone: every task rank 0
            given, absent = ('WORLD_SIZE', 'RANK') if 'WORLD_SIZE' in env else \
                ('RANK', 'WORLD_SIZE')                # of N, all doing the same shards
            raise ValueError(f'{given} is set without {absent}: set both (torchrun does), or '
                             'pass --rank and --world-size')
    if world_size < 1 or not 0 <= rank < world_size:
        src = '--rank/--world-size' if flags else 'RANK/WORLD_SIZE'
        raise ValueError(f'{src}: need 0 <= rank < world size, got rank {rank} of '
                         f'{world_size}')
    torchrun = not flags and 'TORCHELASTIC_RUN_ID' in env
    mode = ('flags' if flags else 'torchrun' if torchrun else
            'environment' if 'RANK' in env or 'WORLD_SIZE' in env else 'single')
    # only a launch of several processes (torchrun, RANK/WORLD_SIZE) has one per GPU: a
    # LOCAL_RANK left in a single process's environment is not its GPU
    local_rank = _int_env(env, 'LOCAL_RANK', 0) if mode in ('torchrun', 'environment') else 0
    if local_rank < 0:
        raise ValueError(f'LOCAL_RANK={local_rank} in the environment: need >= 0 (the GPU of '
                         'this process on its node)')
    return Launch(rank, world_size, local_rank, mode)


def resolve_device(device: Optional[str] = None, local_rank: int = 0, here: bool = True) -> str:
    """``--device`` as given, checked (a device name; CUDA present for a CUDA one), else
    ``cuda:<local_rank>`` where CUDA is available, else ``cpu``; ValueError naming the fix.
    ``here=False``: a name only, else ``cpu`` (checked on a node that may have no GPU)."""
    what = f'--device {device}'
    if not device:
        if not (here and torch.cuda.is_available()):
            return 'cpu'
        device = f'cuda:{local_rank}'
        what = f'{device} (LOCAL_RANK {local_rank}: one process per GPU of a node)'
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f'{what}: {exc} (e.g. cuda, cuda:1, cpu)') from None
    if not here:
        return device
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'{what}: no CUDA device here (pass --device cpu or run on a GPU '
                         'node)')
    if dev.type == 'cuda' and (dev.index or 0) >= torch.cuda.device_count():
        # a task that sees its own GPU alone (srun --gpus-per-task, Slurm's GPU binding) with
        # LOCAL_RANK exported: the default named a GPU it cannot see, and nothing to do
        own = '' if what.startswith('--device') else (
            '; where each process sees only its own GPU (srun --gpus-per-task), pass '
            '--device cuda:0; else start at most that many processes per node')
        raise ValueError(f'{what}: this node has {torch.cuda.device_count()} CUDA devices, '
                         f'cuda:0 to cuda:N-1 (CUDA_VISIBLE_DEVICES counts){own}')
    if dev.type not in ('cpu', 'cuda') and not _available(dev.type):  # meta runs nothing
        raise ValueError(f'{what}: no {dev.type} device here (pass --device cpu, or cuda on a '
                         'GPU node)')
    return device


def check_processes_per_node(count: int, what: str = 'GPUS') -> None:
    """ValueError naming the fix when ``count`` processes, one per GPU, would start on this
    node but CUDA shows fewer devices (rank ``count - 1`` failed only once it had started,
    with 'invalid device ordinal'); without CUDA, processes run on CPU: any count."""
    have = torch.cuda.device_count() if torch.cuda.is_available() else count
    if count > have:
        raise ValueError(f'{what}={count} starts one process per GPU, but this node has {have} '
                         f'CUDA device{"s" if have != 1 else ""} (CUDA_VISIBLE_DEVICES counts): '
                         f'pass {what} <= {have}')


#: the variables that name a process's rank, by launcher: the one of its own launch decides
RANK_VARIABLES = {'pytorch': ('RANK',), 'slurm': ('SLURM_PROCID',),
                  'mpi': ('OMPI_COMM_WORLD_RANK', 'PMI_RANK')}


def is_first_rank(launcher: Optional[str] = None) -> bool:
    """Whether this process is rank 0 of its job, or runs alone; no process group needed.

    The rank is read from ``launcher``'s variable (``--launcher``: torchrun's RANK, Slurm's
    SLURM_PROCID, Open MPI's, else Intel MPI's or MPICH's), as the launch takes it; without one
    (or ``none``), from the innermost launcher's that is set: RANK, the MPI ones, SLURM_PROCID.
    One variable decides: torchrun started by ``srun``, one task per node, numbers its nodes
    apart from SLURM_PROCID, so RANK=0 could run with SLURM_PROCID=1 and no process was first.
    """
    names = RANK_VARIABLES.get(launcher, ('RANK', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK',
                                          'SLURM_PROCID'))
    rank = next((os.environ[k] for k in names if os.environ.get(k, '') != ''), '0')
    return rank == '0'


def _available(kind: str) -> bool:
    """Whether torch has a device of this type here: ``torch.<type>.is_available()`` (xpu, npu
    with torch_npu), ``torch.backends.mps`` for mps; False for a type without one (meta)."""
    backend = torch.backends.mps if kind == 'mps' else getattr(torch, kind, None)
    check = getattr(backend, 'is_available', None)
    return bool(check and check())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (a single-node torchrun's master)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
