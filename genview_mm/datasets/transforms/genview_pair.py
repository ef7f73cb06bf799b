"""GenViewPairDataset: ``MultiView`` whose pair takes one view from the generated image."""
import copy
import logging
import math
from typing import Callable, Dict, List, Optional, Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, Compose, LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

from ..manifest_index import ManifestIndex

#: per-sample fields this transform adds; pass them to ``PackInputs(algorithm_keys=...)``
GEN_KEYS = ('genview_slot', 'genview_noise_level', 'genview_fallback')
Transform = Union[dict, Callable[[dict], dict]]  # a transform or its config


def decoded_like(view: np.ndarray, original: np.ndarray) -> np.ndarray:
    """A copy of the generated ``view`` (decoded as colour uint8) as the original was decoded:
    grey where the user's loader has ``color_type='grayscale'``, float32 where it has
    ``to_float32=True`` (the two views of a pair had other shapes or dtypes); behind
    ``color_type='unchanged'`` an opaque alpha channel for a BGRA original and 16-bit values
    (x 257: 255 is 65535) for a 16-bit one (whose view was 255 at most: nearly black)."""
    if original.ndim == 2 and view.ndim == 3:
        view = mmcv.bgr2gray(view)
    elif original.ndim == 3 and original.shape[2] == 4 and view.ndim == 3 and view.shape[2] == 3:
        view = np.dstack([view, np.full(view.shape[:2], 255, view.dtype)])
    if original.dtype == np.uint16 and view.dtype == np.uint8:
        return view.astype(np.uint16) * 257
    return view.astype(original.dtype)  # a copy, also when the dtype is the same


@TRANSFORMS.register_module()
class GenViewPairDataset(BaseTransform):
    """Upstream ``MultiView`` with GenView's positive pairs (arXiv:2403.12003, Sec. 3.2).

    A drop-in replacement for ``MultiView`` with the same ``transforms`` and ``num_views``, so a
    config changes only the type of upstream's entry::

        train_pipeline = [
            _base_.train_pipeline[0],                                # LoadImageFromFile
            dict(_base_.train_pipeline[1], type='GenViewPairDataset'),  # was MultiView
            dict(_base_.train_pipeline[2], algorithm_keys=GEN_KEYS)]  # PackInputs

    The first two views are the positive pair (SwAV's ``num_views=[2, 6]``: the two global
    crops). With probability ``prob`` one of them, chosen uniformly, is built from a generated
    variation of the image (uniformly among several) and the other from the original, each
    through its own slot's pipeline; the other views always come from the original. When the
    image has no generated view, or the coin says no, all views come from the original, exactly
    as ``MultiView``.

    The generated image is decoded with mmcv's ``LoadImageFromFile`` (file backends,
    ``backend_args``). A generated file that is missing or cannot be decoded falls back to the
    original (a 100-hour job never stops for one file) and is flagged in ``genview_fallback``;
    ``GenViewPairHook`` counts these and checks at the start of training that the manifest
    matches the dataset. If no ``LoadImageFromFile`` precedes this transform, it decodes the
    original itself.

    Added keys (see :data:`GEN_KEYS`): ``genview_slot`` (index of the generated view, -1 if
    none), ``genview_noise_level`` (its noise level, -1 if none or unknown) and
    ``genview_fallback`` (True if a generated file could not be read).

    Without a generated view it is ``MultiView``: ``transforms``, ``num_views`` (one view
    allowed), the ``pipelines`` and ``transforms`` attributes, input dicts with an ``img`` and no
    ``img_path``; with ``prob=0`` (no manifest needed) it draws no random number of its own, so
    a seed gives the very views ``MultiView`` gives.

    Args:
        transforms (list[list[dict | callable]]): view pipelines, as ``MultiView``'s.
        num_views (int | list[int]): views per pipeline, as ``MultiView``'s. Defaults to 2.
        manifest (str, optional): generation manifest (``manifest.jsonl``) or the folder holding
            it. In the GenView configs it comes from ``genview.manifest`` (see
            :func:`genview_mm.apis.apply_genview_settings`). Required when ``prob > 0``.
        prob (float): probability of using a generated view. Defaults to 1.0.
        source_root (str, optional): folder the manifest keys are relative to (an image
            outside it has no key: it gets a generated view only from rows whose ``source``
            is its own path). Defaults to None (match by trailing path, see
            :class:`ManifestIndex`).
        min_clip_sim (float, optional): ignore generated views less similar to their source.
            Defaults to None.
        backend_args (dict, optional): file backend arguments of ``LoadImageFromFile``.
            Defaults to None.
        imdecode_backend (str): image decoding backend. Defaults to 'cv2'.
        ignore_empty (bool): when this transform decodes the original itself, skip a missing
            original as ``LoadImageFromFile`` does. Defaults to False.
    """

    def __init__(self, transforms: Sequence[Sequence[Transform]],
                 num_views: Union[int, Sequence[int]] = 2, manifest: Optional[str] = None,
                 prob: float = 1.0, source_root: Optional[str] = None,
                 min_clip_sim: Optional[float] = None, backend_args: Optional[dict] = None,
                 imdecode_backend: str = 'cv2', ignore_empty: bool = False) -> None:
        num_views = [num_views] if isinstance(num_views, int) else list(num_views)
        if len(num_views) != len(transforms):
            # a pipeline given without its list (transforms=view_pipeline): each transform read
            # as a pipeline of its own, and the fix is its brackets, not more num_views entries
            flat = not any(isinstance(t, (list, tuple)) for t in transforms)
            raise ValueError(f'num_views {num_views} needs one entry per pipeline in '
                             f'transforms ({len(transforms)} given), as in MultiView' + (
                                 ': transforms holds transforms, not pipelines (lists of '
                                 'them); for one pipeline write transforms=[pipeline]'
                                 if flat and transforms else ''))
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if min_clip_sim is not None and not math.isfinite(min_clip_sim):  # NaN filtered nothing
            raise ValueError(f'min_clip_sim must be a finite number or None, got {min_clip_sim}')
        self.num_views, self.manifest, self.prob = num_views, manifest, float(prob)
        #: one Compose per entry of ``transforms``, and the pipeline of every view (MultiView's)
        self.pipelines = [Compose(t) for t in transforms]
        self.transforms = [p for p, n in zip(self.pipelines, num_views) for _ in range(int(n))]
        if self.prob > 0 and len(self.transforms) < 2:
            raise ValueError(f'num_views={num_views} makes {len(self.transforms)} view; a '
                             'generated view needs a pair (at least 2 views), or set prob=0 '
                             '(MultiView\'s behaviour)')
        self.source_root, self.min_clip_sim = source_root, min_clip_sim
        self.loader = LoadImageFromFile(backend_args=backend_args,
                                        imdecode_backend=imdecode_backend,
                                        ignore_empty=ignore_empty)
        self._index: Optional[ManifestIndex] = None
        self._warned, self._warned_no_path = 0, False

    @property
    def index(self) -> ManifestIndex:
        """The manifest index, read on first use."""
        if self._index is None:
            if not self.manifest:
                raise ValueError(
                    f'GenViewPairDataset has no manifest (prob={self.prob}). Set `genview = '
                    'dict(manifest=...)` in the config (tools/train.py applies it; in your own '
                    'script call genview_mm.apis.apply_genview_settings(cfg)) or pass '
                    'manifest=..., or prob=0 for plain MultiView views')
            self._index = ManifestIndex(self.manifest, self.source_root, self.min_clip_sim,
                                        self.loader.backend_args)
        return self._index

    def _generated(self, img_path: Optional[str]):
        """(image, slot, noise level, fallback) of the generated view, or Nones.

        Draws random numbers only when the image has generated views and ``0 < prob``, so
        that otherwise the views are ``MultiView``'s for the same seed."""
        if self.prob <= 0 or img_path is None:
            if self.prob > 0 and not self._warned_no_path:  # off the per-sample path
                self._warned_no_path = True
                print_log('GenViewPairDataset: a sample without img_path (an in-memory dataset) '
                          'gets no generated view: GenView pairs need image files named in the '
                          'manifest (or set prob=0)', logger='current', level=logging.WARNING)
            return None, -1, -1, False
        views = self.index.lookup(img_path)
        if not views or np.random.rand() >= self.prob:
            return None, -1, -1, False
        path, level = views[np.random.randint(len(views))]
        slot = int(np.random.randint(2))  # drawn before loading: a bad file shifts no later draw
        try:
            loaded = self.loader(dict(img_path=path))
            if loaded is None:
                raise FileNotFoundError(path)
        except Exception as exc:  # missing/corrupt file: fall back to the original
            if self._warned < 10:
                self._warned += 1
                print_log(f'GenViewPairDataset: generated view {path} unusable ({exc}); using '
                          'the original instead.', logger='current', level=logging.WARNING)
            return None, -1, -1, True
        level = -1 if level is None else int(level)
        return loaded['img'], slot, level, False

    def transform(self, results: Dict) -> Optional[Dict]:
        """The views of one sample (``results['img']`` becomes their list).

        Args:
            results (dict): the sample; its ``img``, or its ``img_path`` to decode.

        Returns:
            dict | None: ``results`` with the views and :data:`GEN_KEYS`; None when
            ``ignore_empty`` and the original is missing.
        """
        if 'img' not in results and 'img_path' in results:
            results = self.loader(results)
            if results is None:  # ignore_empty and the original is missing
                return None
        generated, slot, level, fallback = self._generated(results.get('img_path'))
        imgs: List[np.ndarray] = []
        for i, pipeline in enumerate(self.transforms):
            view = copy.deepcopy(results)
            if i == slot:
                img = decoded_like(generated, results['img'])
                view.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
            imgs.append(pipeline(view)['img'])
        results.update(img=imgs, genview_slot=slot, genview_noise_level=level,
                       genview_fallback=fallback)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(manifest={self.manifest!r}, prob={self.prob}, '
                f'num_views={self.num_views})')

