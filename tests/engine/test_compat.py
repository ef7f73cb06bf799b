"""genview_mm.compat: mmpretrain imports under transformers 5; checkpoints load with
weights_only=True, those written under numpy 1.x included (through every path a user takes:
tools/convert_checkpoint.py, load_from, tools/train.py --resume, init_cfg Pretrained), and
anything beyond MMEngine's own data types is still refused."""
import os
import os.path as osp
import pickle
import re
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, run_script, run_tool, tool_env
from numpy1_checkpoints import (
    NUMPY1_RECONSTRUCT,
    NUMPY1_SCALAR,
    data_pkl,
    pickled_globals,
    runner_checkpoint,
    save_numpy1,
)

DEMO_CFG = 'configs/demo/mocov2_r18_tiny_cpu.py'
PWNED = '/tmp/genview_mm_pwned'


def test_import_registers_and_fixes_mmpretrain():
    import mmpretrain.models  # noqa: F401  (fails without the compat fix under transformers 5)
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import dependency

    import genview_mm
    assert isinstance(genview_mm.__version__, str) and genview_mm.__version__.count('.') == 2
    assert dependency.WITH_MULTIMODAL is False
    assert 'mmpretrain.models' in sys.modules
    assert MODELS.get('MoCo') is not None


def _message_hub_checkpoint(path):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat_test_hub')
    for v in (1.0, 2.0, 3.0):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 7)
    ckpt = dict(meta=dict(epoch=1, iter=7, seed=np.int64(3), hub=hub.state_dict(),
                          arr=np.arange(4, dtype=np.float32)),
                state_dict={'backbone.w': torch.ones(2)})
    torch.save(ckpt, path)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'ok.pth')
    _message_hub_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['meta']['hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(2.0)
    assert buf.statistics('max') == 3.0
    assert ckpt['meta']['arr'].tolist() == [0.0, 1.0, 2.0, 3.0]
    # and through MMEngine's own loader, which calls torch.load without weights_only
    assert torch.equal(_load_checkpoint(path)['state_dict']['backbone.w'], torch.ones(2))


class _Evil:
    def __reduce__(self):
        return (os.system, (f'touch {PWNED}',))


class _GetattrEscape:
    """Reaches a module global through getattr on an allow-listed class."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.fixture
def no_pwned_file():
    """The file a malicious pickle would create is not there before the test."""
    if os.path.exists(PWNED):
        os.remove(PWNED)


@pytest.mark.parametrize('payload', [_Evil(), _GetattrEscape()], ids=['reduce', 'getattr'])
def test_arbitrary_pickled_object_is_refused(tmp_path, payload, no_pwned_file):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=payload)), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(path)
    assert not os.path.exists(PWNED)


NUMPY1_CORE = np._core.multiarray  # numpy 2's module; Numpy1Pickler writes it as numpy.core...


class _Numpy1GetattrEscape:
    """getattr(_reconstruct, '__self__') is numpy's C module: from there, anything."""

    def __reduce__(self):
        return (getattr, (NUMPY1_CORE._reconstruct, '__self__'))


class _Numpy1Memmap:
    """A numpy-1 array whose class is np.memmap (an ndarray subclass that opens files)."""

    def __reduce__(self):
        return (NUMPY1_CORE._reconstruct, (np.memmap, (0,), b'b'))


class _RunString:
    """numpy's own code-execution helper (a classic pickle exploit)."""

    def __reduce__(self):
        from numpy.testing._private.utils import runstring
        return (runstring, (f'import os; os.system("touch {PWNED}")', {}))


def test_numpy1_checkpoint_bytes_name_numpy_core(tmp_path):
    path = str(tmp_path / 'np1.pth')
    save_numpy1(runner_checkpoint({'backbone.w': torch.ones(2)}), path)
    names = pickled_globals(path)
    assert NUMPY1_RECONSTRUCT in names and NUMPY1_SCALAR in names and 'numpy.dtype' in names
    assert not any(n.startswith('numpy._core') for n in names), names
    assert b'numpy._core' not in data_pkl(path)
    # the same checkpoint saved by plain torch.save names numpy 2's module instead
    torch.save(runner_checkpoint({'backbone.w': torch.ones(2)}), str(tmp_path / 'np2.pth'))
    assert 'numpy._core.multiarray._reconstruct' in pickled_globals(str(tmp_path / 'np2.pth'))


def test_numpy1_checkpoint_loads_with_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'np1.pth')
    save_numpy1(runner_checkpoint({'backbone.w': torch.arange(3.)}, losses=[3.0, 1.0, 2.0]), path)
    for ckpt in (torch.load(path, weights_only=True), _load_checkpoint(path)):
        buf = ckpt['message_hub']['log_scalars']['train/loss']
        assert isinstance(buf, HistoryBuffer)
        assert buf.data[0].tolist() == [3.0, 1.0, 2.0] and buf.data[0].dtype == np.float64
        assert buf.mean() == pytest.approx(2.0) and buf.statistics('min') == 1.0
        assert ckpt['message_hub']['runtime_info']['loss_scale'] == np.float64(65536.0)
        assert ckpt['meta']['throughput'] == 123.5
        assert isinstance(ckpt['meta']['throughput'], np.float32)
        assert torch.equal(ckpt['state_dict']['backbone.w'], torch.arange(3.))


@pytest.mark.parametrize('payload', [_Evil(), _Numpy1GetattrEscape(), _Numpy1Memmap(),
                                     _RunString()],
                         ids=['reduce', 'getattr-numpy', 'memmap', 'runstring'])
def test_numpy1_style_malicious_pickle_is_refused(tmp_path, payload, no_pwned_file):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'evil.pth')
    save_numpy1(dict(state_dict={'backbone.w': torch.ones(1)}, meta=dict(x=payload)), path)
    assert not any(n.startswith('numpy._core') for n in pickled_globals(path))
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not os.path.exists(PWNED)


def test_numpy1_aliases_are_data_types_only():
    from genview_mm.compat import _reconstruct, checkpoint_safe_globals
    named = {name: obj for obj, name in (g for g in checkpoint_safe_globals()
                                         if isinstance(g, tuple))}
    assert named[NUMPY1_RECONSTRUCT] is named['numpy._core.multiarray._reconstruct'] \
        is _reconstruct  # plain ndarrays only
    assert named[NUMPY1_SCALAR] is NUMPY1_CORE.scalar
    assert not isinstance(named['numpy.ndarray'], type)  # a token: the class is not callable
    assert sorted(n for n in named if n.startswith('numpy')) == sorted([
        NUMPY1_RECONSTRUCT, NUMPY1_SCALAR, 'numpy._core.multiarray._reconstruct',
        'numpy._core.multiarray.scalar', 'numpy.dtype', 'numpy.ndarray',
        'numpy.ndarray\n(restored through _reconstruct only, once)'])  # no GLOBAL spells \n
    assert named['numpy.dtype'] is not np.dtype  # numeric, numpy's shared instances only
    plain = [g for g in checkpoint_safe_globals() if not isinstance(g, tuple)]
    assert np.ndarray not in plain and np.dtype not in plain
    assert not {np.dtypes.VoidDType, np.dtypes.ObjectDType, np.dtypes.DateTime64DType,
                np.dtypes.BytesDType, np.dtypes.StrDType} & set(plain)
    assert np.dtypes.Float64DType in plain and np.dtypes.BoolDType in plain


class _Pickled:
    """Pickles as ``call(*args)``, then ``state`` restored onto it: what a forged checkpoint
    can hold."""

    def __init__(self, call, args, state=None):
        self.call, self.args, self.state = call, args, state

    def __reduce__(self):
        return (self.call, self.args) + (() if self.state is None else (self.state,))


def _dtype(name: str, state: tuple) -> _Pickled:
    """numpy's dtype ``name`` as numpy pickles one, with a forged ``state``."""
    return _Pickled(np.dtype, (name, False, True), state)


def _array(shape: tuple, dtype, raw: bytes) -> _Pickled:
    """An array as numpy pickles one: ``_reconstruct``, then ``shape``, ``dtype``, ``raw``."""
    return _Pickled(NUMPY1_CORE._reconstruct, (np.ndarray, (0,), b'b'),
                    (1, shape, dtype, False, raw))


# ``numpy.ndarray((1,), dtype('O'), 8 bytes)``: an object whose address the bytes give (with an
# address of the attacker's choosing, a crash or a forged object)
_NDARRAY_OVER_BYTES = _Pickled(np.ndarray, ((1,), np.dtype('O'), bytes(8)))
# a bytes dtype whose state gives it an object field and clears the flags that say it holds
# objects: an array of it is then read from raw bytes (forged pointers)
_HIDDEN_OBJECTS = _dtype('S8', (3, '|', None, ('a',), {'a': (np.dtype('O'), 0)}, 8, 1, 0))
# an object dtype copy whose state clears its flags: numpy then took raw bytes as its items
# (pointers; the process crashed on reading one)
_OBJECTS_WITHOUT_FLAGS = _dtype('O8', (3, '|', None, None, None, -1, -1, 0))
# a datetime dtype given a state of another version: numpy crashed restoring it
_DATETIME_STATE = _dtype('M8', (3, '<', None, None, None, -1, -1, 255))


@pytest.mark.parametrize('payload', [
    _NDARRAY_OVER_BYTES, _HIDDEN_OBJECTS, _array((1,), _HIDDEN_OBJECTS, bytes(8)),
    _array((1,), _OBJECTS_WITHOUT_FLAGS, bytes.fromhex('4141414141414141')), _DATETIME_STATE],
                         ids=['ndarray-call', 'dtype-state', 'array-of-it', 'object-flags',
                              'datetime-state'])
@pytest.mark.parametrize('numpy1', [False, True], ids=['numpy2', 'numpy1'])
def test_arrays_over_raw_memory_are_refused(tmp_path, payload, numpy1):
    """numpy.ndarray itself was allowed, and every numpy dtype's state: a checkpoint could call
    ``ndarray(shape, dtype('O'), buffer)`` (loaded with weights_only, the process crashed when
    the element was read), or give a bytes dtype a hidden object field. Both are refused; the
    numpy arrays and scalars of real checkpoints load as before (the tests above)."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'forged.pth')
    (save_numpy1 if numpy1 else torch.save)(dict(state_dict={}, meta=dict(x=payload)), path)
    for load in (_load_checkpoint, lambda p: torch.load(p, weights_only=True)):
        with pytest.raises((pickle.UnpicklingError, TypeError)):
            load(path)


# a long double dtype whose state sets every flag and a big-endian order: numpy crashed when
# an array of it was used
_LONG_DOUBLE_ALL_FLAGS = _array((2,), _dtype('f16', (3, '>', None, None, None, -1, -1, 255)),
                                bytes(32))
# a float64 copy whose state gives it an object field and no flags (numpy then read the
# array's bytes as pointers)
_FLOAT_WITH_OBJECT_FIELD = _array((1,), _dtype(
    'f8', (3, '<', None, ('a',), {'a': (np.dtype('O'), 0)}, 8, 8, 0)),
    bytes.fromhex('4141414141414140'))
_OBJECT_SCALAR_FROM_BYTES = _Pickled(NUMPY1_CORE.scalar, (_OBJECTS_WITHOUT_FLAGS, bytes(8)))


def test_a_numeric_dtype_state_cannot_change_numpys_shared_dtype(tmp_path):
    """``numpy.dtype`` gives numpy's own shared instance (numpy leaves those unchanged when a
    state is restored onto them): a forged state is ignored, the array is a plain one read as
    its numbers, and the dtype numpy hands out elsewhere is untouched. An object dtype is
    refused, also through numpy's scalar function."""
    path = str(tmp_path / 'forged.pth')
    torch.save(dict(meta=dict(x=_LONG_DOUBLE_ALL_FLAGS)), path)
    arr = torch.load(path, weights_only=True)['meta']['x']
    assert isinstance(arr, np.ndarray) and arr.dtype == np.longdouble and arr.tolist() == [0.0, 0.0]
    assert np.dtype(np.longdouble).flags == 0 and np.concatenate([arr, arr]).shape == (4,)
    for payload in (_FLOAT_WITH_OBJECT_FIELD, _OBJECT_SCALAR_FROM_BYTES):
        torch.save(dict(meta=dict(x=payload)), path)
        with pytest.raises(pickle.UnpicklingError, match="refuses numpy dtype 'O8'"):
            torch.load(path, weights_only=True)
    assert np.dtype('f8').fields is None and np.dtype('O').flags == 63


def test_a_checkpoints_config_text_is_not_run_on_resume(numpy1_run, tmp_path, no_pwned_file):
    """MMEngine's resume runs meta['config'] as Python (Config.fromstring, to compare gpu_ids),
    and a string passes weights_only loading: a checkpoint handed to --resume ran code. The
    Runner now drops it, with a warning, and resumes."""
    ckpt = dict(numpy1_run['original'])
    ckpt['meta'] = dict(ckpt['meta'], config=f"__import__('os').system('touch {PWNED}')\n")
    handed = str(tmp_path / 'handed.pth')
    torch.save(ckpt, handed)
    out = run_tool('train.py', DEMO_CFG, '--work-dir', str(tmp_path / 'work'), '--resume',
                   handed, '--cfg-options',
                   f'train_dataloader.dataset.data_root={numpy1_run["photos"]}',
                   'train_cfg.max_epochs=2').output
    assert not os.path.exists(PWNED)
    assert f"{handed}: its meta['config'] (config text that MMEngine's resume would run as " \
        'Python) is ignored' in out
    assert re.search(r'resumed epoch: 1, iter: 2', out), out[-3000:]


# ---- the four ways a user loads a numpy-1 checkpoint -------------------------------------------

@pytest.fixture(scope='module')
def numpy1_run(tmp_path_factory, repo_root, train_photos):
    """One epoch of the tiny demo MoCo v2 (2 iterations), its checkpoint re-saved numpy-1 style."""
    from mmengine.config import Config

    from genview_mm.apis.launch import build_runner, prepare_cfg
    root = tmp_path_factory.mktemp('numpy1_run')
    photos = train_photos.src_root
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CFG))
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': photos, 'train_cfg.max_epochs': 1})
    prepare_cfg(cfg, work_dir=str(root / 'work'))
    build_runner(cfg).train()
    original = torch.load(str(root / 'work' / 'epoch_1.pth'), weights_only=True)
    path = str(root / 'numpy1_epoch_1.pth')
    save_numpy1(original, path)
    assert NUMPY1_RECONSTRUCT in pickled_globals(path)
    assert b'numpy._core' not in data_pkl(path)
    return dict(path=path, original=original, photos=photos, root=root)


@pytest.mark.slow
def test_numpy1_checkpoint_through_convert_tool(numpy1_run, tmp_path):
    dst = str(tmp_path / 'backbone.pth')
    out = run_tool('convert_checkpoint.py', numpy1_run['path'], dst).output
    state = numpy1_run['original']['state_dict']
    converted = torch.load(dst, weights_only=True)['state_dict']
    expected = {k: v for k, v in state.items() if k.startswith('backbone.')}
    assert f'wrote {len(expected)} backbone tensors' in out
    assert set(converted) == set(expected)
    assert all(torch.equal(converted[k], v) for k, v in expected.items())


def test_numpy1_checkpoint_through_load_from(numpy1_run, repo_root, tmp_path):
    from mmengine.config import Config

    from genview_mm.apis.launch import build_runner, prepare_cfg
    cfg = Config.fromfile(osp.join(repo_root, DEMO_CFG))
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': numpy1_run['photos'],
                         'load_from': numpy1_run['path']})
    prepare_cfg(cfg, work_dir=str(tmp_path / 'work'))
    runner = build_runner(cfg)
    before = runner.model.backbone.conv1.weight.detach().clone()
    runner.load_or_resume()
    state = numpy1_run['original']['state_dict']
    assert not torch.equal(before, state['backbone.conv1.weight'])
    loaded = runner.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert runner.iter == 0  # load_from loads weights only; training starts over


@pytest.mark.slow
def test_numpy1_checkpoint_through_train_resume(numpy1_run, tmp_path):
    work = str(tmp_path / 'work')
    out = run_tool('train.py', DEMO_CFG, '--work-dir', work, '--resume', numpy1_run['path'],
                   '--cfg-options', f'train_dataloader.dataset.data_root={numpy1_run["photos"]}',
                   'train_cfg.max_epochs=2').output
    assert re.search(r'resumed epoch: 1, iter: 2', out), out[-3000:]
    ckpt = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=True)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 4
    # the message hub came back from the numpy-1 HistoryBuffer: its 2 losses, then 2 new ones
    old = numpy1_run['original']['message_hub']['log_scalars']['train/loss'].data[0]
    new = ckpt['message_hub']['log_scalars']['train/loss'].data[0]
    assert len(old) == 2 and len(new) == 4 and new[:2].tolist() == old.tolist()
    # the optimizer state (SGD momentum buffers) was resumed from the file, then updated
    assert ckpt['optimizer']['state'].keys() == numpy1_run['original']['optimizer']['state'].keys()


def test_numpy1_checkpoint_through_init_cfg_pretrained(numpy1_run):
    from mmpretrain.registry import MODELS
    backbone = MODELS.build(dict(
        type='ResNet', depth=18, stem_channels=8, base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=numpy1_run['path'], prefix='backbone.')))
    backbone.init_weights()
    state = numpy1_run['original']['state_dict']
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, state['backbone.' + k]), k


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_negative_factor_rotates_hue(backend):
    import mmcv
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 2] = 255  # pure red in BGR
    out_neg = mmcv.adjust_hue(img, -0.1, backend=backend)  # raised OverflowError under numpy 2
    out_pos = mmcv.adjust_hue(img, 0.1, backend=backend)
    out_zero = mmcv.adjust_hue(img, 0.0, backend=backend)
    # red turned a little towards magenta (blue up) for -0.1 and towards yellow (green up) for +0.1
    assert out_neg[0, 0, 0] > 100 and out_neg[0, 0, 1] < 10
    assert out_pos[0, 0, 1] > 100 and out_pos[0, 0, 0] < 10
    np.testing.assert_array_equal(out_zero, img)
    with pytest.raises(ValueError):
        mmcv.adjust_hue(img, 0.6, backend=backend)


@pytest.mark.parametrize('interrupt', [KeyboardInterrupt, SystemExit])
def test_an_interrupt_while_mmengine_formats_a_config_stays_an_interrupt(interrupt, monkeypatch):
    """Config.pretty_text's bare except turned a Ctrl-C during a checkpoint save into
    'SyntaxError: Failed to format the config file' with the whole config (exit status 1);
    a config that does not format is still that SyntaxError."""
    import mmengine.config.config as mm_config
    from mmengine.config import Config

    import genview_mm  # noqa: F401
    cfg = Config(dict(a=1))

    def stop(*args, **kwargs):
        raise interrupt()
    monkeypatch.setattr(mm_config, 'FormatCode', stop)
    with pytest.raises(interrupt):
        cfg.pretty_text  # noqa: B018
    monkeypatch.setattr(mm_config, 'FormatCode', lambda *a, **k: 1 / 0)
    with pytest.raises(SyntaxError, match='Failed to format the config file'):
        cfg.pretty_text  # noqa: B018
    monkeypatch.undo()
    assert cfg.pretty_text.strip() == 'a = 1'


def _double_restore_pickle() -> bytes:
    """A protocol-2 pickle (torch's allowed opcodes) that rebuilds an array, rebuilds a tensor
    over it (torch's ``_rebuild_device_tensor_from_numpy`` shares the memory), then restores a
    second state onto the same array (memo 0), which frees the memory the tensor uses."""
    import struct
    P = pickle

    def text(s):
        return P.BINUNICODE + struct.pack('<I', len(s.encode())) + s.encode()

    def glob(module, name):
        return P.GLOBAL + f'{module}\n{name}\n'.encode()

    def raw(data):
        return glob('_codecs', 'encode') + text(data.decode('latin1')) + text('latin1') + \
            P.TUPLE2 + P.REDUCE

    def dtype(spec):
        return glob('numpy', 'dtype') + text(spec) + P.NEWFALSE + P.NEWTRUE + P.TUPLE3 + P.REDUCE

    def state(shape, spec, data):
        return (P.MARK + P.BININT1 + b'\x01' + P.BININT1 + bytes([shape]) + P.TUPLE1 +
                dtype(spec) + P.NEWFALSE + raw(data) + P.TUPLE)
    return (P.PROTO + b'\x02' + P.EMPTY_DICT + text('a') +
            glob('numpy.core.multiarray', '_reconstruct') + glob('numpy', 'ndarray') +
            P.BININT1 + b'\x00' + P.TUPLE1 + raw(b'b') + P.TUPLE3 + P.REDUCE + P.BINPUT + b'\x00' +
            state(64, 'f4', struct.pack('<f', 0.5) * 64) + P.BUILD + P.SETITEM + text('w') +
            glob('torch._utils', '_rebuild_device_tensor_from_numpy') + P.MARK + P.BINGET +
            b'\x00' + glob('torch', 'float32') + text('cpu') + P.NEWFALSE + P.TUPLE + P.REDUCE +
            P.SETITEM + text('x') + P.BINGET + b'\x00' + state(1, 'u1', b'x') + P.BUILD +
            P.SETITEM + P.STOP)


def test_an_array_restored_twice_is_refused(tmp_path):
    """A pickle can name one array twice and restore a second state onto it: numpy freed the
    buffer a tensor rebuilt from the array in between still used (loaded weights read garbage,
    another object's numbers, or crashed the process). An array's state is restored once; and
    _reconstruct takes numpy's own (ndarray, (0,), b'b') only (a larger shape loaded
    uninitialised heap memory, pointers among it)."""
    import io
    import zipfile

    from genview_mm.compat import _NDARRAY_TOKEN, _reconstruct
    buf = io.BytesIO()
    torch.save({}, buf)
    src, path = zipfile.ZipFile(io.BytesIO(buf.getvalue())), str(tmp_path / 'twice.pth')
    with zipfile.ZipFile(path, 'w') as out:
        for name in src.namelist():
            out.writestr(name, _double_restore_pickle() if name.endswith('data.pkl')
                         else src.read(name))
    with pytest.raises(pickle.UnpicklingError, match='restores one numpy array twice'):
        torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError, match=r'made as _reconstruct\(ndarray, '):
        _reconstruct(_NDARRAY_TOKEN, (20000,), b'b')
    torch.save(dict(a=np.arange(4.0)), str(tmp_path / 'ok.pth'))  # one restore: loads
    assert torch.load(str(tmp_path / 'ok.pth'), weights_only=True)['a'].tolist() == [0, 1, 2, 3]


def test_a_checkpoint_cannot_change_how_every_history_buffer_computes(tmp_path, monkeypatch):
    """HistoryBuffer's pickled state updated its class-wide statistics: a loaded checkpoint
    made every buffer of the process report mean as max (or crash MMEngine's logging with a
    value that is not a function). Its own min/max/current/mean are the only ones kept."""
    from mmengine.logging import HistoryBuffer
    forged = HistoryBuffer([1.0, 2.0, 3.0, 100.0], [1, 1, 1, 1])
    forged._statistics_methods = {'mean': HistoryBuffer.max, 'odd': HistoryBuffer.max}
    path = str(tmp_path / 'hb.pth')
    torch.save({'meta': {'log_scalars': {'x': forged}}}, path)
    forged._statistics_methods = {}
    monkeypatch.setattr(HistoryBuffer, '_statistics_methods', {})  # as in a fresh process
    loaded = torch.load(path, weights_only=True)['meta']['log_scalars']['x']
    assert loaded.mean() == pytest.approx(26.5)
    other = HistoryBuffer([1.0, 2.0, 3.0], [1, 1, 1])
    assert other.statistics('mean') == pytest.approx(2.0)
    assert 'odd' not in HistoryBuffer._statistics_methods


def test_old_checkpoints_are_deleted_only_after_a_save(tmp_path):
    """MMEngine's CheckpointHook deleted the checkpoints beyond max_keep_ckpts before saving
    the new one: with max_keep_ckpts=1, a kill during the save (a Slurm time limit) left half
    a file and last_checkpoint naming the deleted one, so the run had nothing to resume."""
    import types
    from collections import deque

    from mmengine.fileio import get_file_backend
    from mmengine.hooks import CheckpointHook
    from mmengine.logging import MessageHub

    def save_checkpoint(out_dir, name, *args, **kwargs):
        with open(osp.join(out_dir, name), 'wb') as f:
            f.write(b'half a file' if name == 'epoch_2.pth' else b'whole')
        if name == 'epoch_2.pth':
            raise KeyboardInterrupt  # the kill, mid-save

    hook = CheckpointHook(interval=1, max_keep_ckpts=1)
    hook.out_dir, hook.filename_tmpl, hook.keep_ckpt_ids = str(tmp_path), 'epoch_{}.pth', deque()
    hook.file_backend = get_file_backend(hook.out_dir)
    runner = types.SimpleNamespace(message_hub=MessageHub.get_instance('prune_test'),
                                   work_dir=str(tmp_path), save_checkpoint=save_checkpoint)
    hook._save_checkpoint_with_step(runner, 1, {})
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 2, {})
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'epoch_2.pth', 'last_checkpoint']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_1.pth')
    hook._save_checkpoint_with_step(runner, 3, {})  # a whole save prunes, once it is written
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'epoch_3.pth', 'last_checkpoint']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_3.pth')
    assert 'remove' not in vars(hook.file_backend)  # the backend's own method again


def _failing_fsync(exc):
    def fsync(fd):
        raise exc
    return fsync


def test_a_checkpoint_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """MMEngine's save_checkpoint wrote into the checkpoint's own name: a kill or a full disk
    during the save left half a file there, and a full disk was a traceback. Now the name
    holds the old file or the whole new one; a full disk is DiskFull naming the folder; the
    hidden file a SIGKILL leaves goes at a later save into the folder, once STALE_AFTER has
    passed. Other writes of MMEngine's file backend (a drawing per test image) stay upstream's:
    an fsync each made --show-dir ~60x slower."""
    import errno
    import signal
    import subprocess

    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.runner import save_checkpoint
    from mmengine.runner.checkpoint import save_checkpoint as in_module

    from genview_mm.utils import atomic_write
    from genview_mm.utils.atomic_write import DiskFull
    assert in_module is save_checkpoint and not getattr(LocalBackend.put, '_genview_mm', False)
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'w': torch.ones(2)}, str(path))
    whole = path.read_bytes()
    monkeypatch.setattr(atomic_write.os, 'fsync', _failing_fsync(
        OSError(errno.ENOSPC, 'No space left on device')))
    with pytest.raises(DiskFull) as exc:
        save_checkpoint({'w': torch.zeros(2)}, path)  # a Path, as MMEngine may pass
    assert str(exc.value) == (f'no space left on the device writing to {tmp_path} (No space '
                              'left on device): free space or write elsewhere, then rerun')
    assert path.read_bytes() == whole and os.listdir(tmp_path) == ['epoch_1.pth']
    monkeypatch.undo()
    kill = ('import os, signal, torch, genview_mm\n'
            'from mmengine.runner import save_checkpoint\n'
            'os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n'
            f'save_checkpoint({{"w": torch.zeros(2)}}, {str(path)!r})\n')
    proc = subprocess.run([sys.executable, '-c', kill], cwd=ROOT, env=tool_env())
    assert proc.returncode == -signal.SIGKILL
    left = [n for n in os.listdir(tmp_path) if n != 'epoch_1.pth']
    assert len(left) == 1 and left[0].startswith('.epoch_1.pth.tmp-')  # a whole checkpoint
    assert path.read_bytes() == whole
    save_checkpoint({'w': torch.ones(2)}, str(tmp_path / 'epoch_2.pth'))
    assert left[0] in os.listdir(tmp_path)  # younger than STALE_AFTER: it might be a writer's
    old = os.path.getmtime(tmp_path / left[0]) - atomic_write.STALE_AFTER - 1
    os.utime(tmp_path / left[0], (old, old))
    save_checkpoint({'w': torch.ones(2)}, str(tmp_path / 'sub' / 'epoch_3.pth'))  # another
    assert left[0] in os.listdir(tmp_path)  # folder: not cleared there
    save_checkpoint({'w': torch.ones(2)}, str(tmp_path / 'epoch_3.pth'))
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth', 'sub']
    assert torch.load(str(tmp_path / 'sub' / 'epoch_3.pth'), weights_only=True)['w'].sum() == 2


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line(tmp_path, monkeypatch, capsys, train_photos):
    """A full disk at the first checkpoint ended training in MMEngine's traceback and left half
    a checkpoint; now train.py says so in one line naming the folder, exit status 1, and no
    file of the checkpoint is left."""
    import errno

    from genview_mm.utils import atomic_write
    monkeypatch.setattr(atomic_write.os, 'fsync', _failing_fsync(
        OSError(errno.ENOSPC, 'No space left on device')))
    work = tmp_path / 'work'
    with pytest.raises(SystemExit) as exit_:
        run_script('train.py', 'configs/demo/mocov2_r18_tiny_cpu.py', '--skip-preflight',
                   '--work-dir', work, '--cfg-options',
                   f'train_dataloader.dataset.data_root={train_photos.src_root}',
                   'train_cfg.max_epochs=1')
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f'train.py: error: no space left on the device writing to {work} (No space left on '
        'device): free space or write elsewhere, then rerun'), err[-2000:]
    assert 'Traceback' not in err
    assert not [n for n in os.listdir(work) if 'pth' in n or n == 'last_checkpoint']


def test_a_users_own_allowed_numpy_globals_win_over_the_stand_ins(tmp_path):
    """A user's own ``torch.load`` of arrays they allow-listed as torch's docs say: after
    ``import genview_mm`` it failed, by hash order (``_reconstruct() argument 1 must be type``,
    a string array refused), as genview_mm's stand-ins share those names."""
    import torch._weights_only_unpickler as unpickler
    path = str(tmp_path / 'own.pth')
    torch.save({'names': np.array(['cat', 'dog']), 'x': np.arange(3.0)}, path)
    core = getattr(np, '_core', None) or np.core
    users = [core.multiarray._reconstruct, np.ndarray, np.dtype, getattr,
             type(np.dtype('U3'))]
    with torch.serialization.safe_globals(users):
        named = unpickler._get_user_allowed_globals()
        assert [named[n] for n in ('numpy._core.multiarray._reconstruct', 'numpy.ndarray',
                                   'numpy.dtype', 'builtins.getattr')] == users[:4]
        loaded = torch.load(path, weights_only=True)
    assert loaded['names'].tolist() == ['cat', 'dog'] and loaded['x'].tolist() == [0, 1, 2]
    with torch.serialization.safe_globals([np.ndarray]):  # the class alone: numbers still load
        torch.save({'x': np.arange(2.0)}, path)
        assert torch.load(path, weights_only=True)['x'].tolist() == [0, 1]
    with pytest.raises(pickle.UnpicklingError):  # and without them, strings stay refused
        torch.save({'names': np.array(['cat'])}, path)
        torch.load(path, weights_only=True)
