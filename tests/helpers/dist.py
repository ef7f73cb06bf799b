"""Several CPU processes in one gloo process group, forked from the test (they inherit the
imported modules instead of importing the OpenMMLab stack again)."""
import datetime
import os
import time
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run_processes(fn: Callable, args: tuple, nprocs: int = 2, timeout: float = 150.0) -> None:
    """Run ``fn(rank, *args)`` in ``nprocs`` forked processes and wait for all of them.

    Args:
        fn (Callable): the worker; it raises to fail the test.
        args (tuple): the worker's arguments after its rank.
        nprocs (int): how many processes. Defaults to 2.
        timeout (float): seconds before the workers are killed and the test fails instead of
            hanging. Defaults to 150.

    Raises:
        TimeoutError: if the workers did not finish in time. A worker that raised or exited
            with a non-zero status fails ``join`` with its error.
    """
    context = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method='fork')
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            raise TimeoutError(f'{nprocs}-process run did not finish in {timeout} s')


def init_gloo(rank: int, world: int, port: int) -> None:
    """Join a gloo group on 127.0.0.1:``port`` as ``rank`` of ``world``, with one thread
    (OpenMP pools do not survive a fork) and a timeout that fails rather than hangs."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
