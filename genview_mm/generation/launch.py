"""How a generation process was launched: its rank, and whether it has peers to wait for.

* ``torchrun`` (``TORCHELASTIC_RUN_ID`` or ``MASTER_ADDR`` in the environment, world size > 1):
  a gloo process group is used for one thing only, the final barrier before rank 0 merges.
  The barrier has a timeout (``--barrier-timeout``, minutes); a rank that passes it without
  its peers logs what it waited for and leaves the merge to ``tools/merge_manifests.py``.
* separate launches (a Slurm job array, ``--rank/--world-size`` or RANK/WORLD_SIZE without
  MASTER_ADDR): no process group; each task does its share and exits, merging is its own step.
"""
import datetime
import logging
import os
from typing import Mapping, NamedTuple, Optional

from .errors import UsageError

logger = logging.getLogger(__name__)


class Launch(NamedTuple):
    rank: int
    world_size: int
    local_rank: int
    torchrun: bool  # peers launched together: a process group and a final barrier


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, '')
    try:
        return int(value) if value != '' else default
    except ValueError:
        raise UsageError(f'{name}={value!r} in the environment is not an integer') from None


def launch_from(rank: Optional[int] = None, world_size: Optional[int] = None,
                env: Optional[Mapping[str, str]] = None) -> Launch:
    """The launch of this process from ``--rank/--world-size`` or the environment (pure).

    Raises:
        UsageError: only one of the two flags, or a rank outside [0, world_size).
    """
    env = os.environ if env is None else env
    if (rank is None) != (world_size is None):
        raise UsageError('--rank and --world-size go together: pass both (or neither and let '
                         'torchrun / RANK and WORLD_SIZE set them)')
    flags = rank is not None
    if not flags:
        rank, world_size = _int_env(env, 'RANK', 0), _int_env(env, 'WORLD_SIZE', 1)
    if world_size < 1 or not 0 <= rank < world_size:
        src = '--rank/--world-size' if flags else 'RANK/WORLD_SIZE'
        raise UsageError(f'{src}: need 0 <= rank < world size, got rank {rank} of '
                         f'{world_size}')
    torchrun = (not flags and world_size > 1
                and ('TORCHELASTIC_RUN_ID' in env or 'MASTER_ADDR' in env))
    local_rank = _int_env(env, 'LOCAL_RANK', 0) if torchrun else 0
    return Launch(rank, world_size, local_rank, torchrun)


def init_group(timeout_min: float) -> None:
    """A gloo process group (for the barrier only) with a bounded timeout."""
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group('gloo', timeout=datetime.timedelta(minutes=timeout_min))


def final_barrier(launch: Launch, timeout_min: float) -> bool:
    """Wait up to ``timeout_min`` minutes for every rank to finish its share.

    Returns:
        bool: True if all ranks arrived; False (logged with the missing ranks) otherwise.
    """
    import torch.distributed as dist
    logger.info('rank %d/%d: share done; waiting up to %g min (--barrier-timeout) at the final '
                'barrier for the other %d ranks to finish theirs before rank 0 merges',
                launch.rank, launch.world_size, timeout_min, launch.world_size - 1)
    try:
        dist.monitored_barrier(timeout=datetime.timedelta(minutes=timeout_min),
                               wait_all_ranks=True)
        return True
    except RuntimeError as exc:
        logger.warning('rank %d/%d: the other ranks did not all finish within %g min (%s). '
                       'This share is done; when all are, run tools/merge_manifests.py OUT_DIR.',
                       launch.rank, launch.world_size, timeout_min,
                       str(exc).splitlines()[0][:300])
        return False


def close_group() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()
