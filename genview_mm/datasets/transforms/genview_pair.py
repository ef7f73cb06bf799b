"""GenViewPairDataset: positive pairs of one original view and one generated view."""
import copy
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

from ..manifest_index import ManifestIndex

GEN_KEYS = ('genview_slot', 'genview_noise_level', 'genview_fallback')


@TRANSFORMS.register_module()
class GenViewPairDataset(BaseTransform):
    """Build the two views of a GenView positive pair (arXiv:2403.12003, Sec. 3.2).

    Put it in place of ``LoadImageFromFile`` + ``MultiView`` in any upstream dataset's pipeline.
    For each sample it decodes the original image and, with probability ``prob``, one of its
    generated variations (uniformly among several); the generated image goes to a random view
    slot and the original to the other, and each slot gets its own view pipeline. Otherwise (or
    when the image has no generated view) both views come from the original, exactly as
    ``MultiView(num_views=2)``. Only images that are used are decoded.

    A generated file that is missing or cannot be decoded falls back to the original (a 100-hour
    job never stops for one file); ``GenViewPairHook`` counts these in the log, and checks at the
    start of training that the manifest matches the dataset.

    Added keys (add them to ``PackInputs(meta_keys=...)`` to see them in data samples):
    ``genview_slot`` (index of the generated view, -1 if none), ``genview_noise_level`` (-1 if
    none) and ``genview_fallback`` (True if a generated file could not be read).

    Args:
        manifest (str): generation manifest (``manifest.jsonl``) or the folder holding it.
        view_pipelines (list): one pipeline (used for both views) or two (one per slot), each a
            list of transform configs, like ``MultiView``'s ``transforms``.
        prob (float): probability of using a generated view. Defaults to 1.0.
        extra_views (dict, optional): ``dict(num_views=K, pipeline=[...])``: K more views from
            the original image, appended after the pair (SwAV's multi-crop local views).
            Defaults to None.
        source_root (str, optional): folder the manifest keys are relative to. Defaults to None
            (match by trailing path, see :class:`ManifestIndex`).
        min_clip_sim (float, optional): ignore generated views less similar to their source.
            Defaults to None.
        imdecode_backend (str): backend of ``mmcv.imfrombytes``. Defaults to 'cv2'.
        backend_args (dict, optional): file backend arguments. Defaults to None.
    """

    def __init__(self, manifest: str, view_pipelines: Sequence[Sequence[Union[Dict, object]]],
                 prob: float = 1.0, extra_views: Optional[dict] = None,
                 source_root: Optional[str] = None,
                 min_clip_sim: Optional[float] = None, imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if len(view_pipelines) not in (1, 2):
            raise ValueError('view_pipelines takes one pipeline (shared) or two (one per view), '
                             f'got {len(view_pipelines)}')
        self.index = ManifestIndex(manifest, source_root, min_clip_sim)
        pipelines = [Compose(p) for p in view_pipelines]
        self.pipelines = pipelines * 2 if len(pipelines) == 1 else pipelines
        self.extra_pipelines = []
        if extra_views:
            self.extra_pipelines = [Compose(extra_views['pipeline'])] * int(extra_views['num_views'])
        self.prob = prob
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args
        self._warned = 0

    def _load(self, path: str) -> np.ndarray:
        img = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args), flag='color',
                               backend=self.imdecode_backend)
        if img is None:
            raise ValueError(f'cannot decode {path}')
        return img

    def transform(self, results: Dict) -> Dict:
        original = self._load(results['img_path'])
        views = self.index.lookup(results['img_path'])
        slot, level, fallback, generated = -1, -1, False, None
        if views and np.random.rand() < self.prob:
            path, noise_level = views[np.random.randint(len(views))]
            try:
                generated = self._load(path)
                slot, level = int(np.random.randint(2)), noise_level
            except Exception as exc:  # missing/corrupt file: fall back to the original
                fallback = True
                if self._warned < 10:
                    self._warned += 1
                    print_log(f'GenViewPairDataset: generated view {path} unusable ({exc}); '
                              'using the original instead.', logger='current', level=30)
        imgs: List[np.ndarray] = []
        for i, pipeline in enumerate(self.pipelines + self.extra_pipelines):
            view = copy.deepcopy(results)
            img = generated if i == slot else original
            view.update(img=img.copy(), img_shape=img.shape[:2], ori_shape=img.shape[:2])
            imgs.append(pipeline(view)['img'])
        results.update(img=imgs, img_shape=original.shape[:2], ori_shape=original.shape[:2],
                       genview_slot=slot, genview_noise_level=level, genview_fallback=fallback)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(manifest={self.index.manifest!r}, prob={self.prob}, '
                f'rows={self.index.num_rows}, pipelines={self.pipelines})')
