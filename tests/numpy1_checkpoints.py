"""Checkpoints as numpy 1.x, torch 2.0 and MMEngine 0.8 wrote them, built here under numpy 2.

How the bytes are reproduced. ``torch.save`` pickles with protocol 2, where each global the file
needs at load time (a class or function) is a GLOBAL opcode holding ``module\\nname\\n``. numpy's
pickling hooks build the same calls under numpy 1.x and numpy 2: an array is
``_reconstruct(ndarray, (0,), b'b')`` plus a state tuple (shape, dtype, fortran flag, raw bytes),
a scalar ``scalar(dtype, raw bytes)``, a dtype ``dtype('f8', False, True)`` plus a state tuple.
Only the module that holds ``_reconstruct`` and ``scalar`` differs: ``numpy.core.multiarray``
under numpy 1.x, ``numpy._core.multiarray`` under numpy 2 (``numpy.dtype`` and ``numpy.ndarray``
are spelled the same by both). numpy 1 is not installable next to numpy 2, so
:class:`Numpy1Pickler` is Python's pure-Python pickler (``pickle._Pickler``) with one change: a
global whose module is ``numpy._core[.x]`` is written as ``numpy.core[.x]``. Everything else
(opcodes, arguments, the zip layout torch writes around ``data.pkl``) is what torch would write
anyway, so the file holds the GLOBAL opcodes numpy 1.x writes. :func:`pickled_globals` reads
them back from the zip's ``data.pkl`` so that a test can check it.
"""
import io
import itertools
import pickle
import pickletools
import types
import zipfile
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from genview_mm.utils.numpy1_pickle import Numpy1Pickler

NUMPY1_RECONSTRUCT = 'numpy.core.multiarray._reconstruct'
NUMPY1_SCALAR = 'numpy.core.multiarray.scalar'
_HUB_IDS = itertools.count()


numpy1_pickle = types.ModuleType('numpy1_pickle')
numpy1_pickle.Pickler = Numpy1Pickler
numpy1_pickle.Unpickler = pickle.Unpickler
numpy1_pickle.load = pickle.load


def save_numpy1(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` (protocol 2, zip format) with numpy-1 global names."""
    torch.save(obj, path, pickle_module=numpy1_pickle, pickle_protocol=2)


def data_pkl(path: str) -> bytes:
    """The pickle stream (``<archive>/data.pkl``) of a zip-format torch checkpoint."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.endswith('/data.pkl') or n == 'data.pkl']
        assert len(names) == 1, zf.namelist()
        return zf.read(names[0])


def pickled_globals(path: str) -> List[str]:
    """Every GLOBAL opcode of the checkpoint's data.pkl, as ``module.name``."""
    found = []
    for op, arg, _ in pickletools.genops(io.BytesIO(data_pkl(path))):
        if op.name == 'GLOBAL':
            module, name = arg.split(' ', 1)
            found.append(f'{module}.{name}')
        assert op.name != 'STACK_GLOBAL', 'protocol 2 files name globals with GLOBAL only'
    return found


def message_hub_state(losses: List[float]) -> dict:
    """A MessageHub state as MMEngine saves it: HistoryBuffers of numpy arrays, runtime info."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance(f'numpy1_hub_{next(_HUB_IDS)}')  # a fresh hub per checkpoint
    for i, loss in enumerate(losses, 1):
        hub.update_scalar('train/loss', loss)
        hub.update_scalar('train/lr', 0.1 / i)
    hub.update_info('iter', len(losses))
    hub.update_info('epoch', 1)
    hub.update_info('loss_scale', np.float64(65536.0))  # a numpy scalar, as AMP runs log it
    return hub.state_dict()


def runner_checkpoint(state_dict: Dict[str, torch.Tensor], cfg_text: str = '', epoch: int = 1,
                      iteration: int = 2, losses: Optional[List[float]] = None,
                      optimizer: Optional[dict] = None) -> dict:
    """An MMEngine 0.8 runner checkpoint around ``state_dict`` (what CheckpointHook writes)."""
    meta = dict(epoch=epoch, iter=iteration, cfg=cfg_text, seed=0,
                experiment_name='20230801_120000', time='20230801_130000',
                mmengine_version='0.8.4', dataset_meta=dict(classes=('a', 'b')),
                throughput=np.float32(123.5))
    hub = message_hub_state(losses or [2.0, 1.5])
    if optimizer is None:  # AmpOptimWrapper layout: torch optimizer state + loss scaler
        first = next(iter(state_dict.values()))
        optimizer = dict(state={0: dict(step=torch.tensor(float(iteration)),
                                        exp_avg=torch.zeros_like(first).float())},
                         param_groups=[dict(lr=2.4e-3, weight_decay=0.1, params=[0],
                                            initial_lr=2.4e-3, betas=(0.9, 0.999))],
                         loss_scaler=dict(scale=65536.0, growth_factor=2.0, backoff_factor=0.5,
                                          growth_interval=2000, _growth_tracker=3))
    return dict(meta=meta, state_dict=state_dict, message_hub=hub, optimizer=optimizer,
                param_schedulers=[dict(last_step=iteration, base_values=[2.4e-3],
                                       by_epoch=True, T_max=260, eta_min=0.0)])
