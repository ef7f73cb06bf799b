"""End-to-end foreground PCA fit: sample images, encode them, fit, save, draw a contact sheet.

``tools/fit_foreground_pca.py`` is the command-line front end of :func:`run_fit`.
"""
import logging
import os
import os.path as osp
import random
from typing import Callable, Iterator, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from genview_mm.datasets.image_sources import load_image
from genview_mm.foreground.fit import fit_foreground_pca
from genview_mm.foreground.pca import ForegroundPCA
from genview_mm.utils.file_safety import ReplaceRefused, check_replace, lies_under
from genview_mm.visualization.contact_sheet import is_contact_sheet, save_contact_sheet

logger = logging.getLogger(__name__)


class _PreprocessedImages(Dataset):
    """Loads images as the generator and training decode them (:func:`load_image`: OpenCV,
    EXIF rotation, 16-bit scaled) and preprocesses them on CPU (``pixels``: the encoder's
    :meth:`~genview_mm.models.encoders.PatchEncoderBase.pixel_transform`); unreadable images
    give None."""

    def __init__(self, paths: Sequence[str], pixels: Callable) -> None:
        self.paths, self.pixels = list(paths), pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        image, why = load_image(self.paths[i])
        try:
            if image is not None:
                return self.pixels([image])[0]
        except Exception as exc:  # noqa: BLE001  (any preprocessing error: skip the image)
            why = str(exc)
        logger.warning('skipping unreadable image %s (%s)', self.paths[i], why)
        return None


def _collate(batch):
    batch = [x for x in batch if x is not None]
    return torch.stack(batch) if batch else None


def sample_paths(paths: Sequence[str], num_images: int, seed: int = 0,
                 per_folder: bool = False) -> List[str]:
    """A seeded random sample of ``num_images`` paths (all of them if fewer), sorted.

    With ``per_folder`` the sample is spread evenly over the images' folders (classes, in an
    ImageNet layout; the official fit used 10 images per class): folders take turns, in a
    seeded random order, each giving its next randomly ordered image, until ``num_images`` are
    drawn (so fewer images than folders come from a random choice of folders, not from the
    first ones by name).
    """
    paths = sorted(paths)
    if num_images <= 0 or num_images >= len(paths):
        return paths
    rng = random.Random(seed)
    if not per_folder:
        return sorted(rng.sample(paths, num_images))
    groups: dict = {}
    for p in paths:
        groups.setdefault(osp.dirname(p), []).append(p)
    queues = [rng.sample(g, len(g)) for _, g in sorted(groups.items())]
    rng.shuffle(queues)  # the turn order: the last, partial round takes random folders
    picked: List[str] = []
    while len(picked) < num_images:
        for q in queues:
            if q and len(picked) < num_images:
                picked.append(q.pop())
    return sorted(picked)


def check_paths_exist(paths: Sequence[str], source: str) -> None:
    """ValueError unless some of ``paths`` (sampled from ``source``) is a file: a list read
    from the wrong folder failed only after the encoder loaded, each image a warning.

    Args:
        paths (Sequence[str]): the sampled image paths.
        source (str): where they were listed from, for the message.
    """
    if paths and not any(osp.isfile(p) for p in paths):
        raise ValueError(
            f'none of the {len(paths)} images sampled from {source!r} exists (e.g. {paths[0]}): '
            "a list's relative paths start from --data-root (default: the list's folder); the "
            "authors' train_sampled_1000cls_10img.txt names data/imagenet/train/..., so give "
            'the folder that holds data/ (e.g. --data-root .)')


def token_batches(paths: Sequence[str], encoder, batch_size: int = 64, num_workers: int = 0,
                  show_progress: bool = True):
    """``(batches, progress)``: ``batches()`` yields float32 (B, N, D) tokens of ``paths``
    (decoded in ``num_workers`` DataLoader workers, unreadable images skipped), the same images
    in the same order on every call; ``progress(iterable, desc)`` adds a tqdm bar."""
    data = _PreprocessedImages(paths, encoder.pixel_transform())
    loader_kw = dict(batch_size=batch_size, num_workers=num_workers, collate_fn=_collate)

    def batches() -> Iterator[torch.Tensor]:
        for x in DataLoader(data, **loader_kw):
            if x is not None:
                yield encoder(x.to(encoder.device, encoder.dtype)).float()

    def progress(it, desc):
        if not show_progress:
            return it
        from tqdm import tqdm
        return tqdm(it, desc=desc, total=-(-len(data) // batch_size), unit='batch')

    return batches, progress


def sheet_path(out: str, sheet: Optional[str] = None) -> str:
    """The contact sheet's path: ``sheet``, else ``out`` with suffix ``.png``."""
    return sheet or osp.splitext(out)[0] + '.png'


def _pca_kind(path: str) -> Optional[str]:
    """What PCA file ``path`` is: ``'official'`` (the authors' vector, imported by
    ``tools/import_official_pca.py``), ``'fit'`` (fitted here), None (missing, or another file).
    """
    try:
        return 'official' if ForegroundPCA.load(path).source.startswith('official:') else 'fit'
    except Exception:  # noqa: BLE001  (missing, unreadable or foreign: not a PCA file)
        return None


def check_outputs(out: str, sheet: Optional[str] = None, overwrite: bool = False,
                  official: bool = False) -> None:
    """Refuse to replace an existing ``out`` that is not a PCA file made the same way, or an
    existing sheet that is not a contact sheet written here, unless ``overwrite``.

    Args:
        out (str): the PCA file to write.
        sheet (str, optional): the contact sheet to write; None: none is written.
        overwrite (bool): replace whatever is there (``--overwrite``). Defaults to False.
        official (bool): ``out`` is the authors' vector being imported, not a fit. Defaults to
            False.

    Raises:
        genview_mm.utils.file_safety.ReplaceRefused: one line naming the file and the flag,
            or both flags when the sheet would be written over the PCA file itself.
    """
    if sheet and osp.realpath(sheet) == osp.realpath(out):  # the sheet would replace the fit
        raise ReplaceRefused(f'the contact sheet and the PCA file would both be written to {out}'
                             ': give --out a .pth name, or --sheet another path')
    if sheet and lies_under(osp.realpath(out), osp.realpath(sheet)):  # made by the save
        raise ReplaceRefused(f'--sheet {sheet} is the folder the PCA file {out} goes into: give '
                             '--sheet a file path (.png)')
    kind = None if overwrite else _pca_kind(out)  # one load of what is there
    check_replace(out, lambda path: kind == ('official' if official else 'fit'),
                  f"a foreground PCA file {'imported' if official else 'fitted'} by this tool",
                  '--overwrite', overwrite, lost={'fit': 'the PCA fit it holds', 'official':
                                                  "the authors' vector it holds (imported)"
                                                  }.get(kind))
    if sheet:
        check_replace(sheet, is_contact_sheet, 'a contact sheet of a PCA fit', '--overwrite',
                      overwrite)


def run_fit(paths: Sequence[str], encoder, out: str, fg_fraction: float = 0.4,
            sign_rule: str = 'center', batch_size: int = 64, num_workers: int = 0,
            sheet: Optional[str] = None, sheet_images: int = 32,
            show_progress: bool = True, threshold_rule: str = 'quantile',
            overwrite: bool = False) -> ForegroundPCA:
    """Fit a :class:`ForegroundPCA` for ``encoder`` on ``paths``, save it to ``out``.

    Args:
        paths: images to fit on (already sampled).
        encoder: the frozen patch encoder (:mod:`genview_mm.models.encoders`).
        out: where to save the PCA file.
        fg_fraction: target foreground fraction. Defaults to 0.4.
        sign_rule: 'center', '+1' or '-1' (see :mod:`genview_mm.foreground.fit`).
        batch_size: images per encoder call. Defaults to 64.
        num_workers: DataLoader workers for decoding. Defaults to 0.
        sheet: PNG path for the contact sheet; None: next to ``out`` with suffix ``.png``.
        sheet_images: images on the contact sheet. Defaults to 32.
        show_progress: tqdm progress bars. Defaults to True.
        threshold_rule: 'quantile' or 'histogram' (:mod:`genview_mm.foreground.fit`).
            Defaults to 'quantile'.
        overwrite: replace an existing ``out`` or sheet that this code did not write
            (:func:`check_outputs`). Defaults to False.
    """
    sheet = sheet_path(out, sheet)
    check_outputs(out, sheet, overwrite)
    batches, progress = token_batches(paths, encoder, batch_size, num_workers, show_progress)
    identity = encoder.identity()
    pca = fit_foreground_pca(batches, encoder.grid, encoder.name, encoder.input_size,
                             fg_fraction=fg_fraction, sign_rule=sign_rule,
                             threshold_rule=threshold_rule, progress=progress,
                             encoder_arch=identity.arch, fingerprint=identity.fingerprint)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    pca.save(out)  # a failed save keeps the earlier fit and its sheet
    if osp.isfile(sheet):  # an earlier fit's (check_outputs let it go): never beside this one
        os.remove(sheet)
    beside = sheet_path(out)  # an earlier fit's default sheet, this one's going elsewhere
    if osp.realpath(beside) != osp.realpath(sheet) and osp.isfile(beside) and \
            is_contact_sheet(beside):
        os.remove(beside)
    if draw_sheet(pca, encoder, paths, sheet, batch_size, sheet_images):
        logger.info('saved %s (alpha=%.4f, %d images) and contact sheet %s', out, pca.alpha,
                    pca.num_images, sheet)
    else:
        logger.warning('saved %s (alpha=%.4f, %d images); no contact sheet: none of the '
                       'images could be read for it', out, pca.alpha, pca.num_images)
    return pca


def draw_sheet(pca: ForegroundPCA, encoder, paths: Sequence[str], path: str,
               batch_size: int = 64, limit: Optional[int] = None) -> Optional[str]:
    """Contact sheet of ``pca``'s masks over the first ``limit`` readable images of ``paths``
    (None: all), encoded ``batch_size`` images a call (the fit's batch: ``--sheet-images`` may
    be larger); None, and nothing written, when none is readable."""
    images = []
    for p in paths:  # the first readable ones: the first N paths, unreadable, drew no sheet
        if limit is not None and len(images) >= limit:
            break
        image = load_image(p)[0]
        if image is not None:
            images.append(image)
    if not images:
        return None
    masks = torch.cat([pca.foreground_mask(encoder(encoder.preprocess(
        images[i:i + batch_size])).float()).cpu() for i in range(0, len(images), batch_size)])
    masks = masks.reshape(-1, *pca.grid).numpy()
    caption = (f'{pca.encoder}  threshold rule: {pca.threshold_rule}  alpha={pca.alpha:.4f}  '
               f'foreground {100 * pca.fg_fraction:.1f}% of fitted tokens  sign: {pca.sign_rule}'
               f'  ({pca.source})')
    return save_contact_sheet(path, images, list(masks), caption=caption)
