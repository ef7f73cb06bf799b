"""The one place where genview_mm adapts upstream OpenMMLab code to today's torch/transformers.

Applied once, at ``import genview_mm`` (before anything imports ``mmpretrain.models``):

1. **mmpretrain 1.2.0 under transformers >= 4.56.** ``mmpretrain.utils.dependency.WITH_MULTIMODAL``
   turns true when transformers and pycocotools are installed, and the BLIP/BLIP2 modules then
   import helpers that transformers removed, so ``import mmpretrain`` itself fails. We load
   ``mmpretrain.utils.dependency`` on its own (without running ``mmpretrain/__init__``) and set
   the flag to False; mmpretrain then registers placeholders for its multimodal models and
   everything else works. The multimodal models (BLIP, Flamingo, ...) are unusable as a result.
2. **MMEngine checkpoints under torch >= 2.6.** ``torch.load`` defaults to ``weights_only=True``
   and refuses the few non-tensor types MMEngine writes into its checkpoints (``HistoryBuffer``
   in the message hub, numpy arrays and scalars). We allow-list exactly those types with
   ``torch.serialization.add_safe_globals``; ``weights_only`` stays on, so a checkpoint carrying
   any other pickled object is still refused. ``HistoryBuffer`` pickles its statistic methods
   through the builtin ``getattr``: instead of allowing ``getattr`` (which would let a crafted
   checkpoint walk from any allowed class to module globals) we register a replacement that only
   resolves ``HistoryBuffer.<min|max|current|mean>``. Checkpoints written under numpy 1.x (the
   official GenView model zoo, every OpenMMLab checkpoint before numpy 2) name numpy's pickle
   helpers ``numpy.core.multiarray._reconstruct`` / ``.scalar``, which numpy 2 moved to
   ``numpy._core``: both spellings are registered as aliases of today's functions (see
   :func:`checkpoint_safe_globals`). numpy is allowed as data only: ``numpy.ndarray`` names a
   token that only ``_reconstruct`` takes (the class, called, builds arrays over raw memory;
   ``_reconstruct`` takes numpy's own arguments only, and an array's state is restored once),
   and ``numpy.dtype`` gives numpy's own shared numeric dtypes, whose pickled state numpy then
   leaves alone (a state can redraw a dtype's layout and flags: forged pointers, crashes). A
   restored ``HistoryBuffer`` keeps its own statistics only (upstream let a checkpoint replace
   them for every buffer of the process). A checkpoint's ``meta['config']`` (old OpenMMLab
   config text, which MMEngine's ``resume`` runs
   as Python) is dropped when a Runner loads it. All of this holds only while MMEngine loads with
   ``weights_only`` on (0.10.7, pinned in setup.py; its main branch passes
   ``weights_only=False``): :func:`check_safe_checkpoint_loading` checks it at import by
   giving MMEngine's own loader a file that calls a function, and refuses to go on if it loads.
3. **``_base_ = 'genview_mm::<config>.py'``.** MMEngine resolves ``pkg::`` bases only for a fixed
   list of OpenMMLab packages, and looks for them under ``<distribution location>/<pkg>``, which
   for a PEP 660 editable install is site-packages rather than the source tree. We add
   ``genview_mm`` to that list and resolve its path from the imported package itself. This works
   in any process that has imported ``genview_mm`` before parsing the config (``tools/train.py``
   and ``tools/test.py`` do; a downstream script must ``import genview_mm`` first). MMEngine
   also insists on ``pkg::dir/file.py``; ``genview_mm::file.py`` is accepted too. (The scope
   ``_scope_='genview_mm'`` that such bases get is served by :mod:`genview_mm.registry`.)
4. **Known-harmless noise of today's stack, silenced once, here.** setuptools' deprecation of
   ``pkg_resources`` (imported by mmengine and mmcv), mmcv's "Only use 'alpha' for pillow
   backend" (upstream's ColorJitter passes both), MMEngine's note that it set OMP/MKL threads
   to 1 per process, and the per-load progress bars of
   transformers and the Hugging Face hub (``HF_HUB_DISABLE_PROGRESS_BARS``; set it to 0 to see
   them). Nothing else is filtered.
5. **MMEngine's ``collate_fn`` of inherited configs.** A config inheriting from another package
   (``_base_ = 'mmpretrain::...'``) gets ``_scope_`` added to its ``collate_fn`` dict, and
   ``Runner.build_dataloader`` passes every key of that dict to the function, so
   ``default_collate(_scope_=...)`` fails. We wrap ``Runner.build_dataloader`` to drop the key,
   so a script that builds its own Runner works too.
6. **mmcv 2.1.0 ``adjust_hue`` under numpy 2.** It adds ``np.uint8(hue_factor * 255)`` to the hue
   channel, which numpy 2 refuses for a negative factor (``OverflowError``), so every
   ``ColorJitter(hue=...)`` pipeline (MoCo v2, BYOL, ...) crashes about half the time. We
   replace ``mmcv.adjust_hue`` by a version that rotates the hue channel modulo 256, as numpy 1's
   wrap-around did; the result is a writable array, bit-identical to upstream's wherever
   upstream worked (a factor >= 0).
7. **A Ctrl-C (or SIGTERM) while MMEngine formats a config.** ``Config.pretty_text`` runs yapf
   under a bare ``except:`` and raises ``SyntaxError`` with the whole config for anything,
   a ``KeyboardInterrupt`` included; every checkpoint save formats the config, so a run stopped
   then ended in hundreds of lines blaming the config's syntax, exit status 1. We let the
   interrupt through (:mod:`genview_mm.utils.interrupt` then says it in one line).
8. **MMEngine's ``CheckpointHook`` deletes old checkpoints before it saves the new one.** With
   ``max_keep_ckpts=1`` a kill during the save left a half-written file and ``last_checkpoint``
   naming the deleted one: nothing to resume. The old ones go once the new one and
   ``last_checkpoint`` are written (:func:`prune_checkpoints_after_saving`).
9. **MMEngine writes a checkpoint in place.** Its ``save_checkpoint`` has ``LocalBackend.put``
   open the target and write into it, so a kill during a save left half a file under the
   checkpoint's name, and a full disk did too, with a traceback. A local checkpoint now goes
   through :func:`genview_mm.utils.atomic_write.atomic_write` (:func:`write_checkpoints_whole`):
   the name holds the old file or the whole new one, a full disk raises ``DiskFull``, one line
   naming the folder (``tools/train.py`` exits with status 1; the saved checkpoints stay), and
   what a killed save left is removed at a later save.
"""
import copy
import importlib.util
import logging
import os
import os.path as osp
import shlex
import sys
import warnings
from typing import Any, List, Optional

import numpy as np
import torch

_HISTORY_BUFFER_STATS = ('min', 'max', 'current', 'mean')
# where numpy 1.x / numpy 2 pickle their array and scalar rebuild functions
_NUMPY_MULTIARRAY_NAMES = ('numpy.core.multiarray', 'numpy._core.multiarray')
_applied = False
#: the MMEngine release whose checkpoint loading keeps torch's weights_only (setup.py pins it)
VERIFIED_MMENGINE = '0.10.7'
#: (message regex, category) of the upstream warnings silenced by :func:`silence_known_noise`
KNOWN_HARMLESS_WARNINGS = (
    ('pkg_resources is deprecated as an API', UserWarning),
    ("Only use 'alpha' for pillow backend", UserWarning),
    ('Setting (OMP|MKL)_NUM_THREADS environment variable for each process', UserWarning),
)


def silence_known_noise() -> None:
    """Filter :data:`KNOWN_HARMLESS_WARNINGS` and turn off per-load progress bars."""
    for message, category in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)
    os.environ.setdefault('HF_HUB_DISABLE_PROGRESS_BARS', '1')


def _transformers_breaks_mmpretrain() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    from mmengine.utils import digit_version
    try:
        return digit_version(version('transformers')) >= digit_version('4.56.0')
    except PackageNotFoundError:
        return False


def disable_mmpretrain_multimodal() -> bool:
    """Set ``mmpretrain.utils.dependency.WITH_MULTIMODAL = False`` before mmpretrain is imported.

    Returns:
        bool: True if the flag is (now) False, False if mmpretrain is not installed.
    """
    name = 'mmpretrain.utils.dependency'
    if name in sys.modules:
        if 'mmpretrain.models' in sys.modules and sys.modules[name].WITH_MULTIMODAL:
            warnings.warn('mmpretrain.models was imported before genview_mm; import genview_mm '
                          'first (or add it to custom_imports) so that mmpretrain imports under '
                          'transformers>=4.56.')
        sys.modules[name].WITH_MULTIMODAL = False
        return True
    spec = importlib.util.find_spec('mmpretrain')
    if spec is None or not spec.submodule_search_locations:
        return False
    path = osp.join(list(spec.submodule_search_locations)[0], 'utils', 'dependency.py')
    dep_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(dep_spec)
    sys.modules[name] = module
    try:
        dep_spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    module.WITH_MULTIMODAL = False
    return True


def _safe_history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling: only HistoryBuffer statistics."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATS:
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'genview_mm refuses getattr({obj!r}, {name!r}) in a checkpoint: only '
        f'HistoryBuffer.{{{",".join(_HISTORY_BUFFER_STATS)}}} is allowed with weights_only=True.')


class _PickledNdarray:
    """What ``numpy.ndarray`` names in a checkpoint: a token, not the class. A numpy pickle
    names the class only as the first argument of ``_reconstruct`` (:func:`_reconstruct`); the
    class itself, allowed, could be called (``ndarray(shape, dtype('O'), buffer)`` makes
    objects of raw bytes: forged pointers, a crash or worse)."""

    def __repr__(self) -> str:
        return "numpy.ndarray (as a checkpoint names it; not callable)"

    def __call__(self, *args, **kwargs):
        raise torch.serialization.pickle.UnpicklingError(
            'genview_mm refuses a checkpoint that calls numpy.ndarray: numpy pickles arrays '
            'through _reconstruct; a call of the class builds arrays over raw memory.')


_NDARRAY_TOKEN = _PickledNdarray()


class _PickledArray(np.ndarray):
    """An ndarray as a checkpoint rebuilds it (:func:`_reconstruct`): its state is restored
    once. A pickle can name one array twice and restore a second state onto it; numpy then
    frees the buffer a tensor rebuilt from the array in between still uses (torch's
    ``_rebuild_device_tensor_from_numpy``): garbage or another object's numbers as weights, or a
    crash. Pickled again, it is a plain ndarray."""

    def __setstate__(self, state) -> None:
        if getattr(self, '_genview_restored', False):
            raise torch.serialization.pickle.UnpicklingError(
                'genview_mm refuses a checkpoint that restores one numpy array twice (it would '
                'free memory that a tensor still uses).')
        np.ndarray.__setstate__(self, state)
        self._genview_restored = True

    def __reduce__(self):
        return np.asarray(self).__reduce__()

    def __reduce_ex__(self, protocol):
        return np.asarray(self).__reduce_ex__(protocol)


# That class under a name no GLOBAL opcode can spell (it reads a name up to a newline): torch's
# weights_only unpickler restores a state (BUILD) only for allowed types.
_ARRAY_UNNAMEABLE = 'numpy.ndarray\n(restored through _reconstruct only, once)'
# The numpy dtypes a checkpoint may name (numpy.dtype('f8', False, True), then its state):
# numbers only (kinds bool, int, uint, float, complex), each as numpy's own shared instance.
_NUMERIC_KINDS = 'biufc'


def _pickled_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype`` as a checkpoint calls it: a numeric dtype, always numpy's own shared
    instance of it (``copy`` ignored). numpy leaves those as they are when a pickle restores a
    state onto them, and that state (restored by torch for allowed types) could otherwise
    redraw a dtype's layout and the flags that say it holds objects or needs care: an array of
    such a dtype read from raw bytes forges pointers, and some states crash numpy outright.
    MMEngine checkpoints hold numeric arrays and scalars only. (A dtype pickled on a
    big-endian machine would read as native: no x86 or ARM checkpoint holds one.)"""
    dtype = np.dtype(spec, align, False)
    if dtype.kind not in _NUMERIC_KINDS or np.dtype(spec, align, False) is not dtype:
        raise torch.serialization.pickle.UnpicklingError(
            f'genview_mm refuses numpy dtype {spec!r} in a checkpoint: only numeric types are '
            'allowed with weights_only=True (no object, text, structured or date types).')
    return dtype


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` as numpy pickles a plain ndarray, ``(ndarray, (0,), b'b')``,
    and nothing else (another class; a shape of uninitialised memory: heap bytes, pointers
    among them, would be loaded as data); its state is restored once (:class:`_PickledArray`)."""
    # the class itself where a user allow-listed numpy.ndarray (prefer_users_safe_globals)
    if subtype is not _NDARRAY_TOKEN and subtype is not np.ndarray:
        raise torch.serialization.pickle.UnpicklingError(
            f'genview_mm refuses an array of class {subtype!r} in a checkpoint: only '
            'numpy.ndarray is allowed with weights_only=True.')
    if tuple(shape) != (0,) or dtype not in (b'b', 'b'):
        raise torch.serialization.pickle.UnpicklingError(
            f'genview_mm refuses a numpy array made as _reconstruct(ndarray, {shape!r}, '
            f"{dtype!r}) in a checkpoint: numpy writes (ndarray, (0,), b'b').")
    return np.ndarray.__new__(_PickledArray, (0,), np.uint8)


def checkpoint_safe_globals() -> List[Any]:
    """The globals MMEngine checkpoints need under ``torch.load(weights_only=True)``.

    Data types only: ``HistoryBuffer``, numpy's numeric dtypes (:func:`_pickled_dtype`), its scalar
    rebuild function, a ``_reconstruct`` that rebuilds plain ndarrays only, ``numpy.ndarray``
    as a token that names the class without making it callable, and a ``getattr`` that
    resolves nothing but ``HistoryBuffer``'s statistics. numpy pickles arrays as
    ``<module>._reconstruct`` and scalars as ``<module>.scalar``, where ``<module>`` is
    ``numpy.core.multiarray`` under numpy 1.x and ``numpy._core.multiarray`` under numpy 2;
    each spelling is allowed as a ``(function, 'qualified.name')`` alias, so a checkpoint
    written under either numpy loads under both.
    """
    from mmengine.logging import HistoryBuffer
    safe: List[Any] = [HistoryBuffer, (_safe_history_buffer_getattr, 'builtins.getattr'),
                       (_NDARRAY_TOKEN, 'numpy.ndarray'), (_PickledArray, _ARRAY_UNNAMEABLE),
                       (_pickled_dtype, 'numpy.dtype')]
    core = getattr(np, '_core', None) or np.core
    for module in _NUMPY_MULTIARRAY_NAMES:
        safe += [(_reconstruct, f'{module}._reconstruct'),
                 (core.multiarray.scalar, f'{module}.scalar')]
    # dtypes pickle as `numpy.dtype(...)` and then their state, which torch restores only for
    # allowed types: numpy >= 1.25's class per dtype (numpy.dtypes.<Name>DType), numeric ones
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [cls for cls in (getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType'))
                 if _numeric_dtype_class(cls)]
    return safe


def _numeric_dtype_class(cls: Any) -> bool:
    """Whether a ``numpy.dtypes`` class makes numeric dtypes (by the kind of an instance)."""
    try:
        return np.dtype(cls.type).kind in _NUMERIC_KINDS and np.dtype(cls.type).__class__ is cls
    except (TypeError, AttributeError):
        return False


def allow_mmengine_checkpoints() -> None:
    """Allow-list MMEngine's checkpoint types for ``weights_only`` loading (torch >= 2.4)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(checkpoint_safe_globals())
        prefer_users_safe_globals()


def prefer_users_safe_globals() -> None:
    """Let a global that the user allow-lists (``torch.serialization.safe_globals([np.ndarray,
    ...])``, as torch's docs advise) win over genview_mm's stand-in of the same name
    (``numpy.ndarray``, ``numpy.dtype``, ``_reconstruct``, ``builtins.getattr``). torch maps
    names to objects from a set, so which of two entries of one name won was a matter of hash
    order: after ``import genview_mm`` a user's own ``torch.load`` of arrays they had allowed
    failed (``_reconstruct() argument 1 must be type``, or a string array refused), differently
    from run to run."""
    import torch._weights_only_unpickler as unpickler
    upstream = getattr(unpickler, '_get_user_allowed_globals', None)
    if upstream is None or getattr(upstream, '_genview_mm', False):
        return
    ours = {id(g[0]) for g in checkpoint_safe_globals() if isinstance(g, tuple)}

    def _get_user_allowed_globals():
        allowed = upstream()
        for g in getattr(unpickler, '_marked_safe_globals_set', ()):
            obj, name = g if isinstance(g, tuple) else (g, f'{g.__module__}.{g.__qualname__}')
            if id(obj) not in ours and id(allowed.get(name)) in ours:
                allowed[name] = obj  # the user's own entry of a name we stand in for
        return allowed

    _get_user_allowed_globals._genview_mm = True
    unpickler._get_user_allowed_globals = _get_user_allowed_globals


class UnsafeCheckpointLoading(RuntimeError):
    """MMEngine's checkpoint loading would run arbitrary pickled code."""


class _PickledCall:
    """Unpickles by calling ``os.getpid``: harmless if run, refused by ``weights_only``."""

    def __reduce__(self):
        return os.getpid, ()


def check_safe_checkpoint_loading() -> None:
    """Fail closed unless MMEngine's checkpoint loader refuses a pickle that calls a function.

    Fix 2 relies on MMEngine calling ``torch.load`` with torch's default ``weights_only=True``
    (MMEngine 0.10.7 does; its main branch passes ``weights_only=False``, and
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` switches it off too). So the loader every MMEngine
    checkpoint load goes through (``CheckpointLoader.load_checkpoint``: ``load_from``,
    ``resume``, ``init_cfg=dict(type='Pretrained')``) is given a tiny file whose unpickling
    calls ``os.getpid`` (harmless if it ran); it must be refused. About 2 ms.

    Raises:
        UnsafeCheckpointLoading: the file loaded: safe loading is off in this installation.
    """
    import pickle
    import tempfile

    from mmengine.runner.checkpoint import CheckpointLoader
    with tempfile.TemporaryDirectory(prefix='genview_mm-') as tmp:
        path = osp.join(tmp, 'pickled_call.pth')
        torch.save({'state_dict': {}, 'meta': _PickledCall()}, path)
        try:
            CheckpointLoader.load_checkpoint(path, map_location='cpu', logger='silent')
        except pickle.UnpicklingError:
            return  # refused: weights_only is on
    import mmengine
    from mmengine.utils import digit_version
    if os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '0') not in ('', '0'):
        fix = 'unset TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
    elif digit_version(torch.__version__) < digit_version('2.6.0'):  # weights_only=False
        fix = ('torch before 2.6 loads with weights_only=False by default: install torch>=2.6 '
               '(verified: torch==2.14.1 torchvision==0.29.1) and mmcv built for it')
    elif mmengine.__version__ != VERIFIED_MMENGINE:
        fix = f"install the verified MMEngine: pip install 'mmengine=={VERIFIED_MMENGINE}'"
    else:
        fix = ("remove what replaced MMEngine's checkpoint loader "
               '(mmengine.runner.checkpoint.CheckpointLoader) by one without weights_only')
    raise UnsafeCheckpointLoading(
        f'genview_mm: checkpoint loading here (MMEngine {mmengine.__version__}, torch '
        f'{torch.__version__}) runs code from checkpoint files: it loaded a test file whose '
        f'unpickling calls a function, so genview_mm stops rather than load unsafely; {fix}.')


def register_config_package() -> None:
    """Let MMEngine resolve ``genview_mm::`` config bases (installed and editable, top-level
    configs like ``genview_mm::genview_mocov2_r50_in1k.py`` included)."""
    from mmengine.config import config as mm_config
    from mmengine.config import utils as mm_config_utils
    mm_config_utils.MODULE2PACKAGE.setdefault('genview_mm', 'genview_mm')
    upstream_path = mm_config.get_installed_path
    upstream_split = mm_config._get_package_and_cfg_path
    if getattr(upstream_path, '_genview_mm', False):
        return

    def get_installed_path(package: str) -> str:
        if package != 'genview_mm':
            return upstream_path(package)
        path = osp.dirname(osp.abspath(sys.modules['genview_mm'].__file__))
        repo = osp.dirname(path)
        if not (osp.isdir(osp.join(path, '.mim', 'configs'))  # setup.py makes them
                and osp.isfile(osp.join(path, '.mim', 'model-index.yml'))):
            fix = (f'`pip install --no-deps --no-build-isolation -e {shlex.quote(repo)}` (or '
                   f'`bash {shlex.quote(osp.join(repo, "tools", "bootstrap_env.sh"))}`) once'
                   if osp.isfile(osp.join(repo, 'setup.py')) else 'reinstall genview_mm')
            raise FileNotFoundError(f'genview_mm:: configs: {path} has no .mim/configs or '
                                    f'.mim/model-index.yml (a checkout never installed?): '
                                    f'{fix}, then rerun')
        return path

    def get_package_and_cfg_path(cfg_path: str) -> tuple:
        # upstream insists on 'pkg::dir/file.py'; our main configs sit at the top of configs/
        package, sep, rel = cfg_path.partition('::')
        if package == 'genview_mm' and sep and rel and '::' not in rel:
            return package, rel
        return upstream_split(cfg_path)

    get_installed_path._genview_mm = True
    mm_config.get_installed_path = get_installed_path
    mm_config._get_package_and_cfg_path = get_package_and_cfg_path


def fix_collate_fn_scope() -> None:
    """Make ``Runner.build_dataloader`` ignore the ``_scope_`` of a ``collate_fn`` dict."""
    from mmengine.runner import Runner
    upstream = Runner.build_dataloader
    if getattr(upstream, '_genview_mm', False):
        return

    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        collate = dataloader.get('collate_fn') if isinstance(dataloader, dict) else None
        if isinstance(collate, dict) and '_scope_' in collate:
            dataloader = copy.copy(dataloader)
            dataloader['collate_fn'] = {k: v for k, v in collate.items() if k != '_scope_'}
        return upstream(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    build_dataloader._genview_mm = True
    build_dataloader.__doc__ = upstream.__doc__
    Runner.build_dataloader = staticmethod(build_dataloader)


def adjust_hue(img: np.ndarray, hue_factor: float, backend: Optional[str] = None) -> np.ndarray:
    """``mmcv.adjust_hue`` with the hue rotation done modulo 256 (works under numpy 2).

    Adapted from ``mmcv.image.photometric.adjust_hue`` (mmcv 2.1.0), which adds
    ``np.uint8(hue_factor * 255)`` and so overflows for a negative factor under numpy 2; the
    rotation is the same as numpy 1's wrap-around.

    Args:
        img (np.ndarray): BGR image, uint8 (any dtype for the cv2 backend).
        hue_factor (float): Hue shift in [-0.5, 0.5] of a full turn.
        backend (str, optional): 'cv2' or 'pillow'. Defaults to mmcv's imread backend.
    """
    import cv2
    import mmcv.image.io
    from PIL import Image
    backend = backend or mmcv.image.io.imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f'backend: {backend} is not supported. Supported backends are '
                         "'cv2', 'pillow'")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    shift = int(hue_factor * 255) % 256
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        rgb = Image.fromarray(np.ascontiguousarray(img[..., ::-1]), 'RGB')
        h, s, v = rgb.convert('HSV').split()
        h = Image.fromarray(((np.asarray(h, dtype=np.uint16) + shift) % 256).astype(np.uint8), 'L')
        # np.array (a writable copy, as upstream returns), not np.asarray (a read-only view of
        # PIL's buffer that an in-place transform after ColorJitter, e.g. RandomErasing, fails on)
        return np.array(Image.merge('HSV', (h, s, v)).convert('RGB'), dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    h, s, v = cv2.split(cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL))
    h = ((h.astype(np.uint16) + shift) % 256).astype(np.uint8)
    return cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def fix_mmcv_adjust_hue() -> None:
    """Install :func:`adjust_hue` wherever mmcv exposes it."""
    import mmcv
    import mmcv.image
    import mmcv.image.photometric
    for module in (mmcv, mmcv.image, mmcv.image.photometric):
        module.adjust_hue = adjust_hue


def keep_config_interrupts() -> None:
    """Re-raise an interrupt that ``Config.pretty_text`` turned into a ``SyntaxError``."""
    from mmengine.config import Config
    upstream = Config.pretty_text.fget
    if getattr(upstream, '_genview_mm', False):
        return

    def pretty_text(self) -> str:
        try:
            return upstream(self)
        except SyntaxError as exc:
            cause = exc.__context__  # what the bare except caught
            if isinstance(cause, BaseException) and not isinstance(cause, Exception):
                raise cause from None  # KeyboardInterrupt, SystemExit (a SIGTERM handler)
            raise

    pretty_text._genview_mm = True
    Config.pretty_text = property(pretty_text, doc=Config.pretty_text.__doc__)


def keep_history_buffer_statistics() -> None:
    """Make ``HistoryBuffer.__setstate__`` restore only its own statistics. Upstream updates
    the class-wide ``_statistics_methods`` from the pickled state, so a loaded checkpoint could
    make every buffer of the process report ``mean`` as ``max`` (or crash MMEngine's logging
    with a value that is not a function); entries other than HistoryBuffer's own
    min/max/current/mean are dropped."""
    from mmengine.logging import HistoryBuffer
    upstream = HistoryBuffer.__setstate__
    if getattr(upstream, '_genview_mm', False):
        return

    def __setstate__(self, state):
        methods = state.get('statistics_methods') if isinstance(state, dict) else None
        if isinstance(methods, dict):
            state = dict(state, statistics_methods={
                k: v for k, v in methods.items()
                if k in _HISTORY_BUFFER_STATS and v is getattr(HistoryBuffer, k)})
        upstream(self, state)

    __setstate__._genview_mm = True
    __setstate__.__doc__ = upstream.__doc__
    HistoryBuffer.__setstate__ = __setstate__


def drop_checkpoint_config_text() -> None:
    """Make ``Runner.load_checkpoint`` drop a checkpoint's ``meta['config']`` (with a warning).
    MMEngine's ``resume`` runs that text as Python (``Config.fromstring``, only to compare
    ``gpu_ids``), and a string passes ``weights_only`` loading: a checkpoint handed to
    ``--resume`` ran code. MMEngine writes the config as ``meta['cfg']`` (kept); ``config`` is
    an old OpenMMLab field."""
    from mmengine.logging import print_log
    from mmengine.runner import Runner
    upstream = Runner.load_checkpoint
    if getattr(upstream, '_genview_mm', False):
        return

    def load_checkpoint(self, filename, *args, **kwargs):
        checkpoint = upstream(self, filename, *args, **kwargs)
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if isinstance(meta, dict) and 'config' in meta:
            meta.pop('config')
            print_log(f"{filename}: its meta['config'] (config text that MMEngine's resume "
                      'would run as Python) is ignored', logger='current', level=logging.WARNING)
        return checkpoint

    load_checkpoint._genview_mm = True
    load_checkpoint.__doc__ = upstream.__doc__
    Runner.load_checkpoint = load_checkpoint


def prune_checkpoints_after_saving() -> None:
    """Make ``CheckpointHook`` delete its checkpoints beyond ``max_keep_ckpts`` after the new
    one and ``last_checkpoint`` are written, not before: with ``max_keep_ckpts=1`` a kill during
    the save (a Slurm time limit) left a half-written file and ``last_checkpoint`` naming the
    deleted one, so every checkpoint of the run was lost. A save that fails deletes nothing."""
    from mmengine.hooks import CheckpointHook
    upstream = CheckpointHook._save_checkpoint_with_step
    if getattr(upstream, '_genview_mm', False):
        return

    def _save_checkpoint_with_step(self, runner, step, meta):
        backend, pruned = self.file_backend, []
        backend.remove = pruned.append  # this call's deletions, held back (an instance
        try:  # attribute over the backend's method, for this call only)
            upstream(self, runner, step, meta)
        finally:
            del backend.remove
        for path in pruned:
            backend.remove(path)

    _save_checkpoint_with_step._genview_mm = True
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step


def write_checkpoints_whole() -> None:
    """Make MMEngine's ``save_checkpoint`` write a local checkpoint through
    :func:`~genview_mm.utils.atomic_write.atomic_write`: a killed or failed save leaves the old
    file or none under the name, never part of one. What a killed save left (a hidden
    temporary file as large as a checkpoint, of a process now gone) is removed at a later save
    into that folder (:func:`~genview_mm.utils.atomic_write.clear_stale_in`). Other writes
    through MMEngine's file backend (drawings, dumps) are left as upstream writes them."""
    import io

    import mmengine.runner
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module
    from mmengine.fileio import get_file_backend
    from mmengine.fileio.backends.local_backend import LocalBackend

    from .utils.atomic_write import atomic_write, clear_stale_in
    upstream = checkpoint_module.save_checkpoint
    if getattr(upstream, '_genview_mm', False):
        return

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        path = os.fspath(filename)
        if file_client_args is not None or path.startswith('pavi://') or not isinstance(
                get_file_backend(path, backend_args=backend_args), LocalBackend):
            return upstream(checkpoint, filename, file_client_args, backend_args)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with atomic_write(path, 'wb') as f:
            f.write(buffer.getbuffer())
        clear_stale_in(osp.dirname(osp.abspath(path)))

    save_checkpoint._genview_mm = True
    save_checkpoint.__doc__ = upstream.__doc__
    for module in (checkpoint_module, runner_module, mmengine.runner):
        module.save_checkpoint = save_checkpoint


def apply() -> None:
    """Apply every fix once; safe to call repeatedly."""
    global _applied
    if _applied:
        return
    silence_known_noise()
    if _transformers_breaks_mmpretrain():
        disable_mmpretrain_multimodal()
    allow_mmengine_checkpoints()
    keep_history_buffer_statistics()
    check_safe_checkpoint_loading()
    register_config_package()
    fix_collate_fn_scope()
    drop_checkpoint_config_text()
    prune_checkpoints_after_saving()
    write_checkpoints_whole()
    fix_mmcv_adjust_hue()
    keep_config_interrupts()
    _applied = True
