"""The steps of one batch of the runner: load, analyse, generate, save. Each step turns what
goes wrong into a failed manifest row (kind and cause in ``reason``, see :mod:`.failures`)
instead of stopping the run."""
import io
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .analysis import concat_analyses, select_analysis
from .failures import TRANSIENT, UNDECODABLE, failure_reason
from .outputs import output_relpath, save_atomic
from .seeding import image_seed
from .sources import ImageItem

logger = logging.getLogger(__name__)
# (item, RGB PIL image, its analysis or None)
Loaded = Tuple[ImageItem, Any, Optional[Dict[str, Any]]]


def failed_rows(item: ImageItem, reason: str, gen) -> List[Dict]:
    """One failed row per variation of ``item``."""
    return [dict(source=item.path, key=item.key, variation=v, output=None, noise_level=None,
                 fg_ratio=None, seed=image_seed(item.key, gen.base_seed, v), generator=gen.name,
                 clip_sim=None, status='failed', reason=reason)
            for v in range(gen.num_variations)]


class _NamedBytes(io.BytesIO):
    """Bytes read from ``path``; PIL's errors quote ``repr(fp)``, so they name the file."""

    def __init__(self, data: bytes, path: str) -> None:
        super().__init__(data)
        self.path = path

    def __repr__(self) -> str:
        return repr(self.path)


def load_image(path: str):
    """The RGB image at ``path``, or a failure reason: reading errors (missing file,
    permission, I/O) are transient; a file that was read but does not decode is undecodable."""
    from PIL import Image
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError as exc:
        return None, failure_reason(TRANSIENT, 'missing file', exc)
    except (OSError, MemoryError) as exc:
        return None, failure_reason(TRANSIENT, 'unreadable file', exc)
    try:
        with Image.open(_NamedBytes(data, path)) as img:
            return img.convert('RGB'), None
    except MemoryError as exc:
        return None, failure_reason(TRANSIENT, 'out of memory', exc)
    except Exception as exc:  # noqa: BLE001  (PIL raises many types for a bad file)
        return None, failure_reason(UNDECODABLE, 'undecodable image', exc)


def load_batch(items: Sequence[ImageItem]) -> Tuple[List[Tuple[ImageItem, Any]], List]:
    """(loaded (item, image) pairs, failed (item, reason) pairs)."""
    ok, failed = [], []
    for item in items:
        img, reason = load_image(item.path)
        (ok.append((item, img)) if reason is None else failed.append((item, reason)))
    return ok, failed


def analyze_batch(gen, pairs: Sequence[Tuple[ImageItem, Any]]) -> List[Loaded]:
    """Attach each image's analysis (one encoder pass for the batch); None if it fails: the
    image is then analysed again when generated (and alone if that fails too)."""
    if not pairs:
        return []
    try:
        info = gen.analyze([img for _, img in pairs])
    except Exception as exc:  # noqa: BLE001
        logger.warning('analysis failed (%s); retrying it at generation', exc)
        return [(item, img, None) for item, img in pairs]
    return [(item, img, select_analysis(info, [i])) for i, (item, img) in enumerate(pairs)]


def generate_batch(gen, loaded: Sequence[Loaded]) -> List:
    """(item, view) pairs for the loaded images, or failed rows; a failing batch is retried
    image by image so one bad image cannot sink the others."""
    if not loaded:
        return []
    infos = [info for _, _, info in loaded]
    analysis = concat_analyses(infos) if all(i is not None for i in infos) else None
    try:
        views = gen.generate([img for _, img, _ in loaded], [item.key for item, _, _ in loaded],
                             analysis=analysis)
    except Exception as exc:  # noqa: BLE001
        if len(loaded) == 1:
            return failed_rows(loaded[0][0],
                               failure_reason(TRANSIENT, 'generation failed', exc), gen)
        logger.warning('batch failed (%s); retrying image by image', exc)
        return [r for one in loaded for r in generate_batch(gen, [one])]
    items = {item.key: item for item, _, _ in loaded}
    return [(items[view.key], view) for view in views]


def save_view(pair, gen, out_dir: str, ext: str, quality: int,
              tmp_dir: Optional[str] = None) -> Dict:
    """Write one generated view atomically and return its manifest row (a failed row if the
    write fails: a full disk or a lost mount can go away)."""
    item, view = pair
    rel = output_relpath(item.key, view.variation, gen.num_variations, ext)
    row = dict(source=item.path, key=item.key, variation=view.variation, output=rel,
               noise_level=view.noise_level, fg_ratio=view.fg_ratio, seed=view.seed,
               generator=gen.name, clip_sim=view.clip_sim, status='ok', reason='')
    try:
        save_atomic(view.image, osp.join(out_dir, rel), quality, tmp_dir)
    except OSError as exc:
        row.update(output=None, noise_level=None, fg_ratio=None, clip_sim=None,
                   status='failed', reason=failure_reason(TRANSIENT, 'write failed', exc))
    return row
